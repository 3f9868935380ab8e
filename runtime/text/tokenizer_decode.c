/* Decoding: the ByteLevel decoder of HF tokenizers (each token's characters map
 * back to bytes; a token with a character outside the table contributes its
 * UTF-8 as is), then lossy UTF-8 (each maximal ill-formed subpart -> U+FFFD).
 * The streaming decoder applies the same rule incrementally, so the
 * concatenation of its outputs equals the one-shot decode. */
#include "runtime/base/common.h"
#include "runtime/text/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

static int id_ok(const fp4rt_tokenizer *t, int32_t id) {
    return id >= 0 && (uint32_t)id < t->n_ids && (t->flags[id] & FP4RT_TOKF_PRESENT);
}

const char *fp4rt_tokenizer_bytes(const fp4rt_tokenizer *t, int32_t id, size_t *len) {
    *len = 0;
    if (!t || !id_ok(t, id)) return NULL;
    *len = t->len[id];
    return (const char *)t->blob + t->off[id];
}

static int skipped(const fp4rt_tokenizer *t, int32_t id, int skip_special) {
    return skip_special && (t->flags[id] & FP4RT_TOKF_SPECIAL);
}

fp4rt_status fp4rt_tokenizer_decode(const fp4rt_tokenizer *t, const int32_t *ids, size_t n,
                                    int skip_special, char **out, size_t *len) {
    if (!t || !out || (!ids && n))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "tokenizer_decode: NULL argument");
    *out = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!id_ok(t, ids[i]))
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "tokenizer_decode: id %d at position %zu is not in the vocabulary "
                              "of %s (%u ids)", ids[i], i, t->path, t->n_ids);
        if (!skipped(t, ids[i], skip_special)) total += t->len[ids[i]];
    }
    char *buf = fp4rt_malloc(total + 1, "decoded text");
    if (!buf) return FP4RT_OUT_OF_MEMORY;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (skipped(t, ids[i], skip_special)) continue;
        memcpy(buf + o, t->blob + t->off[ids[i]], t->len[ids[i]]);
        o += t->len[ids[i]];
    }
    buf[o] = 0;
    if (!fp4rt_utf8_valid(buf, o)) {
        char *clean = fp4rt_utf8_sanitize(buf, o, &o);
        free(buf);
        if (!clean) return FP4RT_OUT_OF_MEMORY;
        buf = clean;
    }
    *out = buf;
    if (len) *len = o;
    return FP4RT_OK;
}

void fp4rt_detok_stream_init(fp4rt_detok_stream *s, const fp4rt_tokenizer *t, int skip_special) {
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->skip_special = skip_special;
}

/* Writes the complete characters of p[0, n) to out and returns the number of
 * bytes consumed; an incomplete final character is left unconsumed unless
 * `final`, when it becomes U+FFFD. out must hold 3 * n bytes. */
static size_t emit(const unsigned char *p, size_t n, int final, char *out, size_t *o) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next(p + i, n - i, &cp, &bad, &inc);
        if (l) {
            memcpy(out + *o, p + i, l);
            *o += l, i += l;
        } else if (inc && !final) {
            break;
        } else {
            *o += fp4rt_utf8_put(0xFFFD, out + *o);
            i += bad;
        }
    }
    return i;
}

int fp4rt_detok_stream_push(fp4rt_detok_stream *s, int32_t id, char *out, size_t cap) {
    const fp4rt_tokenizer *t = s->tok;
    if (!out || !cap) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "detok_stream_push: no output buffer");
        return -1;
    }
    out[0] = 0;
    if (!t || !id_ok(t, id)) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "detok_stream_push: id %d is not in the vocabulary", id);
        return -1;
    }
    if (skipped(t, id, s->skip_special)) return 0;
    size_t tl = t->len[id], n = (size_t)s->n_pending + tl;
    if (3 * n + 1 > cap) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                   "detok_stream_push: token %d needs an output buffer of %zu bytes (have %zu)", id,
                   3 * n + 1, cap);
        return -1;
    }
    unsigned char stack[512];
    unsigned char *p = n <= sizeof stack ? stack : malloc(n);
    if (!p) {
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "detok_stream_push: out of memory");
        return -1;
    }
    memcpy(p, s->pending, (size_t)s->n_pending);
    memcpy(p + s->n_pending, t->blob + t->off[id], tl);
    size_t o = 0, used = emit(p, n, 0, out, &o);
    /* what is left is a valid prefix of one character: at most 3 bytes */
    s->n_pending = (int)(n - used);
    memcpy(s->pending, p + used, n - used);
    if (p != stack) free(p);
    out[o] = 0;
    return (int)o;
}

int fp4rt_detok_stream_flush(fp4rt_detok_stream *s, char *out, size_t cap) {
    if (!out || !cap) return 0;
    out[0] = 0;
    if (!s->n_pending || cap < 3 * (size_t)s->n_pending + 1) return 0;
    size_t o = 0;
    emit(s->pending, (size_t)s->n_pending, 1, out, &o);
    s->n_pending = 0;
    out[o] = 0;
    return (int)o;
}
