/* safetensors reader: validation of one file image, mmap of files, and checkpoint
 * directories (single file or shards + index). See safetensors.h for the contract.
 *
 * Every error records one line "<file>: tensor <name>: <what>, expected <what>"
 * (or names the byte offset / JSON key when no tensor is involved). */
#include "loader/safetensors.h"

#include "runtime/base/common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_INDEX_BYTES ((size_t)64 << 20) /* model.safetensors.index.json */
#define ST_MAX_EXACT_INT 9007199254740992.0   /* 2^53: larger JSON numbers are not exact */

static const struct {
    const char *name;
    size_t size;
} k_dtypes[FP4RT_DT_COUNT] = {
    [FP4RT_DT_BF16] = {"BF16", 2},       [FP4RT_DT_F16] = {"F16", 2}, [FP4RT_DT_F32] = {"F32", 4},
    [FP4RT_DT_F8_E4M3] = {"F8_E4M3", 1}, [FP4RT_DT_U8] = {"U8", 1},   [FP4RT_DT_I8] = {"I8", 1},
    [FP4RT_DT_I32] = {"I32", 4},         [FP4RT_DT_I64] = {"I64", 8},
};

const char *fp4rt_dtype_name(fp4rt_dtype dt) {
    return (unsigned)dt < FP4RT_DT_COUNT ? k_dtypes[dt].name : "?";
}

size_t fp4rt_dtype_size(fp4rt_dtype dt) {
    return (unsigned)dt < FP4RT_DT_COUNT ? k_dtypes[dt].size : 0;
}

int fp4rt_dtype_parse(const char *s, fp4rt_dtype *dt) {
    for (int i = 0; i < FP4RT_DT_COUNT; i++) {
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *dt = (fp4rt_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* ---- one file ---------------------------------------------------------------------- */

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_exact_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d < ST_MAX_EXACT_INT) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const fp4rt_st_tensor *)a)->name, ((const fp4rt_st_tensor *)b)->name);
}

static int cmp_tensor_begin(const void *a, const void *b) {
    const fp4rt_st_tensor *x = *(const fp4rt_st_tensor *const *)a;
    const fp4rt_st_tensor *y = *(const fp4rt_st_tensor *const *)b;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

/* Frees what fp4rt_st_parse allocated (and the mapping, if any); f itself stays. */
static void st_release(fp4rt_st_file *f) {
    for (size_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* Parses one header entry into t (name already set). `payload` bytes follow the header. */
static fp4rt_status parse_entry(const char *path, const cJSON *e, uint64_t payload_off,
                                uint64_t payload, const unsigned char *base, fp4rt_st_tensor *t) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: header entry is not a JSON object", path,
                          nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: \"dtype\" missing or not a string", path,
                          nm);
    if (fp4rt_dtype_parse(dt->valuestring, &t->dtype) != 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: tensor %s: dtype \"%s\" is not supported (expected BF16, F16, "
                          "F32, F8_E4M3, U8, I8, I32 or I64)",
                          path, nm, dt->valuestring);
    if (!cJSON_IsArray(shape))
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: \"shape\" missing or not an array", path,
                          nm);
    int nd = cJSON_GetArraySize(shape);
    if (nd > FP4RT_ST_MAX_DIMS)
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: shape has %d dims, at most %d supported",
                          path, nm, nd, FP4RT_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t count = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_exact_uint(d, &v))
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: tensor %s: shape[%d] is not a non-negative integer below 2^53",
                              path, nm, i);
        t->shape[i] = (int64_t)v;
        if (v != 0 && count > UINT64_MAX / v)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: element count overflows 64 bits", path,
                              nm);
        count *= v;
    }
    size_t es = fp4rt_dtype_size(t->dtype);
    if (count > UINT64_MAX / es)
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: byte size overflows 64 bits", path, nm);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: tensor %s: \"data_offsets\" missing or not an array [begin, end]",
                          path, nm);
    uint64_t begin, end;
    if (!json_exact_uint(offs->child, &begin) || !json_exact_uint(offs->child->next, &end))
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: tensor %s: data_offsets must be non-negative integers below 2^53",
                          path, nm);
    if (end < begin)
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: data_offsets end %llu < begin %llu", path,
                          nm, (unsigned long long)end, (unsigned long long)begin);
    if (end > payload)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: tensor %s: data_offsets end %llu is past the %llu-byte payload",
                          path, nm, (unsigned long long)end, (unsigned long long)payload);
    if (end - begin != count * es)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: tensor %s: data_offsets span %llu bytes, expected %llu "
                          "(%llu elements of %s)",
                          path, nm, (unsigned long long)(end - begin),
                          (unsigned long long)(count * es), (unsigned long long)count,
                          fp4rt_dtype_name(t->dtype));
    t->nbytes = end - begin;
    t->file_offset = payload_off + begin;
    t->data = base + t->file_offset;
    return FP4RT_OK;
}

static fp4rt_status check_metadata(const char *path, const cJSON *m) {
    if (!cJSON_IsObject(m))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key __metadata__: expected an object of strings",
                          path);
    for (const cJSON *v = m->child; v; v = v->next)
        if (!cJSON_IsString(v))
            return fp4rt_fail(FP4RT_FORMAT, "%s: key __metadata__.%s: expected a string value",
                              path, v->string);
    return FP4RT_OK;
}

/* Sorts by name, rejects duplicates, then rejects byte ranges that overlap. */
static fp4rt_status check_layout(const char *path, fp4rt_st_file *f) {
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: duplicate name in the header", path,
                              f->tensors[i].name);
    fp4rt_st_tensor **by_begin = fp4rt_malloc((f->n_tensors + 1) * sizeof *by_begin, path);
    if (!by_begin) return FP4RT_OUT_OF_MEMORY;
    size_t n = 0;
    for (size_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].nbytes) by_begin[n++] = &f->tensors[i]; /* empty ones cannot overlap */
    qsort(by_begin, n, sizeof *by_begin, cmp_tensor_begin);
    fp4rt_status st = FP4RT_OK;
    for (size_t i = 1; i < n; i++) {
        const fp4rt_st_tensor *a = by_begin[i - 1], *b = by_begin[i];
        if (b->file_offset < a->file_offset + a->nbytes) {
            st = fp4rt_fail(
                FP4RT_FORMAT,
                "%s: tensor %s: bytes [%llu, %llu) overlap tensor %s at file offset %llu", path,
                b->name, (unsigned long long)b->file_offset,
                (unsigned long long)(b->file_offset + b->nbytes), a->name,
                (unsigned long long)a->file_offset);
            break;
        }
    }
    free(by_begin);
    return st;
}

/* Validates the image; fills f->tensors (f->path already set). On failure frees them. */
static fp4rt_status st_parse(const char *path, const void *data, size_t size, fp4rt_st_file *f) {
    const unsigned char *b = data;
    if (size < 8)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: file is %zu bytes, shorter than the 8-byte header length", path,
                          size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    if (hlen > FP4RT_ST_MAX_HEADER)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: byte offset 0: header length %llu exceeds the %u-byte limit", path,
                          (unsigned long long)hlen, FP4RT_ST_MAX_HEADER);
    if (hlen > size - 8)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: byte offset 0: header length %llu runs past the end of the "
                          "%zu-byte file",
                          path, (unsigned long long)hlen, size);
    /* A NUL-terminated copy keeps the JSON parser inside the header whatever it does. */
    char *text = fp4rt_malloc((size_t)hlen + 1, "safetensors header");
    if (!text) return FP4RT_OUT_OF_MEMORY;
    memcpy(text, b + 8, (size_t)hlen);
    text[hlen] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    fp4rt_status st = FP4RT_OK;
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        st =
            fp4rt_fail(FP4RT_FORMAT, "%s: byte offset %zu: header is not valid JSON", path, 8 + at);
        goto done;
    }
    for (const char *p = end; p < text + hlen; p++) {
        /* The reference writer pads the header with spaces; JSON whitespace is allowed. */
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = fp4rt_fail(FP4RT_FORMAT,
                            "%s: byte offset %zu: unexpected data after the header JSON "
                            "(expected space padding)",
                            path, (size_t)(8 + (p - text)));
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = fp4rt_fail(FP4RT_FORMAT, "%s: byte offset 8: header is not a JSON object", path);
        goto done;
    }
    size_t n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        n++;
    f->tensors = fp4rt_calloc(n + 1, sizeof *f->tensors, "safetensors tensor table");
    if (!f->tensors) {
        st = FP4RT_OUT_OF_MEMORY;
        goto done;
    }
    uint64_t payload_off = 8 + hlen, payload = size - payload_off;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if ((st = check_metadata(path, e)) != FP4RT_OK) goto done;
            continue;
        }
        fp4rt_st_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = fp4rt_strdup(e->string))) {
            st = FP4RT_OUT_OF_MEMORY;
            goto done;
        }
        f->n_tensors++;
        t->file_path = f->path;
        if ((st = parse_entry(path, e, payload_off, payload, b, t)) != FP4RT_OK) goto done;
    }
    st = check_layout(path, f);
done:
    cJSON_Delete(root);
    free(text);
    if (st != FP4RT_OK) {
        for (size_t i = 0; i < f->n_tensors; i++)
            free(f->tensors[i].name);
        free(f->tensors);
        f->tensors = NULL;
        f->n_tensors = 0;
    }
    return st;
}

fp4rt_status fp4rt_st_parse(const char *path, const void *data, size_t size, fp4rt_st_file *f) {
    memset(f, 0, sizeof *f);
    if (!(f->path = fp4rt_strdup(path))) return FP4RT_OUT_OF_MEMORY;
    f->size = size;
    fp4rt_status st = st_parse(path, data, size, f);
    if (st != FP4RT_OK) st_release(f);
    return st;
}

void fp4rt_st_release(fp4rt_st_file *f) {
    if (f) st_release(f);
}

fp4rt_status fp4rt_st_open(const char *path, fp4rt_st_file **out) {
    *out = NULL;
    fp4rt_st_file *f = fp4rt_calloc(1, sizeof *f, "safetensors file");
    if (!f) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st = FP4RT_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = fp4rt_fail(FP4RT_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = fp4rt_fail(FP4RT_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = fp4rt_fail(FP4RT_IO, "%s: not a regular file", path);
        goto fail;
    }
    if (sb.st_size < 8) { /* mmap of an empty file fails; report the format problem */
        st = fp4rt_fail(FP4RT_FORMAT,
                        "%s: file is %lld bytes, shorter than the 8-byte header length", path,
                        (long long)sb.st_size);
        goto fail;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = fp4rt_fail(FP4RT_UNSUPPORTED, "%s: file too large to map", path);
        goto fail;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        st = fp4rt_fail(FP4RT_IO, "%s: cannot mmap %lld bytes: %s", path, (long long)sb.st_size,
                        strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if ((st = fp4rt_st_parse(path, map, (size_t)sb.st_size, f)) != FP4RT_OK) {
        munmap(map, (size_t)sb.st_size);
        goto fail;
    }
    f->map = map;
    f->size = (size_t)sb.st_size;
    *out = f;
    return FP4RT_OK;
fail:
    if (fd >= 0) close(fd);
    free(f);
    return st;
}

void fp4rt_st_close(fp4rt_st_file *f) {
    if (!f) return;
    st_release(f);
    free(f);
}

const fp4rt_st_tensor *fp4rt_st_find(const fp4rt_st_file *f, const char *name) {
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- checkpoint directory -------------------------------------------------------- */

static int cmp_tensor_ptr_name(const void *a, const void *b) {
    return strcmp((*(const fp4rt_st_tensor *const *)a)->name,
                  (*(const fp4rt_st_tensor *const *)b)->name);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index of `name` in the sorted string array, or -1. */
static long find_str(const char *const *v, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid], name);
        if (c == 0) return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Adds an opened file to c. */
static fp4rt_status ckpt_add_file(fp4rt_checkpoint *c, const char *path) {
    fp4rt_st_file *f;
    fp4rt_status st = fp4rt_st_open(path, &f);
    if (st != FP4RT_OK) return st;
    fp4rt_st_file **nf = realloc(c->files, (c->n_files + 1) * sizeof *nf);
    if (!nf) {
        fp4rt_st_close(f);
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory for the file table", path);
    }
    c->files = nf;
    c->files[c->n_files++] = f;
    return FP4RT_OK;
}

/* Builds c->tensors from every file, sorted by name; a name in two files is an error. */
static fp4rt_status ckpt_merge(fp4rt_checkpoint *c) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_files; i++)
        n += c->files[i]->n_tensors;
    c->tensors = fp4rt_malloc((n + 1) * sizeof *c->tensors, "checkpoint tensor table");
    if (!c->tensors) return FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; i < c->n_files; i++)
        for (size_t j = 0; j < c->files[i]->n_tensors; j++)
            c->tensors[c->n_tensors++] = &c->files[i]->tensors[j];
    qsort(c->tensors, c->n_tensors, sizeof *c->tensors, cmp_tensor_ptr_name);
    for (size_t i = 1; i < c->n_tensors; i++)
        if (strcmp(c->tensors[i - 1]->name, c->tensors[i]->name) == 0)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: present in two shards (%s and %s)",
                              c->dir, c->tensors[i]->name, c->tensors[i - 1]->file_path,
                              c->tensors[i]->file_path);
    return FP4RT_OK;
}

static int shard_name_ok(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Opens the shards named by the index at `ipath` and checks the weight_map. */
static fp4rt_status ckpt_open_index(fp4rt_checkpoint *c, const char *ipath) {
    char *text = NULL;
    size_t len = 0;
    const char **shards = NULL;
    cJSON *root = NULL;
    fp4rt_status st = fp4rt_read_file(ipath, ST_MAX_INDEX_BYTES, &text, &len);
    if (st != FP4RT_OK) return st;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        st = fp4rt_fail(FP4RT_FORMAT, "%s: byte offset %zu: not valid JSON", ipath,
                        end && end >= text ? (size_t)(end - text) : 0);
        goto done;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(wm)) {
        st = fp4rt_fail(FP4RT_FORMAT, "%s: key weight_map: missing or not an object", ipath);
        goto done;
    }
    if (md && !cJSON_IsObject(md) && !cJSON_IsNull(md)) {
        st = fp4rt_fail(FP4RT_FORMAT, "%s: key metadata: expected an object", ipath);
        goto done;
    }
    /* Distinct shard names, validated, sorted. */
    size_t n = 0, ns = 0;
    for (const cJSON *e = wm->child; e; e = e->next)
        n++;
    shards = fp4rt_malloc((n + 1) * sizeof *shards, "shard names");
    if (!shards) {
        st = FP4RT_OUT_OF_MEMORY;
        goto done;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !shard_name_ok(e->valuestring)) {
            st = fp4rt_fail(FP4RT_FORMAT,
                            "%s: key weight_map.%s: expected a plain shard file name (no '/' "
                            "or '..')",
                            ipath, e->string);
            goto done;
        }
        shards[ns++] = e->valuestring;
    }
    qsort(shards, ns, sizeof *shards, cmp_str_ptr);
    size_t nu = 0;
    for (size_t i = 0; i < ns; i++)
        if (nu == 0 || strcmp(shards[nu - 1], shards[i]) != 0) shards[nu++] = shards[i];
    for (size_t i = 0; i < nu; i++) {
        char *p = fp4rt_path_join(c->dir, shards[i]);
        if (!p) {
            st = FP4RT_OUT_OF_MEMORY;
            goto done;
        }
        st = ckpt_add_file(c, p);
        if (st != FP4RT_OK) fp4rt_fail_context(st, "%s: shard %s", ipath, shards[i]);
        free(p);
        if (st != FP4RT_OK) goto done;
    }
    /* Every weight_map entry is in the shard it names (files[] follows shards[] order). */
    for (const cJSON *e = wm->child; e; e = e->next) {
        long k = find_str(shards, nu, e->valuestring);
        const fp4rt_st_tensor *t = fp4rt_st_find(c->files[k], e->string);
        if (!t) {
            st = fp4rt_fail(FP4RT_FORMAT,
                            "%s: tensor %s: listed in weight_map for shard %s, "
                            "which does not contain it",
                            ipath, e->string, e->valuestring);
            goto done;
        }
    }
    if ((st = ckpt_merge(c)) != FP4RT_OK) goto done;
    /* Every stored tensor is listed (a duplicate weight_map key would show up here too). */
    size_t listed = 0;
    for (const cJSON *e = wm->child; e; e = e->next)
        listed++;
    if (listed != c->n_tensors) {
        for (size_t i = 0; i < c->n_tensors; i++) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(wm, c->tensors[i]->name);
            if (!e) {
                st = fp4rt_fail(FP4RT_FORMAT,
                                "%s: tensor %s: stored in shard %s but absent "
                                "from the weight_map",
                                ipath, c->tensors[i]->name, c->tensors[i]->file_path);
                goto done;
            }
        }
        st = fp4rt_fail(FP4RT_FORMAT,
                        "%s: key weight_map: %zu entries for %zu stored tensors "
                        "(duplicate keys?)",
                        ipath, listed, c->n_tensors);
    }
done:
    free(shards);
    cJSON_Delete(root);
    free(text);
    return st;
}

fp4rt_status fp4rt_checkpoint_open(const char *dir, fp4rt_checkpoint **out) {
    *out = NULL;
    fp4rt_checkpoint *c = fp4rt_calloc(1, sizeof *c, "checkpoint");
    if (!c) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st = FP4RT_OUT_OF_MEMORY;
    char *ipath = NULL, *spath = NULL;
    if (!(c->dir = fp4rt_strdup(dir))) goto done;
    if (!(ipath = fp4rt_path_join(dir, "model.safetensors.index.json"))) goto done;
    if (!(spath = fp4rt_path_join(dir, "model.safetensors"))) goto done;
    size_t dl = strlen(dir);
    struct stat sb;
    if (file_exists(ipath)) {
        st = ckpt_open_index(c, ipath);
    } else if (file_exists(spath)) {
        if ((st = ckpt_add_file(c, spath)) == FP4RT_OK) st = ckpt_merge(c);
    } else if (dl > 12 && strcmp(dir + dl - 12, ".safetensors") == 0 && stat(dir, &sb) == 0 &&
               S_ISREG(sb.st_mode)) {
        if ((st = ckpt_add_file(c, dir)) == FP4RT_OK) st = ckpt_merge(c);
    } else {
        st = fp4rt_fail(FP4RT_IO, "%s: no model.safetensors.index.json or model.safetensors found",
                        dir);
    }
done:
    free(ipath);
    free(spath);
    if (st != FP4RT_OK) {
        fp4rt_checkpoint_close(c);
        return st;
    }
    *out = c;
    return FP4RT_OK;
}

void fp4rt_checkpoint_close(fp4rt_checkpoint *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_files; i++)
        fp4rt_st_close(c->files[i]);
    free(c->files);
    free(c->tensors);
    free(c->dir);
    free(c);
}

const fp4rt_st_tensor *fp4rt_checkpoint_find(const fp4rt_checkpoint *c, const char *name) {
    size_t lo = 0, hi = c->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->tensors[mid]->name, name);
        if (cmp == 0) return c->tensors[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
