/* Encoding pipeline, in HF tokenizers' order:
 *   1. invalid UTF-8 -> U+FFFD (the text must be a Rust String there);
 *   2. added tokens with normalized: false are cut out of the raw text;
 *   3. each remaining piece is normalized (NFC) on its own;
 *   4. added tokens with normalized: true are cut out of the normalized pieces;
 *   5. the regex splits (Isolated) cut each remaining piece, then ByteLevel
 *      and BPE turn every final piece into ids.
 * Regex iteration follows the onig crate's find_iter (what HF tokenizers
 * uses): an empty match right after the previous match is skipped and the
 * search moves on one character; empty pieces produce nothing. */
#include "runtime/base/common.h"
#include "runtime/text/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct enc_ctx {
    const fp4rt_tokenizer *t;
    fp4rt_idvec out;
    pcre2_match_data *md;
} enc_ctx;

static size_t char_len_at(const char *s, size_t n, size_t i) {
    unsigned char b = (unsigned char)s[i];
    size_t l = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return FP4RT_MIN(l, n - i);
}

/* ---- regex splits and BPE ---------------------------------------------- */

static fp4rt_status pretok(enc_ctx *c, int stage, const char *s, size_t n) {
    const fp4rt_tokenizer *t = c->t;
    if (n == 0) return FP4RT_OK;
    if (stage == t->n_split) return fp4rt_tok_bpe_word(t, (const unsigned char *)s, n, &c->out);
    pcre2_code *re = t->split[stage];
    int jit = t->split_jit[stage];
    size_t prev = 0;     /* end of the last piece emitted */
    size_t from = 0;     /* where the next search starts */
    size_t last_end = 0; /* end of the last accepted match */
    int have_last = 0;
    fp4rt_status st;
    while (from <= n) {
        int rc = jit ? pcre2_jit_match(re, (PCRE2_SPTR)s, n, from, 0, c->md, NULL)
                     : pcre2_match(re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return fp4rt_fail(FP4RT_INTERNAL, "%s: pre-tokenizer regex failed: %s", t->path,
                              (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && me == last_end) {
            if (from >= n) break;
            from += char_len_at(s, n, from);
            continue;
        }
        if (ms > prev && (st = pretok(c, stage + 1, s + prev, ms - prev)) != FP4RT_OK) return st;
        if ((st = pretok(c, stage + 1, s + ms, me - ms)) != FP4RT_OK) return st;
        prev = me;
        from = last_end = me;
        have_last = 1;
    }
    if (prev < n) return pretok(c, stage + 1, s + prev, n - prev);
    return FP4RT_OK;
}

/* ---- added tokens -------------------------------------------------------- */

static int last_char_is_word(const char *s, size_t n) {
    if (!n) return 0;
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    size_t bad;
    int inc;
    return fp4rt_utf8_next((const unsigned char *)s + i, n - i, &cp, &bad, &inc) &&
           fp4rt_uc_is_word(cp);
}

static int first_char_is_word(const char *s, size_t n) {
    uint32_t cp;
    size_t bad;
    int inc;
    return n && fp4rt_utf8_next((const unsigned char *)s, n, &cp, &bad, &inc) &&
           fp4rt_uc_is_word(cp);
}

/* Start of the run of whitespace that ends s[0, n). */
static size_t trailing_space_start(const char *s, size_t n) {
    size_t i = n;
    while (i > 0) {
        size_t j = i - 1;
        while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
        uint32_t cp;
        size_t bad;
        int inc;
        if (!fp4rt_utf8_next((const unsigned char *)s + j, i - j, &cp, &bad, &inc) ||
            !fp4rt_uc_is_space(cp))
            break;
        i = j;
    }
    return i;
}

/* Length of the run of whitespace that starts s[0, n). */
static size_t leading_space_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next((const unsigned char *)s + i, n - i, &cp, &bad, &inc);
        if (!l || !fp4rt_uc_is_space(cp)) break;
        i += l;
    }
    return i;
}

/* Leftmost-longest match of the set at or after `from`: returns the index into
 * t->added and sets *at, or -1. */
static int find_added(const fp4rt_tokenizer *t, const fp4rt_tok_addset *set, const char *s,
                      size_t n, size_t from, size_t *at) {
    for (size_t p = from; p < n; p++) {
        unsigned char b = (unsigned char)s[p];
        int lo = set->first_off[b], hi = set->first_off[b + 1];
        for (int k = lo; k < hi; k++) {
            const fp4rt_tok_added *a = &t->added[set->idx[k]];
            if (a->match_len <= n - p && memcmp(s + p, a->match, a->match_len) == 0) {
                *at = p;
                return set->idx[k];
            }
        }
    }
    return -1;
}

static fp4rt_status normalize_piece(enc_ctx *c, const char *s, size_t n);

/* Cuts the set's added tokens out of s[0, n) (lstrip / rstrip / single_word as
 * HF's AddedVocabulary::find_matches) and passes the other pieces on: to
 * normalization (raw set) or to the pre-tokenizer (normalized set). */
static fp4rt_status split_added(enc_ctx *c, int normalized, const char *s, size_t n) {
    const fp4rt_tokenizer *t = c->t;
    const fp4rt_tok_addset *set = normalized ? &t->norm_set : &t->raw_set;
    fp4rt_status st;
#define NEXT(p, l) (normalized ? pretok(c, 0, (p), (l)) : normalize_piece(c, (p), (l)))
    if (set->n == 0) return NEXT(s, n);
    size_t start_offset = 0, from = 0, ms;
    int k;
    while (from < n && (k = find_added(t, set, s, n, from, &ms)) >= 0) {
        const fp4rt_tok_added *a = &t->added[k];
        size_t me = ms + a->match_len, start = ms, stop = me;
        from = me; /* the match iterator resumes after the match itself */
        if (a->single_word &&
            ((ms > 0 && last_char_is_word(s, ms)) || (me < n && first_char_is_word(s + me, n - me))))
            continue;
        if (a->lstrip) start = FP4RT_MAX(trailing_space_start(s, ms), start_offset);
        if (a->rstrip) stop += leading_space_len(s + stop, n - stop);
        if (start < start_offset) start = start_offset; /* overlapping rstrip: keep pieces disjoint */
        if (start > start_offset && (st = NEXT(s + start_offset, start - start_offset)) != FP4RT_OK)
            return st;
        if ((st = fp4rt_idvec_push(&c->out, &a->id, 1)) != FP4RT_OK) return st;
        start_offset = FP4RT_MAX(stop, start_offset);
    }
    if (start_offset < n) return NEXT(s + start_offset, n - start_offset);
    return FP4RT_OK;
#undef NEXT
}

static fp4rt_status normalize_piece(enc_ctx *c, const char *s, size_t n) {
    if (!c->t->nfc) return split_added(c, 1, s, n);
    char *norm;
    size_t nl;
    fp4rt_status st = fp4rt_nfc(s, n, &norm, &nl);
    if (st != FP4RT_OK) return st;
    st = split_added(c, 1, norm ? norm : s, nl);
    free(norm);
    return st;
}

/* ---- public -------------------------------------------------------------- */

fp4rt_status fp4rt_tokenizer_encode(const fp4rt_tokenizer *t, const char *text, size_t len,
                                    int32_t **ids, size_t *n) {
    if (!t || !ids || !n || (!text && len))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "tokenizer_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    char *clean = NULL;
    if (len && !fp4rt_utf8_valid(text, len)) {
        clean = fp4rt_utf8_sanitize(text, len, &len);
        if (!clean) return FP4RT_OUT_OF_MEMORY;
        fp4rt_log(FP4RT_LOG_WARN, "tokenize: the text has invalid UTF-8; each bad sequence was replaced by U+FFFD");
        text = clean;
    }
    enc_ctx c = {.t = t};
    fp4rt_status st = FP4RT_OK;
    if (t->n_split) {
        c.md = pcre2_match_data_create(1, NULL);
        if (!c.md) st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: regex match data");
    }
    if (st == FP4RT_OK && len) st = split_added(&c, 0, text, len);
    pcre2_match_data_free(c.md);
    free(clean);
    if (st != FP4RT_OK) {
        free(c.out.v);
        return st;
    }
    if (!c.out.v) { /* empty result: still a valid (freeable) array */
        c.out.v = malloc(sizeof(int32_t));
        if (!c.out.v) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: ids");
    }
    *ids = c.out.v;
    *n = c.out.n;
    return FP4RT_OK;
}
