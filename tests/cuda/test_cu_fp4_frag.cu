/* Host test of the CUDA W4A4 building blocks (cuda/cu_fp4_frag.cuh), built with
 * nvcc and run on the CPU: the number formats and the activation quantizer
 * against the CPU backend's, the fragment layouts against the PTX ISA tables,
 * the emulated block-scaled MMA (fed by the kernels' own loads and scale
 * packing) against a plain double-precision dot product, and a whole W4A4
 * linear computed tile by tile as fp4_mma_gemm does against the CPU backend's
 * math. Needs no GPU. */
#include "cuda/cu_fp4_frag.cuh"

using namespace fp4rt_fp4;

extern "C" {
#include "runtime/backend/cpu/cpu_ops.h"
#include "runtime/base/numfmt.h"
}
#include "tests/test_util.h"

#include <stdint.h>
#include <vector>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() & 0xffffff) / 16777216.0f; }

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_formats(void) {
    fp4rt_numfmt_init();
    int bad = 0;
    for (uint32_t c = 0; c < 256; c++) {
        float a = fp4_e4m3_value(c), b = fp4rt_e4m3_table[c];
        if (!(a == b || (a != a && b != b)) || (a == 0 && b == 0 && signbit(a) != signbit(b))) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    for (uint32_t c = 0; c < 16; c++) bad += fp4_e2m1_value(c) != fp4rt_e2m1_table[c];
    CHECK_EQ_INT(bad, 0);
    /* every E4M3 value and the midpoints around it, then random floats of every magnitude */
    std::vector<float> v;
    for (uint32_t c = 0; c < 0x7f; c++) {
        float x = fp4rt_e4m3_table[c];
        v.push_back(x);
        v.push_back(nextafterf(x, 1000.0f));
        v.push_back(nextafterf(x, -1.0f));
        if (c < 0x7e) {
            float mid = 0.5f * (x + fp4rt_e4m3_table[c + 1]);
            v.push_back(mid);
            v.push_back(nextafterf(mid, 0.0f));
            v.push_back(nextafterf(mid, 1000.0f));
        }
    }
    float edges[] = {0.0f, -0.0f, 448.0f, 449.0f, 464.0f, 465.0f, 1e30f, INFINITY, -INFINITY, NAN, 0.25f, 0.75f,
                     1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 7.0f, -0.1f, -5.0f, 0.001953125f, 0.0009765625f};
    for (float e : edges) {
        v.push_back(e);
        v.push_back(-e);
    }
    for (int i = 0; i < 200000; i++) {
        uint32_t u = next_u32() ^ (next_u32() << 21);
        float x = u2f(u);
        if (x != x) continue;
        v.push_back(x);
        v.push_back(uniform(-8.0f, 8.0f));
    }
    int bad_e4 = 0, bad_e2 = 0;
    for (float x : v) {
        bad_e4 += fp4_f32_to_e4m3_sat(x) != fp4rt_f32_to_e4m3_sat(x);
        bad_e2 += fp4_f32_to_e2m1(x) != fp4rt_f32_to_e2m1(x);
    }
    CHECK_MSG(bad_e4 == 0, "%d of %zu E4M3 encodings differ from numfmt.c", bad_e4, v.size());
    CHECK_MSG(bad_e2 == 0, "%d of %zu E2M1 encodings differ from numfmt.c", bad_e2, v.size());
}

/* fp4_quantize_block16 reproduces fp4rt_nvfp4_act_quantize bit for bit, for a
 * static input_scale and for the dynamic per-row scale. */
static void test_act_quant(void) {
    int bad = 0, zero_blocks = 0, sat = 0;
    for (int trial = 0; trial < 400; trial++) {
        int K = 16 * (1 + (int)(next_u32() % 24));
        std::vector<float> x((size_t)K), ref((size_t)K);
        float mag = powf(2.0f, uniform(-12.0f, 8.0f));
        for (int k = 0; k < K; k++) x[(size_t)k] = uniform(-mag, mag) * (next_u32() % 7 == 0 ? 8.0f : 1.0f);
        if (trial % 9 == 0)
            for (int k = 16; k < 32 && k < K; k++) x[(size_t)k] = 0.0f; /* an all-zero block */
        int dynamic = trial & 1;
        float s = dynamic ? fp4rt_nvfp4_act_row_scale(x.data(), K) : mag / uniform(100.0f, 3000.0f);
        if (dynamic) {
            float amax = 0;
            for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[(size_t)k]));
            bad += fp4_row_scale(amax) != s;
        }
        fp4rt_nvfp4_act_quantize(x.data(), K, s, ref.data());
        for (int b = 0; b < K / 16; b++) {
            uint8_t codes[8];
            uint32_t sfc = fp4_quantize_block16(&x[(size_t)b * 16], s, codes);
            float sf = fp4_e4m3_value(sfc);
            zero_blocks += sf == 0.0f;
            sat += sfc == 0x7e;
            for (int i = 0; i < 16; i++) {
                float q = fp4_e2m1_value((codes[i / 2] >> (4 * (i & 1))) & 15u) * sf;
                if (q != ref[(size_t)b * 16 + i]) bad++;
            }
        }
    }
    CHECK_MSG(bad == 0, "%d quantized activations differ from the CPU backend", bad);
    CHECK(zero_blocks > 0); /* the zero-block branch was exercised */
    CHECK(sat > 0);         /* so was the block scale at 448 */
    float zeros[32] = {0};
    CHECK(fp4rt_nvfp4_act_row_scale(zeros, 32) == 1.0f && fp4_row_scale(0.0f) == 1.0f);
}

/* The fragment tables, written out from the PTX ISA for a few lanes. */
static void test_layout(void) {
    /* lane 5: g = 1, q = 1 */
    CHECK(fp4_frag_a_row(5, 0) == 1 && fp4_frag_a_k(5, 0, 0) == 8 && fp4_frag_a_k(5, 0, 7) == 15);
    CHECK(fp4_frag_a_row(5, 1) == 9 && fp4_frag_a_k(5, 1, 0) == 8);
    CHECK(fp4_frag_a_row(5, 2) == 1 && fp4_frag_a_k(5, 2, 0) == 40);
    CHECK(fp4_frag_a_row(5, 3) == 9 && fp4_frag_a_k(5, 3, 3) == 43);
    /* lane 30: g = 7, q = 2 */
    CHECK(fp4_frag_b_col(30) == 7 && fp4_frag_b_k(30, 0, 0) == 16 && fp4_frag_b_k(30, 1, 7) == 55);
    CHECK(fp4_frag_c_row(30, 0) == 7 && fp4_frag_c_col(30, 0) == 4 && fp4_frag_c_col(30, 1) == 5);
    CHECK(fp4_frag_c_row(30, 2) == 15 && fp4_frag_c_col(30, 3) == 5);
    /* every (row, k) of A and (k, col) of B is held exactly once; every D element once */
    int a_seen[16][64] = {{0}}, b_seen[64][8] = {{0}}, d_seen[16][8] = {{0}};
    for (int lane = 0; lane < 32; lane++) {
        for (int r = 0; r < 4; r++)
            for (int n = 0; n < 8; n++) a_seen[fp4_frag_a_row(lane, r)][fp4_frag_a_k(lane, r, n)]++;
        for (int r = 0; r < 2; r++)
            for (int n = 0; n < 8; n++) b_seen[fp4_frag_b_k(lane, r, n)][fp4_frag_b_col(lane)]++;
        for (int r = 0; r < 4; r++) d_seen[fp4_frag_c_row(lane, r)][fp4_frag_c_col(lane, r)]++;
    }
    int bad = 0;
    for (int i = 0; i < 16 * 64; i++) bad += a_seen[i / 64][i % 64] != 1;
    for (int i = 0; i < 64 * 8; i++) bad += b_seen[i / 8][i % 8] != 1;
    for (int i = 0; i < 16 * 8; i++) bad += d_seen[i / 8][i % 8] != 1;
    CHECK_EQ_INT(bad, 0);
    /* scale selectors {0, 0}: row r from lane 4 (r % 8) + r / 8, column n from lane 4 n;
     * the packing puts those rows / columns in those lanes, and repeats them in
     * lanes 4g + 2, 4g + 3 (thread-id 1) */
    for (int r = 0; r < 16; r++) bad += fp4_sfa_row_of_lane(fp4_sfa_src_lane(r)) != r;
    for (int n = 0; n < 8; n++) bad += fp4_sfb_col_of_lane(fp4_sfb_src_lane(n)) != n;
    for (int g = 0; g < 8; g++) {
        bad += fp4_sfa_row_of_lane(4 * g + 2) != fp4_sfa_row_of_lane(4 * g);
        bad += fp4_sfa_row_of_lane(4 * g + 3) != fp4_sfa_row_of_lane(4 * g + 1);
        for (int q = 1; q < 4; q++) bad += fp4_sfb_col_of_lane(4 * g + q) != g;
    }
    CHECK_EQ_INT(bad, 0);
}

/* A random NVFP4 matrix [rows, K] in the kernels' memory layout. */
struct nvfp4_matrix {
    int rows, K;
    std::vector<uint8_t> codes, scales;
    uint32_t code(int r, int k) const { return (codes[(size_t)r * (K / 2) + k / 2] >> (4 * (k & 1))) & 15u; }
    float scale(int r, int b) const { return fp4_ue4m3_value(scales[(size_t)r * (K / 16) + b]); }
    fp4_mat view(int valid_rows) const { return fp4_mat{codes.data(), scales.data(), valid_rows, K, 0}; }
};
static nvfp4_matrix random_matrix(int rows, int K, int one_block) {
    nvfp4_matrix m;
    m.rows = rows;
    m.K = K;
    m.codes.resize((size_t)rows * K / 2);
    m.scales.resize((size_t)rows * K / 16);
    for (auto &c : m.codes) c = (uint8_t)next_u32();
    for (auto &s : m.scales) s = (uint8_t)(0x08 + next_u32() % 0x72); /* 2^-6 .. 448, no NaN */
    if (one_block >= 0)                                                 /* only one 16-block non-zero */
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < K; k += 2)
                if (k / 16 != one_block) m.codes[(size_t)r * K / 2 + k / 2] = 0;
    return m;
}

/* D tile (16 x 8, rows n0.., columns c0..) through the kernels' loads and the
 * emulated MMA, over all k-tiles; out[row][col]. */
static void emulated_tile(const fp4_mat &A, const fp4_mat &B, int n0, int c0, float out[16][8]) {
    float acc[32][4] = {{0}};
    for (int kt = 0; kt < A.K; kt += 64) {
        fp4_warp_regs regs;
        for (int lane = 0; lane < 32; lane++) {
            fp4_load_frag_a(A, n0, kt, lane, regs.a[lane], &regs.sfa[lane]);
            fp4_load_frag_b(B, c0, kt, lane, regs.b[lane], &regs.sfb[lane]);
        }
        fp4_mma_emulate_warp(&regs, acc, acc);
    }
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) out[fp4_frag_c_row(lane, i)][fp4_frag_c_col(lane, i)] = acc[lane][i];
}

static void test_mma(void) {
    /* one k-block: the block-scaled product is exact in FP32 */
    int bad = 0;
    for (int trial = 0; trial < 50; trial++) {
        int blk = (int)(next_u32() % 4);
        nvfp4_matrix A = random_matrix(16, 64, blk), B = random_matrix(8, 64, blk);
        float d[16][8];
        emulated_tile(A.view(16), B.view(8), 0, 0, d);
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                double ref = 0;
                for (int k = 0; k < 64; k++)
                    ref += (double)fp4_e2m1_value(A.code(m, k)) * A.scale(m, k / 16) * fp4_e2m1_value(B.code(n, k)) *
                           B.scale(n, k / 16);
                bad += (double)d[m][n] != ref;
            }
    }
    CHECK_MSG(bad == 0, "%d single-block products are not exact", bad);
    /* several k-tiles, a K tail (208 = 3 x 64 + 16), partial tiles (rows past the end read as 0) */
    double worst = 0;
    bad = 0;
    for (int trial = 0; trial < 20; trial++) {
        int K = 208, NA = 29, NB = 13;
        nvfp4_matrix A = random_matrix(NA, K, -1), B = random_matrix(NB, K, -1);
        for (int n0 = 0; n0 < NA; n0 += 16)
            for (int c0 = 0; c0 < NB; c0 += 8) {
                float d[16][8];
                emulated_tile(A.view(NA), B.view(NB), n0, c0, d);
                for (int m = 0; m < 16; m++)
                    for (int n = 0; n < 8; n++) {
                        int r = n0 + m, c = c0 + n;
                        if (r >= NA || c >= NB) {
                            bad += d[m][n] != 0.0f;
                            continue;
                        }
                        double ref = 0, mag = 0;
                        for (int k = 0; k < K; k++) {
                            double t = (double)fp4_e2m1_value(A.code(r, k)) * A.scale(r, k / 16) *
                                       fp4_e2m1_value(B.code(c, k)) * B.scale(c, k / 16);
                            ref += t;
                            mag += fabs(t);
                        }
                        double err = fabs((double)d[m][n] - ref) / (mag > 0 ? mag : 1);
                        if (err > worst) worst = err;
                    }
            }
    }
    CHECK_EQ_INT(bad, 0);
    /* 13 FP32 additions of exact block values: relative to sum |terms|, <= 13 * 2^-24 */
    CHECK_MSG(worst < 13.0 / 16777216.0, "worst relative error %g", worst);
}

/* A whole W4A4 linear as the CUDA backend computes it (act quantization into
 * the workspace layout, then fp4_mma_gemm's tiles through the emulated MMA,
 * then post[t]) against the CPU backend's math (fp4rt_nvfp4_act_quantize, FP32
 * dequantized weights, dot product, x input_scale x weight_scale). */
static void test_linear(int dynamic) {
    int N = 45, K = 320, T = 19;
    nvfp4_matrix W = random_matrix(N, K, -1);
    for (auto &s : W.scales) s = (uint8_t)(0x30 + next_u32() % 0x10);
    float weight_scale = 0.0123f, input_scale = dynamic ? 0.0f : 0.004f;
    std::vector<float> x((size_t)T * K);
    for (auto &v : x) v = uniform(-3.0f, 3.0f);
    /* the CUDA path */
    std::vector<uint8_t> xc((size_t)T * K / 2), xs((size_t)T * K / 16);
    std::vector<float> post((size_t)T), y((size_t)T * N), ref((size_t)T * N);
    for (int t = 0; t < T; t++) {
        const float *xr = &x[(size_t)t * K];
        float s = input_scale;
        if (dynamic) {
            float amax = 0;
            for (int k = 0; k < K; k++) amax = fp4_fmax(amax, fabsf(xr[k]));
            s = fp4_row_scale(amax);
        }
        post[(size_t)t] = fp4_mul(s, weight_scale);
        for (int b = 0; b < K / 16; b++)
            xs[(size_t)t * K / 16 + b] = (uint8_t)fp4_quantize_block16(xr + 16 * b, s, &xc[(size_t)t * K / 2 + 8 * b]);
    }
    fp4_mat wm = W.view(N), xm = {xc.data(), xs.data(), T, K, 0};
    for (int n0 = 0; n0 < N; n0 += 16)
        for (int r0 = 0; r0 < T; r0 += 8) {
            float d[16][8];
            emulated_tile(wm, xm, n0, r0, d);
            for (int m = 0; m < 16; m++)
                for (int c = 0; c < 8; c++)
                    if (n0 + m < N && r0 + c < T)
                        y[(size_t)(r0 + c) * N + n0 + m] = fp4_mul(d[m][c], post[(size_t)(r0 + c)]);
        }
    /* the CPU backend's math */
    std::vector<float> q((size_t)K);
    for (int t = 0; t < T; t++) {
        float s = dynamic ? fp4rt_nvfp4_act_row_scale(&x[(size_t)t * K], K) : input_scale;
        fp4rt_nvfp4_act_quantize(&x[(size_t)t * K], K, s, q.data());
        for (int n = 0; n < N; n++) {
            float acc = 0;
            for (int k = 0; k < K; k++)
                acc += q[(size_t)k] * fp4_e2m1_value(W.code(n, k)) * W.scale(n, k / 16);
            ref[(size_t)t * N + n] = acc * (s * weight_scale);
        }
    }
    double nmse = test_nmse(y.data(), ref.data(), y.size());
    CHECK_MSG(nmse < 1e-12, "W4A4 linear (%s scale): NMSE %g against the CPU math", dynamic ? "dynamic" : "static",
              nmse);
    double den = 0;
    for (float v : ref) den += (double)v * v;
    CHECK(den > 0); /* not a comparison of zeros */
}

int main(void) {
    test_formats();
    test_act_quant();
    test_layout();
    test_mma();
    test_linear(0);
    test_linear(1);
    return test_summary("test_cu_fp4_frag");
}
