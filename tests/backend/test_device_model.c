/* A device backend against the CPU reference; ctest runs it as
 * test_device_model_vulkan (argv[1] "vulkan" or none: the first Vulkan device,
 * lavapipe in CI, with the
 * Khronos validation layer enabled by the environment; any validation message
 * fails the test):
 *   - NVFP4 -> FP16 dequantization bit-identical to the CPU's, every code x a
 *     spread of block scales;
 *   - the committed transformers fixtures tiny-{bf16,mixed,w4a4} (and the
 *     FP8-KV one of tiny-mixed) pass on Vulkan with test_model.c's ceilings;
 *   - model level on the same fixtures: teacher-
 *     forced logits over the 96 tokens of tests/fixtures/tokens.txt, decode (token
 *     by token) and prefill (chunks of 48, crossing a chunk boundary), against
 *     the CPU backend; greedy generation of 32 tokens identical. The Vulkan
 *     prefill runs the GDN recurrence token by token while the CPU prefill uses
 *     the chunked form: for W4A4 (activations snapped to a 4-bit grid) that
 *     rounding difference flips quantization codes, so its prefill is held to
 *     the CPU's own prefill-vs-decode gap (x2) and to the CPU decode (1e-6);
 *   - determinism and pieces: a second prefill run with the weight binding
 *     piece size lowered to 4 KiB (FP4RT_VK_PIECE_RANGE: every linear bound in
 *     pieces) gives bit-identical logits (the whole binding limit lowered:
 *     test_vk_exec.c).
 * Skips (exit 0, "skipped: ...") when there is no Vulkan device.
 * With argv[1] = "cuda:N" the same checks run on that CUDA device (no dequant
 * kernel test; plus decode via CUDA graphs bit-identical to eager decode), and
 * it exits 77 (ctest: skipped) when there is no such device. */
#include "fp4rt.h"
#include "tests/test_greedy.h"
#include "tests/test_util.h"

#include "runtime/base/numfmt.h"
#include "tests/test_devices.h"
#ifdef FP4RT_HAVE_VULKAN /* the dequant kernel test (Vulkan internals) */
#include "runtime/backend/vulkan/vk.h"
#endif

#include <stdint.h>

#define DECODE_NMSE 1e-6
#define PREFILL_NMSE 1e-6

#ifdef FP4RT_HAVE_VULKAN
static void test_dequant(const char *dev) {
    void *ctx = NULL;
    int idx = atoi(dev + 7);
    if (fp4rt_vk_backend_create(idx, &ctx)) {
        CHECK_MSG(0, "backend create: %s", fp4rt_last_error());
        return;
    }
    /* every code (two per byte) under every block scale code except NaN */
    size_t n = 16 * 16 * 256;
    uint8_t *packed = malloc(n / 2), *scales = malloc(n / 16);
    uint16_t *out = malloc(n * 2);
    for (size_t i = 0; i < n / 2; i++) packed[i] = (uint8_t)(i & 0xff);
    for (size_t b = 0; b < n / 16; b++) {
        uint8_t s = (uint8_t)(b % 256);
        if ((s & 0x7f) == 0x7f) s = 0x7e; /* NaN scales are never written */
        scales[b] = s & 0x7f;              /* block scales are non-negative */
    }
    fp4rt_status st = fp4rt_vk_dequant_nvfp4(ctx, packed, scales, n, out);
    CHECK_MSG(st == FP4RT_OK, "dequant: %s", fp4rt_last_error());
    size_t bad = 0;
    for (size_t i = 0; !st && i < n; i++) {
        uint8_t code = (packed[i / 2] >> (4 * (i & 1))) & 15;
        float v = fp4rt_e2m1_to_f32(code) * fp4rt_e4m3_to_f32(scales[i / 16]);
        uint16_t want = fp4rt_f32_to_f16(v);
        if (out[i] != want && bad++ < 5)
            fprintf(stderr, "dequant %zu: code %u scale 0x%02x: got 0x%04x want 0x%04x\n", i, code, scales[i / 16],
                    out[i], want);
    }
    CHECK_MSG(bad == 0, "%zu of %zu dequantized values differ from the CPU", bad, n);
    fp4rt_backend_vulkan.destroy(ctx);
    free(packed);
    free(scales);
    free(out);
}
#endif

/* Teacher-forced logits [n, vocab]: chunk 1 = decode path, else prefill chunks. */
static float *run_logits_kv(const char *model_dir, const char *dev, const int32_t *tok, int n, int chunk,
                            fp4rt_kv_type kv, int *vocab) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load(model_dir, &mp);
    if (!m) {
        CHECK_MSG(0, "%s on %s: %s", model_dir, dev, fp4rt_last_error());
        return NULL;
    }
    *vocab = fp4rt_model_n_vocab(m);
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 256;
    sp.prefill_chunk = chunk > 1 ? chunk : 64;
    sp.kv_type = kv;
    sp.exact = 1; /* bit for bit against the other device, and the fixtures */
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    float *out = calloc((size_t)n * *vocab, sizeof(float));
    fp4rt_status st = s && out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (chunk == 1)
        for (int i = 0; !st && i < n; i++) st = fp4rt_session_eval(s, tok + i, 1, out + (size_t)i * *vocab, 0);
    else if (!st)
        st = fp4rt_session_eval(s, tok, n, out, 1);
    CHECK_MSG(st == FP4RT_OK, "%s on %s: %s", model_dir, dev, fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* F32 KV cache, as the transformers fixtures (and test_model.c) use. */
static float *run_logits(const char *model_dir, const char *dev, const int32_t *tok, int n, int chunk, int *vocab) {
    return run_logits_kv(model_dir, dev, tok, n, chunk, FP4RT_KV_F32, vocab);
}

/* Vulkan logits against the transformers fixture (tests/fixtures/<name>.logits.bin,
 * the first n of its rows) with test_model.c's ceilings: 1e-6 for BF16, 1e-5
 * where FP8 / NVFP4 activation codes can flip on summation order. */
static void vs_transformers(const char *what, const float *got, const char *ref_path, int n, int n_ref, int V,
                            double tol) {
    float *ref = test_read_floats(ref_path, (size_t)n_ref * V);
    CHECK_MSG(ref != NULL, "%s missing or not %d x %d floats", ref_path, n_ref, V);
    if (ref && got) {
        double e = test_nmse(got, ref, (size_t)n * V);
        printf("  %-34s NMSE %.3g (ceiling %.0e)\n", what, e, tol);
        CHECK_MSG(e <= tol, "%s: NMSE %.3g vs transformers > %.0e", what, e, tol);
        int bad = test_argmax_disagreements(got, ref, n, V, 1e-3f);
        CHECK_MSG(bad == 0, "%s: argmax differs from transformers at %d clear positions", what, bad);
    }
    free(ref);
}

/* Greedy generation of n tokens after the prompt. */
static void greedy(const char *model_dir, const char *dev, const int32_t *prompt, int np, int32_t *gen, int n) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 2;
    test_greedy(model_dir, &mp, prompt, np, gen, n);
}

static void compare(const char *what, const float *a, const float *ref, size_t n, double ceiling) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(a[i]);
    double e = test_nmse(a, ref, n);
    printf("  %-34s NMSE %.3g\n", what, e);
    CHECK_MSG(bad == 0, "%s: %zu non-finite logits", what, bad);
    CHECK_MSG(e <= ceiling, "%s: NMSE %.3g > %.3g", what, e, ceiling);
}

/* argv[1]: "cuda" or "cuda:N" (exits 77, ctest: skipped, without that
 * device), "vulkan:N", or none: the Vulkan device of test_pick_device (exits
 * 0 without one). */
int main(int argc, char **argv) {
    char dev[32];
    const char *want = argc > 1 ? argv[1] : NULL;
    int cuda = want && !strncmp(want, "cuda", 4);
    fp4rt_device_ref ref;
    fp4rt_device_desc d;
    if (!test_pick_device(cuda ? "cuda" : "vulkan", want && strchr(want, ':') ? want : NULL, dev, sizeof dev, &ref,
                          &d))
        return cuda ? 77 : 0;
    printf("device %s: %s\n", dev, d.description);
    fp4rt_numfmt_init();
#ifdef FP4RT_HAVE_VULKAN
    if (!cuda) test_dequant(dev);
#endif

    int n = 0;
    int32_t *tok = test_read_tokens("tests/fixtures/tokens.txt", &n);
    CHECK(tok && n >= 64);
    const char *models[] = {"tests/fixtures/tiny-bf16", "tests/fixtures/tiny-mixed", "tests/fixtures/tiny-w4a4"};
    const double tf_tol[] = {1e-6, 1e-5, 1e-5};
    for (size_t k = 0; tok && k < 3; k++) {
        int V = 0;
        printf("%s (%d tokens)\n", models[k], n);
        float *cpu_dec = run_logits(models[k], "cpu", tok, n, 1, &V);
        float *cpu_pre = run_logits(models[k], "cpu", tok, n, 48, &V);
        float *vk_dec = run_logits(models[k], dev, tok, n, 1, &V);
        float *vk_pre = run_logits(models[k], dev, tok, n, 48, &V);
        size_t nv = (size_t)n * V;
        if (cpu_dec && vk_dec) compare("decode vs CPU decode", vk_dec, cpu_dec, nv, DECODE_NMSE);
        if (cpu_pre && vk_pre && cpu_dec) {
            double gap = test_nmse(cpu_pre, cpu_dec, nv);
            printf("  %-34s NMSE %.3g\n", "(CPU prefill vs CPU decode)", gap);
            compare("prefill (chunk 48) vs CPU prefill", vk_pre, cpu_pre, nv, gap > PREFILL_NMSE ? 2 * gap : PREFILL_NMSE);
            compare("prefill (chunk 48) vs CPU decode", vk_pre, cpu_dec, nv, PREFILL_NMSE);
        }
        /* the transformers fixtures pass on Vulkan too (prefill and decode) */
        char ref_path[256];
        snprintf(ref_path, sizeof ref_path, "%s.logits.bin", models[k]);
        vs_transformers("prefill vs transformers", vk_pre, ref_path, n, n, V, tf_tol[k]);
        vs_transformers("decode vs transformers", vk_dec, ref_path, n, n, V, tf_tol[k]);
        /* linears bound in pieces (a 4 KiB binding limit) give the same logits */
        setenv("FP4RT_VK_PIECE_RANGE", "4096", 1);
        float *vk_split = run_logits(models[k], dev, tok, n, 48, &V);
        unsetenv("FP4RT_VK_PIECE_RANGE");
        /* also the determinism check: a second run, bit-identical */
        if (vk_split && vk_pre) CHECK_MSG(!memcmp(vk_split, vk_pre, nv * 4),
                                          "%s: a second run (weights bound in pieces) differs", models[k]);
        if (cuda && vk_dec) {
            /* decode steps replayed from the captured CUDA graph = recorded one by one */
            setenv("FP4RT_CUDA_GRAPHS", "0", 1);
            float *eager = run_logits(models[k], dev, tok, n, 1, &V);
            unsetenv("FP4RT_CUDA_GRAPHS");
            if (eager) CHECK_MSG(!memcmp(eager, vk_dec, nv * 4), "%s: decode via CUDA graphs differs from eager decode",
                                 models[k]);
            free(eager);
        }
        int32_t g_cpu[32] = {0}, g_vk[32] = {0};
        greedy(models[k], "cpu", tok, 8, g_cpu, 32);
        greedy(models[k], dev, tok, 8, g_vk, 32);
        CHECK_MSG(!memcmp(g_cpu, g_vk, sizeof g_cpu), "%s: greedy tokens differ", models[k]);
        free(cpu_dec);
        free(cpu_pre);
        free(vk_dec);
        free(vk_pre);
        free(vk_split);
    }
    /* FP8 KV cache (E4M3 of K / k_scale, V / v_scale) against transformers with the
     * same cast emulated (tools/reference_logits.py --kv-fp8) */
    if (tok) {
        int V = 0;
        float *kv8 = run_logits_kv("tests/fixtures/tiny-mixed", dev, tok, n, 48, FP4RT_KV_FP8, &V);
        printf("tests/fixtures/tiny-mixed, FP8 KV cache\n");
        vs_transformers("prefill vs transformers (FP8 KV)", kv8, "tests/fixtures/tiny-mixed.kvfp8.logits.bin", n,
                        n, V, 1e-5);
        free(kv8);
    }
    free(tok);
    long msgs = fp4rt_registry_message_count();
    CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    return test_summary(cuda ? "test_device_model_cuda" : "test_device_model_vulkan");
}
