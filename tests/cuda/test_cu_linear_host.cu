/* Host-side test of the CUDA linear kernels' arithmetic (runs without a GPU).
 *
 * cuda/cu_numfmt.cuh and cuda/cu_linear_math.cuh are __host__ __device__; the
 * kernels in cuda/cu_linear.cu are thin wrappers around them. Here nvcc compiles
 * the same functions for the host and this test checks them against the CPU
 * backend (runtime/base/numfmt.c, the math of runtime/backend/cpu/cpu_linear.c):
 *   - the E2M1 -> F16 bit trick, every code in every nibble position;
 *   - NVFP4 -> F16 dequantization, every byte under every E4M3 scale:
 *     bit-identical to f16(e2m1 * e4m3) from numfmt.c;
 *   - E4M3 decode (all codes) and the saturating RNE encode (strided sweep of
 *     all FP32 bit patterns plus every rounding midpoint), F16 encode;
 *   - the matrix-vector kernel: every warp and lane of a launch emulated
 *     (gemv_lane + the xor-tree reduction), every format, 1-4 token rows,
 *     rows and chunk counts that do not divide evenly, against a float64
 *     reference of the CPU's math;
 *   - the tensor-core GEMM: whole blocks emulated (tile loaders per thread,
 *     fragment loads per lane, an mma.m16n8k16 emulation written from the PTX
 *     ISA's fragment tables independently of the kernel's maps, epilogue), every
 *     format routed to it, M/N/K tails, against a float64 reference with the
 *     operands rounded as the kernel rounds them and against the exact one
 *     (NMSE <= 5e-4); shared-memory fragment loads free of bank conflicts. */
#include "cuda/cu_linear_math.cuh"

extern "C" {
#include "runtime/base/numfmt.h"
}
#include "tests/test_util.h"

#include <stdint.h>
#include <vector>

using namespace culin;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) {
    return ((float)(rnd32() & 0xffffff) / 16777216.0f) * 2.0f - 1.0f;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- number formats ---------------------------------------------------------- */

static void test_e2m1_trick(void) {
    int bad = 0;
    for (int pos = 0; pos < 8; pos++)
        for (int c = 0; c < 16; c++)
            for (int rep = 0; rep < 8; rep++) {
                uint32_t q = rnd32();
                q = (q & ~(0xfu << (4 * pos))) | ((uint32_t)c << (4 * pos));
                int j = pos & 3;
                uint32_t h2 = cunf::e2m1x2_f16_scaled(q, j);
                uint16_t got = (uint16_t)(pos < 4 ? h2 & 0xffff : h2 >> 16);
                uint16_t want = fp4rt_f32_to_f16(fp4rt_e2m1_table[c] * 0x1p-14f);
                int elem = pos < 4 ? cunf::e2m1x2_elem_lo(j) : cunf::e2m1x2_elem_hi(j);
                if (got != want || elem != pos) bad++;
            }
    CHECK_MSG(bad == 0, "%d E2M1 trick mismatches", bad);
}

static void test_dequant(void) {
    int bad = 0;
    for (int sc = 0; sc < 256; sc++) {
        if ((sc & 0x7f) == 0x7f) continue; /* NaN scales are never written */
        for (int b = 0; b < 256; b++) {
            uint32_t got = cunf::nvfp4_dequant_pair((uint32_t)b, (uint32_t)sc);
            uint16_t w0 = fp4rt_f32_to_f16(fp4rt_e2m1_to_f32((uint8_t)(b & 15)) *
                                           fp4rt_e4m3_to_f32((uint8_t)sc));
            uint16_t w1 = fp4rt_f32_to_f16(fp4rt_e2m1_to_f32((uint8_t)(b >> 4)) *
                                           fp4rt_e4m3_to_f32((uint8_t)sc));
            if ((got & 0xffff) != w0 || (got >> 16) != w1) {
                if (bad++ < 5)
                    fprintf(stderr,
                            "dequant byte 0x%02x scale 0x%02x: got 0x%08x want 0x%04x%04x\n", b, sc,
                            got, w1, w0);
            }
        }
    }
    CHECK_MSG(bad == 0, "%d NVFP4 dequant pairs differ from the CPU", bad);
}

static void test_e4m3(void) {
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        float got = cunf::e4m3_to_f32((uint32_t)c), want = fp4rt_e4m3_to_f32((uint8_t)c);
        if (isnan(want) ? !isnan(got) : bits(got) != bits(want)) bad++;
        /* the sm_80 path of e4m3x2_to_half2 */
        if (!isnan(want)) {
            __half2 h = cunf::e4m3x2_to_half2((uint32_t)c | ((uint32_t)c << 8));
            uint32_t hb;
            memcpy(&hb, &h, 4);
            if ((hb & 0xffff) != fp4rt_f32_to_f16(want) || (hb >> 16) != fp4rt_f32_to_f16(want))
                bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d E4M3 decodes differ", bad);

    /* encode: a strided sweep over every FP32 bit pattern, every midpoint between
     * neighbouring E4M3 values and its neighbours, specials */
    long n = 0, bad_enc = 0, bad_f16 = 0;
    auto check = [&](float f) {
        n++;
        if (cunf::f32_to_e4m3_sat(f) != fp4rt_f32_to_e4m3_sat(f) && bad_enc++ < 5)
            fprintf(stderr, "e4m3(%a): got 0x%02x want 0x%02x\n", f, cunf::f32_to_e4m3_sat(f),
                    fp4rt_f32_to_e4m3_sat(f));
        if (cunf::f32_to_f16_bits(f) != fp4rt_f32_to_f16(f) && !isnan(f) && bad_f16++ < 5)
            fprintf(stderr, "f16(%a): got 0x%04x want 0x%04x\n", f, cunf::f32_to_f16_bits(f),
                    fp4rt_f32_to_f16(f));
        if (!isnan(f) && bits(cunf::round_e4m3(f)) != bits(fp4rt_round_e4m3(f))) bad_enc++;
    };
    for (uint64_t u = 0; u < 0x100000000ull; u += 1021) {
        float f;
        uint32_t v = (uint32_t)u;
        memcpy(&f, &v, 4);
        check(f);
    }
    for (int c = 0; c < 0x7e; c++) {
        float lo = fp4rt_e4m3_to_f32((uint8_t)c), hi = fp4rt_e4m3_to_f32((uint8_t)(c + 1));
        float mid = (lo + hi) * 0.5f; /* exact */
        for (float f : {mid, nextafterf(mid, 0.f), nextafterf(mid, 1e9f), lo, hi}) {
            check(f);
            check(-f);
        }
    }
    for (float f : {448.0f, 449.0f, 464.0f, 464.0001f, 480.0f, 1e30f, INFINITY, -INFINITY, NAN,
                    0x1p-10f, 0x1p-11f, 0x1.8p-11f, 1e-45f, -0.0f})
        check(f);
    CHECK_MSG(bad_enc == 0, "%ld of %ld E4M3 encodes differ from numfmt.c", bad_enc, n);
    CHECK_MSG(bad_f16 == 0, "%ld of %ld F16 encodes differ from numfmt.c", bad_f16, n);
}

/* ---- weights: random rows in each format, decoded by the CPU's tables ------------ */

struct wmat {
    int fmt, N, K;
    std::vector<uint8_t> w, sb; /* rows padded to row_bytes */
    size_t row_bytes;
    std::vector<double> ref; /* [N][K] decoded (CPU math) */
};

static size_t row_bytes_of(int fmt, int K) {
    return fmt == CUW_NVFP4 ? (size_t)K / 2
           : fmt == CUW_FP8 ? (size_t)K
           : fmt == CUW_F32 ? (size_t)K * 4
                            : (size_t)K * 2;
}

static wmat make_weights(int fmt, int N, int K) {
    wmat m;
    m.fmt = fmt, m.N = N, m.K = K;
    m.row_bytes = row_bytes_of(fmt, K);
    m.w.resize(m.row_bytes * N + 16);
    m.ref.resize((size_t)N * K);
    if (fmt == CUW_NVFP4) m.sb.resize((size_t)N * K / 16 + 16);
    for (int n = 0; n < N; n++) {
        uint8_t *r = m.w.data() + (size_t)n * m.row_bytes;
        for (int k = 0; k < K; k++) {
            double v = 0;
            switch (fmt) {
            case CUW_BF16: {
                uint16_t h = fp4rt_f32_to_bf16(rndf());
                memcpy(r + 2 * k, &h, 2);
                v = fp4rt_bf16_to_f32(h);
                break;
            }
            case CUW_F16: {
                uint16_t h = fp4rt_f32_to_f16(rndf());
                memcpy(r + 2 * k, &h, 2);
                v = fp4rt_f16_to_f32(h);
                break;
            }
            case CUW_F32: {
                float f = rndf();
                memcpy(r + 4 * k, &f, 4);
                v = f;
                break;
            }
            case CUW_FP8: {
                uint8_t c = (uint8_t)(rnd32() & 0xff);
                if ((c & 0x7f) == 0x7f) c = 0x7e;
                r[k] = c;
                v = fp4rt_e4m3_to_f32(c);
                break;
            }
            default: {
                if (k % 16 == 0) {
                    uint8_t c = (uint8_t)(rnd32() % 0x7e); /* non-negative, non-NaN */
                    m.sb[(size_t)n * K / 16 + k / 16] = c;
                }
                uint8_t code = (uint8_t)(rnd32() & 15);
                if (k & 1)
                    r[k / 2] |= (uint8_t)(code << 4);
                else
                    r[k / 2] = code;
                v = (double)fp4rt_e2m1_to_f32(code) *
                    fp4rt_e4m3_to_f32(m.sb[(size_t)n * K / 16 + k / 16]);
                break;
            }
            }
            m.ref[(size_t)n * K + k] = v;
        }
    }
    return m;
}

static void test_decode1(void) {
    int bad = 0;
    for (int fmt = 0; fmt <= CUW_NVFP4; fmt++) {
        wmat m = make_weights(fmt, 3, 48);
        for (int n = 0; n < m.N; n++)
            for (int k = 0; k < m.K; k++) {
                const uint8_t *sb = fmt == CUW_NVFP4 ? m.sb.data() + (size_t)n * m.K / 16 : nullptr;
                float got = decode1(fmt, m.w.data() + (size_t)n * m.row_bytes, sb, k);
                if ((double)got != m.ref[(size_t)n * m.K + k]) bad++;
            }
    }
    CHECK_MSG(bad == 0, "%d decoded weights differ from the CPU's", bad);
}

/* ---- matrix-vector: a whole launch emulated ---------------------------------------- */

/* Relative error of each output against the float64 reference, scaled by the
 * sum of |products| (the FP32 summation-order bound). */
static double max_rel_err(const std::vector<float> &y, const std::vector<double> &ref,
                          const std::vector<double> &mag) {
    double worst = 0;
    for (size_t i = 0; i < y.size(); i++) {
        double e = fabs((double)y[i] - ref[i]) / (mag[i] > 0 ? mag[i] : 1);
        if (!(e <= worst)) worst = e; /* NaN propagates */
    }
    return worst;
}

template <int FMT, int NT> static void gemv_case(int N, int K) {
    wmat m = make_weights(FMT, N, K);
    const size_t xs = (size_t)K + 4 * (1 + (rnd32() & 3)); /* a padded row stride, multiple of 4 */
    std::vector<float> x(xs * NT + 4), y((size_t)NT * N, NAN);
    for (auto &v : x)
        v = rndf() * 4;
    if (FMT == CUW_FP8) /* the kernel sees quantized activations */
        for (auto &v : x)
            v = cunf::round_e4m3(v / 0.05f);
    gemv_args a = {m.w.data(),  m.sb.data(), x.data(), y.data(), xs,  (size_t)N,
                   m.row_bytes, N,           K,        NT,       0.5f};
    constexpr int RPW = gemv_rpw<NT>();
    int warps = (N + RPW - 1) / RPW;
    for (int wg = 0; wg < warps; wg++) {
        float acc[32][RPW][NT];
        for (int lane = 0; lane < 32; lane++)
            gemv_lane<FMT, NT>(a, wg * RPW, lane, acc[lane]);
        for (int r = 0; r < RPW; r++)
            for (int t = 0; t < NT; t++) {
                float v[32];
                for (int l = 0; l < 32; l++)
                    v[l] = acc[l][r][t];
                for (int o = 16; o > 0; o >>= 1) { /* __shfl_xor_sync tree, every lane */
                    float nv[32];
                    for (int l = 0; l < 32; l++)
                        nv[l] = v[l] + v[l ^ o];
                    memcpy(v, nv, sizeof v);
                }
                if (wg * RPW + r < N) y[(size_t)t * N + wg * RPW + r] = v[r * NT + t] * a.post;
            }
    }
    std::vector<double> ref((size_t)NT * N), mag((size_t)NT * N);
    for (int t = 0; t < NT; t++)
        for (int n = 0; n < N; n++) {
            double s = 0, am = 0;
            for (int k = 0; k < K; k++) {
                double p = m.ref[(size_t)n * K + k] * x[t * xs + k];
                s += p;
                am += fabs(p);
            }
            ref[(size_t)t * N + n] = s * a.post;
            mag[(size_t)t * N + n] = am * a.post;
        }
    double e = max_rel_err(y, ref, mag);
    CHECK_MSG(e < 1e-6, "gemv fmt %d NT %d N %d K %d: max rel err %g", FMT, NT, N, K, e);

    /* the scalar kernel's lane sums on an unpadded odd-K copy of the same math */
    if (NT == 1) {
        float ys[64];
        int Ns = N < 64 ? N : 64;
        for (int n = 0; n < Ns; n++) {
            float v[32];
            for (int l = 0; l < 32; l++)
                v[l] = gemv_scalar_lane<FMT>(a, n, x.data(), l);
            for (int o = 16; o > 0; o >>= 1) {
                float nv[32];
                for (int l = 0; l < 32; l++)
                    nv[l] = v[l] + v[l ^ o];
                memcpy(v, nv, sizeof v);
            }
            ys[n] = v[0] * a.post;
        }
        std::vector<float> yv(ys, ys + Ns);
        std::vector<double> rv(ref.begin(), ref.begin() + Ns), mv(mag.begin(), mag.begin() + Ns);
        double es = max_rel_err(yv, rv, mv);
        CHECK_MSG(es < 1e-6, "scalar gemv fmt %d N %d K %d: max rel err %g", FMT, N, K, es);
    }
}

template <int FMT> static void gemv_all(int N, int K) {
    gemv_case<FMT, 1>(N, K);
    gemv_case<FMT, 2>(N, K);
    gemv_case<FMT, 3>(N, K);
    gemv_case<FMT, 4>(N, K);
}

static void test_gemv(void) {
    /* K: chunk counts below, at and above 32 lanes, not multiples of 32; N not a multiple of the
     * rows per warp */
    gemv_all<CUW_NVFP4>(37, 32 * 45);
    gemv_all<CUW_NVFP4>(5, 32);
    gemv_all<CUW_FP8>(29, 16 * 70);
    gemv_all<CUW_BF16>(31, 8 * 33);
    gemv_all<CUW_F16>(30, 8 * 75);
    gemv_all<CUW_F32>(7, 4 * 41);
}

/* ---- tensor-core GEMM: whole blocks emulated ---------------------------------------- */

/* mma.m16n8k16 as the PTX ISA defines it ("Matrix fragments for mma.m16n8k16
 * with floating point type"), written here from the ISA's tables, not from the
 * kernel's maps: groupID = lane >> 2, threadID_in_group = lane % 4;
 * A element i (0..7) of a lane: row groupID + 8 * ((i >> 1) & 1), column
 * 2 * tig + (i & 1) + 8 * (i >> 2); B element i (0..3): row (k) 2 * tig + (i & 1)
 * + 8 * (i >> 1), column groupID; C element i: row groupID + 8 * (i >> 1), column
 * 2 * tig + (i & 1). Register r holds elements 2r (low half), 2r + 1. */
static float op_to_f32(uint16_t h, bool bf16) {
    return bf16 ? fp4rt_bf16_to_f32(h) : fp4rt_f16_to_f32(h);
}

static void mma_emulate(float (*c)[4], const uint32_t (*a)[4], const uint32_t (*b)[2], bool bf16) {
    float A[16][16], B[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 8; i++) {
            uint16_t h = (uint16_t)(a[lane][i >> 1] >> (16 * (i & 1)));
            A[g + 8 * ((i >> 1) & 1)][2 * t + (i & 1) + 8 * (i >> 2)] = op_to_f32(h, bf16);
        }
        for (int i = 0; i < 4; i++) {
            uint16_t h = (uint16_t)(b[lane][i >> 1] >> (16 * (i & 1)));
            B[2 * t + (i & 1) + 8 * (i >> 1)][g] = op_to_f32(h, bf16);
        }
    }
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 4; i++) {
            int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
            float s = c[lane][i];
            for (int k = 0; k < 16; k++)
                s += A[row][k] * B[k][col]; /* products exact in FP32 */
            c[lane][i] = s;
        }
    }
}

static void test_frag_maps(void) {
    int bad = 0;
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 8; i++) {
            int r = i >> 1, h = i & 1;
            if (frag_a_row(lane, r) != g + 8 * ((i >> 1) & 1) ||
                frag_a_col(lane, r, h) != 2 * t + h + 8 * (i >> 2))
                bad++;
        }
        for (int i = 0; i < 4; i++) {
            int r = i >> 1, h = i & 1;
            if (frag_b_k(lane, r, h) != 2 * t + h + 8 * (i >> 1) || frag_b_n(lane) != g) bad++;
            if (frag_c_row(lane, i) != g + 8 * (i >> 1) || frag_c_col(lane, i) != 2 * t + (i & 1))
                bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d fragment map entries differ from the PTX ISA tables", bad);
    /* every 32-bit fragment load of a warp: 32 distinct banks */
    int conflicts = 0;
    for (int off = 0; off < 64; off += 16)
        for (int kk = 0; kk < GEMM_BK; kk += 16)
            for (int r = 0; r < 4; r++) {
                unsigned seen_a = 0, seen_b = 0;
                for (int lane = 0; lane < 32; lane++) {
                    seen_a |= 1u << ((smem_a_off(lane, r, off, kk) / 2) % 32);
                    if (r < 2) seen_b |= 1u << ((smem_b_off(lane, r, off / 2, kk) / 2) % 32);
                }
                if (seen_a != 0xffffffffu || (r < 2 && seen_b != 0xffffffffu)) conflicts++;
            }
    CHECK_MSG(conflicts == 0, "%d fragment loads with bank conflicts", conflicts);
}

/* Activations staged as act_stage does (one thread per element), zero-padded rows. */
static std::vector<uint8_t> stage_rows(const std::vector<float> &x, size_t xs, int M, int K,
                                       int out, int fp8, float in_scale, size_t *ld) {
    int eb = out == STAGE_E4M3 ? 1 : 2;
    *ld = gemm_staged_ld(K, eb);
    std::vector<uint8_t> st(*ld * M + 16, 0xee); /* poison, overwritten up to ld */
    for (int r = 0; r < M; r++)
        for (size_t k = 0; k < *ld / eb; k++) {
            uint32_t v = (int)k < K ? stage_elem(out, x[r * xs + k], fp8, in_scale) : 0u;
            memcpy(&st[r * *ld + k * eb], &v, eb);
        }
    return st;
}

template <int FMT, bool BF16> static void gemm_case(int M, int N, int K) {
    wmat m = make_weights(FMT, N, K);
    const size_t xs = (size_t)((K + 3) / 4 * 4) + 4;
    std::vector<float> x(xs * M + 4), y((size_t)M * N, NAN);
    for (auto &v : x)
        v = rndf() * 3;
    const int fp8 = FMT == CUW_FP8;
    const float in_scale = 0.05f;
    size_t ld;
    std::vector<uint8_t> xa =
        stage_rows(x, xs, M, K, BF16 ? STAGE_BF16 : STAGE_F16, fp8, in_scale, &ld);
    if (fp8) /* the references below see the quantized activations */
        for (auto &v : x)
            v = fp4rt_round_e4m3(v / in_scale);
    int w_vec = m.row_bytes % 16 == 0;
    gemm_args a = {m.w.data(),  m.sb.data(), xa.data(), y.data(), ld,    (size_t)N,
                   m.row_bytes, M,           N,         K,        w_vec, 0.25f};
    alignas(16) uint16_t As[GEMM_BM * GEMM_LDS], Bs[GEMM_BN * GEMM_LDS];
    for (int by = 0; by < (M + GEMM_BM - 1) / GEMM_BM; by++)
        for (int bx = 0; bx < (N + GEMM_BN - 1) / GEMM_BN; bx++) {
            int m0 = by * GEMM_BM, n0 = bx * GEMM_BN;
            static float acc[4][32][2][GEMM_WN][4];
            memset(acc, 0, sizeof acc);
            for (int k0 = 0; k0 < K; k0 += GEMM_BK) {
                memset(As, 0xff, sizeof As); /* poison: every element must be written */
                memset(Bs, 0xff, sizeof Bs);
                for (int tid = 0; tid < GEMM_THREADS; tid++) {
                    gemm_load_a(a, As, m0, k0, tid);
                    gemm_load_b<FMT, BF16>(a, Bs, n0, k0, tid);
                }
                for (int warp = 0; warp < 4; warp++)
                    for (int kk = 0; kk < GEMM_BK; kk += 16) {
                        uint32_t af[32][2][4], bf[32][GEMM_WN][2];
                        for (int lane = 0; lane < 32; lane++)
                            gemm_frags(As, Bs, gemm_warp_m(warp), gemm_warp_n(warp), kk, lane,
                                       af[lane], bf[lane]);
                        for (int i = 0; i < 2; i++)
                            for (int j = 0; j < GEMM_WN; j++) {
                                float c[32][4];
                                uint32_t ai[32][4], bj[32][2];
                                for (int l = 0; l < 32; l++) {
                                    memcpy(c[l], acc[warp][l][i][j], sizeof c[l]);
                                    memcpy(ai[l], af[l][i], sizeof ai[l]);
                                    memcpy(bj[l], bf[l][j], sizeof bj[l]);
                                }
                                mma_emulate(c, ai, bj, BF16);
                                for (int l = 0; l < 32; l++)
                                    memcpy(acc[warp][l][i][j], c[l], sizeof c[l]);
                            }
                    }
            }
            for (int warp = 0; warp < 4; warp++)
                for (int lane = 0; lane < 32; lane++)
                    gemm_store(a, acc[warp][lane], m0, n0, gemm_warp_m(warp), gemm_warp_n(warp),
                               lane);
        }
    /* references: operands rounded as the kernel rounds them, and exact */
    std::vector<double> ref_r((size_t)M * N), mag((size_t)M * N);
    std::vector<float> ref_x((size_t)M * N);
    int unwritten = 0;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double s = 0, se = 0, am = 0;
            for (int k = 0; k < K; k++) {
                float xv = x[(size_t)i * xs + k];
                double xr = BF16 ? fp4rt_bf16_to_f32(fp4rt_f32_to_bf16(xv))
                                 : fp4rt_f16_to_f32(fp4rt_f32_to_f16(xv));
                double w = m.ref[(size_t)n * K + k];
                s += w * xr;
                se += w * xv;
                am += fabs(w * xr);
            }
            ref_r[(size_t)i * N + n] = s * a.post;
            mag[(size_t)i * N + n] = am * a.post;
            ref_x[(size_t)i * N + n] = (float)(se * a.post);
            if (isnan(y[(size_t)i * N + n])) unwritten++;
        }
    CHECK_MSG(unwritten == 0, "gemm fmt %d: %d outputs unwritten", FMT, unwritten);
    double e = max_rel_err(y, ref_r, mag);
    CHECK_MSG(e < 1e-6, "gemm fmt %d M %d N %d K %d: max rel err %g (rounded operands)", FMT, M, N,
              K, e);
    double nm = test_nmse(y.data(), ref_x.data(), y.size());
    CHECK_MSG(nm < 5e-4, "gemm fmt %d M %d N %d K %d: NMSE %g vs exact operands", FMT, M, N, K, nm);
    if (FMT == CUW_FP8) CHECK_MSG(nm < 1e-10, "gemm fp8: operands are exact, NMSE %g", nm);
}

/* mma.m16n8k32 with 8-bit operands as the PTX ISA tables give it: A byte i
 * (0..15) of a lane: row groupID + 8 * ((i >> 2) & 1), column 4 * tig + (i & 3)
 * + 16 * (i >> 3); B byte i (0..7): row (k) 4 * tig + (i & 3) + 16 * (i >> 2),
 * column groupID. Register r holds bytes 4r .. 4r + 3. */
static void mma8_emulate(float (*c)[4], const uint32_t (*a)[4], const uint32_t (*b)[2]) {
    float A[16][32], B[32][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 16; i++)
            A[g + 8 * ((i >> 2) & 1)][4 * t + (i & 3) + 16 * (i >> 3)] =
                fp4rt_e4m3_to_f32((uint8_t)(a[lane][i >> 2] >> (8 * (i & 3))));
        for (int i = 0; i < 8; i++)
            B[4 * t + (i & 3) + 16 * (i >> 2)][g] =
                fp4rt_e4m3_to_f32((uint8_t)(b[lane][i >> 2] >> (8 * (i & 3))));
    }
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 4; i++) {
            int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
            float s = c[lane][i];
            for (int k = 0; k < 32; k++)
                s += A[row][k] * B[k][col];
            c[lane][i] = s;
        }
    }
}

/* The sm_89+ FP8 GEMM (gemm_fp8_mma): whole blocks emulated. */
static void gemm8_case(int M, int N, int K) {
    wmat m = make_weights(CUW_FP8, N, K);
    const size_t xs = (size_t)((K + 3) / 4 * 4) + 8;
    std::vector<float> x(xs * M + 4), y((size_t)M * N, NAN);
    for (auto &v : x)
        v = rndf() * 3;
    size_t ld;
    std::vector<uint8_t> xa = stage_rows(x, xs, M, K, STAGE_E4M3, 1, 0.05f, &ld);
    for (auto &v : x)
        v = fp4rt_round_e4m3(v / 0.05f);
    gemm_args a = {m.w.data(),
                   nullptr,
                   xa.data(),
                   y.data(),
                   ld,
                   (size_t)N,
                   m.row_bytes,
                   M,
                   N,
                   K,
                   (int)(m.row_bytes % 16 == 0),
                   0.125f};
    alignas(16) uint8_t As[GEMM_BM * GEMM8_LDS], Bs[GEMM_BN * GEMM8_LDS];
    for (int by = 0; by < (M + GEMM_BM - 1) / GEMM_BM; by++)
        for (int bx = 0; bx < (N + GEMM_BN - 1) / GEMM_BN; bx++) {
            int m0 = by * GEMM_BM, n0 = bx * GEMM_BN;
            static float acc[4][32][2][GEMM_WN][4];
            memset(acc, 0, sizeof acc);
            for (int k0 = 0; k0 < K; k0 += GEMM8_BK) {
                memset(As, 0x7f, sizeof As); /* NaN poison */
                memset(Bs, 0x7f, sizeof Bs);
                for (int tid = 0; tid < GEMM_THREADS; tid++) {
                    gemm8_load_a(a, As, m0, k0, tid);
                    gemm8_load_b(a, Bs, n0, k0, tid);
                }
                for (int warp = 0; warp < 4; warp++)
                    for (int kk = 0; kk < GEMM8_BK; kk += 32) {
                        uint32_t af[32][2][4], bf[32][GEMM_WN][2];
                        for (int lane = 0; lane < 32; lane++)
                            gemm8_frags(As, Bs, gemm_warp_m(warp), gemm_warp_n(warp), kk, lane,
                                        af[lane], bf[lane]);
                        for (int i = 0; i < 2; i++)
                            for (int j = 0; j < GEMM_WN; j++) {
                                float c[32][4];
                                uint32_t ai[32][4], bj[32][2];
                                for (int l = 0; l < 32; l++) {
                                    memcpy(c[l], acc[warp][l][i][j], sizeof c[l]);
                                    memcpy(ai[l], af[l][i], sizeof ai[l]);
                                    memcpy(bj[l], bf[l][j], sizeof bj[l]);
                                }
                                mma8_emulate(c, ai, bj);
                                for (int l = 0; l < 32; l++)
                                    memcpy(acc[warp][l][i][j], c[l], sizeof c[l]);
                            }
                    }
            }
            for (int warp = 0; warp < 4; warp++)
                for (int lane = 0; lane < 32; lane++)
                    gemm_store(a, acc[warp][lane], m0, n0, gemm_warp_m(warp), gemm_warp_n(warp),
                               lane);
        }
    std::vector<double> ref((size_t)M * N), mag((size_t)M * N);
    int unwritten = 0;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double s = 0, am = 0;
            for (int k = 0; k < K; k++) {
                double p = m.ref[(size_t)n * K + k] * x[(size_t)i * xs + k];
                s += p, am += fabs(p);
            }
            ref[(size_t)i * N + n] = s * a.post, mag[(size_t)i * N + n] = am * a.post;
            if (isnan(y[(size_t)i * N + n])) unwritten++;
        }
    CHECK_MSG(unwritten == 0, "gemm8: %d outputs unwritten", unwritten);
    double e = max_rel_err(y, ref, mag);
    CHECK_MSG(e < 1e-6, "gemm8 M %d N %d K %d: max rel err %g", M, N, K, e);
    /* fragment maps against the ISA table, and conflict-free loads */
    int bad = 0, conflicts = 0;
    for (int lane = 0; lane < 32; lane++)
        for (int r = 0; r < 4; r++) {
            int i = 4 * r;
            if (frag8_a_row(lane, r) != (lane >> 2) + 8 * ((i >> 2) & 1) ||
                frag8_a_col(lane, r) != 4 * (lane & 3) + 16 * (i >> 3))
                bad++;
            if (r < 2 && frag8_b_k(lane, r) != 4 * (lane & 3) + 16 * (4 * r >> 2)) bad++;
        }
    for (int r = 0; r < 4; r++) {
        unsigned sa = 0, sb = 0;
        for (int lane = 0; lane < 32; lane++) {
            sa |= 1u << ((smem8_a_off(lane, r, 16, 32) / 4) % 32);
            if (r < 2) sb |= 1u << ((smem8_b_off(lane, r, 8, 32) / 4) % 32);
        }
        if (sa != 0xffffffffu || (r < 2 && sb != 0xffffffffu)) conflicts++;
    }
    CHECK_MSG(bad == 0 && conflicts == 0, "gemm8 fragment maps: %d wrong, %d conflicting loads",
              bad, conflicts);
}

static void test_gemm(void) {
    gemm_case<CUW_NVFP4, false>(70, 100, 32 * 5); /* M, N tails; whole 16-byte chunks */
    gemm_case<CUW_NVFP4, false>(9, 64, 48);       /* K tail of half a chunk (scalar loader) */
    gemm_case<CUW_BF16, true>(65, 70, 8 * 13);    /* K tail within a tile */
    gemm_case<CUW_BF16, true>(64, 64, 36);        /* unaligned rows (scalar loader), K % 8 != 0 */
    gemm_case<CUW_F16, false>(20, 130, 64);
    gemm_case<CUW_FP8, false>(33, 65, 16 * 7);
    gemm_case<CUW_FP8, false>(12, 10, 40); /* rows not 16-byte multiples */
    gemm8_case(70, 66, 64 * 3);            /* sm_89+ E4M3 tensor cores: M, N tails */
    gemm8_case(9, 64, 100);                /* K tail, unaligned rows */
}

int main(void) {
    fp4rt_numfmt_init();
    test_e2m1_trick();
    test_dequant();
    test_e4m3();
    test_decode1();
    test_gemv();
    test_frag_maps();
    test_gemm();
    return test_summary("test_cu_linear_host");
}
