/* Unit tests of CPU kernels that the model-level tests exercise only
 * indirectly: the two GDN forms on random inputs (lengths around the chunk
 * size, several chunk sizes, a carried state), activation quantization for
 * W8A8 / W4A4 at known values, the thread pool's coverage of a range, and the
 * AVX2 SwiGLU row against the scalar one bit for bit. */
#include "tests/test_util.h"

#include "runtime/backend/cpu/cpu_ops.h"
#include "runtime/base/numfmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static uint64_t g_rng = 12345;
static float frand(void) { /* uniform [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static void l2norm_rows(float *x, int T, int d, size_t stride, float scale) {
    for (int t = 0; t < T; t++) {
        float ss = 0, *r = x + t * stride;
        for (int i = 0; i < d; i++) ss += r[i] * r[i];
        for (int i = 0; i < d; i++) r[i] = r[i] / sqrtf(ss + 1e-6f) * scale;
    }
}

static void test_gdn_forms(void) {
    const int dk = 32, dv = 24;
    const int gc = FP4RT_GDN_CHUNK; /* the contract's chunk, and lengths around it */
    const int lengths[] = {1, 2, 15, gc - 1, gc, gc + 1, 2 * gc + 2, 200};
    const int chunks[] = {gc, 16, 1};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int T = lengths[li];
        float *q = malloc(sizeof(float) * T * dk), *k = malloc(sizeof(float) * T * dk);
        float *v = malloc(sizeof(float) * T * dv), *beta = malloc(sizeof(float) * T), *g = malloc(sizeof(float) * T);
        for (int i = 0; i < T * dk; i++) q[i] = frand(), k[i] = frand();
        for (int i = 0; i < T * dv; i++) v[i] = frand();
        for (int t = 0; t < T; t++) {
            beta[t] = fp4rt_sigmoid(2 * frand());
            g[t] = -0.5f * fp4rt_softplus(3 * frand()); /* decays from ~1 to ~0.2 */
        }
        l2norm_rows(q, T, dk, dk, 1.0f / sqrtf((float)dk));
        l2norm_rows(k, T, dk, dk, 1.0f);
        float *S0 = malloc(sizeof(float) * dk * dv);
        for (int i = 0; i < dk * dv; i++) S0[i] = 0.1f * frand(); /* a carried state */
        float *Sr = malloc(sizeof(float) * dk * dv), *or_ = malloc(sizeof(float) * T * dv);
        memcpy(Sr, S0, sizeof(float) * dk * dv);
        fp4rt_gdn_recurrent(T, dk, dv, q, k, dk, v, dv, beta, g, 1, Sr, or_, dv);
        for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
            int C = chunks[ci];
            float *Sc = malloc(sizeof(float) * dk * dv), *oc = malloc(sizeof(float) * T * dv);
            float *ws = malloc(sizeof(float) * fp4rt_gdn_chunk_ws_floats(C, dk, dv));
            memcpy(Sc, S0, sizeof(float) * dk * dv);
            fp4rt_gdn_chunked(T, C, dk, dv, q, k, dk, v, dv, beta, g, 1, Sc, oc, dv, ws);
            double eo = test_nmse(oc, or_, (size_t)T * dv), es = test_nmse(Sc, Sr, (size_t)dk * dv);
            CHECK_MSG(eo < 1e-10 && es < 1e-10, "T=%d chunk=%d: output NMSE %.3g, state NMSE %.3g", T, C, eo, es);
            free(Sc);
            free(oc);
            free(ws);
        }
        free(q), free(k), free(v), free(beta), free(g), free(S0), free(Sr), free(or_);
    }
}

static void test_act_quant(void) {
    /* W8A8: x / input_scale rounded to E4M3, saturating */
    float x[16] = {1.0f, -0.1f, 100.0f, 0.0f}, out[16];
    fp4rt_fp8_act_quantize(x, 4, 0.5f, out);
    CHECK(out[0] == 2.0f && out[1] == -0.203125f && out[2] == 192.0f && out[3] == 0.0f);
    fp4rt_fp8_act_quantize(x + 2, 1, 0.1f, out); /* 1000 saturates */
    CHECK(out[0] == 448.0f);
    /* W4A4: one block with amax 6 and input_scale 1: sf = e4m3(1) = 1; codes RNE */
    float b[16] = {6, 5, 3.5f, 2.5f, 1.75f, 1.25f, 0.75f, 0.25f, -6, -0.3f, 0, 0, 0, 0, 0, 0.1f};
    float want[16] = {6, 4, 4, 2, 2, 1, 1, 0, -6, -0.5f, 0, 0, 0, 0, 0, 0};
    fp4rt_nvfp4_act_quantize(b, 16, 1.0f, out);
    int same = 1;
    for (int i = 0; i < 16; i++) same &= out[i] == want[i];
    CHECK_MSG(same, "W4A4 codes at ties");
    /* block scale: amax 3, input_scale 0.25 -> sf = e4m3(3 / 6 / 0.25 = 2) = 2; x / (2 * 0.25) */
    float c[16] = {3, 1, 0}, wc[16] = {12, 4, 0};
    fp4rt_nvfp4_act_quantize(c, 16, 0.25f, out);
    same = 1;
    for (int i = 0; i < 16; i++) same &= out[i] == wc[i];
    CHECK_MSG(same, "W4A4 block scale (got %g %g)", out[0], out[1]);
    /* an all-zero block stays zero; a block whose scale underflows E4M3 is zero */
    float z[16] = {1e-9f};
    fp4rt_nvfp4_act_quantize(z, 16, 1.0f, out);
    CHECK(out[0] == 0.0f);
}

typedef struct cover {
    int *hits;
} cover;

static void mark(void *arg, long b, long e, int thread) {
    cover *c = arg;
    for (long i = b; i < e; i++) c->hits[i] += 1 + 0 * thread;
}

static void test_pool(void) {
    for (int threads = 1; threads <= 4; threads++) {
        fp4rt_pool *p;
        CHECK(!fp4rt_pool_create(threads, &p));
        for (long n = 1; n < 300; n += 37) {
            int *hits = calloc((size_t)n, sizeof(int));
            cover c = {hits};
            for (int rep = 0; rep < 3; rep++) fp4rt_pool_for(p, n, 4, mark, &c);
            int ok = 1;
            for (long i = 0; i < n; i++) ok &= hits[i] == 3;
            CHECK_MSG(ok, "threads %d n %ld: range not covered exactly once per loop", threads, n);
            free(hits);
        }
        fp4rt_pool_free(p);
    }
}

/* The vectorized one-token kernels must be bit-identical to the portable ones,
 * in each numerics mode; the modes differ (the flag reaches both kernels). */
static void test_simd_row_dot(void) {
    if (!fp4rt_cpu_simd_available()) {
        printf("cpu_ops: no AVX2/F16C/FMA here: SIMD row-dot parity skipped\n");
        return;
    }
    const int N = 8, K = 256;
    uint8_t *w8 = malloc((size_t)N * K), *sb = malloc((size_t)N * K / 16);
    uint16_t *wb = malloc((size_t)N * K * 2);
    float *x = malloc(sizeof(float) * K);
    for (int i = 0; i < K; i++) x[i] = frand() * 4;
    for (int i = 0; i < N * K; i++) {
        uint8_t c;
        do c = (uint8_t)(frand() * 128 + 128); while ((c & 0x7f) == 0x7f); /* no NaN */
        w8[i] = c;
        wb[i] = fp4rt_f32_to_bf16(frand());
    }
    for (int i = 0; i < N * K / 16; i++) sb[i] = (uint8_t)((int)(frand() * 60 + 61)); /* 1..121 */
    fp4rt_linear lin[3] = {
        {.fmt = FP4RT_W_NVFP4, .n_out = N, .n_in = K, .weight = w8, .block_scale = sb},
        {.fmt = FP4RT_W_FP8, .n_out = N, .n_in = K, .weight = w8},
        {.fmt = FP4RT_W_BF16, .n_out = N, .n_in = K, .weight = wb},
    };
    for (int f = 0; f < 3; f++) {
        int same = 1, differ = 0;
        for (int n = 0; n < N; n++) {
            float m[2];
            for (int relaxed = 0; relaxed <= 1; relaxed++) {
                float a = fp4rt_cpu_row_dot(&lin[f], n, x, relaxed), b = -1;
                same &= fp4rt_cpu_row_dot_simd(&lin[f], n, x, relaxed, &b) == 1;
                same &= memcmp(&a, &b, 4) == 0;
                m[relaxed] = a;
            }
            differ += memcmp(&m[0], &m[1], 4) != 0;
        }
        CHECK_MSG(same, "SIMD row-dot differs from the portable kernel for %s", fp4rt_wfmt_name(lin[f].fmt));
        /* x is no E4M3 row here, so FP8's products round too */
        CHECK_MSG(differ > 0, "%s: the relaxed row-dot gives the exact bits on all %d rows", fp4rt_wfmt_name(lin[f].fmt),
                  N);
    }
    free(w8), free(sb), free(wb), free(x);
}

/* The AVX2 SwiGLU row against the scalar fp4rt_silu(x) * z, bit for bit (NaN
 * for NaN): random values over the exp's whole range, the edges of its
 * special cases (-87, EXP_MAX, the k = 128 step), zeros, infinities, NaN,
 * subnormals; 203 values so the scalar tail runs too. */
static void test_simd_swiglu(void) {
    enum { N = 4096 + 203 };
    static float x[N], z[N], y[N];
    const float edge[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 87.0f, -87.0f, 86.99999f, -86.99999f,
                          87.00001f, -87.00001f, 88.7228317f, -88.7228317f, 88.72284f, -88.72284f, 88.5f, -88.5f,
                          1e-40f, -1e-40f, 1e30f, -1e30f, 0.5f, -0.5f, 1.0f, -1.0f};
    int ne = (int)(sizeof edge / sizeof edge[0]);
    for (int i = 0; i < N; i++) {
        x[i] = i < ne ? edge[i] : frand() * (i % 3 == 0 ? 100.0f : i % 3 == 1 ? 10.0f : 1.0f);
        z[i] = i < ne ? 1.5f : frand() * 4.0f;
    }
    if (!fp4rt_cpu_swiglu_row_simd(x, z, y, N)) {
        printf("cpu_ops: no AVX2, the scalar SwiGLU only\n");
        return;
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float want = fp4rt_silu(x[i]) * z[i];
        int ok = isnan(want) ? isnan(y[i]) : memcmp(&want, &y[i], 4) == 0;
        if (!ok && bad++ < 5) printf("  swiglu x=%.9g z=%.9g: %.9g, scalar %.9g\n", x[i], z[i], y[i], want);
    }
    CHECK_MSG(bad == 0, "AVX2 SwiGLU: %d of %d values differ from the scalar", bad, N);
}

int main(void) {
    fp4rt_numfmt_init();
    test_simd_swiglu();
    test_gdn_forms();
    test_act_quant();
    test_pool();
    test_simd_row_dot();
    return test_summary("cpu_ops");
}
