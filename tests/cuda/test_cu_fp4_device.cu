/* The CUDA W4A4 linear (cuda/cu_fp4_mma.cu) on a GPU against the CPU backend's
 * math: activation quantization + decode GEMV (T <= 8) and the block-scaled MMA
 * GEMM (native on sm_120a / sm_121a, emulated elsewhere), static input_scale and
 * the per-row dynamic scale (--fp4-activations), partial tiles in N and T, a K
 * that is not a multiple of 64, weights at an unaligned address, outputs into a
 * strided arena view with poisoned guard columns, and the logits path (last row
 * only; or every row of a verify step with logits_rows, the MTP draft
 * vocabulary: only outputs [0, logits_rows) written, the rest left poisoned). Prints which MMA path ran, and the time of a 27B-MLP-shaped prefill
 * GEMM. Skips (exit 77, "skipped: ...") where there is no CUDA device.
 *
 * The op family is compiled into this test with stand-ins for the four core
 * services it calls (weights, workspace, errors), so it runs before and apart from
 * the backend core. */
#include "cuda/cu_fp4_mma.cu"

extern "C" {
#include "runtime/base/numfmt.h"
/* runtime/backend/cpu/cpu_ops.h (not included: it defines the CPU's struct fp4rt_buffer) */
void fp4rt_nvfp4_act_quantize(const float *x, int k, float input_scale, float *out);
float fp4rt_nvfp4_act_row_scale(const float *x, int k);
}
#include "tests/test_util.h"

#include <stdarg.h>
#include <vector>

/* ---- stand-ins for the backend core (cu_backend.cu) ---- */
static void *g_ws;
static size_t g_ws_bytes;
const void *fp4rt_cu_weight(const fp4rt_cu_ctx *c, const void *host) { return host; } /* already device */
fp4rt_status fp4rt_cu_fail(fp4rt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return st;
}
fp4rt_status fp4rt_cu_check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? FP4RT_OK : fp4rt_cu_fail(FP4RT_DEVICE, "%s: %s", what, cudaGetErrorString(e));
}
void *fp4rt_cu_workspace(const fp4rt_cu_step *s, size_t bytes) { return bytes <= g_ws_bytes ? g_ws : NULL; }

#define CK(x)                                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.0f; }

static float poison(void) {
    uint32_t b = 0x7fa5a5a5u; /* a NaN no kernel writes */
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* One case: N outputs, K inputs, T rows; dynamic: per-row scale; logits: the op
 * writes the last row only into the logits buffer; lrows > 0 (with logits):
 * every row (all_logits), only outputs [0, lrows) (step.logits_rows). */
static void run_case(int N, int K, int T, int dynamic, int logits, int unaligned, int lrows = 0) {
    fp4rt_numfmt_init();
    /* weights */
    std::vector<uint8_t> wc((size_t)N * K / 2), ws((size_t)N * K / 16);
    for (auto &c : wc) c = (uint8_t)rnd();
    for (auto &s : ws) s = (uint8_t)(0x28 + rnd() % 0x20);
    uint8_t *d_wbuf, *d_ws;
    CK(cudaMalloc(&d_wbuf, wc.size() + 16));
    CK(cudaMalloc(&d_ws, ws.size()));
    uint8_t *d_wc = d_wbuf + (unaligned ? 1 : 0);
    CK(cudaMemcpy(d_wc, wc.data(), wc.size(), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_ws, ws.data(), ws.size(), cudaMemcpyHostToDevice));
    fp4rt_linear lin;
    memset(&lin, 0, sizeof lin);
    lin.module = (char *)"test.linear";
    lin.fmt = FP4RT_W_NVFP4_W4A4;
    lin.n_out = N;
    lin.n_in = K;
    lin.weight = d_wc;
    lin.block_scale = d_ws;
    lin.weight_scale = 0.0173f;
    lin.input_scale = dynamic ? 0.0f : 0.0021f;
    lin.act_dynamic = dynamic;
    /* program: x [K] and y [N] in an arena with 3 guard columns around y */
    int width[2] = {K, N}, offset[2] = {0, K + 3};
    int W = K + 3 + N + 3, V = N;
    fp4rt_weights wts;
    memset(&wts, 0, sizeof wts);
    wts.cfg.vocab = V;
    fp4rt_op op;
    memset(&op, 0, sizeof op);
    op.kind = FP4RT_OP_LINEAR;
    op.lin = &lin;
    op.x = fp4rt_view{0, 0, K};
    op.y = logits ? fp4rt_view{FP4RT_BUF_LOGITS, 0, N} : fp4rt_view{1, 0, N};
    op.is_logits = logits;
    fp4rt_program p;
    memset(&p, 0, sizeof p);
    p.weights = &wts;
    p.n_ops = 1;
    p.ops = &op;
    p.n_bufs = 2;
    p.buf_width = width;
    p.buf_offset = offset;
    p.arena_width = W;
    std::vector<float> arena((size_t)T * W, poison()), lg((size_t)T * V, poison());
    for (int t = 0; t < T; t++) {
        float mag = t % 3 == 1 ? 1e-3f : t % 3 == 2 ? 50.0f : 1.0f; /* rows far apart in magnitude */
        for (int k = 0; k < K; k++) arena[(size_t)t * W + k] = mag * rndf(-1.0f, 1.0f);
    }
    float *d_arena, *d_lg;
    CK(cudaMalloc(&d_arena, arena.size() * 4));
    CK(cudaMalloc(&d_lg, lg.size() * 4));
    CK(cudaMemcpy(d_arena, arena.data(), arena.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_lg, lg.data(), lg.size() * 4, cudaMemcpyHostToDevice));
    fp4rt_buffer scratch = {d_arena, arena.size() * 4, "arena"}, lbuf = {d_lg, lg.size() * 4, "logits"};
    fp4rt_session_buffers sb;
    memset(&sb, 0, sizeof sb);
    sb.scratch = &scratch;
    sb.logits = &lbuf;
    sb.chunk = T;
    fp4rt_step step;
    memset(&step, 0, sizeof step);
    step.n_tokens = T;
    step.all_logits = lrows > 0;
    step.logits_rows = lrows;
    int n_out = lrows > 0 ? lrows : N;
    fp4rt_cu_step s;
    memset(&s, 0, sizeof s);
    s.stream = 0;
    s.p = &p;
    s.sb = &sb;
    s.step = &step;
    fp4rt_status st = fp4rt_cu_op_linear_w4a4(&s, &op);
    CHECK_MSG(st == FP4RT_OK, "N=%d K=%d T=%d: op failed", N, K, T);
    CK(cudaDeviceSynchronize());
    std::vector<float> out_arena(arena.size()), out_lg(lg.size());
    CK(cudaMemcpy(out_arena.data(), d_arena, arena.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(out_lg.data(), d_lg, lg.size() * 4, cudaMemcpyDeviceToHost));
    /* the CPU backend's math, in double after its FP32 quantization */
    int t0 = logits && !lrows ? T - 1 : 0;
    double num = 0, den = 0;
    size_t unwritten = 0, clobbered = 0;
    std::vector<float> q((size_t)K);
    for (int t = t0; t < T; t++) {
        const float *x = &arena[(size_t)t * W];
        float sc = dynamic ? fp4rt_nvfp4_act_row_scale(x, K) : lin.input_scale;
        fp4rt_nvfp4_act_quantize(x, K, sc, q.data());
        for (int n = 0; n < n_out; n++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                uint8_t b = wc[((size_t)n * K + k) / 2];
                acc += (double)q[(size_t)k] * fp4rt_e2m1_to_f32(k & 1 ? b >> 4 : b & 15) *
                       fp4rt_e4m3_to_f32(ws[((size_t)n * K + k) / 16]);
            }
            double ref = acc * (double)(sc * lin.weight_scale);
            float got = logits ? out_lg[(size_t)(t - t0) * V + n] : out_arena[(size_t)t * W + K + 3 + n];
            if (got != got) {
                unwritten++;
                continue;
            }
            num += (got - ref) * (got - ref);
            den += ref * ref;
        }
    }
    /* nothing outside the outputs changed */
    for (size_t i = 0; i < arena.size(); i++) {
        size_t c = i % W;
        int is_out = !logits && c >= (size_t)K + 3 && c < (size_t)K + 3 + N;
        if (!is_out && memcmp(&arena[i], &out_arena[i], 4)) clobbered++;
    }
    for (size_t i = 0; logits && i < lg.size(); i++) {
        int is_out = i / V < (size_t)(T - t0) && i % V < (size_t)n_out;
        if (!is_out && memcmp(&lg[i], &out_lg[i], 4)) clobbered++;
    }
    double nmse = den > 0 ? num / den : num;
    printf("  N=%-5d K=%-5d T=%-3d %-7s %-6s %-9s %s  NMSE %.3g\n", N, K, T, dynamic ? "dynamic" : "static",
           lrows ? "draft" : logits ? "logits" : "arena", unaligned ? "unaligned" : "aligned", T - t0 <= FP4_GEMV_ROWS ? "gemv" : "mma ",
           nmse);
    CHECK_MSG(unwritten == 0, "%zu outputs not written", unwritten);
    CHECK_MSG(clobbered == 0, "%zu floats outside the outputs changed", clobbered);
    CHECK_MSG(den > 0 && nmse < 1e-10, "NMSE %g", nmse);
    cudaFree(d_wbuf);
    cudaFree(d_ws);
    cudaFree(d_arena);
    cudaFree(d_lg);
}

/* A prefill GEMM of the 27B MLP up projection (N 17408, K 5120, T 512), timed. */
static void bench(void) {
    int N = 17408, K = 5120, T = 512;
    uint8_t *wc, *ws, *xc, *xs;
    float *post, *y;
    CK(cudaMalloc(&wc, (size_t)N * K / 2));
    CK(cudaMalloc(&ws, (size_t)N * K / 16));
    CK(cudaMalloc(&xc, (size_t)T * K / 2));
    CK(cudaMalloc(&xs, (size_t)T * K / 16));
    CK(cudaMalloc(&post, (size_t)T * 4));
    CK(cudaMalloc(&y, (size_t)T * N * 4));
    CK(cudaMemset(wc, 0x5a, (size_t)N * K / 2));
    CK(cudaMemset(ws, 0x38, (size_t)N * K / 16));
    CK(cudaMemset(xc, 0x3c, (size_t)T * K / 2));
    CK(cudaMemset(xs, 0x38, (size_t)T * K / 16));
    CK(cudaMemset(post, 0, (size_t)T * 4));
    fp4_mat wm = {wc, ws, N, K, 1}, xm = {xc, xs, T, K, 1};
    dim3 grid((unsigned)((N + 63) / 64), (unsigned)((T + 31) / 32));
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    fp4_mma_gemm<<<grid, FP4_THREADS>>>(wm, xm, post, y, (size_t)N);
    CK(cudaDeviceSynchronize());
    cudaEventRecord(a);
    for (int i = 0; i < 5; i++) fp4_mma_gemm<<<grid, FP4_THREADS>>>(wm, xm, post, y, (size_t)N);
    cudaEventRecord(b);
    CK(cudaEventSynchronize(b));
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    ms /= 5;
    printf("  bench fp4_mma_gemm N=%d K=%d T=%d: %.3f ms, %.1f TFLOPS\n", N, K, T, ms,
           2.0 * N * K * T / (ms * 1e-3) / 1e12);
    cudaFree(wc);
    cudaFree(ws);
    cudaFree(xc);
    cudaFree(xs);
    cudaFree(post);
    cudaFree(y);
}

int main(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("skipped: no CUDA device\n");
        return 77; /* ctest: skipped */
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int native = 0;
    CHECK(fp4rt_cu_fp4_native(&native) == FP4RT_OK);
    printf("device: %s (sm_%d%d); W4A4 MMA path: %s\n", prop.name, prop.major, prop.minor,
           native ? "native block-scaled FP4 MMA (OMMA)" : "emulated block-scaled MMA");
    if (prop.major != 12) CHECK(native == 0);
    g_ws_bytes = 64u << 20;
    CK(cudaMalloc(&g_ws, g_ws_bytes));
    run_case(45, 320, 1, 0, 0, 0);
    run_case(45, 320, 5, 1, 0, 1);
    run_case(130, 208, 19, 0, 0, 0);
    run_case(130, 208, 40, 1, 0, 1);
    run_case(64, 256, 33, 1, 0, 0);
    run_case(77, 96, 9, 0, 1, 0);
    run_case(300, 1024, 100, 1, 0, 0);
    run_case(77, 96, 4, 0, 1, 0, 40); /* a verify step's rows, draft vocabulary of 40 of 77 */
    run_case(77, 96, 1, 1, 1, 0, 13);
    if (getenv("FP4RT_BENCH")) bench();
    cudaFree(g_ws);
    return test_summary("test_cu_fp4_device");
}
