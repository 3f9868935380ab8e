/* Comparing logits of two backends (fp4rt verify, tests): NMSE, the largest
 * absolute difference, and argmax agreement where the reference's top-2 margin
 * is clear of the error. */
#ifndef FP4RT_LOGIT_COMPARE_H
#define FP4RT_LOGIT_COMPARE_H

#include <stddef.h>

typedef struct fp4rt_logit_cmp {
    double nmse;     /* sum (a - ref)^2 / sum ref^2 over all rows */
    double max_abs;  /* max |a - ref| */
    long nonfinite;  /* NaN / Inf entries in a */
    int rows;        /* rows compared */
    int same_argmax; /* rows whose argmax equals the reference's */
    double ref_rms;  /* sqrt(mean ref^2) */
    int clear_rows;  /* rows whose reference top-2 margin exceeds margin_rel x ref_rms */
    int clear_bad;   /* clear rows whose argmax differs */
} fp4rt_logit_cmp;

/* Compares rows x V logits a against ref (row-major). A row is "clear" when its
 * reference top-2 margin exceeds margin_rel x ref_rms: the error a backend may
 * have is bounded by the NMSE ceiling (an RMS error of sqrt(ceiling) x ref_rms),
 * so with margin_rel = 2 sqrt(ceiling) (2e-3 for 1e-6) a clear row that changes
 * its argmax is a real disagreement, while near ties may flip. */
void fp4rt_logit_compare(const float *a, const float *ref, int rows, int V, double margin_rel,
                         fp4rt_logit_cmp *out);

/* Index of the largest value (the first of equal ones). */
int fp4rt_logit_argmax(const float *x, int V);

/* Agreement under a ceiling: no non-finite values, nmse <= max_nmse, no clear
 * row with a different argmax. Returns 1 when a agrees with ref. */
int fp4rt_logit_agree(const fp4rt_logit_cmp *c, double max_nmse);

#endif
