/* Better-than-absmax NVFP4 block scales: Four Over Six and the MSE search
 * (contracts in nvfp4.h). The block-error kernel is the hot loop of `fp4rt
 * quantize --scale mse`: about 11 candidate scales per 16-element block, each a
 * branch-free pass over the block that GCC vectorizes (compiled for AVX2 and
 * baseline x86-64, picked at load time). */
#include "runtime/tools/nvfp4.h"

#include "runtime/base/numfmt.h"

#include <math.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FP4RT_NO_MULTIVERSION)
#define FP4RT_HOT __attribute__((target_clones("avx2", "default")))
#else
#define FP4RT_HOT
#endif

#define BLK FP4RT_NVFP4_BLOCK

static const char *const k_names[] = {"absmax", "4over6", "mse"};

const char *fp4rt_scale_strategy_name(fp4rt_scale_strategy s) {
    return (unsigned)s < 3 ? k_names[s] : NULL;
}

int fp4rt_scale_strategy_parse(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, k_names[i])) return i;
    return -1;
}

float fp4rt_nvfp4_tensor_scale_for(fp4rt_scale_strategy s, float amax) {
    if (s == FP4RT_SCALE_ABSMAX) return fp4rt_nvfp4_weight_tensor_scale(amax);
    if (amax == 0.0f) return 1.0f;
    return amax / (FP4RT_E2M1_MAX * 256.0f); /* 1536 is exact in fp32 */
}

/* E2M1 magnitude of a >= 0: round to nearest of {0, .5, 1, 1.5, 2, 3, 4, 6},
 * ties to the even code, saturating at 6 (the same function as
 * fp4rt_f32_to_e2m1, written as a sum of steps so that it vectorizes). */
static inline float e2m1_mag(float a) {
    return (a > 0.25f ? 0.5f : 0.0f) + (a >= 0.75f ? 0.5f : 0.0f) + (a > 1.25f ? 0.5f : 0.0f) +
           (a >= 1.75f ? 0.5f : 0.0f) + (a > 2.5f ? 1.0f : 0.0f) + (a >= 3.5f ? 1.0f : 0.0f) +
           (a > 5.0f ? 2.0f : 0.0f);
}

/* Sum of 16 terms in a fixed pairwise order (vectorizable, deterministic). */
static inline float sum16(float *t) {
    for (int i = 0; i < 8; i++) t[i] += t[i + 8];
    for (int i = 0; i < 4; i++) t[i] += t[i + 4];
    return (t[0] + t[2]) + (t[1] + t[3]);
}

/* Weighted block error for scale value sb (E4M3, as float) under s2. ax holds
 * |x| of the block; the dequantized magnitude is (e2m1 * sb) * s2 as the runtime
 * forms it, and the code is RNE of |x| / (sb * s2), the divisor in fp32 first. */
FP4RT_HOT static float block_err(const float *ax, const float *w, float sb, float s2, int mae) {
    float div = sb * s2, t[BLK];
    for (int i = 0; i < BLK; i++) {
        float d = (e2m1_mag(ax[i] / div) * sb) * s2;
        float e = ax[i] - d;
        t[i] = mae ? w[i] * fabsf(e) : w[i] * e * e;
    }
    return sum16(t);
}

static const float k_ones[BLK] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

float fp4rt_nvfp4_block_error(const float *x, const float *w, uint8_t code, float s2,
                              fp4rt_err_metric metric) {
    fp4rt_numfmt_init();
    float ax[BLK];
    for (int i = 0; i < BLK; i++) ax[i] = fabsf(x[i]);
    return block_err(ax, w ? w : k_ones, fp4rt_e4m3_to_f32(code), s2, metric == FP4RT_ERR_MAE);
}

/* E4M3 code of a block scale amax_b / (m * s2), clamped to [2^-9, 448] as in
 * ModelOpt's static path (amax_b > 0). */
static uint8_t scale_code(float amax_b, float m, float s2) {
    float sb = amax_b / (m * s2);
    if (sb < 0.001953125f) sb = 0.001953125f;
    if (sb > FP4RT_E4M3_MAX) sb = FP4RT_E4M3_MAX;
    return fp4rt_f32_to_e4m3_sat(sb);
}

/* Chooses the E4M3 code of one block (amax_b > 0); see nvfp4.h. */
static uint8_t choose_code(const float *ax, const float *w, float amax_b, float s2,
                           fp4rt_scale_strategy s, int mae) {
    uint8_t c6 = scale_code(amax_b, FP4RT_E2M1_MAX, s2);
    uint8_t c4 = scale_code(amax_b, 4.0f, s2);
    float e6 = block_err(ax, w, fp4rt_e4m3_to_f32(c6), s2, mae);
    uint8_t best = c6;
    float be = e6;
    if (c4 != c6) {
        float e4 = block_err(ax, w, fp4rt_e4m3_to_f32(c4), s2, mae);
        if (e4 < be) best = c4, be = e4;
    }
    if (s != FP4RT_SCALE_MSE) return best;
    int lo = c6 - FP4RT_MSE_CODES_BELOW, hi = c6 + FP4RT_MSE_CODES_ABOVE;
    if (lo < 1) lo = 1;
    if (hi > 0x7e) hi = 0x7e;
    for (int c = lo; c <= hi; c++) {
        if (c == c6 || c == c4) continue;
        float e = block_err(ax, w, fp4rt_e4m3_to_f32((uint8_t)c), s2, 0);
        if (e < be) best = (uint8_t)c, be = e;
    }
    return best;
}

void fp4rt_nvfp4_quantize_row_with(const float *x, size_t k, float s2, fp4rt_scale_strategy s,
                                   fp4rt_err_metric metric, const float *w, uint8_t *packed,
                                   uint8_t *scales) {
    if (s == FP4RT_SCALE_ABSMAX) {
        fp4rt_nvfp4_quantize_row(x, k, s2, packed, scales);
        return;
    }
    fp4rt_numfmt_init();
    int mae = s == FP4RT_SCALE_4OVER6 && metric == FP4RT_ERR_MAE;
    for (size_t b = 0; b < k / BLK; b++) {
        const float *xb = x + b * BLK;
        const float *wb = w && s == FP4RT_SCALE_MSE ? w + b * BLK : k_ones;
        float ax[BLK], amax_b = 0.0f;
        for (int i = 0; i < BLK; i++) {
            ax[i] = fabsf(xb[i]);
            amax_b = ax[i] > amax_b ? ax[i] : amax_b;
        }
        uint8_t *pb = packed + b * (BLK / 2);
        if (amax_b == 0.0f) { /* all-zero block: scale 1.0, codes 0, as ModelOpt */
            scales[b] = 0x38;
            memset(pb, 0, BLK / 2);
            continue;
        }
        uint8_t sc = choose_code(ax, wb, amax_b, s2, s, mae);
        scales[b] = sc;
        float div = fp4rt_e4m3_to_f32(sc) * s2;
        for (int i = 0; i < BLK; i += 2) {
            uint8_t c0 = fp4rt_f32_to_e2m1(xb[i] / div);
            uint8_t c1 = fp4rt_f32_to_e2m1(xb[i + 1] / div);
            pb[i / 2] = (uint8_t)(c0 | (c1 << 4));
        }
    }
}
