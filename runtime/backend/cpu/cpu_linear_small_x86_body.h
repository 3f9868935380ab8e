/* The small-step kernel (contract: cpu_linear_small_x86.c) of one NVFP4
 * decoder, included by cpu_linear_small_x86.c once per decoder with these
 * macros defined: TGT (target attribute), SFX(name) (the instance's suffix),
 * NVFP4X16(p, code) (the 16 weights of the 8 bytes at p times the E4M3 block
 * scale `code`, as FP32: the values fp4rt_e2m1_table[c] * fp4rt_e4m3_table[code]
 * of the one-row kernel), ONLY_NVFP4 (1: the instance runs NVFP4 weights only;
 * its BF16 and FP8 cases are left out). */

/* Rows n0 .. n0 + R - 1 (R <= 4; missing rows repeat row n0, results dropped)
 * against T tokens; T, the format and the mode are constants after inlining. */
TGT INLINE void SFX(small512)(const cpu_lin_job *j, int n0, int R, int T, int fmt, int relaxed) {
    const fp4rt_linear *l = j->l;
    size_t K = (size_t)l->n_in;
    size_t rn[4];
    for (int r = 0; r < 4; r++)
        rn[r] = (size_t)n0 + (size_t)(r < R ? r : 0);
    const uint16_t *wb[4] = {0};
    const uint8_t *wq[4] = {0}, *sb[4] = {0};
    for (int r = 0; r < 4; r++) {
        if (fmt == FP4RT_W_BF16) {
            wb[r] = (const uint16_t *)l->weight + rn[r] * K;
        } else if (fmt == FP4RT_W_FP8) {
            wq[r] = (const uint8_t *)l->weight + rn[r] * K;
        } else {
            wq[r] = (const uint8_t *)l->weight + rn[r] * (K / 2);
            sb[r] = l->block_scale + rn[r] * (K / 16);
        }
    }
    const float *x[FP4RT_SMALL_TOKENS_MAX];
    for (int t = 0; t < T; t++)
        x[t] = j->x + (size_t)t * j->x_stride;
    __m512 a0[FP4RT_SMALL_TOKENS_MAX], a1[FP4RT_SMALL_TOKENS_MAX], a2[FP4RT_SMALL_TOKENS_MAX],
        a3[FP4RT_SMALL_TOKENS_MAX];
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = a2[t] = a3[t] = _mm512_setzero_ps();
    __m512i nan[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    const __m512 e2m1 = _mm512_loadu_ps(fp4rt_e2m1_table); /* for NVFP4X16 */
    (void)e2m1;
    for (size_t k = 0; k < K; k += 16) {
        __m512 v0, v1, v2, v3;
        if (fmt == FP4RT_W_BF16) {
            if (!(k & 31)) /* the panel PF panels ahead, one line per row per 32 weights */
                for (int r = 0; r < 4; r++)
                    _mm_prefetch((const char *)(wb[r] + k + PF * 4 * K), _MM_HINT_T0);
            v0 = bf16x16(wb[0] + k), v1 = bf16x16(wb[1] + k), v2 = bf16x16(wb[2] + k),
            v3 = bf16x16(wb[3] + k);
        } else if (fmt == FP4RT_W_FP8) {
            if (!(k & 63)) /* one line per row per 64 weights; the NaN check of the 64 */
                for (int r = 0; r < 4; r++) {
                    _mm_prefetch((const char *)(wq[r] + k + PF * 4 * K), _MM_HINT_T0);
                    nan[r] = nan_acc(nan[r], wq[r] + k, (int)(K - k));
                }
            v0 = e4m3x16(wq[0] + k), v1 = e4m3x16(wq[1] + k), v2 = e4m3x16(wq[2] + k),
            v3 = e4m3x16(wq[3] + k);
        } else {
            if (!(k & 127)) /* one line per row per 128 weights, to L2 (PF_NVFP4) */
                for (int r = 0; r < 4; r++)
                    _mm_prefetch((const char *)(wq[r] + k / 2 + PF_NVFP4 * 2 * K), _MM_HINT_T1);
            v0 = NVFP4X16(wq[0] + k / 2, sb[0][k / 16]);
            v1 = NVFP4X16(wq[1] + k / 2, sb[1][k / 16]);
            v2 = NVFP4X16(wq[2] + k / 2, sb[2][k / 16]);
            v3 = NVFP4X16(wq[3] + k / 2, sb[3][k / 16]);
        }
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_loadu_ps(x[t] + k);
            a0[t] = chain16(a0[t], v0, xv, relaxed);
            a1[t] = chain16(a1[t], v1, xv, relaxed);
            a2[t] = chain16(a2[t], v2, xv, relaxed);
            a3[t] = chain16(a3[t], v3, xv, relaxed);
        }
    }
    for (int t = 0; t < T; t++) {
        float post = j->row_post ? j->row_post[t] : j->post;
        float *y = j->y + (size_t)t * j->y_stride + n0;
        float s[4] = {reduce512(a0[t]), reduce512(a1[t]), reduce512(a2[t]), reduce512(a3[t])};
        if (fmt == FP4RT_W_FP8)
            for (int r = 0; r < 4; r++)
                s[r] = nan_any(nan[r]) ? NAN : s[r] * 256.0f;
        for (int r = 0; r < R; r++)
            y[r] = s[r] * post;
    }
}

#define SMALL_CASES(FMT, RELAXED)                                                                  \
    switch (T) {                                                                                   \
    case 1:                                                                                        \
        SFX(small512)(j, n0, R, 1, FMT, RELAXED);                                                  \
        break;                                                                                     \
    case 2:                                                                                        \
        SFX(small512)(j, n0, R, 2, FMT, RELAXED);                                                  \
        break;                                                                                     \
    case 3:                                                                                        \
        SFX(small512)(j, n0, R, 3, FMT, RELAXED);                                                  \
        break;                                                                                     \
    case 4:                                                                                        \
        SFX(small512)(j, n0, R, 4, FMT, RELAXED);                                                  \
        break;                                                                                     \
    case 5:                                                                                        \
        SFX(small512)(j, n0, R, 5, FMT, RELAXED);                                                  \
        break;                                                                                     \
    default:                                                                                       \
        SFX(small512)(j, n0, R, 6, FMT, RELAXED);                                                  \
        break;                                                                                     \
    }

TGT INLINE void SFX(panels512)(const cpu_lin_job *j, long p0, long p1, int relaxed) {
    int T = j->n_rows, n_out = j->n_out, fmt = j->l->fmt;
    for (long p = p0; p < p1; p++) {
        int n0 = (int)p * 4, R = n_out - n0 < 4 ? n_out - n0 : 4;
        if (!ONLY_NVFP4 && fmt == FP4RT_W_BF16) {
            SMALL_CASES(FP4RT_W_BF16, relaxed)
        } else if (!ONLY_NVFP4 && fmt == FP4RT_W_FP8) {
            SMALL_CASES(FP4RT_W_FP8, relaxed)
        } else {
            SMALL_CASES(FP4RT_W_NVFP4, relaxed)
        }
    }
}
TGT static void SFX(panels512_exact)(const cpu_lin_job *j, long p0, long p1) {
    SFX(panels512)(j, p0, p1, 0);
}
TGT static void SFX(panels512_fma)(const cpu_lin_job *j, long p0, long p1) {
    SFX(panels512)(j, p0, p1, 1);
}
#undef SMALL_CASES
