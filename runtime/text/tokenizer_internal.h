/* Internal layout of fp4rt_tokenizer, shared by runtime/text/tokenizer*.c (and the
 * tokenizer test, which uses the BPE hooks). Not part of the public API.
 *
 * Representation: every token is kept as the bytes it decodes to (its
 * "byte form"): the ByteLevel unicode characters of the tokenizer.json string
 * are mapped back to the bytes they stand for, so BPE runs directly on the
 * UTF-8 bytes of the pre-tokenized text without building the unicode form.
 * Tokens whose string contains a character outside the 256 ByteLevel
 * characters ("raw" tokens) keep their UTF-8 string, exactly as the
 * ByteLevel decoder of HF tokenizers does. */
#ifndef FP4RT_TOKENIZER_INTERNAL_H
#define FP4RT_TOKENIZER_INTERNAL_H

#include "runtime/text/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

/* Per-id flags. */
enum {
    FP4RT_TOKF_PRESENT = 1, /* the id has a token */
    FP4RT_TOKF_ADDED = 2,   /* an entry of added_tokens */
    FP4RT_TOKF_SPECIAL = 4, /* added token with special: true */
    FP4RT_TOKF_RAW = 8      /* string is not all ByteLevel characters: bytes are its UTF-8 */
};

/* An entry of added_tokens. `match` is what is searched for in the text: the
 * content itself, or its normalized (NFC) form when normalized is true. */
typedef struct fp4rt_tok_added {
    char *content;
    char *match;
    size_t match_len;
    int32_t id;
    unsigned char special, lstrip, rstrip, single_word, normalized;
} fp4rt_tok_added;

/* A set of added tokens searched leftmost-longest (as aho-corasick's
 * LeftmostLongest in HF tokenizers). by_first[b] lists the indices (into
 * fp4rt_tokenizer.added) whose match starts with byte b, longest first. */
typedef struct fp4rt_tok_addset {
    int n;
    int *idx;             /* [n] all members, grouped by first byte */
    int first_off[257];   /* members starting with byte b: idx[first_off[b] .. first_off[b+1]) */
} fp4rt_tok_addset;

/* Open-addressing map from a merge pair (left id << 32 | right id) to its rank
 * and the id of the merged token. */
typedef struct fp4rt_tok_merge {
    uint64_t key; /* UINT64_MAX = empty */
    uint32_t rank;
    int32_t id;
} fp4rt_tok_merge;

/* Direct-mapped cache of BPE results for short words; one slot is one cache
 * line. Guarded by striped mutexes so that encode is thread safe. */
#define FP4RT_TOK_CACHE_WORD 22
#define FP4RT_TOK_CACHE_IDS 8
#define FP4RT_TOK_CACHE_SLOTS (1u << 15)
#define FP4RT_TOK_CACHE_LOCKS 64
typedef struct fp4rt_tok_cache_slot {
    uint64_t hash;
    uint8_t wlen, nids; /* wlen 0 = empty */
    unsigned char word[FP4RT_TOK_CACHE_WORD];
    int32_t ids[FP4RT_TOK_CACHE_IDS];
} fp4rt_tok_cache_slot;

#define FP4RT_TOK_MAX_SPLITS 4

struct fp4rt_tokenizer {
    char *path; /* for messages */

    /* id -> byte form: bytes of id i are blob[off[i] .. off[i] + len[i]) */
    uint32_t n_ids; /* max id + 1 */
    uint32_t *off, *len;
    uint8_t *flags; /* FP4RT_TOKF_* */
    char *blob;
    size_t blob_len, blob_cap;

    /* BPE vocabulary: byte form -> id, for regular (non-raw) tokens */
    int32_t *vmap; /* slots hold ids, -1 empty */
    uint32_t vmap_mask;
    int32_t byte_id[256]; /* id of the one-byte token, -1 if absent */
    fp4rt_tok_merge *mmap;
    uint32_t mmap_mask;
    int ignore_merges;
    int32_t unk_id; /* -1: unknown bytes are dropped (HF BPE without unk_token) */
    int fuse_unk;
    int bpe_linear_max; /* words of at most this many symbols use the O(n^2) scan */

    /* normalizer */
    int nfc;

    /* pre-tokenizer: regex splits (Isolated), in order, then ByteLevel */
    int n_split;
    pcre2_code *split[FP4RT_TOK_MAX_SPLITS];
    int split_jit[FP4RT_TOK_MAX_SPLITS];

    /* added tokens; raw_set matches on the text before normalization,
     * norm_set on the normalized pieces */
    fp4rt_tok_added *added;
    int n_added;
    fp4rt_tok_addset raw_set, norm_set;

    fp4rt_tok_cache_slot *cache; /* [FP4RT_TOK_CACHE_SLOTS] */
    pthread_mutex_t cache_lock[FP4RT_TOK_CACHE_LOCKS];
    int cache_ready;
};

/* ---- tokenizer_text.c: UTF-8, ByteLevel table, NFC -------------------- */

/* Length of the well-formed UTF-8 character at s[0, n) and its code point, or 0
 * when s does not start with one; then *bad is the length of the maximal ill-formed
 * subpart (>= 1; what becomes one U+FFFD) and *incomplete is 1 when those bytes
 * are a valid prefix cut short by the end of the buffer. */
size_t fp4rt_utf8_next(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad,
                       int *incomplete);
/* 1 if s[0, n) is well-formed UTF-8. */
int fp4rt_utf8_valid(const char *s, size_t n);
/* Copy of s[0, n) with each maximal ill-formed subpart replaced by U+FFFD
 * (as Python's errors="replace" and Rust's from_utf8_lossy). malloc'ed. */
char *fp4rt_utf8_sanitize(const char *s, size_t n, size_t *out_len);
/* Encodes cp into out (4 bytes); returns the length. */
size_t fp4rt_utf8_put(uint32_t cp, char *out);

/* GPT-2 ByteLevel: the unicode character standing for byte b, and back
 * (-1 for characters outside the table). */
uint32_t fp4rt_bytelevel_char(unsigned char b);
int fp4rt_bytelevel_byte(uint32_t cp);

/* NFC of s[0, n). Returns s itself (*out = NULL) when the text is already NFC
 * by a quick check, else a malloc'ed normalized copy in *out. */
fp4rt_status fp4rt_nfc(const char *s, size_t n, char **out, size_t *out_len);

/* Rust char::is_whitespace (White_Space) and regex \w (approximated with
 * general categories: letters, marks, decimal digits, connector punctuation). */
int fp4rt_uc_is_space(uint32_t cp);
int fp4rt_uc_is_word(uint32_t cp);

/* ---- tokenizer_bpe.c --------------------------------------------------- */

uint64_t fp4rt_tok_hash(const void *p, size_t n);
/* Id of a regular token by byte form, or -1. */
int32_t fp4rt_tok_vocab_get(const fp4rt_tokenizer *t, const void *bytes, size_t n);
/* Builds vmap from the regular tokens (flags PRESENT, not ADDED, not RAW). */
fp4rt_status fp4rt_tok_build_vmap(fp4rt_tokenizer *t);
fp4rt_status fp4rt_tok_merges_init(fp4rt_tokenizer *t, size_t n_merges);
/* Adds a merge; a later duplicate of the same pair replaces the earlier one
 * (as the HashMap built by HF tokenizers does). */
void fp4rt_tok_merge_put(fp4rt_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t id);
fp4rt_status fp4rt_tok_cache_init(fp4rt_tokenizer *t);
void fp4rt_tok_cache_free(fp4rt_tokenizer *t);

/* Growable id vector used by encode. */
typedef struct fp4rt_idvec {
    int32_t *v;
    size_t n, cap;
} fp4rt_idvec;
fp4rt_status fp4rt_idvec_push(fp4rt_idvec *v, const int32_t *ids, size_t n);

/* Appends the BPE ids of one pre-tokenized word (UTF-8 bytes) to out. */
fp4rt_status fp4rt_tok_bpe_word(const fp4rt_tokenizer *t, const unsigned char *w, size_t n,
                                fp4rt_idvec *out);

#endif
