/* safetensors writer (sharded, streaming) and atomic output-directory helpers.
 * See st_writer.h for the contract. Every write, flush, fsync and close is
 * checked; a failure is an IO error naming the file, and the writer then refuses
 * further calls. */
#include "loader/st_writer.h"

#include "runtime/base/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STW_DEFAULT_SHARD_BYTES ((uint64_t)4 << 30)

typedef struct stw_tensor {
    char *name;
    fp4rt_dtype dtype;
    int ndim;
    int64_t shape[FP4RT_ST_MAX_DIMS];
    uint64_t nbytes;
    int shard;       /* 0-based shard index, assigned when writing starts */
    uint64_t offset; /* begin offset within the shard payload */
} stw_tensor;

struct fp4rt_stw {
    char *dir;
    uint64_t shard_bytes;
    stw_tensor *t;
    size_t n, cap;
    int sealed; /* declarations closed, shards assigned */
    int failed; /* an earlier call failed: refuse everything */
    int finished;
    size_t next; /* index of the next tensor to write */
    int n_shards;
    int cur_shard; /* shard open in `fp` (-1: none) */
    FILE *fp;
    char *cur_path;
};

/* ---- small string builder ------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) {
    sb_add(b, s, strlen(s));
}

static void sb_u64(sbuf *b, uint64_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    sb_add(b, tmp, (size_t)n);
}

/* A JSON string literal. */
static void sb_json(sbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_add(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_add(b, e, 6);
        } else {
            sb_add(b, (const char *)&c, 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* ---- writer ---------------------------------------------------------------------- */

fp4rt_status fp4rt_stw_create(const char *dir, uint64_t shard_bytes, fp4rt_stw **out) {
    *out = NULL;
    fp4rt_stw *w = fp4rt_calloc(1, sizeof *w, "safetensors writer");
    if (!w) return FP4RT_OUT_OF_MEMORY;
    if (!(w->dir = fp4rt_strdup(dir))) {
        free(w);
        return FP4RT_OUT_OF_MEMORY;
    }
    w->shard_bytes = shard_bytes ? shard_bytes : STW_DEFAULT_SHARD_BYTES;
    w->cur_shard = -1;
    *out = w;
    return FP4RT_OK;
}

fp4rt_status fp4rt_stw_declare(fp4rt_stw *w, const char *name, fp4rt_dtype dt, int ndim,
                               const int64_t *shape) {
    if (w->failed || w->sealed)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "%s: tensor %s: declared after writing started or after a failure",
                          w->dir, name);
    if (!name[0] || strcmp(name, "__metadata__") == 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: tensor name \"%s\" is not allowed", w->dir,
                          name);
    if ((unsigned)dt >= FP4RT_DT_COUNT || ndim < 0 || ndim > FP4RT_ST_MAX_DIMS)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: tensor %s: bad dtype %d or ndim %d", w->dir,
                          name, (int)dt, ndim);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: tensor %s: negative dim %d", w->dir,
                              name, i);
        uint64_t d = (uint64_t)shape[i];
        if (d && count > UINT64_MAX / d / 8)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: tensor %s: size overflows", w->dir,
                              name);
        count *= d;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        stw_tensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory declaring %s", w->dir, name);
        w->t = nt;
        w->cap = cap;
    }
    stw_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = fp4rt_strdup(name))) return FP4RT_OUT_OF_MEMORY;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = count * fp4rt_dtype_size(dt);
    w->n++;
    return FP4RT_OK;
}

static int cmp_name_ptr(const void *a, const void *b) {
    return strcmp((*(const stw_tensor *const *)a)->name, (*(const stw_tensor *const *)b)->name);
}

/* Closes declarations: rejects duplicate names and assigns shards and offsets. A
 * shard is cut before a tensor that would push it past shard_bytes; a tensor larger
 * than shard_bytes thus ends up alone. */
static fp4rt_status stw_seal(fp4rt_stw *w) {
    const stw_tensor **by_name = fp4rt_malloc((w->n + 1) * sizeof *by_name, "writer names");
    if (!by_name) return FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; i < w->n; i++)
        by_name[i] = &w->t[i];
    qsort(by_name, w->n, sizeof *by_name, cmp_name_ptr);
    for (size_t i = 1; i < w->n; i++) {
        if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
            fp4rt_status st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: tensor %s: declared twice",
                                         w->dir, by_name[i]->name);
            free(by_name);
            return st;
        }
    }
    free(by_name);
    int shard = 0;
    uint64_t used = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (i > 0 && used + w->t[i].nbytes > w->shard_bytes) {
            shard++;
            used = 0;
        }
        w->t[i].shard = shard;
        w->t[i].offset = used;
        used += w->t[i].nbytes;
    }
    w->n_shards = shard + 1;
    w->sealed = 1;
    return FP4RT_OK;
}

/* "model.safetensors" or "model-0000k-of-0000n.safetensors" (k 1-based). */
static void shard_name(const fp4rt_stw *w, int shard, char *buf, size_t size) {
    if (w->n_shards == 1)
        snprintf(buf, size, "model.safetensors");
    else
        snprintf(buf, size, "model-%05d-of-%05d.safetensors", shard + 1, w->n_shards);
}

static fp4rt_status io_fail(const char *path, const char *what) {
    return fp4rt_fail(FP4RT_IO, "%s: %s failed: %s", path, what, strerror(errno ? errno : EIO));
}

/* Flushes, fsyncs and closes the open shard. */
static fp4rt_status stw_close_shard(fp4rt_stw *w) {
    if (!w->fp) return FP4RT_OK;
    FILE *fp = w->fp;
    w->fp = NULL;
    errno = 0;
    int bad = fflush(fp) != 0 || ferror(fp);
    int e = errno;
    if (!bad && fsync(fileno(fp)) != 0) {
        bad = 1;
        e = errno;
    }
    if (fclose(fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        errno = e;
        return io_fail(w->cur_path, "flush/fsync/close");
    }
    return FP4RT_OK;
}

/* Opens shard `s` and writes its header. */
static fp4rt_status stw_open_shard(fp4rt_stw *w, int s) {
    char name[64];
    shard_name(w, s, name, sizeof name);
    free(w->cur_path);
    if (!(w->cur_path = fp4rt_path_join(w->dir, name))) return FP4RT_OUT_OF_MEMORY;
    sbuf b = {0};
    sb_str(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < w->n; i++) {
        const stw_tensor *t = &w->t[i];
        if (t->shard != s) continue;
        sb_str(&b, ",");
        sb_json(&b, t->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, fp4rt_dtype_name(t->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_str(&b, ",");
            sb_u64(&b, (uint64_t)t->shape[d]);
        }
        sb_str(&b, "],\"data_offsets\":[");
        sb_u64(&b, t->offset);
        sb_str(&b, ",");
        sb_u64(&b, t->offset + t->nbytes);
        sb_str(&b, "]}");
    }
    sb_str(&b, "}");
    while (!b.oom && (8 + b.len) % 8 != 0)
        sb_str(&b, " "); /* payload starts 8-aligned */
    if (b.oom) {
        free(b.p);
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory building the header",
                          w->cur_path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
    errno = 0;
    w->fp = fopen(w->cur_path, "wb");
    if (!w->fp) {
        free(b.p);
        return io_fail(w->cur_path, "create");
    }
    w->cur_shard = s;
    int ok = fwrite(len8, 1, 8, w->fp) == 8 && fwrite(b.p, 1, b.len, w->fp) == b.len;
    free(b.p);
    return ok ? FP4RT_OK : io_fail(w->cur_path, "write of the header");
}

fp4rt_status fp4rt_stw_write(fp4rt_stw *w, const char *name, const void *data, uint64_t nbytes) {
    if (w->failed || w->finished)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "%s: tensor %s: writer already failed or finished", w->dir, name);
    fp4rt_status st;
    if (!w->sealed && (st = stw_seal(w)) != FP4RT_OK) goto fail;
    if (w->next >= w->n) {
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                        "%s: tensor %s: all declared tensors already written", w->dir, name);
        goto fail;
    }
    stw_tensor *t = &w->t[w->next];
    if (strcmp(t->name, name) != 0) {
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                        "%s: tensor %s: written out of order, expected %s (declared order)", w->dir,
                        name, t->name);
        goto fail;
    }
    if (nbytes != t->nbytes) {
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                        "%s: tensor %s: %" PRIu64 " bytes given, declared %s %" PRIu64 " bytes",
                        w->dir, name, nbytes, fp4rt_dtype_name(t->dtype), t->nbytes);
        goto fail;
    }
    if (t->shard != w->cur_shard) {
        if ((st = stw_close_shard(w)) != FP4RT_OK || (st = stw_open_shard(w, t->shard)) != FP4RT_OK)
            goto fail;
    }
    errno = 0;
    if (nbytes && fwrite(data, 1, (size_t)nbytes, w->fp) != nbytes) {
        st = fp4rt_fail(FP4RT_IO, "%s: tensor %s: write of %" PRIu64 " bytes failed: %s",
                        w->cur_path, name, nbytes, strerror(errno ? errno : EIO));
        goto fail;
    }
    w->next++;
    return FP4RT_OK;
fail:
    w->failed = 1;
    return st;
}

static fp4rt_status stw_write_index(fp4rt_stw *w) {
    uint64_t total = 0;
    for (size_t i = 0; i < w->n; i++)
        total += w->t[i].nbytes;
    sbuf b = {0};
    sb_str(&b, "{\n  \"metadata\": {\n    \"total_size\": ");
    sb_u64(&b, total);
    sb_str(&b, "\n  },\n  \"weight_map\": {");
    for (size_t i = 0; i < w->n; i++) {
        char name[64];
        shard_name(w, w->t[i].shard, name, sizeof name);
        sb_str(&b, i ? ",\n    " : "\n    ");
        sb_json(&b, w->t[i].name);
        sb_str(&b, ": ");
        sb_json(&b, name);
    }
    sb_str(&b, "\n  }\n}\n");
    char *path = fp4rt_path_join(w->dir, "model.safetensors.index.json");
    fp4rt_status st;
    if (b.oom || !path)
        st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory building the index", w->dir);
    else
        st = fp4rt_write_text_file(path, b.p);
    free(path);
    free(b.p);
    return st;
}

fp4rt_status fp4rt_stw_finish(fp4rt_stw *w) {
    if (w->failed || w->finished)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: writer already failed or finished", w->dir);
    fp4rt_status st;
    if (!w->sealed && (st = stw_seal(w)) != FP4RT_OK) goto fail;
    if (w->next != w->n) {
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                        "%s: tensor %s: declared but never written "
                        "(%zu of %zu written)",
                        w->dir, w->t[w->next].name, w->next, w->n);
        goto fail;
    }
    if (w->n == 0 && (st = stw_open_shard(w, 0)) != FP4RT_OK) goto fail; /* empty model file */
    if ((st = stw_close_shard(w)) != FP4RT_OK) goto fail;
    if (w->n_shards > 1 && (st = stw_write_index(w)) != FP4RT_OK) goto fail;
    w->finished = 1;
    return FP4RT_OK;
fail:
    w->failed = 1;
    return st;
}

void fp4rt_stw_free(fp4rt_stw *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp); /* after a failure; the partial file stays */
    for (size_t i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    free(w->cur_path);
    free(w->dir);
    free(w);
}

/* ---- small files (output directories: outdir.c) ------------------------------------ */

/* Flushes, fsyncs and closes fp; IO error naming path on any failure. */
static fp4rt_status close_synced(FILE *fp, const char *path) {
    errno = 0;
    int bad = fflush(fp) != 0 || ferror(fp);
    int e = errno;
    if (!bad && fsync(fileno(fp)) != 0 && errno != EINVAL) { /* EINVAL: device files */
        bad = 1;
        e = errno;
    }
    if (fclose(fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    errno = e;
    return bad ? io_fail(path, "write/flush/close") : FP4RT_OK;
}

fp4rt_status fp4rt_write_text_file(const char *path, const char *text) {
    size_t n = strlen(path) + 32;
    char *tmp = fp4rt_malloc(n, "file name");
    if (!tmp) return FP4RT_OUT_OF_MEMORY;
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    fp4rt_status st = FP4RT_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = io_fail(tmp, "create");
        goto done;
    }
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, fp) == len;
    int e = errno;
    st = close_synced(fp, tmp);
    if (!ok && st == FP4RT_OK) {
        errno = e;
        st = io_fail(tmp, "write");
    }
    if (st == FP4RT_OK && rename(tmp, path) != 0)
        st = fp4rt_fail(FP4RT_IO, "%s: cannot rename from %s: %s", path, tmp, strerror(errno));
    if (st != FP4RT_OK) unlink(tmp);
done:
    free(tmp);
    return st;
}

fp4rt_status fp4rt_copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return io_fail(src, "open");
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fp4rt_status st = io_fail(dst, "create");
        fclose(in);
        return st;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = fp4rt_malloc(CHUNK, "copy buffer");
    fp4rt_status st = buf ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    while (st == FP4RT_OK) {
        size_t got = fread(buf, 1, CHUNK, in);
        if (got && fwrite(buf, 1, got, out) != got) st = io_fail(dst, "write");
        if (got < CHUNK) {
            if (ferror(in)) st = io_fail(src, "read");
            break;
        }
    }
    free(buf);
    fclose(in);
    fp4rt_status cst = close_synced(out, dst);
    return st != FP4RT_OK ? st : cst;
}
