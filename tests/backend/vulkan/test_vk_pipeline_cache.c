/* The on-disk Vulkan pipeline cache (runtime/backend/vulkan/vk_pipeline_cache.c), with
 * FP4RT_CACHE_DIR pointing at a scratch directory and tests/fixtures/tiny-bf16
 * decoding a few tokens on the device:
 *   - a cold run writes pipelines-<vendor>-<device>.bin with our header
 *     ("FP4RTPC1", the library version) and loaded nothing;
 *   - a warm run hands the file's data to vkCreatePipelineCache, does not
 *     rewrite an unchanged cache, and gives bit-identical logits;
 *   - a flipped data byte, a wrong pipelineCacheUUID in the header, a
 *     truncated file and garbage are each ignored (logits identical) and the
 *     file is replaced by a valid one (the next run loads it again);
 *   - an unusable cache directory (below a regular file) does not fail the load.
 * Any validation message fails the test. Skips (exit 0, "skipped: ...") when
 * there is no Vulkan device. */
#include "fp4rt.h"
#include "tests/test_util.h"
#include "tests/backend/vulkan/test_vk_util.h"

#include "runtime/backend/vulkan/vk.h"

#include <dirent.h>
#include <stdint.h>

#define N_TOK 4
#define HDR_BYTES 80
#define UUID_OFF 44

static const int32_t k_tok[N_TOK] = {1, 7, 42, 3};
static int g_vocab;

static float *run(const char *dev) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 1;
    fp4rt_model *m = fp4rt_model_load("tests/fixtures/tiny-bf16", &mp);
    if (!m) {
        CHECK_MSG(0, "load on %s: %s", dev, fp4rt_last_error());
        return NULL;
    }
    g_vocab = fp4rt_model_n_vocab(m);
    fp4rt_session *s = fp4rt_session_create(m, NULL);
    float *out = calloc((size_t)N_TOK * g_vocab, sizeof(float));
    fp4rt_status st = s && out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    for (int i = 0; !st && i < N_TOK; i++) st = fp4rt_session_eval(s, k_tok + i, 1, out + (size_t)i * g_vocab, 0);
    CHECK_MSG(st == FP4RT_OK, "eval on %s: %s", dev, fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* The one pipelines-*.bin in dir (static buffer), or NULL. */
static const char *find_cache(const char *dir) {
    static char path[1024];
    DIR *d = opendir(dir);
    if (!d) return NULL;
    const char *found = NULL;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "pipelines-", 10) && strstr(e->d_name, ".bin") &&
            !strstr(e->d_name, ".tmp")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            found = path;
        }
    closedir(d);
    return found;
}

static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) ? -1 : (long)sb.st_size;
}

static void patch_byte(const char *p, long off, int xor_mask) {
    FILE *f = fopen(p, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int b = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(b ^ xor_mask, f);
    fclose(f);
}

static void check_same(const char *what, const float *a, const float *ref) {
    CHECK_MSG(a && ref && !memcmp(a, ref, (size_t)N_TOK * g_vocab * sizeof(float)), "%s: logits differ", what);
}

int main(void) {
    char dev[32];
    fp4rt_vk_device_desc d;
    if (!test_vk_pick_device(dev, sizeof dev, &d)) return 0;
    printf("device %s: %s\n", dev, d.name);
    const char *tmp = test_tmpdir("vk_pcache");
    char cache[512];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    setenv("FP4RT_CACHE_DIR", cache, 1);

    /* cold */
    long saves0 = fp4rt_vk_pipeline_cache_saves();
    float *ref = run(dev);
    CHECK_EQ_INT(fp4rt_vk_pipeline_cache_loaded_bytes(), 0);
    CHECK_EQ_INT(fp4rt_vk_pipeline_cache_saves(), saves0 + 1);
    const char *found = find_cache(cache);
    CHECK_MSG(found != NULL, "no pipelines-*.bin in %s", cache);
    if (!found || !ref) {
        test_tmpdir_remove();
        return test_summary("test_vk_pipeline_cache");
    }
    char path[1024];
    snprintf(path, sizeof path, "%s", found);
    printf("cache file %s: %ld bytes\n", path, file_size(path));
    CHECK(file_size(path) >= HDR_BYTES + 32); /* lavapipe (Mesa 22) keeps only the Vulkan header */
    {
        unsigned char h[32] = {0};
        FILE *f = fopen(path, "rb");
        CHECK(f && fread(h, 1, sizeof h, f) == sizeof h);
        if (f) fclose(f);
        CHECK(!memcmp(h, "FP4RTPC1", 8));
        CHECK(!strcmp((const char *)h + 16, FP4RT_VERSION_STRING));
    }

    /* warm: loaded, unchanged so not rewritten, same logits */
    long saves1 = fp4rt_vk_pipeline_cache_saves();
    float *warm = run(dev);
    long loaded = (long)fp4rt_vk_pipeline_cache_loaded_bytes();
    CHECK_MSG(loaded == file_size(path) - HDR_BYTES, "warm run loaded %ld bytes of %ld", loaded,
              file_size(path) - HDR_BYTES);
    CHECK_EQ_INT(fp4rt_vk_pipeline_cache_saves(), saves1);
    check_same("warm cache", warm, ref);
    free(warm);

    /* damaged files: ignored, replaced, logits identical */
    const char *damage[] = {"flipped data byte", "wrong UUID in the header", "truncated", "garbage"};
    for (int k = 0; k < 4; k++) {
        long sz = file_size(path);
        if (k == 0) patch_byte(path, sz - 1, 0x5a);
        if (k == 1) patch_byte(path, UUID_OFF + 3, 0x01);
        if (k == 2) CHECK(truncate(path, sz - 1) == 0);
        if (k == 3) {
            FILE *f = fopen(path, "wb");
            if (f) {
                fputs("not a cache", f);
                fclose(f);
            }
        }
        long s = fp4rt_vk_pipeline_cache_saves();
        float *lg = run(dev);
        CHECK_MSG(fp4rt_vk_pipeline_cache_loaded_bytes() == 0, "%s: the file was used", damage[k]);
        CHECK_MSG(fp4rt_vk_pipeline_cache_saves() == s + 1, "%s: the file was not replaced", damage[k]);
        check_same(damage[k], lg, ref);
        free(lg);
    }
    float *again = run(dev);
    CHECK_MSG(fp4rt_vk_pipeline_cache_loaded_bytes() > 0, "the replaced cache was not loaded");
    check_same("replaced cache", again, ref);
    free(again);

    /* unusable directory: below a regular file */
    char blocker[512], bad[600];
    snprintf(blocker, sizeof blocker, "%s/a-file", tmp);
    FILE *f = fopen(blocker, "wb");
    CHECK(f != NULL);
    if (f) fclose(f);
    snprintf(bad, sizeof bad, "%s/sub", blocker);
    setenv("FP4RT_CACHE_DIR", bad, 1);
    long s = fp4rt_vk_pipeline_cache_saves();
    float *lg = run(dev);
    CHECK_EQ_INT(fp4rt_vk_pipeline_cache_saves(), s);
    check_same("unwritable cache directory", lg, ref);
    free(lg);

    free(ref);
    unsetenv("FP4RT_CACHE_DIR");
    test_tmpdir_remove();
    long msgs = fp4rt_vk_message_count();
    CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    return test_summary("test_vk_pipeline_cache");
}
