/* Hugging Face tokenizer.json of the byte-level BPE family (Qwen2 / Qwen3 /
 * Qwen3.5 / Qwen3.6): NFC normalizer, Split pre-tokenizer with the file's regex
 * (PCRE2, UTF + Unicode properties), ByteLevel byte-to-unicode mapping, BPE by
 * merge rank, added tokens (special and not, with lstrip / rstrip / single_word /
 * normalized) matched before everything else, ByteLevel decoder.
 *
 * Supported tokenizer.json subset: model BPE (vocab; merges as "a b" or
 * ["a", "b"]; ignore_merges; unk_token / fuse_unk; byte_fallback false, dropout
 * null, no subword prefix / suffix); normalizer null, NFC or a Sequence of NFC;
 * pre_tokenizer Split{Regex|String, Isolated, invert false} steps ending in
 * ByteLevel{add_prefix_space false} (use_regex true adds the GPT-2 regex);
 * decoder ByteLevel; post_processor null or ByteLevel. truncation / padding
 * are ignored. The split regex is written for Oniguruma (what HF tokenizers
 * compiles); it runs on PCRE2 (UTF, UCP, JIT) with \s, \S, \w, \W and \h
 * rewritten to Oniguruma's meanings. Known differences from HF tokenizers:
 * code points whose Unicode properties changed between the Unicode versions of
 * PCRE2 / utf8proc and of Oniguruma / Rust, and single_word's "word character"
 * (Rust regex \w), approximated by general categories.
 *
 * Thread safety: a loaded tokenizer is read-only apart from an internal BPE
 * cache guarded by mutexes; encode / decode may run from several threads at
 * once. */
#ifndef FP4RT_TOKENIZER_H
#define FP4RT_TOKENIZER_H

#include "fp4rt.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fp4rt_tokenizer fp4rt_tokenizer;

/* Loads a tokenizer.json file. Unknown model types, normalizers, pre-tokenizers
 * or decoders are UNSUPPORTED errors naming the file and the JSON key; malformed
 * JSON is FORMAT. */
fp4rt_status fp4rt_tokenizer_load(const char *path, fp4rt_tokenizer **out);
/* DIR/tokenizer.json (NOT_FOUND-style IO error naming the file if absent). */
fp4rt_status fp4rt_tokenizer_load_dir(const char *dir, fp4rt_tokenizer **out);
void fp4rt_tokenizer_free(fp4rt_tokenizer *t);

/* Number of ids (regular + added). */
size_t fp4rt_tokenizer_n_vocab(const fp4rt_tokenizer *t);
/* Id of an exact token string (regular or added), or -1. */
int32_t fp4rt_tokenizer_find(const fp4rt_tokenizer *t, const char *token);
/* 1 if the id has a token (ids may have holes; the model may have padding rows). */
int fp4rt_tokenizer_has_id(const fp4rt_tokenizer *t, int32_t id);
/* 1 if id is an added token marked special. */
int fp4rt_tokenizer_is_special(const fp4rt_tokenizer *t, int32_t id);
/* The bytes id decodes to (not NUL-terminated, possibly a part of a UTF-8
 * character), *len of them; valid while t lives. NULL (and *len = 0) for an
 * id without a token. */
const char *fp4rt_tokenizer_bytes(const fp4rt_tokenizer *t, int32_t id, size_t *len);

/* Encodes text[0, len) (UTF-8). Added tokens in the text are recognized (as
 * transformers does by default). Invalid UTF-8 bytes are replaced by U+FFFD
 * before encoding (documented behaviour, as Python's errors="replace").
 * *ids is malloc'ed; *n its length. */
fp4rt_status fp4rt_tokenizer_encode(const fp4rt_tokenizer *t, const char *text, size_t len,
                                    int32_t **ids, size_t *n);
/* Decodes ids to UTF-8 (malloc'ed, NUL-terminated; *len excludes the NUL).
 * skip_special: leave out special added tokens. Byte sequences that are not
 * valid UTF-8 are replaced by U+FFFD (as transformers' decode does).
 * An id outside the vocabulary is an INVALID_ARGUMENT error. */
fp4rt_status fp4rt_tokenizer_decode(const fp4rt_tokenizer *t, const int32_t *ids, size_t n,
                                    int skip_special, char **out, size_t *len);

/* Streaming decoder: push ids one at a time; each push returns only complete
 * UTF-8 characters (bytes of a character split across tokens are held back
 * until it is complete; invalid sequences come out as U+FFFD). */
typedef struct fp4rt_detok_stream {
    const fp4rt_tokenizer *tok;
    int skip_special;
    unsigned char pending[8]; /* bytes of an incomplete UTF-8 character */
    int n_pending;
} fp4rt_detok_stream;

void fp4rt_detok_stream_init(fp4rt_detok_stream *s, const fp4rt_tokenizer *t, int skip_special);
/* Writes the text completed by `id` to out (NUL-terminated). cap must be at
 * least 3 * (held-back bytes + the token's bytes) + 1; cap >= 1024 suffices for
 * every token of the Qwen vocabularies (at most 256 bytes). Returns the number
 * of bytes written (0 when the token only extends a held-back character or is
 * a skipped special token), or -1 for an id outside the vocabulary or a too
 * small cap (fp4rt_last_error says which; the stream is unchanged). */
int fp4rt_detok_stream_push(fp4rt_detok_stream *s, int32_t id, char *out, size_t cap);
/* Emits what is still held back (one U+FFFD per ill-formed subpart, as the
 * one-shot decode). cap >= 16 always suffices. Returns bytes written. */
int fp4rt_detok_stream_flush(fp4rt_detok_stream *s, char *out, size_t cap);

#endif
