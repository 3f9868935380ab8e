/* Op-level timing of the Vulkan LINEAR kernels (issue 4): one program of one
 * LINEAR op per shape, run on Vulkan device 0 (default; argv[1] picks another)
 * after a warm-up, wall time per step (record + submit + wait) averaged over
 * enough repetitions to take ~0.5 s (3 at least). Prints ms per step (wall and
 * process CPU time), weight GB/s and GFLOP/s. argv[2] = "decode" runs T = 1 only;
 * "prefill [DIV]" compares the prefill kernels on the 27B's shapes (bench_prefill). Shapes are those of the qwen3.5-0.8b synth (hidden 1024, MLP 3584)
 * in its nvidia-mixed formats, T = 1 (decode) and 64 (a prefill chunk).
 * Random weights; the output is not checked here (tests/backend/test_backend_ops.c). */
#include "fp4rt.h"

#include "runtime/backend/backend.h"
#include "runtime/engine/model.h"
#include "runtime/backend/vulkan/vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (lavapipe's worker threads included): on a
 * software device this is the cost that does not depend on the machine's load. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint32_t rng = 12345;
static uint8_t rnd8(void) {
    rng = rng * 1664525u + 1013904223u;
    return (uint8_t)(rng >> 24);
}

static int bench_one(int dev, fp4rt_wfmt fmt, int N, int K, int T, double *ms_out) {
    size_t nk = (size_t)N * K, wbytes = fmt == FP4RT_W_F32 ? nk * 4 : fmt <= FP4RT_W_F16 ? nk * 2
                                                    : fmt == FP4RT_W_FP8 ? nk : nk / 2;
    uint8_t *w = malloc(wbytes), *s = malloc(nk / 16 + 1);
    for (size_t i = 0; i < wbytes; i++) w[i] = rnd8() & (fmt == FP4RT_W_FP8 ? 0x77 : fmt <= FP4RT_W_F32 ? 0x3b : 0xff);
    for (size_t i = 0; i < nk / 16 + 1; i++) s[i] = 0x30;
    fp4rt_linear lin = {.module = "bench", .fmt = fmt, .n_out = N, .n_in = K, .weight = w,
                        .block_scale = fmt >= FP4RT_W_NVFP4 ? s : NULL, .weight_scale = 1.0f, .input_scale = 0.01f};
    fp4rt_linear_set_bytes(&lin); /* row_bytes: the upload's size (it was 0: nothing uploaded) */
    fp4rt_layer_weights layer = {.k_scale = 1.0f, .v_scale = 1.0f};
    fp4rt_weights wt = {.layers = &layer};
    wt.cfg.n_layers = 1;
    int width[2] = {K, N}, offset[2] = {0, K};
    fp4rt_op op = {.kind = FP4RT_OP_LINEAR, .lin = &lin, .x = {0, 0, K}, .y = {1, 0, N}};
    fp4rt_program p = {.weights = &wt, .n_ops = 1, .ops = &op, .n_bufs = 2, .buf_width = width,
                       .buf_offset = offset, .arena_width = K + N, .hidden_buf = -1};
    const fp4rt_backend_ops *ops = &fp4rt_backend_vulkan;
    void *ctx = NULL;
    fp4rt_session_buffers sb = {.n_ctx = T, .chunk = T, .kv_type = FP4RT_KV_F32};
    fp4rt_status st = fp4rt_vk_backend_create(dev, &ctx);
    fp4rt_buffer **slots[5] = {&sb.scratch, &sb.kv, &sb.conv, &sb.ssm, &sb.logits};
    for (int i = 0; !st && i < 5; i++)
        st = ops->buffer_alloc(ctx, i == 0 ? (size_t)T * (K + N) * 4 : 16, "bench", slots[i]);
    float *x = malloc((size_t)T * (K + N) * 4);
    for (size_t i = 0; i < (size_t)T * (K + N); i++) x[i] = (float)(rnd8() - 128) / 64.0f;
    if (!st) st = ops->buffer_upload(ctx, sb.scratch, 0, x, (size_t)T * (K + N) * 4);
    if (!st) st = ops->prepare(ctx, &p);
    int32_t tok[1024] = {0};
    fp4rt_step step = {.tokens = tok, .n_tokens = T, .pos0 = 0, .no_logits = 1};
    if (!st) st = ops->run(ctx, &p, &sb, &step); /* warm-up: pipelines */
    int reps = 0;
    double t0 = now(), c0 = cpu_now(), dt = 0;
    while (!st && (dt < 0.5 || reps < 3)) {
        st = ops->run(ctx, &p, &sb, &step);
        reps++;
        dt = now() - t0;
    }
    if (st) {
        fprintf(stderr, "vk_linear_bench: %s\n", fp4rt_last_error());
    } else {
        double ms = dt / reps * 1e3, cpu_ms = (cpu_now() - c0) / reps * 1e3;
        if (ms_out) *ms_out = ms;
        printf("%-12s N=%-6d K=%-6d T=%-4d %9.3f ms wall %9.3f ms CPU  %7.3f GB/s weights  %8.3f GFLOP/s (wall)\n",
               fp4rt_wfmt_name(fmt), N, K, T, ms, cpu_ms, wbytes / (ms * 1e-3) / 1e9, 2.0 * nk * T / (ms * 1e-3) / 1e9);
    }
    for (int i = 0; i < 5; i++)
        if (*slots[i]) ops->buffer_free(ctx, *slots[i]);
    if (ctx) ops->destroy(ctx);
    free(w);
    free(s);
    free(x);
    return st != FP4RT_OK;
}

/* Prefill kernels against the exact one on the 27B's shapes (T = 512): the
 * device's default (matrix units / integer dot / tiled FP32), the integer-dot
 * kernel forced (W4A4; where the device has the instructions), the tiled FP32
 * kernel (GPUs), then FP4RT_VK_EXACT=1 (the matrix-vector kernel, or the
 * whole-rows kernel on software devices); prints each one's speed relative to
 * the exact one. `div` shrinks the shapes
 * (a quick run on a slow device). */
static int bench_prefill(int dev, int div) {
    fp4rt_vk_device_desc d;
    if (fp4rt_vk_device_get(dev, &d)) return 1;
    static const struct { fp4rt_wfmt fmt; int N, K; const char *what; } shapes[] = {
        {FP4RT_W_NVFP4_W4A4, 17408, 5120, "27B gate / up (W4A4)"},
        {FP4RT_W_NVFP4_W4A4, 5120, 17408, "27B down (W4A4)"},
        {FP4RT_W_FP8, 5120, 5120, "27B attention-size FP8 (W8A8)"}};
    static const struct { const char *name, *coop, *idot, *exact; } kinds[] = {
        {"default", NULL, NULL, NULL}, {"integer dot (W4A4)", "0", "1", NULL},
        {"tiled FP32", "0", "0", NULL}, {"exact", NULL, NULL, "1"}};
    int bad = 0, T = 512;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double ms[4] = {0};
        printf("%s: N=%d K=%d T=%d\n", shapes[i].what, shapes[i].N / div, shapes[i].K / div, T);
        for (size_t k = 0; k < 4; k++) {
            if (k == 1 && !d.idot) continue;
            if (k == 2 && d.software) continue; /* software devices run the exact kernel there */
            const char *env[3][2] = {{"FP4RT_VK_COOPMAT", kinds[k].coop},
                                     {"FP4RT_VK_IDOT", kinds[k].idot},
                                     {"FP4RT_VK_EXACT", kinds[k].exact}};
            for (int e = 0; e < 3; e++)
                if (env[e][1])
                    setenv(env[e][0], env[e][1], 1);
                else
                    unsetenv(env[e][0]);
            printf("  %-22s ", kinds[k].name);
            fflush(stdout);
            bad |= bench_one(dev, shapes[i].fmt, shapes[i].N / div, shapes[i].K / div, T, &ms[k]);
        }
        for (int e = 0; e < 3; e++) unsetenv(e == 0 ? "FP4RT_VK_COOPMAT" : e == 1 ? "FP4RT_VK_IDOT" : "FP4RT_VK_EXACT");
        for (size_t k = 0; k < 3; k++)
            if (ms[k] > 0 && ms[3] > 0) printf("  %-22s %.2fx the exact kernel's speed\n", kinds[k].name, ms[3] / ms[k]);
    }
    return bad;
}

int main(int argc, char **argv) {
    int dev = argc > 1 ? atoi(argv[1]) : 0, bad = 0;
    if (fp4rt_vk_device_count() <= dev) {
        printf("skipped: no Vulkan device %d (%s)\n", dev, fp4rt_vk_unavailable_reason());
        return 0;
    }
    if (argc > 2 && !strcmp(argv[2], "prefill")) return bench_prefill(dev, argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 1);
    static const struct { fp4rt_wfmt fmt; int N, K; } shapes[] = {
        {FP4RT_W_NVFP4, 3584, 1024}, {FP4RT_W_NVFP4, 1024, 3584}, {FP4RT_W_FP8, 1024, 1024},
        {FP4RT_W_BF16, 1024, 1024}};
    static const int Ts[] = {1, 64};
    for (size_t t = 0; t < (argc > 2 && !strcmp(argv[2], "decode") ? 1u : 2u); t++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            bad |= bench_one(dev, shapes[i].fmt, shapes[i].N, shapes[i].K, Ts[t], NULL);
    return bad;
}
