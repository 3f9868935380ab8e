/* The saved log-probability file of fp4rt perplexity (format in perplexity.h). */
#include "runtime/tools/perplexity.h"

#include "runtime/base/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PPL_MAGIC "FP4RTPPL"
#define PPL_HEADER_BYTES 56
#define PPL_VERSION 1

struct fp4rt_ppl_writer {
    FILE *f;
    char *path, *tmp;
    fp4rt_ppl_header h;
    uint64_t written;
    fp4rt_status err;
};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static uint32_t f32_bits(float x) {
    uint32_t v;
    memcpy(&v, &x, 4);
    return v;
}
static float bits_f32(uint32_t v) {
    float x;
    memcpy(&x, &v, 4);
    return x;
}

static size_t record_bytes(uint32_t k) {
    return 12 + 8 * (size_t)k;
}

fp4rt_status fp4rt_ppl_writer_open(const char *path, const fp4rt_ppl_header *h,
                                   fp4rt_ppl_writer **out) {
    *out = NULL;
    fp4rt_ppl_writer *w = fp4rt_calloc(1, sizeof *w, "perplexity writer");
    if (!w) return FP4RT_OUT_OF_MEMORY;
    w->h = *h;
    w->h.version = PPL_VERSION;
    size_t n = strlen(path) + 32;
    w->path = fp4rt_strdup(path);
    w->tmp = fp4rt_malloc(n, "perplexity path");
    if (!w->path || !w->tmp) {
        fp4rt_ppl_writer_close(w, 0);
        return FP4RT_OUT_OF_MEMORY;
    }
    snprintf(w->tmp, n, "%s.tmp-%d", path, (int)getpid());
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        int e = errno;
        fp4rt_ppl_writer_close(w, 0);
        return fp4rt_fail(FP4RT_IO, "%s: cannot write: %s", path, strerror(e));
    }
    uint8_t b[PPL_HEADER_BYTES] = {0};
    memcpy(b, PPL_MAGIC, 8);
    put_u32(b + 8, PPL_VERSION);
    put_u32(b + 12, h->vocab);
    put_u32(b + 16, h->k);
    put_u32(b + 20, h->ctx);
    put_u32(b + 24, h->stride);
    put_u64(b + 32, h->n_positions);
    put_u64(b + 40, h->n_tokens);
    put_u64(b + 48, h->token_hash);
    if (fwrite(b, 1, sizeof b, w->f) != sizeof b)
        w->err = fp4rt_fail(FP4RT_IO, "%s: write failed", path);
    *out = w;
    return w->err;
}

int fp4rt_ppl_writer_k(const fp4rt_ppl_writer *w) {
    return (int)w->h.k;
}

fp4rt_status fp4rt_ppl_writer_add(fp4rt_ppl_writer *w, const fp4rt_ppl_record *r) {
    if (w->err) return w->err;
    size_t n = record_bytes(w->h.k);
    uint8_t stack[12 + 8 * 64],
        *b = n <= sizeof stack ? stack : fp4rt_malloc(n, "perplexity record");
    if (!b) return w->err = FP4RT_OUT_OF_MEMORY;
    put_u32(b, (uint32_t)r->target);
    put_u32(b + 4, f32_bits(r->target_logp));
    put_u32(b + 8, f32_bits(r->rest_logp));
    for (uint32_t j = 0; j < w->h.k; j++) {
        put_u32(b + 12 + 4 * j, (uint32_t)r->ids[j]);
        put_u32(b + 12 + 4 * (w->h.k + j), f32_bits(r->logp[j]));
    }
    if (fwrite(b, 1, n, w->f) != n) w->err = fp4rt_fail(FP4RT_IO, "%s: write failed", w->path);
    if (b != stack) free(b);
    w->written++;
    return w->err;
}

fp4rt_status fp4rt_ppl_writer_close(fp4rt_ppl_writer *w, int commit) {
    if (!w) return FP4RT_OK;
    fp4rt_status st = w->err;
    if (commit && !st && w->written != w->h.n_positions)
        st = fp4rt_fail(FP4RT_INTERNAL, "%s: %llu records written, the header says %llu", w->path,
                        (unsigned long long)w->written, (unsigned long long)w->h.n_positions);
    if (w->f && fclose(w->f) != 0 && !st) st = fp4rt_fail(FP4RT_IO, "%s: write failed", w->path);
    if (w->f && commit && !st && rename(w->tmp, w->path) != 0)
        st = fp4rt_fail(FP4RT_IO, "%s: cannot rename the finished file: %s", w->path,
                        strerror(errno));
    if (w->f && (!commit || st)) remove(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
    return st;
}

void fp4rt_ppl_file_free(fp4rt_ppl_file *f) {
    free(f->targets);
    free(f->target_logp);
    free(f->rest_logp);
    free(f->ids);
    free(f->logp);
    memset(f, 0, sizeof *f);
}

/* Checks the header fields and the body size; fills f->h. */
static fp4rt_status parse_header(const char *path, const uint8_t *b, size_t len,
                                 fp4rt_ppl_file *f) {
    if (len < PPL_HEADER_BYTES || memcmp(b, PPL_MAGIC, 8) != 0)
        return fp4rt_fail(FP4RT_FORMAT, "%s: not an fp4rt perplexity file (magic \"%s\" missing)",
                          path, PPL_MAGIC);
    fp4rt_ppl_header *h = &f->h;
    h->version = get_u32(b + 8);
    h->vocab = get_u32(b + 12);
    h->k = get_u32(b + 16);
    h->ctx = get_u32(b + 20);
    h->stride = get_u32(b + 24);
    h->n_positions = get_u64(b + 32);
    h->n_tokens = get_u64(b + 40);
    h->token_hash = get_u64(b + 48);
    if (h->version != PPL_VERSION)
        return fp4rt_fail(FP4RT_FORMAT, "%s: version %u, this build reads version %d", path,
                          h->version, PPL_VERSION);
    if (h->vocab == 0 || h->vocab > (1u << 24) || h->k > h->vocab || h->ctx < 2 || h->stride < 1 ||
        h->stride > h->ctx || h->n_positions == 0 || h->n_positions > (1ull << 32))
        return fp4rt_fail(
            FP4RT_FORMAT,
            "%s: header out of range (vocab %u, k %u, ctx %u, stride %u, positions %llu)", path,
            h->vocab, h->k, h->ctx, h->stride, (unsigned long long)h->n_positions);
    uint64_t want = PPL_HEADER_BYTES + h->n_positions * record_bytes(h->k);
    if ((uint64_t)len != want)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: %zu bytes, the header's %llu records of top-%u need %llu", path, len,
                          (unsigned long long)h->n_positions, h->k, (unsigned long long)want);
    return FP4RT_OK;
}

fp4rt_status fp4rt_ppl_file_read(const char *path, fp4rt_ppl_file *f) {
    memset(f, 0, sizeof *f);
    char *raw;
    size_t len;
    fp4rt_status st = fp4rt_read_file(path, (size_t)1 << 34, &raw, &len);
    if (st) return st;
    const uint8_t *b = (const uint8_t *)raw;
    if ((st = parse_header(path, b, len, f))) {
        free(raw);
        return st;
    }
    size_t n = (size_t)f->h.n_positions, k = f->h.k, rb = record_bytes(f->h.k);
    f->targets = fp4rt_malloc(n * sizeof *f->targets, "perplexity base");
    f->target_logp = fp4rt_malloc(n * sizeof(float), "perplexity base");
    f->rest_logp = fp4rt_malloc(n * sizeof(float), "perplexity base");
    f->ids = fp4rt_malloc(n * k * sizeof(int32_t) + 1, "perplexity base");
    f->logp = fp4rt_malloc(n * k * sizeof(float) + 1, "perplexity base");
    if (!f->targets || !f->target_logp || !f->rest_logp || !f->ids || !f->logp)
        st = FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; i < n && !st; i++) {
        const uint8_t *r = b + PPL_HEADER_BYTES + i * rb;
        f->targets[i] = (int32_t)get_u32(r);
        f->target_logp[i] = bits_f32(get_u32(r + 4));
        f->rest_logp[i] = bits_f32(get_u32(r + 8));
        if ((uint32_t)f->targets[i] >= f->h.vocab)
            st = fp4rt_fail(FP4RT_FORMAT, "%s: record %zu: target %u outside the vocabulary of %u",
                            path, i, (uint32_t)f->targets[i], f->h.vocab);
        for (size_t j = 0; j < k && !st; j++) {
            uint32_t id = get_u32(r + 12 + 4 * j);
            if (id >= f->h.vocab)
                st = fp4rt_fail(FP4RT_FORMAT, "%s: record %zu: id %u outside the vocabulary of %u",
                                path, i, id, f->h.vocab);
            f->ids[i * k + j] = (int32_t)id;
            f->logp[i * k + j] = bits_f32(get_u32(r + 12 + 4 * (k + j)));
        }
    }
    free(raw);
    if (st) fp4rt_ppl_file_free(f);
    return st;
}

fp4rt_ppl_record fp4rt_ppl_file_record(const fp4rt_ppl_file *f, long i) {
    fp4rt_ppl_record r = {.nll = -(double)f->target_logp[i],
                          .target = f->targets[i],
                          .target_logp = f->target_logp[i],
                          .rest_logp = f->rest_logp[i],
                          .ids = f->ids + (size_t)i * f->h.k,
                          .logp = f->logp + (size_t)i * f->h.k};
    return r;
}

fp4rt_status fp4rt_ppl_file_check(const fp4rt_ppl_file *f, const char *path,
                                  const fp4rt_ppl_windows *w, int vocab, uint64_t token_hash) {
    const fp4rt_ppl_header *h = &f->h;
    struct {
        const char *what;
        unsigned long long base, cur;
    } fields[] = {
        {"vocab", h->vocab, (unsigned long long)vocab},
        {"ctx", h->ctx, (unsigned long long)w->ctx},
        {"stride", h->stride, (unsigned long long)w->stride},
        {"tokens", h->n_tokens, (unsigned long long)w->n_tokens},
        {"scored positions", h->n_positions, (unsigned long long)w->n_scored},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(fields); i++)
        if (fields[i].base != fields[i].cur)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: made with %s %llu, this run has %s %llu",
                              path, fields[i].what, fields[i].base, fields[i].what, fields[i].cur);
    if (h->token_hash != token_hash)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "%s: made from other text (token hash %016llx, this run's %016llx)", path,
                          (unsigned long long)h->token_hash, (unsigned long long)token_hash);
    return FP4RT_OK;
}
