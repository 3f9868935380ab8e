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

/* The vector chunked GDN (AVX2, AVX-512) against the portable form bit for bit:
 * outputs and state over lengths that are not multiples of the chunk, the
 * presets' head sizes (32, 128) and odd ones (padding), q / k / v rows inside
 * wider rows (the arena's layout), several chunk sizes, and decays strong
 * enough that exp(gamma_r - gamma_s) underflows to 0 or leaves subnormal
 * products (the kernels' float64 path for those). */
static int gdn_simd_case(int isa, int T, int chunk, int dk, int dv, float gscale, float sscale, float vscale) {
    size_t width = 2 * (size_t)dk + dv + 3; /* q | k | v | slack, as in the arena */
    float *x = malloc(sizeof(float) * T * width), *beta = malloc(sizeof(float) * T), *g = malloc(sizeof(float) * T);
    for (size_t i = 0; i < (size_t)T * width; i++) x[i] = frand() * (i % width >= 2 * (size_t)dk ? vscale : 1.0f);
    for (int t = 0; t < T; t++) {
        beta[t] = fp4rt_sigmoid(2 * frand());
        g[t] = gscale * fp4rt_softplus(3 * frand());
    }
    l2norm_rows(x, T, dk, width, 1.0f / sqrtf((float)dk));
    l2norm_rows(x + dk, T, dk, width, 1.0f);
    float *S[2], *o[2], *ws = malloc(sizeof(float) * fp4rt_gdn_chunk_ws_floats(chunk, dk, dv));
    for (int f = 0; f < 2; f++) {
        S[f] = malloc(sizeof(float) * dk * dv), o[f] = malloc(sizeof(float) * T * dv);
        for (int i = 0; i < dk * dv; i++) S[f][i] = sscale * (float)((i * 7919) % 201 - 100) / 100.0f;
        memset(o[f], 0xff, sizeof(float) * T * dv);
    }
    fp4rt_gdn_chunked(T, chunk, dk, dv, x, x + dk, width, x + 2 * dk, width, beta, g, 1, S[0], o[0], dv, ws);
    fp4rt_gdn_chunked_isa(isa, T, chunk, dk, dv, x, x + dk, width, x + 2 * dk, width, beta, g, 1, S[1], o[1], dv,
                          ws);
    int same = !memcmp(S[0], S[1], sizeof(float) * dk * dv) && !memcmp(o[0], o[1], sizeof(float) * T * dv);
    if (!same) {
        int i = 0;
        while (i < T * dv && !memcmp(&o[0][i], &o[1][i], 4)) i++;
        printf("  gdn %s T=%d chunk=%d dk=%d dv=%d: first output difference at %d (%.9g vs %.9g)\n",
               fp4rt_cpu_isa_name(isa), T, chunk, dk, dv, i, i < T * dv ? o[0][i] : 0, i < T * dv ? o[1][i] : 0);
    }
    for (int f = 0; f < 2; f++) free(S[f]), free(o[f]);
    free(x), free(beta), free(g), free(ws);
    return same;
}

static void test_gdn_simd(void) {
    const int shapes[][2] = {{128, 128}, {32, 32}, {32, 24}, {20, 40}, {7, 5}};
    const int lengths[] = {2, 5, 63, 64, 65, 131};
    int ran = 0;
    for (int isa = FP4RT_CPU_ISA_AVX2; isa <= fp4rt_cpu_isa_supported(); isa++, ran++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                int dk = shapes[si][0], dv = shapes[si][1], T = lengths[li];
                if (dk == 128 && T < 63) continue; /* the big head on the long cases only */
                CHECK_MSG(gdn_simd_case(isa, T, FP4RT_GDN_CHUNK, dk, dv, -0.5f, 0.1f, 1.0f), "chunked GDN on %s differs",
                          fp4rt_cpu_isa_name(isa));
                if (T == 131) {
                    CHECK(gdn_simd_case(isa, T, 16, dk, dv, -0.5f, 0.1f, 1.0f));
                    CHECK(gdn_simd_case(isa, T, 5, dk, dv, -0.5f, 0.1f, 1.0f));
                    CHECK(gdn_simd_case(isa, T, FP4RT_GDN_CHUNK, dk, dv, -8.0f, 0.1f, 1.0f)); /* decays underflow */
                }
                if (T >= 64) { /* exp(gamma) near 1e-37 mid-chunk: subnormal q exp(gamma) and k
                                exp(gamma_last - gamma_s), times a state large enough (1e20), and v = 0,
                                so that those products show in o and S (the float64 path) */
                    CHECK(gdn_simd_case(isa, T, FP4RT_GDN_CHUNK, dk, dv, -3.0f, 1e20f, 0.0f));
                    CHECK(gdn_simd_case(isa, T, FP4RT_GDN_CHUNK, dk, dv, -2.5f, 1e20f, 0.0f));
                }
            }
    if (!ran) printf("cpu_ops: no AVX2 here: vector chunked GDN parity skipped\n");
}

/* The vector recurrent (decode) GDN against the portable form bit for bit:
 * state and outputs after T tokens, q / k / v rows inside wider rows, the
 * presets' heads (128 x 128, 32 x 32) and others (dv of 16 but not 64: the
 * AVX2 kernel on an AVX-512 CPU; dv of neither: declined), a carried state,
 * and decays strong enough to leave subnormal states. */
static int gdn_rec_case(int isa, int T, int dk, int dv, float gscale, float sscale, float vscale, int *done) {
    size_t width = 2 * (size_t)dk + dv + 3;
    float *x = malloc(sizeof(float) * T * width), *beta = malloc(sizeof(float) * T), *g = malloc(sizeof(float) * T);
    for (size_t i = 0; i < (size_t)T * width; i++) x[i] = frand() * (i % width >= 2 * (size_t)dk ? vscale : 1.0f);
    for (int t = 0; t < T; t++) {
        beta[t] = fp4rt_sigmoid(2 * frand());
        g[t] = gscale * fp4rt_softplus(3 * frand());
    }
    l2norm_rows(x, T, dk, width, 1.0f / sqrtf((float)dk));
    l2norm_rows(x + dk, T, dk, width, 1.0f);
    float *S[2], *o[2];
    size_t os = (size_t)dv + 5;
    for (int f = 0; f < 2; f++) {
        S[f] = malloc(sizeof(float) * dk * dv), o[f] = malloc(sizeof(float) * T * os);
        for (int i = 0; i < dk * dv; i++) S[f][i] = sscale * (float)((i * 7919) % 201 - 100) / 100.0f;
        memset(o[f], 0xff, sizeof(float) * T * os);
    }
    fp4rt_gdn_recurrent(T, dk, dv, x, x + dk, width, x + 2 * dk, width, beta, g, 1, S[0], o[0], os);
    *done = fp4rt_gdn_recurrent_simd(isa, T, dk, dv, x, x + dk, width, x + 2 * dk, width, beta, g, 1, S[1], o[1], os);
    int same = !memcmp(S[0], S[1], sizeof(float) * dk * dv) && !memcmp(o[0], o[1], sizeof(float) * T * os);
    for (int f = 0; f < 2; f++) free(S[f]), free(o[f]);
    free(x), free(beta), free(g);
    return same;
}

static void test_gdn_recurrent_simd(void) {
    const int shapes[][2] = {{128, 128}, {32, 32}, {20, 64}, {7, 48}, {32, 24}};
    const int lengths[] = {1, 2, 9};
    int ran = 0;
    for (int isa = FP4RT_CPU_ISA_AVX2; isa <= fp4rt_cpu_isa_supported(); isa++, ran++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                int dk = shapes[si][0], dv = shapes[si][1], T = lengths[li], done;
                int same = gdn_rec_case(isa, T, dk, dv, -0.5f, 0.1f, 1.0f, &done);
                CHECK_MSG(done == (dv % 16 == 0), "recurrent GDN on %s dk=%d dv=%d: vector kernel %s",
                          fp4rt_cpu_isa_name(isa), dk, dv, done ? "ran" : "declined");
                if (!done) continue;
                CHECK_MSG(same, "recurrent GDN on %s T=%d dk=%d dv=%d differs", fp4rt_cpu_isa_name(isa), T, dk, dv);
                /* strong decays (subnormal and zero states), a large state with v = 0 */
                CHECK(gdn_rec_case(isa, T, dk, dv, -40.0f, 1e-30f, 1.0f, &done) && done);
                CHECK(gdn_rec_case(isa, T, dk, dv, -3.0f, 1e20f, 0.0f, &done) && done);
            }
    if (!ran) printf("cpu_ops: no AVX2 here: vector recurrent GDN parity skipped\n");
}

/* The vector conv1d + SiLU against the portable one bit for bit (NaN for NaN):
 * in place (y = x, as the model runs it), channel counts that leave a
 * scalar tail, kernel sizes 2 to 4, the SiLU's
 * special inputs among the values. */
static void test_conv_simd(void) {
    const int C = 16 * 6 + 5, Ts[] = {1, 3, 64};
    const float edge[] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 88.0f, -88.0f, 0.0f, -0.0f};
    int ran = 0;
    for (int isa = FP4RT_CPU_ISA_AVX2; isa <= fp4rt_cpu_isa_supported(); isa++)
        for (int K = 2; K <= 4; K++)
            for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
                int T = Ts[ti];
                size_t xs = C + 7;
                float *x = malloc(sizeof(float) * T * xs), *w = malloc(sizeof(float) * C * K);
                float *st[2], *y[2], *win = malloc(sizeof(float) * (K - 1 + T)), *ws = malloc(sizeof(float) * (2 * K - 1) * C);
                for (size_t i = 0; i < (size_t)T * xs; i++) x[i] = i % 37 == 5 ? edge[i % 9] : 8 * frand();
                for (int i = 0; i < C * K; i++) w[i] = frand();
                for (int f = 0; f < 2; f++) {
                    st[f] = malloc(sizeof(float) * C * (K - 1)), y[f] = malloc(sizeof(float) * T * xs);
                    for (int i = 0; i < C * (K - 1); i++) st[f][i] = (float)(i % 13) - 6.0f;
                }
                /* the vector kernel in place (y = x), as the model runs it, on a copy of x */
                memcpy(y[1], x, sizeof(float) * T * xs);
                long n = fp4rt_conv1d_silu_simd(isa, T, K, y[1], xs, w, st[1], y[1], xs, 3, C, ws);
                fp4rt_conv1d_silu_channels(T, K, y[1], xs, w, st[1], y[1], xs, 0, 3, win, NULL, 0);
                fp4rt_conv1d_silu_channels(T, K, y[1], xs, w, st[1], y[1], xs, 3 + n, C, win, NULL, 0);
                memcpy(y[0], x, sizeof(float) * T * xs); /* the slack columns stay x */
                fp4rt_conv1d_silu_channels(T, K, x, xs, w, st[0], y[0], xs, 0, C, win, NULL, 0);
                int bad = n != 96; /* 98 channels from 3: 12 x 8 or 6 x 16 */
                for (size_t i = 0; i < (size_t)T * xs; i++)
                    bad += isnan(y[0][i]) ? !isnan(y[1][i]) : memcmp(&y[0][i], &y[1][i], 4) != 0;
                bad += memcmp(st[0], st[1], sizeof(float) * C * (K - 1)) != 0;
                CHECK_MSG(bad == 0, "conv1d+SiLU on %s, K=%d T=%d: %d differences (%ld vector channels)",
                          fp4rt_cpu_isa_name(isa), K, T, bad, n);
                for (int f = 0; f < 2; f++) free(st[f]), free(y[f]);
                free(x), free(w), free(win), free(ws);
                ran++;
            }
    if (!ran) printf("cpu_ops: no AVX2 here: vector conv1d parity skipped\n");
}

/* The AVX2 FP8 activation quantizer against the scalar one bit for bit (NaN
 * for NaN): every E4M3 value, its neighbours and the midpoints between
 * values (ties) with their neighbours, both signs, the saturation (448, 464,
 * infinity), float subnormals, NaN, random bit patterns, and a scale. */
static int fp8q_bad;
static void fp8q_check(const float *x, int n, float scale) {
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    fp4rt_fp8_act_quantize(x, n, scale, a);
    if (!fp4rt_fp8_act_quantize_simd(x, n, scale, b)) {
        free(a), free(b);
        return;
    }
    for (int i = 0; i < n; i++) {
        int ok = isnan(a[i]) ? isnan(b[i]) : memcmp(&a[i], &b[i], 4) == 0;
        if (!ok && fp8q_bad++ < 5) printf("  fp8 quantize %.9g / %g: %.9g, scalar %.9g\n", x[i], scale, b[i], a[i]);
    }
    free(a), free(b);
}

static void test_fp8_quant_simd(void) {
    if (!fp4rt_fp8_act_quantize_simd(NULL, 0, 1.0f, NULL)) {
        printf("cpu_ops: no AVX2 here: vector FP8 quantizer parity skipped\n");
        return;
    }
    int cap = 256 * 16 + (1 << 20) + 64, n = 0;
    float *x = malloc(sizeof(float) * cap);
    for (int c = 0; c < 0x7f; c++) { /* the values, the midpoints to the next, and neighbours */
        float v = fp4rt_e4m3_table[c], next = c < 0x7e ? fp4rt_e4m3_table[c + 1] : 480.0f, mid = 0.5f * (v + next);
        float pts[] = {v, nextafterf(v, 0), nextafterf(v, 1e30f), mid, nextafterf(mid, 0), nextafterf(mid, 1e30f)};
        for (int i = 0; i < 6; i++) x[n++] = pts[i], x[n++] = -pts[i];
    }
    const float special[] = {INFINITY, -INFINITY, NAN, -NAN, 0.0f, -0.0f, 1e-45f, -1e-45f, 1e-40f, 1.17549435e-38f,
                             1e30f, -1e30f, 464.0f, 465.0f, 463.99997f, 0x1p-10f, 3 * 0x1p-10f, 0x1p-6f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[n++] = special[i];
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < (1 << 20); i++) { /* random bit patterns */
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        uint32_t u = (uint32_t)(r >> 11);
        memcpy(&x[n++], &u, 4);
    }
    fp8q_check(x, n, 1.0f);
    fp8q_check(x, n - 3, 0.031f); /* a scale, and a length that leaves a scalar tail */
    for (int i = 0; i < 4096; i++) x[i] = 20 * frand();
    fp8q_check(x, 4096, 0.0173f);
    CHECK_MSG(fp8q_bad == 0, "AVX2 FP8 quantizer: %d values differ from the scalar", fp8q_bad);
    free(x);
}

int main(void) {
    fp4rt_numfmt_init();
    test_simd_swiglu();
    test_gdn_forms();
    test_gdn_simd();
    test_gdn_recurrent_simd();
    test_conv_simd();
    test_act_quant();
    test_fp8_quant_simd();
    test_pool();
    test_simd_row_dot();
    return test_summary("cpu_ops");
}
