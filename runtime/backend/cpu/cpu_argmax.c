/* The CPU backend's greedy pick (backend.h: the argmax slot and
 * fp4rt_step.argmax_out / argmax_all; contract: fp4rt_cpu_argmax_row in
 * cpu_ops.h). Two passes over the row: the largest value among the valid ids
 * (invalid ids count as -inf) and whether a valid one is NaN, then the first
 * id holding that value. Both are exact comparisons, so every instruction set
 * returns the id of the scalar strict-greater scan, which is what the greedy
 * sampler (runtime/text/sampler.c) returns when no valid logit is NaN. On the
 * CPU the pick saves the engine a copy of the row and a scalar scan: 4 rows of
 * 8192 logits per verify step and one row per draft of speculative decoding. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"

#include <math.h>

/* The scalar scan over [i0, n): updates *best (the largest valid value so far)
 * and *nan; returns nothing else (pass 1 of the contract). */
static void max_tail(const float *l, int i0, int n, const uint8_t *valid, float *best, int *nan) {
    for (int i = i0; i < n; i++) {
        float v = valid && !valid[i] ? -INFINITY : l[i];
        if (isnan(v))
            *nan = 1;
        else if (v > *best)
            *best = v;
    }
}

/* The first id in [i0, n) whose value (invalid: -inf) equals m, or -1. */
static int first_tail(const float *l, int i0, int n, const uint8_t *valid, float m) {
    for (int i = i0; i < n; i++)
        if ((valid && !valid[i] ? -INFINITY : l[i]) == m) return i;
    return -1;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET512 __attribute__((target("avx2,avx512f")))
#define TARGET2 __attribute__((target("avx2")))

/* 16 values of l at i with the invalid ids (valid[i + lane] == 0) set to -inf. */
TARGET512 static inline __m512 load16(const float *l, const uint8_t *valid, int i) {
    __m512 v = _mm512_loadu_ps(l + i);
    if (!valid) return v;
    __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(valid + i)));
    __mmask16 ok = _mm512_test_epi32_mask(b, b);
    return _mm512_mask_blend_ps(ok, _mm512_set1_ps(-INFINITY), v);
}

TARGET512 static int32_t argmax512(const float *l, int n, const uint8_t *valid) {
    int n16 = n & ~15, nan = 0;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    __mmask16 un = 0;
    for (int i = 0; i < n16; i += 16) {
        __m512 v = load16(l, valid, i);
        un |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        mx = _mm512_max_ps(v, mx); /* a NaN lane of v keeps mx's (the second operand); un has it */
    }
    float best = _mm512_reduce_max_ps(mx);
    nan = un != 0;
    max_tail(l, n16, n, valid, &best, &nan);
    if (nan) return -1;
    __m512 m = _mm512_set1_ps(best);
    for (int i = 0; i < n16; i += 16) {
        __mmask16 eq = _mm512_cmp_ps_mask(load16(l, valid, i), m, _CMP_EQ_OQ);
        if (eq) return i + __builtin_ctz(eq);
    }
    int id = first_tail(l, n16, n, valid, best);
    return id < 0 ? 0 : id;
}

/* 8 values of l at i with the invalid ids set to -inf. */
TARGET2 static inline __m256 load8(const float *l, const uint8_t *valid, int i) {
    __m256 v = _mm256_loadu_ps(l + i);
    if (!valid) return v;
    __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(valid + i)));
    __m256 bad = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, _mm256_setzero_si256()));
    return _mm256_blendv_ps(v, _mm256_set1_ps(-INFINITY), bad);
}

TARGET2 static int32_t argmax256(const float *l, int n, const uint8_t *valid) {
    int n8 = n & ~7, nan = 0;
    __m256 mx = _mm256_set1_ps(-INFINITY), un = _mm256_setzero_ps();
    for (int i = 0; i < n8; i += 8) {
        __m256 v = load8(l, valid, i);
        un = _mm256_or_ps(un, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        mx = _mm256_max_ps(v, mx); /* a NaN lane of v keeps mx's (the second operand); un has it */
    }
    float lanes[8], best = -INFINITY;
    _mm256_storeu_ps(lanes, mx);
    for (int k = 0; k < 8; k++)
        if (lanes[k] > best) best = lanes[k];
    nan = _mm256_movemask_ps(un) != 0;
    max_tail(l, n8, n, valid, &best, &nan);
    if (nan) return -1;
    __m256 m = _mm256_set1_ps(best);
    for (int i = 0; i < n8; i += 8) {
        int eq = _mm256_movemask_ps(_mm256_cmp_ps(load8(l, valid, i), m, _CMP_EQ_OQ));
        if (eq) return i + __builtin_ctz((unsigned)eq);
    }
    int id = first_tail(l, n8, n, valid, best);
    return id < 0 ? 0 : id;
}
#endif

int32_t fp4rt_cpu_argmax_row(const float *l, int n, const uint8_t *valid, int isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (isa >= FP4RT_CPU_ISA_AVX512) return argmax512(l, n, valid);
    if (isa >= FP4RT_CPU_ISA_AVX2) return argmax256(l, n, valid);
#else
    (void)isa;
#endif
    float best = -INFINITY;
    int nan = 0;
    max_tail(l, 0, n, valid, &best, &nan);
    if (nan) return -1;
    int id = first_tail(l, 0, n, valid, best);
    return id < 0 ? 0 : id;
}

fp4rt_status fp4rt_cpu_argmax(void *vc, fp4rt_buffer *logits, size_t offset, int n,
                              const uint8_t *valid, int32_t *out) {
    cpu_ctx *c = vc;
    if (n < 1 || offset > logits->bytes / sizeof(float) ||
        (size_t)n > logits->bytes / sizeof(float) - offset)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "cpu argmax of %d logits at float %zu of a %zu-byte buffer", n, offset,
                          logits->bytes);
    *out = fp4rt_cpu_argmax_row((const float *)logits->data + offset, n, valid, c->isa);
    return FP4RT_OK;
}

void fp4rt_cpu_step_picks(const cpu_step *s) {
    const fp4rt_step *st = s->step;
    int vocab = s->p->weights->cfg.vocab, n = st->logits_rows ? st->logits_rows : vocab;
    if (!st->argmax_all) { /* the last row's: row 0 of the logits unless every row has them */
        size_t row = st->all_logits ? (size_t)(st->n_tokens - 1) * vocab : 0;
        *st->argmax_out = fp4rt_cpu_argmax_row(s->logits + row, n, st->argmax_valid, s->ctx->isa);
        return;
    }
    for (int r = 0; r < st->n_tokens; r++)
        st->argmax_out[r] =
            fp4rt_cpu_argmax_row(s->logits + (size_t)r * vocab, n, st->argmax_valid, s->ctx->isa);
}
