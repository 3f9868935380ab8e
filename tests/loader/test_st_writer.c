/* safetensors writer and output-directory helpers: sharded round trip through the
 * reader, misuse refused, IO failures reported, atomic directories. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "loader/st_writer.h"

#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

typedef struct spec {
    const char *name;
    fp4rt_dtype dt;
    int ndim;
    int64_t shape[3];
} spec;

/* Sizes: 48, 40, 40, 160 (> shard), 4 (0-d), 0, 16 bytes. */
static const spec k_specs[] = {
    {"model.embed.weight", FP4RT_DT_BF16, 2, {4, 6}},  {"layers.0.w", FP4RT_DT_F32, 1, {10}},
    {"layers.0.w_scale", FP4RT_DT_F8_E4M3, 2, {5, 8}}, {"layers.1.big", FP4RT_DT_I64, 2, {4, 5}},
    {"layers.1.scale_2", FP4RT_DT_F32, 0, {0}},        {"empty", FP4RT_DT_U8, 1, {0}},
    {"lm_head.weight", FP4RT_DT_U8, 2, {2, 8}},
};
#define N_SPECS (sizeof k_specs / sizeof k_specs[0])

static uint64_t spec_bytes(const spec *s) {
    uint64_t n = fp4rt_dtype_size(s->dt);
    for (int i = 0; i < s->ndim; i++)
        n *= (uint64_t)s->shape[i];
    return n;
}

static void fill(unsigned char *buf, uint64_t n, size_t seed) {
    for (uint64_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 31 + seed * 7 + 3);
}

/* Writes every spec to dir with the given shard size. */
static fp4rt_status write_all(const char *dir, uint64_t shard_bytes) {
    fp4rt_stw *w = NULL;
    fp4rt_status st = fp4rt_stw_create(dir, shard_bytes, &w);
    for (size_t i = 0; st == FP4RT_OK && i < N_SPECS; i++)
        st =
            fp4rt_stw_declare(w, k_specs[i].name, k_specs[i].dt, k_specs[i].ndim, k_specs[i].shape);
    unsigned char buf[256];
    for (size_t i = 0; st == FP4RT_OK && i < N_SPECS; i++) {
        uint64_t n = spec_bytes(&k_specs[i]);
        fill(buf, n, i);
        st = fp4rt_stw_write(w, k_specs[i].name, buf, n);
    }
    if (st == FP4RT_OK) st = fp4rt_stw_finish(w);
    fp4rt_stw_free(w);
    return st;
}

static void check_read_back(const char *dir, size_t want_files) {
    fp4rt_checkpoint *c = NULL;
    fp4rt_status st = fp4rt_checkpoint_open(dir, &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (!c) return;
    CHECK_EQ_INT(c->n_files, want_files);
    CHECK_EQ_INT(c->n_tensors, N_SPECS);
    unsigned char buf[256];
    for (size_t i = 0; i < N_SPECS; i++) {
        const fp4rt_st_tensor *t = fp4rt_checkpoint_find(c, k_specs[i].name);
        CHECK_MSG(t != NULL, "%s missing", k_specs[i].name);
        if (!t) continue;
        uint64_t n = spec_bytes(&k_specs[i]);
        fill(buf, n, i);
        CHECK(t->dtype == k_specs[i].dt && t->ndim == k_specs[i].ndim && t->nbytes == n);
        for (int d = 0; d < t->ndim; d++)
            CHECK(t->shape[d] == k_specs[i].shape[d]);
        CHECK(n == 0 || memcmp(t->data, buf, n) == 0);
    }
    for (size_t f = 0; f < c->n_files; f++) {
        /* header padded so the payload starts 8-aligned */
        const unsigned char *m = c->files[f]->map;
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--)
            hl = (hl << 8) | m[i];
        CHECK_MSG((8 + hl) % 8 == 0, "%s: header length %llu", c->files[f]->path,
                  (unsigned long long)hl);
    }
    fp4rt_checkpoint_close(c);
}

static void test_round_trip(void) {
    const char *out = test_tmp_path("out");
    char *tmp = NULL;
    CHECK(fp4rt_outdir_begin(out, 0, &tmp) == FP4RT_OK && tmp != NULL);
    if (!tmp) return;
    CHECK(exists(tmp) && !exists(out));
    fp4rt_status st = write_all(tmp, 100);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(fp4rt_outdir_commit(tmp, out) == FP4RT_OK);
    CHECK(!exists(tmp) && exists(out));
    free(tmp);
    /* 48+40 | 40 | 160 | 4+0+16 */
    char p[600];
    snprintf(p, sizeof p, "%s/model-00004-of-00004.safetensors", out);
    CHECK(exists(p));
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    CHECK(!exists(p));
    check_read_back(out, 4);

    /* Index: total_size is the summed payload; every tensor listed. */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", out);
    FILE *f = fopen(p, "rb");
    char text[4096] = {0};
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    cJSON *root = cJSON_ParseWithLength(text, n);
    CHECK(root != NULL);
    cJSON *ts = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "metadata"), "total_size");
    uint64_t total = 0;
    for (size_t i = 0; i < N_SPECS; i++)
        total += spec_bytes(&k_specs[i]);
    CHECK(cJSON_IsNumber(ts) && ts->valuedouble == (double)total);
    cJSON *big = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "weight_map"), "layers.1.big");
    CHECK(cJSON_IsString(big) && strcmp(big->valuestring, "model-00003-of-00004.safetensors") == 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(root, "weight_map")), N_SPECS);
    cJSON_Delete(root);

    /* Existing output refused without force; replaced with force. */
    CHECK(fp4rt_outdir_begin(out, 0, &tmp) == FP4RT_INVALID_ARGUMENT && tmp == NULL);
    CHECK(strstr(fp4rt_last_error(), out) != NULL);
    CHECK(fp4rt_outdir_begin(out, 1, &tmp) == FP4RT_OK);
    if (!tmp) return;
    CHECK(write_all(tmp, 0) == FP4RT_OK); /* one shard, no index */
    CHECK(fp4rt_outdir_commit(tmp, out) == FP4RT_OK);
    free(tmp);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", out);
    CHECK(!exists(p));
    check_read_back(out, 1);

    /* Abort removes the temporary directory and what is in it. */
    CHECK(fp4rt_outdir_begin(test_tmp_path("out2"), 0, &tmp) == FP4RT_OK);
    if (!tmp) return;
    CHECK(write_all(tmp, 64) == FP4RT_OK);
    fp4rt_outdir_abort(tmp);
    CHECK(!exists(tmp) && !exists(test_tmp_path("out2")));
    free(tmp);
}

static void test_misuse(void) {
    unsigned char buf[64] = {0};
    int64_t s4[] = {4}, s2[] = {2}, neg[] = {-1};
    fp4rt_stw *w = NULL;
    CHECK(fp4rt_stw_create(test_tmp_dir_, 0, &w) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "a", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "b", FP4RT_DT_U8, 1, s2) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "c", FP4RT_DT_U8, 1, neg) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_stw_declare(w, "__metadata__", FP4RT_DT_U8, 1, s2) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_stw_declare(w, "d", FP4RT_DT_U8, 9, s2) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_stw_write(w, "b", buf, 2) == FP4RT_INVALID_ARGUMENT); /* out of order */
    CHECK(strstr(fp4rt_last_error(), "b") && strstr(fp4rt_last_error(), "expected a"));
    CHECK(fp4rt_stw_write(w, "a", buf, 16) == FP4RT_INVALID_ARGUMENT); /* refused after failure */
    fp4rt_stw_free(w);

    CHECK(fp4rt_stw_create(test_tmp_dir_, 0, &w) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "a", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_write(w, "a", buf, 12) == FP4RT_INVALID_ARGUMENT); /* wrong size */
    CHECK(strstr(fp4rt_last_error(), "16") != NULL);
    fp4rt_stw_free(w);

    CHECK(fp4rt_stw_create(test_tmp_dir_, 0, &w) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "a", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "b", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_write(w, "a", buf, 16) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "late", FP4RT_DT_F32, 1, s4) == FP4RT_INVALID_ARGUMENT);
    fp4rt_stw_free(w);

    CHECK(fp4rt_stw_create(test_tmp_dir_, 0, &w) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "a", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "b", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_write(w, "a", buf, 16) == FP4RT_OK);
    CHECK(fp4rt_stw_finish(w) == FP4RT_INVALID_ARGUMENT); /* b never written */
    CHECK(strstr(fp4rt_last_error(), "b") != NULL);
    fp4rt_stw_free(w);

    CHECK(fp4rt_stw_create(test_tmp_dir_, 0, &w) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "a", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "a", FP4RT_DT_F32, 1, s4) == FP4RT_OK);
    CHECK(fp4rt_stw_write(w, "a", buf, 16) == FP4RT_INVALID_ARGUMENT); /* declared twice */
    CHECK(strstr(fp4rt_last_error(), "twice") != NULL);
    fp4rt_stw_free(w);
    unlink(test_tmp_path("model.safetensors"));
}

static void test_io_errors(void) {
    /* A full disk: /dev/full accepts open and fails every write. */
    const char *src = test_tmp_path("src.txt");
    CHECK(fp4rt_write_text_file(src, "hello\n") == FP4RT_OK);
    CHECK(fp4rt_copy_file(src, test_tmp_path("copy.txt")) == FP4RT_OK);
    FILE *f = fopen(test_tmp_path("copy.txt"), "rb");
    char got[16] = {0};
    CHECK(f && fread(got, 1, sizeof got, f) == 6 && strcmp(got, "hello\n") == 0);
    if (f) fclose(f);
    if (exists("/dev/full")) {
        CHECK(fp4rt_copy_file(src, "/dev/full") == FP4RT_IO);
        CHECK(strstr(fp4rt_last_error(), "/dev/full") != NULL);
    }
    CHECK(fp4rt_copy_file(test_tmp_path("nope"), test_tmp_path("x")) == FP4RT_IO);
    CHECK(fp4rt_write_text_file(test_tmp_path("no/such/dir.txt"), "x") == FP4RT_IO);
    CHECK(strstr(fp4rt_last_error(), "no/such/dir.txt") != NULL);

    /* A short write while streaming a shard (file size limit, like a full disk). */
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) return;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {4096, old.rlim_max};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) return;
    static unsigned char big[1 << 16];
    int64_t shape[] = {sizeof big};
    fp4rt_stw *w = NULL;
    CHECK(fp4rt_stw_create(test_tmp_dir_, 0, &w) == FP4RT_OK);
    CHECK(fp4rt_stw_declare(w, "big", FP4RT_DT_U8, 1, shape) == FP4RT_OK);
    fp4rt_status st = fp4rt_stw_write(w, "big", big, sizeof big);
    if (st == FP4RT_OK) st = fp4rt_stw_finish(w);
    CHECK(st == FP4RT_IO);
    CHECK_MSG(strstr(fp4rt_last_error(), "model.safetensors") != NULL, "%s", fp4rt_last_error());
    fp4rt_stw_free(w);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
}

int main(void) {
    test_tmpdir("stw");
    test_round_trip();
    test_misuse();
    test_io_errors();
    test_tmpdir_remove();
    return test_summary("test_st_writer");
}
