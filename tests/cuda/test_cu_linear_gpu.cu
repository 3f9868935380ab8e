/* The CUDA linear kernels on a GPU against the CPU backend's math; skipped (exit
 * 77, with a message) where there is no CUDA device.
 *
 *   test_cu_linear_gpu          parity: NVFP4 -> F16 dequant bit-identical to
 *                               numfmt.c for every code under every scale; every
 *                               weight format on both paths (matrix-vector with
 *                               1-8 rows, tensor-core GEMM) at shapes with tails,
 *                               aligned and unaligned inputs (workspace path),
 *                               NMSE against a float64 reference of the CPU math
 *                               (1e-7 for FP32-operand paths, 5e-4 where F16/BF16
 *                               operands feed the tensor cores, 1e-10 for FP8
 *                               operands, which are exact), NaN-poisoned outputs
 *                               and guard columns, run-to-run bit-identity, and
 *                               on the matrix-vector path each row of a 2-8 row
 *                               call bit-identical to a 1-row call of it (what
 *                               a verify step's rows rely on, decode_rows).
 *   test_cu_linear_gpu bench    decode (1 row) and prefill (4096 rows) timings on
 *                               the qwen3.6-27b shapes: GB/s and % of the
 *                               measured device-to-device copy bandwidth,
 *                               TFLOPS and % of cuBLAS BF16 on the same shape.
 *
 * It links cu_linear.cu alone: the backend core's few functions it references
 * are defined here. */
#include "cuda/cu_linear.h"

#include <cuda_runtime.h>
#ifdef FP4RT_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

extern "C" {
#include "runtime/base/numfmt.h"
}
#include "tests/test_util.h"

#include <algorithm>
#include <functional>
#include <stdarg.h>
#include <stdint.h>
#include <vector>

/* ---- the backend core's functions that cu_linear.cu references ------------------ */
static char g_err[512];
fp4rt_status fp4rt_cu_fail(fp4rt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}
fp4rt_status fp4rt_cu_check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? FP4RT_OK
                            : fp4rt_cu_fail(FP4RT_INTERNAL, "%s: %s", what, cudaGetErrorString(e));
}
const void *fp4rt_cu_weight(const fp4rt_cu_ctx *, const void *) {
    return NULL;
}
void *fp4rt_cu_workspace(const fp4rt_cu_step *, size_t) {
    return NULL;
}
fp4rt_status fp4rt_cu_op_linear_w4a4(const fp4rt_cu_step *, const fp4rt_op *) {
    return FP4RT_UNSUPPORTED;
}

#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(void) {
    return ((float)(rnd32() & 0xffffff) / 16777216.0f) * 2.0f - 1.0f;
}

template <typename T> static T *dalloc(size_t n) {
    T *p = NULL;
    CU(cudaMalloc((void **)&p, n * sizeof(T) + 64));
    return p;
}

/* ---- dequant ------------------------------------------------------------------------ */
static void test_dequant(void) {
    size_t n = 16 * 16 * 256; /* every byte under every scale code */
    std::vector<uint8_t> packed(n / 2), scales(n / 16);
    for (size_t i = 0; i < n / 2; i++)
        packed[i] = (uint8_t)(i & 0xff);
    for (size_t b = 0; b < n / 16; b++)
        scales[b] = (uint8_t)((b % 256 & 0x7f) == 0x7f ? (b % 256) - 1 : b % 256);
    uint8_t *dp = dalloc<uint8_t>(n / 2), *ds = dalloc<uint8_t>(n / 16);
    uint16_t *dout = dalloc<uint16_t>(n);
    CU(cudaMemcpy(dp, packed.data(), n / 2, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(ds, scales.data(), n / 16, cudaMemcpyHostToDevice));
    CU(cudaMemset(dout, 0xff, n * 2));
    fp4rt_status st = fp4rt_cu_dequant_nvfp4(0, dp, ds, n, dout);
    CHECK_MSG(st == FP4RT_OK, "dequant: %s", g_err);
    std::vector<uint16_t> out(n);
    CU(cudaMemcpy(out.data(), dout, n * 2, cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t code = (packed[i / 2] >> (4 * (i & 1))) & 15;
        uint16_t want =
            fp4rt_f32_to_f16(fp4rt_e2m1_to_f32(code) * fp4rt_e4m3_to_f32(scales[i / 16]));
        if (out[i] != want && bad++ < 5)
            fprintf(stderr, "dequant %zu: code %u scale 0x%02x: got 0x%04x want 0x%04x\n", i, code,
                    scales[i / 16], out[i], want);
    }
    CHECK_MSG(bad == 0, "%zu of %zu dequantized values differ from the CPU", bad, n);
    CHECK(fp4rt_cu_dequant_nvfp4(0, dp, ds, 24, dout) == FP4RT_INVALID_ARGUMENT);
    cudaFree(dp), cudaFree(ds), cudaFree(dout);
}

/* ---- linear parity ---------------------------------------------------------------------- */
struct layer {
    int fmt, N, K;
    std::vector<uint8_t> w, sb;
    std::vector<double> wd; /* decoded [N][K] */
    float input_scale, weight_scale;
};

static layer make_layer(int fmt, int N, int K) {
    layer l;
    l.fmt = fmt, l.N = N, l.K = K;
    l.input_scale = fmt == FP4RT_W_FP8 ? 0.02f : 0.f;
    l.weight_scale = fmt == FP4RT_W_FP8 ? 0.004f : fmt == FP4RT_W_NVFP4 ? 0.003f : 1.f;
    size_t rb = fp4rt_cu_linear_row_bytes(fmt, K);
    l.w.assign(rb * N, 0);
    l.wd.resize((size_t)N * K);
    if (fmt == FP4RT_W_NVFP4) l.sb.resize((size_t)N * K / 16);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            uint8_t *r = l.w.data() + (size_t)n * rb;
            double v;
            if (fmt == FP4RT_W_BF16 || fmt == FP4RT_W_F16) {
                uint16_t h =
                    fmt == FP4RT_W_BF16 ? fp4rt_f32_to_bf16(rndf()) : fp4rt_f32_to_f16(rndf());
                memcpy(r + 2 * k, &h, 2);
                v = fmt == FP4RT_W_BF16 ? fp4rt_bf16_to_f32(h) : fp4rt_f16_to_f32(h);
            } else if (fmt == FP4RT_W_F32) {
                float f = rndf();
                memcpy(r + 4 * k, &f, 4);
                v = f;
            } else if (fmt == FP4RT_W_FP8) {
                r[k] = fp4rt_f32_to_e4m3_sat(rndf() * 448.f);
                v = fp4rt_e4m3_to_f32(r[k]);
            } else {
                if (k % 16 == 0) l.sb[((size_t)n * K + k) / 16] = (uint8_t)(rnd32() % 0x7e);
                uint8_t c = (uint8_t)(rnd32() & 15);
                r[k / 2] |= (uint8_t)(c << (4 * (k & 1)));
                v = (double)fp4rt_e2m1_to_f32(c) *
                    fp4rt_e4m3_to_f32(l.sb[((size_t)n * K + k) / 16]);
            }
            l.wd[(size_t)n * K + k] = v;
        }
    return l;
}

/* One call: rows of x at column offset xoff (floats) in rows of xs floats. */
static void linear_case(const layer &l, int rows, int path, int xoff, int sm) {
    const int N = l.N, K = l.K, guard = 3;
    size_t xs = (size_t)K + 8 + xoff, ys = (size_t)N + guard;
    std::vector<float> x(xs * rows);
    for (auto &v : x)
        v = rndf() * 2;
    /* reference: the CPU's math in float64 (x quantized as cpu_linear.c does) */
    std::vector<double> ref((size_t)rows * N);
    for (int t = 0; t < rows; t++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float xv = x[t * xs + xoff + k];
                if (l.fmt == FP4RT_W_FP8) xv = fp4rt_round_e4m3(xv / l.input_scale);
                s += l.wd[(size_t)n * K + k] * xv;
            }
            double post = l.fmt == FP4RT_W_FP8     ? (double)(l.input_scale * l.weight_scale)
                          : l.fmt == FP4RT_W_NVFP4 ? l.weight_scale
                                                   : 1.0;
            ref[(size_t)t * N + n] = s * post;
        }
    uint8_t *dw = dalloc<uint8_t>(l.w.size()),
            *dsb = l.sb.empty() ? NULL : dalloc<uint8_t>(l.sb.size());
    float *dx = dalloc<float>(x.size()), *dy = dalloc<float>(ys * rows);
    size_t ws_bytes = std::max(fp4rt_cu_linear_ws_bytes(l.fmt, rows, K, 0, 0),
                               fp4rt_cu_linear_ws_bytes(l.fmt, rows, K, 1, 0));
    float *dws = dalloc<float>(ws_bytes / 4);
    CU(cudaMemcpy(dw, l.w.data(), l.w.size(), cudaMemcpyHostToDevice));
    if (dsb) CU(cudaMemcpy(dsb, l.sb.data(), l.sb.size(), cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    fp4rt_cu_linear_call c = {};
    c.fmt = l.fmt, c.w = dw, c.sb = dsb, c.x = dx + xoff, c.xs = xs, c.y = dy, c.ys = ys;
    c.rows = rows, c.N = N, c.K = K, c.input_scale = l.input_scale, c.weight_scale = l.weight_scale;
    c.ws = dws, c.ws_bytes = ws_bytes, c.sm = sm, c.path = path, c.what = "test";
    std::vector<float> y[2];
    for (int run = 0; run < 2; run++) {
        CU(cudaMemset(dy, 0xff, ys * rows * 4)); /* NaN poison, guards included */
        fp4rt_status st = fp4rt_cu_linear_launch(&c, 0);
        CHECK_MSG(st == FP4RT_OK, "launch: %s", g_err);
        CU(cudaDeviceSynchronize());
        y[run].resize(ys * rows);
        CU(cudaMemcpy(y[run].data(), dy, ys * rows * 4, cudaMemcpyDeviceToHost));
    }
    int gemm = path == 2 || (path == 0 && rows >= 9);
    /* FP32 operands (and FP8 operands, exact in F16): only the summation order
     * differs; F16/BF16-rounded activations on the tensor cores: 5e-4 */
    double lim = gemm && l.fmt != FP4RT_W_FP8 ? 5e-4 : 1e-10;
    double num = 0, den = 0;
    int nan = 0, guard_bad = 0;
    for (int t = 0; t < rows; t++) {
        for (int n = 0; n < N; n++) {
            float v = y[0][t * ys + n];
            if (isnan(v) || isinf(v)) nan++;
            double d = v - ref[(size_t)t * N + n];
            num += d * d, den += ref[(size_t)t * N + n] * ref[(size_t)t * N + n];
        }
        for (int g = 0; g < guard; g++) {
            uint32_t u;
            memcpy(&u, &y[0][t * ys + N + g], 4);
            if (u != 0xffffffffu) guard_bad++;
        }
    }
    double nmse = den > 0 ? num / den : num;
    CHECK_MSG(nan == 0 && guard_bad == 0 && nmse <= lim,
              "fmt %d N %d K %d rows %d path %d xoff %d: NMSE %.3g (limit %.0e), %d NaN/unwritten, "
              "%d guards hit",
              l.fmt, N, K, rows, path, xoff, nmse, lim, nan, guard_bad);
    CHECK_MSG(!memcmp(y[0].data(), y[1].data(), y[0].size() * 4),
              "fmt %d rows %d path %d: runs differ", l.fmt, rows, path);
    if (!gemm && rows > 1) {
        /* a verify step's rows (fp4rt_step.decode_rows, up to 8 on the matrix-vector
         * kernels) must have the bits of 1-row calls: each row alone */
        int differ = 0;
        for (int t = 0; t < rows; t++) {
            fp4rt_cu_linear_call c1 = c;
            c1.rows = 1;
            c1.x = dx + xoff + (size_t)t * xs;
            CU(cudaMemset(dy, 0xff, ys * 4));
            fp4rt_status st = fp4rt_cu_linear_launch(&c1, 0);
            CHECK_MSG(st == FP4RT_OK, "launch: %s", g_err);
            std::vector<float> y1(N);
            CU(cudaMemcpy(y1.data(), dy, (size_t)N * 4, cudaMemcpyDeviceToHost));
            differ += memcmp(y1.data(), &y[0][t * ys], (size_t)N * 4) != 0;
        }
        CHECK_MSG(!differ, "fmt %d N %d K %d rows %d path %d xoff %d: %d rows differ from 1-row calls", l.fmt, N, K,
                  rows, path, xoff, differ);
    }
    cudaFree(dw), cudaFree(dsb), cudaFree(dx), cudaFree(dy), cudaFree(dws);
}

static void test_linear(int sm) {
    struct shape {
        int N, K;
    } shapes[] = {{37, 64}, {300, 2048}, {65, 1040}, {130, 520}};
    for (int fmt = FP4RT_W_BF16; fmt <= FP4RT_W_NVFP4; fmt++)
        for (auto sh : shapes) {
            if (fmt == FP4RT_W_NVFP4 && sh.K % 16) continue;
            layer l = make_layer(fmt, sh.N, sh.K);
            for (int rows : {1, 2, 3, 4, 5, 8})
                linear_case(l, rows, 1, 0, sm);
            linear_case(l, 1, 1, 1, sm); /* unaligned input: workspace path */
            linear_case(l, 3, 1, 2, sm);
            if (sm >= 80 && fmt != FP4RT_W_F32)
                for (int rows : {1, 9, 70, 130})
                    linear_case(l, rows, 2, 0, sm);
            linear_case(l, 33, 0, 1, sm);
        }
}

/* ---- bench ------------------------------------------------------------------------------ */
static float time_ms(cudaStream_t st, int reps, const std::function<void(int)> &fn) {
    cudaEvent_t a, b;
    CU(cudaEventCreate(&a));
    CU(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++)
        fn(i);
    std::vector<float> t;
    for (int r = 0; r < reps; r++) {
        CU(cudaEventRecord(a, st));
        fn(r);
        CU(cudaEventRecord(b, st));
        CU(cudaEventSynchronize(b));
        float ms;
        CU(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    cudaEventDestroy(a), cudaEventDestroy(b);
    return t[t.size() / 2];
}

__global__ void fill_bytes(uint8_t *p, size_t n, uint32_t seed, int fmt) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
        uint8_t b = (uint8_t)h;
        if (fmt == FP4RT_W_FP8 && (b & 0x7f) == 0x7f) b = 0x7e;    /* no NaN */
        if (fmt == FP4RT_W_BF16 && (i & 1)) b = 0x3c | (b & 0x80); /* BF16 high byte: |v| ~ 2^-7 */
        if (fmt == -1) b = (uint8_t)(h % 0x7e);                    /* E4M3 block scales */
        p[i] = b;
    }
}

static int bench(int sm) {
    cudaStream_t st;
    CU(cudaStreamCreate(&st));
    /* copy bandwidth: read + write of 1 GiB */
    size_t cb = (size_t)1 << 30;
    uint8_t *ca = dalloc<uint8_t>(cb), *cb2 = dalloc<uint8_t>(cb);
    CU(cudaMemset(ca, 1, cb));
    float cms = time_ms(
        st, 20, [&](int) { CU(cudaMemcpyAsync(cb2, ca, cb, cudaMemcpyDeviceToDevice, st)); });
    double copy_gbs = 2.0 * cb / cms / 1e6;
    cudaFree(ca), cudaFree(cb2);
    printf("device-to-device copy: %.0f GB/s (read + write)\n", copy_gbs);

#ifdef FP4RT_HAVE_CUBLAS
    cublasHandle_t cub;
    int have_cublas = cublasCreate(&cub) == CUBLAS_STATUS_SUCCESS;
    if (have_cublas) cublasSetStream(cub, st);
#else
    int have_cublas = 0;
#endif
    struct sh {
        const char *name;
        int fmt, N, K;
    } shapes[] = {
        {"mlp gate/up NVFP4", FP4RT_W_NVFP4, 17408, 5120},
        {"mlp down NVFP4", FP4RT_W_NVFP4, 5120, 17408},
        {"gdn qkv FP8", FP4RT_W_FP8, 10240, 5120},
        {"gdn qkv BF16", FP4RT_W_BF16, 10240, 5120},
        {"lm_head BF16", FP4RT_W_BF16, 248320, 5120},
    };
    printf("%-20s %6s %6s %5s | %9s %8s %7s | %9s %8s %9s\n", "layer", "N", "K", "fmt", "decode us",
           "GB/s", "%copy", "pf4096 ms", "TFLOPS", "%cublas");
    for (auto s : shapes) {
        size_t rb = fp4rt_cu_linear_row_bytes(s.fmt, s.K), wbytes = rb * s.N,
               sbytes = s.fmt == FP4RT_W_NVFP4 ? (size_t)s.N * s.K / 16 : 0;
        int copies =
            (wbytes + sbytes) * 4 > ((size_t)6 << 30) ? 1 : 4; /* rotate to stay out of L2 */
        std::vector<uint8_t *> w(copies), sb(copies);
        for (int i = 0; i < copies; i++) {
            w[i] = dalloc<uint8_t>(wbytes);
            fill_bytes<<<1024, 256, 0, st>>>(w[i], wbytes, 7 + i, s.fmt);
            sb[i] = sbytes ? dalloc<uint8_t>(sbytes) : NULL;
            if (sbytes) fill_bytes<<<1024, 256, 0, st>>>(sb[i], sbytes, 99 + i, -1);
        }
        const int M = 4096;
        size_t wsb = std::max(fp4rt_cu_linear_ws_bytes(s.fmt, M, s.K, 0, 0),
                              fp4rt_cu_linear_ws_bytes(s.fmt, M, s.K, 1, 0));
        float *x = dalloc<float>((size_t)M * s.K), *y = dalloc<float>((size_t)M * s.N),
              *ws = dalloc<float>(wsb / 4 + 4);
        fill_bytes<<<1024, 256, 0, st>>>((uint8_t *)x, (size_t)M * s.K * 4, 5,
                                         FP4RT_W_BF16); /* finite floats */
        fp4rt_cu_linear_call c = {};
        c.fmt = s.fmt, c.xs = s.K, c.x = x, c.y = y, c.ys = s.N, c.N = s.N, c.K = s.K,
        c.input_scale = 0.02f, c.weight_scale = 0.01f, c.ws = ws, c.ws_bytes = wsb, c.sm = sm,
        c.what = s.name;
        fp4rt_status err = FP4RT_OK;
        c.rows = 1;
        float dms = time_ms(st, 50, [&](int i) {
            c.w = w[i % copies], c.sb = sb[i % copies];
            if (fp4rt_cu_linear_launch(&c, st)) err = FP4RT_INTERNAL;
        });
        c.rows = M;
        float pms = time_ms(st, 5, [&](int i) {
            c.w = w[i % copies], c.sb = sb[i % copies];
            if (fp4rt_cu_linear_launch(&c, st)) err = FP4RT_INTERNAL;
        });
        float bms = 0;
#ifdef FP4RT_HAVE_CUBLAS
        if (have_cublas) { /* BF16 x BF16 -> F32, same shape (the card's dense BF16 rate here) */
            uint16_t *a = dalloc<uint16_t>((size_t)M * s.K),
                     *b = dalloc<uint16_t>((size_t)s.N * s.K);
            fill_bytes<<<1024, 256, 0, st>>>((uint8_t *)a, (size_t)M * s.K * 2, 3, FP4RT_W_BF16);
            fill_bytes<<<1024, 256, 0, st>>>((uint8_t *)b, (size_t)s.N * s.K * 2, 4, FP4RT_W_BF16);
            float one = 1, zero = 0;
            bms = time_ms(st, 5, [&](int) {
                cublasGemmEx(cub, CUBLAS_OP_T, CUBLAS_OP_N, s.N, M, s.K, &one, b, CUDA_R_16BF, s.K,
                             a, CUDA_R_16BF, s.K, &zero, y, CUDA_R_32F, s.N, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT);
            });
            cudaFree(a), cudaFree(b);
        }
#endif
        if (err) fprintf(stderr, "%s: %s\n", s.name, g_err);
        CU(cudaGetLastError());
        double gbs = (wbytes + sbytes) / (dms * 1e6),
               tf = 2.0 * M * s.N * (double)s.K / (pms * 1e9);
        printf("%-20s %6d %6d %5s | %9.1f %8.0f %6.1f%% | %9.2f %8.1f %8.1f%%\n", s.name, s.N, s.K,
               s.fmt == FP4RT_W_NVFP4 ? "nvfp4"
               : s.fmt == FP4RT_W_FP8 ? "fp8"
                                      : "bf16",
               dms * 1e3, gbs, 100 * gbs / copy_gbs, pms, tf, bms > 0 ? 100.0 * bms / pms : 0.0);
        for (int i = 0; i < copies; i++)
            cudaFree(w[i]), cudaFree(sb[i]);
        cudaFree(x), cudaFree(y), cudaFree(ws);
    }
#ifdef FP4RT_HAVE_CUBLAS
    if (have_cublas) cublasDestroy(cub);
#endif
    return 0;
}

int main(int argc, char **argv) {
    fp4rt_numfmt_init();
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("test_cu_linear_gpu: skipped: no usable CUDA device or driver (%s)\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, 0));
    int sm = prop.major * 10 + prop.minor;
    printf("device: %s (sm_%d, %d SMs)\n", prop.name, sm, prop.multiProcessorCount);
    if (argc > 1 && !strcmp(argv[1], "bench")) return bench(sm);
    test_dequant();
    test_linear(sm);
    return test_summary("test_cu_linear_gpu");
}
