/* NVFP4 W4A4 building blocks shared by the CUDA kernels (cu_fp4_mma.cu) and the
 * host unit test (tests/cuda/test_cu_fp4_frag.cu): number formats, run-time
 * activation quantization, the register fragments of the block-scaled FP4 MMA
 *
 *   mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X
 *       .f32.e2m1.e2m1.f32.ue4m3  d, a, b, c, sfa, {0, 0}, sfb, {0, 0}
 *
 * (PTX ISA "Warp-level matrix multiply with block scaling"; docs/NVFP4.md §3.1),
 * and a software version of that instruction that computes, from the same
 * registers of the 32 lanes, what the ISA defines:
 *
 *   D[m][n] = C[m][n] + sum_k e2m1(A[m][k]) * ue4m3(SFA[m][k/16])
 *                           * e2m1(B[k][n]) * ue4m3(SFB[k/16][n]).
 *
 * Everything here is __host__ __device__ so the CPU test runs the very code
 * the kernels run. The native and the emulated kernel share the loads and the
 * packing below and differ only in the MMA step (fp4_mma_native / the
 * fp4_mma_gather + fp4_mma_compute pair).
 *
 * Operand roles in fp4rt (swap-AB: the weights fill the 16-row side, which
 * suits the small token counts of prefill chunks and decode):
 *   A (16 x 64, "row", K contiguous)  = 16 weight rows n0 .. n0+15,
 *   B (64 x 8,  "col", K contiguous)  = 8 activation rows (tokens) t0 .. t0+7,
 *   D (16 x 8)                        = y[t0 + col][n0 + row], before the tensor scales.
 * Both operands are stored the same way in memory: codes [rows, K/2] bytes
 * (byte = code(2i) | code(2i+1) << 4, the ModelOpt order) and E4M3 block
 * scales [rows, K/16] bytes (the checkpoint's linear layout).
 *
 * Register layouts (lane = 4 g + q, g = lane / 4, q = lane % 4; nibble i of a
 * register is bits 4i .. 4i+3, i = 0 the lowest k):
 *   a0: row g,     k = 8q + i          a1: row g + 8, k = 8q + i
 *   a2: row g,     k = 32 + 8q + i     a3: row g + 8, k = 32 + 8q + i
 *   b0: col g,     k = 8q + i          b1: col g,     k = 32 + 8q + i
 *   c0/d0: (g, 2q)  c1/d1: (g, 2q+1)  c2/d2: (g+8, 2q)  c3/d3: (g+8, 2q+1)
 * So one 32-bit word of the byte stream of a row (8 codes) is one register.
 * Scales (.scale_vec::4X, .ue4m3, selectors {byte-id, thread-id} = {0, 0}):
 * byte j of a scale register is the scale of k-block j (k = 16j .. 16j+15);
 * row r of scale_A is read from lane 4 (r % 8) + r / 8, column n of scale_B
 * from lane 4 n. fp4rt fills every lane (lane (g, q) holds scale_A of row
 * g + 8 (q % 2) and scale_B of column g), so lanes 4g+2 / 4g+3 (thread-id 1)
 * carry the same values: the packing does not depend on which of the two
 * readings of thread-id the hardware uses. docs/NVFP4.md open question 3 asks for a
 * probe of this on sm_120a; tests/gpu-check runs the kernel against the CPU.
 *
 * Numerics of the emulation: within one 16-block the products e2m1 x e2m1 are
 * multiples of 1/4 up to 36, so their sum (<= 576) is exact, and so is its
 * product with ue4m3 x ue4m3 (<= 8 + 12 significant bits); the four block
 * values are then added to C in k order in FP32. The ISA does not define the
 * order or width of the hardware's internal sums: native and emulated results
 * may differ by FP32 rounding of those four additions, never more. */
#ifndef FP4RT_CU_FP4_FRAG_CUH
#define FP4RT_CU_FP4_FRAG_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Loop unrolling for the device pass only (host compilers warn on the pragma). */
#if defined(__CUDA_ARCH__)
#define FP4_UNROLL _Pragma("unroll")
#else
#define FP4_UNROLL
#endif

#if defined(__CUDACC__)
#define FP4_HD __host__ __device__ __forceinline__
#else
#define FP4_HD static inline
#endif

/* The block-scaled FP4 MMA exists on the sm_120 family's arch-specific targets
 * (sm_120a, sm_121a; CUDA >= 12.8/12.9). Plain sm_120 and every other target
 * use the emulation. */
#if defined(__CUDA_ARCH__) &&                                                                      \
    (defined(__CUDA_ARCH_FEAT_SM120_ALL) || defined(__CUDA_ARCH_FEAT_SM121_ALL) ||                 \
     (defined(__CUDA_ARCH_FAMILY_SPECIFIC__) && __CUDA_ARCH_FAMILY_SPECIFIC__ >= 1200 &&            \
      __CUDA_ARCH_FAMILY_SPECIFIC__ < 1300))
#define FP4RT_NATIVE_FP4_MMA 1
#else
#define FP4RT_NATIVE_FP4_MMA 0
#endif

/* Everything below is in namespace fp4rt_fp4, so these inline functions never
 * meet a same-named one of another op family in the module (ODR). */
namespace fp4rt_fp4 {

/* ---- arithmetic that must round exactly as the CPU backend does ----------- */

/* IEEE single division / product, never contracted into an FMA nor
 * approximated (whatever -use_fast_math / -fmad say). */
FP4_HD float fp4_div(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}
FP4_HD float fp4_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
FP4_HD float fp4_add(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
FP4_HD uint32_t fp4_f2u(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    union {
        float f;
        uint32_t u;
    } v;
    v.f = f;
    return v.u;
#endif
}
FP4_HD float fp4_u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    union {
        float f;
        uint32_t u;
    } v;
    v.u = u;
    return v.f;
#endif
}
FP4_HD float fp4_fmax(float a, float b) { return fmaxf(a, b); } /* NaN-ignoring, as C fmaxf */
FP4_HD float fp4_fmin(float a, float b) { return fminf(a, b); }

/* ---- number formats (bit-identical to runtime/base/numfmt.c) ------------------- */

/* E2M1 code (bit 3 sign) -> twice its value as an integer: {0,1,2,3,4,6,8,12}. */
FP4_HD int fp4_e2m1_x2(uint32_t c) {
    int m = (int)((0xC8643210u >> (4u * (c & 7u))) & 15u);
    return (c & 8u) ? -m : m;
}
FP4_HD float fp4_e2m1_value(uint32_t c) { return 0.5f * (float)fp4_e2m1_x2(c); }
/* sum_i 2 e2m1(a_i) * 2 e2m1(b_i) over the 8 nibbles of two registers: exact. */
FP4_HD int fp4_dot8_x4(uint32_t a, uint32_t b) {
    int d = 0;
FP4_UNROLL
    for (int n = 0; n < 8; n++) d += fp4_e2m1_x2((a >> (4 * n)) & 15u) * fp4_e2m1_x2((b >> (4 * n)) & 15u);
    return d;
}

/* E4M3 (FN) code -> value, exact; 0x7F/0xFF -> NaN (as fp4rt_e4m3_table). */
FP4_HD float fp4_e4m3_value(uint32_t c) {
    uint32_t e = (c >> 3) & 15u, m = c & 7u;
    if (e == 15u && m == 7u) return fp4_u2f(0x7fc00000u);
    /* normal: 2^(e-7) (1 + m/8) = bits ((e + 120) << 23 | m << 20); subnormal: m 2^-9 */
    float v = e ? fp4_u2f(((e + 120u) << 23) | (m << 20)) : (float)m * (1.0f / 512.0f);
    return (c & 0x80u) ? -v : v;
}
/* UE4M3 as the MMA reads a scale byte: the sign bit is not part of the format. */
FP4_HD float fp4_ue4m3_value(uint32_t c) { return fp4_e4m3_value(c & 0x7fu); }

/* E4M3 code of f, RNE, saturating at +-448 (fp4rt_f32_to_e4m3_sat). */
FP4_HD uint32_t fp4_f32_to_e4m3_sat(float f) {
    uint32_t u = fp4_f2u(f);
    uint32_t s = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7fu; /* NaN */
    if (a > 0x43e00000u) return s | 0x7eu; /* > 448 (and Inf): saturate */
    if (a < 0x3c800000u) {                 /* below 2^-6: subnormal unit 2^-9, RNE */
        float r = rintf(fp4_u2f(a) * 512.0f); /* exact scaling; rintf: ties to even */
        return s | (uint32_t)r;               /* 8 encodes 2^-6 (exponent 1, mantissa 0) */
    }
    uint32_t e = (a >> 23) - 127u + 7u, m = (a >> 20) & 7u, rest = a & 0xfffffu;
    if (rest > 0x80000u || (rest == 0x80000u && (m & 1u))) m++;
    if (m == 8u) {
        m = 0;
        e++;
    }
    return s | (e << 3) | m; /* 448 = e 15, m 6 at most: a <= 448 here */
}

/* E2M1 code of f, RNE, saturating at +-6; sign set for f < 0; NaN -> +0
 * (fp4rt_f32_to_e2m1). */
FP4_HD uint32_t fp4_f32_to_e2m1(float f) {
    if (f != f) return 0;
    uint32_t s = f < 0.0f ? 8u : 0u;
    float a = fabsf(f);
    uint32_t c;
    if (a <= 0.25f) c = 0;
    else if (a < 0.75f) c = 1;
    else if (a <= 1.25f) c = 2;
    else if (a < 1.75f) c = 3;
    else if (a <= 2.5f) c = 4;
    else if (a < 3.5f) c = 5;
    else if (a <= 5.0f) c = 6;
    else c = 7;
    return s | c;
}

/* ---- activation quantization (runtime/backend/cpu/cpu_linear.c fp4rt_nvfp4_act_quantize) */

/* The tensor scale of one activation row under --fp4-activations when the
 * linear has no input_scale: amax(|row|) / (6 * 448), 1 for an all-zero row
 * (every block scale is then 0). */
FP4_HD float fp4_row_scale(float row_amax) {
    return row_amax > 0.0f ? fp4_div(row_amax, 2688.0f) : 1.0f;
}

/* One block of 16 activations x[0..15] with tensor scale `s`: writes the 8
 * packed code bytes and returns the E4M3 block-scale code. sf = e4m3(min(amax
 * / 6 / s, 448)); sf = 0 gives a zero block; code_i = e2m1(x_i / (sf * s)). The
 * block's dequantized value is e2m1(code_i) * sf (times s after the dot
 * product), exactly the CPU's. */
FP4_HD uint32_t fp4_quantize_block16(const float *x, float s, uint8_t codes[8]) {
    float amax = 0.0f;
    for (int i = 0; i < 16; i++) amax = fp4_fmax(amax, fabsf(x[i]));
    uint32_t sfc = fp4_f32_to_e4m3_sat(fp4_fmin(fp4_div(fp4_div(amax, 6.0f), s), 448.0f));
    float sf = fp4_e4m3_value(sfc);
    if (sf == 0.0f) {
        for (int i = 0; i < 8; i++) codes[i] = 0;
        return 0;
    }
    float div = fp4_mul(sf, s);
    for (int i = 0; i < 8; i++)
        codes[i] = (uint8_t)(fp4_f32_to_e2m1(fp4_div(x[2 * i], div)) |
                             (fp4_f32_to_e2m1(fp4_div(x[2 * i + 1], div)) << 4));
    return sfc;
}

/* ---- fragments ------------------------------------------------------------ */

/* Coordinates an element of a register holds (the ISA tables, written out). */
FP4_HD int fp4_frag_a_row(int lane, int reg) { return (lane >> 2) + ((reg & 1) ? 8 : 0); }
FP4_HD int fp4_frag_a_k(int lane, int reg, int nib) { return ((reg & 2) ? 32 : 0) + 8 * (lane & 3) + nib; }
FP4_HD int fp4_frag_b_col(int lane) { return lane >> 2; }
FP4_HD int fp4_frag_b_k(int lane, int reg, int nib) { return (reg ? 32 : 0) + 8 * (lane & 3) + nib; }
FP4_HD int fp4_frag_c_row(int lane, int reg) { return (lane >> 2) + ((reg & 2) ? 8 : 0); }
FP4_HD int fp4_frag_c_col(int lane, int reg) { return 2 * (lane & 3) + (reg & 1); }
/* Which lane the MMA reads a scale from (selectors {0, 0}), and which row /
 * column fp4rt packs into a lane's scale register. */
FP4_HD int fp4_sfa_src_lane(int row) { return 4 * (row & 7) + (row >> 3); }
FP4_HD int fp4_sfb_src_lane(int col) { return 4 * col; }
FP4_HD int fp4_sfa_row_of_lane(int lane) { return (lane >> 2) + 8 * (lane & 1); }
FP4_HD int fp4_sfb_col_of_lane(int lane) { return lane >> 2; }

/* An NVFP4 matrix in memory: codes [rows, K/2], block scales [rows, K/16]. */
typedef struct fp4_mat {
    const uint8_t *codes;
    const uint8_t *scales;
    int rows; /* valid rows; fragments of rows >= rows read as zero */
    int K;    /* multiple of 16; fragments of k >= K read as zero */
    int aligned; /* codes 4-byte aligned (then K/2 is a multiple of 8: word loads) */
} fp4_mat;

/* Eight codes k .. k+7 (k a multiple of 8) of row r as one register. */
FP4_HD uint32_t fp4_load_word(const fp4_mat &m, int r, int k) {
    if (r >= m.rows || k >= m.K) return 0;
    const uint8_t *p = m.codes + (size_t)r * (size_t)(m.K / 2) + (size_t)(k / 2);
    if (m.aligned) return *(const uint32_t *)p;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The four block scales of k-tile kt (a multiple of 64) of row r, byte j =
 * block kt/16 + j; blocks past K read as 0. */
FP4_HD uint32_t fp4_load_scales(const fp4_mat &m, int r, int kt) {
    if (r >= m.rows) return 0;
    int nb = m.K / 16, b0 = kt / 16;
    const uint8_t *p = m.scales + (size_t)r * (size_t)nb;
    uint32_t v = 0;
    for (int j = 0; j < 4; j++)
        if (b0 + j < nb) v |= (uint32_t)p[b0 + j] << (8 * j);
    return v;
}

/* Fragment A of rows r0 .. r0+15, k-tile kt, for `lane`: a[4] and the scale register. */
FP4_HD void fp4_load_frag_a(const fp4_mat &m, int r0, int kt, int lane, uint32_t a[4], uint32_t *sfa) {
FP4_UNROLL
    for (int reg = 0; reg < 4; reg++)
        a[reg] = fp4_load_word(m, r0 + fp4_frag_a_row(lane, reg), kt + fp4_frag_a_k(lane, reg, 0));
    *sfa = fp4_load_scales(m, r0 + fp4_sfa_row_of_lane(lane), kt);
}

/* Fragment B of columns (rows of the stored matrix) c0 .. c0+7, k-tile kt. */
FP4_HD void fp4_load_frag_b(const fp4_mat &m, int c0, int kt, int lane, uint32_t b[2], uint32_t *sfb) {
FP4_UNROLL
    for (int reg = 0; reg < 2; reg++)
        b[reg] = fp4_load_word(m, c0 + fp4_frag_b_col(lane), kt + fp4_frag_b_k(lane, reg, 0));
    *sfb = fp4_load_scales(m, c0 + fp4_sfb_col_of_lane(lane), kt);
}

/* ---- the emulated MMA ------------------------------------------------------ */

/* What one lane needs from the warp's registers to compute its 4 outputs:
 * the rows g and g + 8 of A and the columns 2q and 2q + 1 of B as 8 words each
 * (word w = k 8w .. 8w+7), and their scale registers. */
typedef struct fp4_lane_view {
    uint32_t a[2][8];
    uint32_t b[2][8];
    uint32_t sa[2], sb[2];
} fp4_lane_view;

/* Fills the view of `lane` by asking `fetch` for registers of other lanes:
 * fetch.a(src, reg), fetch.b(src, reg), fetch.sfa(src), fetch.sfb(src). Every
 * lane makes the same sequence of calls (only the source lanes differ), so a
 * device fetch may use __shfl_sync. */
template <class Fetch> FP4_HD void fp4_mma_gather(int lane, const Fetch &fetch, fp4_lane_view *v) {
    int g = lane >> 2, q = lane & 3;
FP4_UNROLL
    for (int w = 0; w < 8; w++) {
        int src = 4 * g + (w & 3), hi = (w >> 2) ? 2 : 0; /* word w: a0/a2 of lane 4g + w%4 */
        v->a[0][w] = fetch.a(src, hi);
        v->a[1][w] = fetch.a(src, hi + 1);
        v->b[0][w] = fetch.b(4 * (2 * q) + (w & 3), w >> 2);
        v->b[1][w] = fetch.b(4 * (2 * q + 1) + (w & 3), w >> 2);
    }
    v->sa[0] = fetch.sfa(fp4_sfa_src_lane(g));
    v->sa[1] = fetch.sfa(fp4_sfa_src_lane(g + 8));
    v->sb[0] = fetch.sfb(fp4_sfb_src_lane(2 * q));
    v->sb[1] = fetch.sfb(fp4_sfb_src_lane(2 * q + 1));
}

/* d[i] = c[i] + sum over the 4 k-blocks of (exact block dot) * sfa * sfb, for
 * the lane's outputs i = 0..3 (fragment C/D layout). d may alias c. */
FP4_HD void fp4_mma_compute(const fp4_lane_view *v, const float c[4], float d[4]) {
    float out[4];
FP4_UNROLL
    for (int i = 0; i < 4; i++) {
        int h = (i >> 1) & 1, col = i & 1; /* row g + 8h, column 2q + col */
        float acc = c[i];
FP4_UNROLL
        for (int j = 0; j < 4; j++) {
            int dot = 0; /* sum of doubled values: exact integer */
            dot += fp4_dot8_x4(v->a[h][2 * j], v->b[col][2 * j]);
            dot += fp4_dot8_x4(v->a[h][2 * j + 1], v->b[col][2 * j + 1]);
            float scale = fp4_mul(fp4_ue4m3_value((v->sa[h] >> (8 * j)) & 0xffu),
                                  fp4_ue4m3_value((v->sb[col] >> (8 * j)) & 0xffu));
            acc = fp4_add(acc, fp4_mul(fp4_mul((float)dot, 0.25f), scale)); /* exact product */
        }
        out[i] = acc;
    }
    for (int i = 0; i < 4; i++) d[i] = out[i];
}

/* Register fetch over arrays holding all 32 lanes (host test, reference). */
typedef struct fp4_warp_regs {
    uint32_t a[32][4], b[32][2], sfa[32], sfb[32];
} fp4_warp_regs;

struct fp4_array_fetch {
    const fp4_warp_regs *r;
    FP4_HD uint32_t a(int src, int reg) const { return r->a[src][reg]; }
    FP4_HD uint32_t b(int src, int reg) const { return r->b[src][reg]; }
    FP4_HD uint32_t sfa(int src) const { return r->sfa[src]; }
    FP4_HD uint32_t sfb(int src) const { return r->sfb[src]; }
};

/* The whole warp's MMA over arrays: d[lane][4] = emulated mma(c[lane][4]). */
FP4_HD void fp4_mma_emulate_warp(const fp4_warp_regs *r, const float c[32][4], float d[32][4]) {
    struct fp4_array_fetch f = {r};
    for (int lane = 0; lane < 32; lane++) {
        fp4_lane_view v;
        fp4_mma_gather(lane, f, &v);
        fp4_mma_compute(&v, c[lane], d[lane]);
    }
}

} /* namespace fp4rt_fp4 */

#endif
