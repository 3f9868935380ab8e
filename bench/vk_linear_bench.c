/* Op-level timing of the Vulkan LINEAR kernels (issue 4): one program of one
 * LINEAR op per shape, run on Vulkan device 0 (default; argv[1] picks another)
 * after a warm-up, wall time per step (record + submit + wait) averaged over
 * enough repetitions to take ~0.5 s (3 at least). Prints ms per step (wall and
 * process CPU time), weight GB/s and GFLOP/s. argv[2] = "decode" runs T = 1 only. Shapes are those of the qwen3.5-0.8b synth (hidden 1024, MLP 3584)
 * in its nvidia-mixed formats, T = 1 (decode) and 64 (a prefill chunk).
 * Random weights; the output is not checked here (tests/test_backend_ops.c). */
#include "fp4rt.h"

#include "../runtime/backend.h"
#include "../runtime/model.h"
#include "../runtime/vk.h"

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

static int bench_one(int dev, fp4rt_wfmt fmt, int N, int K, int T) {
    size_t nk = (size_t)N * K, wbytes = fmt == FP4RT_W_F32 ? nk * 4 : fmt <= FP4RT_W_F16 ? nk * 2
                                                    : fmt == FP4RT_W_FP8 ? nk : nk / 2;
    uint8_t *w = malloc(wbytes), *s = malloc(nk / 16 + 1);
    for (size_t i = 0; i < wbytes; i++) w[i] = rnd8() & (fmt == FP4RT_W_FP8 ? 0x77 : fmt <= FP4RT_W_F32 ? 0x3b : 0xff);
    for (size_t i = 0; i < nk / 16 + 1; i++) s[i] = 0x30;
    fp4rt_linear lin = {.module = "bench", .fmt = fmt, .n_out = N, .n_in = K, .weight = w,
                        .block_scale = fmt >= FP4RT_W_NVFP4 ? s : NULL, .weight_scale = 1.0f, .input_scale = 0.01f,
                        .bytes = wbytes};
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

int main(int argc, char **argv) {
    int dev = argc > 1 ? atoi(argv[1]) : 0, bad = 0;
    if (fp4rt_vk_device_count() <= dev) {
        printf("skipped: no Vulkan device %d (%s)\n", dev, fp4rt_vk_unavailable_reason());
        return 0;
    }
    static const struct { fp4rt_wfmt fmt; int N, K; } shapes[] = {
        {FP4RT_W_NVFP4, 3584, 1024}, {FP4RT_W_NVFP4, 1024, 3584}, {FP4RT_W_FP8, 1024, 1024},
        {FP4RT_W_BF16, 1024, 1024}};
    static const int Ts[] = {1, 64};
    for (size_t t = 0; t < (argc > 2 && !strcmp(argv[2], "decode") ? 1u : 2u); t++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            bad |= bench_one(dev, shapes[i].fmt, shapes[i].N, shapes[i].K, Ts[t]);
    return bad;
}
