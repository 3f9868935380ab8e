/* The comparison fp4rt verify decides with: agreement, and each way of
 * disagreeing (NMSE over the ceiling, a clear argmax flip, non-finite values);
 * near ties may flip without failing. */
#include "tests/test_util.h"

#include "runtime/tools/logit_compare.h"

int main(void) {
    enum { R = 3, V = 8 };
    float ref[R * V], a[R * V];
    for (int i = 0; i < R * V; i++) ref[i] = (float)((i * 37) % 11) - 5.0f;
    /* row 0: top 5 at index 3 (margin 1); make row 2 a near tie */
    for (int v = 0; v < V; v++) ref[2 * V + v] = (float)v * 0.1f;
    ref[2 * V + 6] = 0.7f - 1e-6f; /* 6 vs 7: margin 1e-6 */
    memcpy(a, ref, sizeof a);

    fp4rt_logit_cmp c;
    fp4rt_logit_compare(a, ref, R, V, 2e-3, &c);
    CHECK(c.nmse == 0 && c.max_abs == 0 && c.nonfinite == 0);
    CHECK_EQ_INT(c.same_argmax, R);
    CHECK(fp4rt_logit_agree(&c, 1e-6));

    /* a small error everywhere: agrees; the near tie flips and is not counted */
    for (int i = 0; i < R * V; i++) a[i] = ref[i] + ((i % 2) ? 1e-5f : -1e-5f);
    a[2 * V + 6] = a[2 * V + 7] + 2e-6f;
    fp4rt_logit_compare(a, ref, R, V, 2e-3, &c);
    CHECK_MSG(c.nmse > 0 && c.nmse < 1e-6, "nmse %g", c.nmse);
    CHECK_EQ_INT(c.same_argmax, R - 1);
    CHECK_EQ_INT(c.clear_bad, 0);
    CHECK(fp4rt_logit_agree(&c, 1e-6));

    /* NMSE over the ceiling */
    memcpy(a, ref, sizeof a);
    a[5] += 0.5f;
    fp4rt_logit_compare(a, ref, R, V, 2e-3, &c);
    CHECK_MSG(c.nmse > 1e-6, "nmse %g", c.nmse);
    CHECK(!fp4rt_logit_agree(&c, 1e-6));
    CHECK(fp4rt_logit_agree(&c, 1.0));

    /* a clear argmax flip fails even under a loose NMSE ceiling: row 0's top
     * (4 at index 5, margin 1 over index 2) moved below the second */
    memcpy(a, ref, sizeof a);
    CHECK_EQ_INT(fp4rt_logit_argmax(ref, V), 5);
    a[5] -= 1.5f;
    fp4rt_logit_compare(a, ref, R, V, 2e-3, &c);
    CHECK_EQ_INT(c.clear_bad, 1);
    CHECK(!fp4rt_logit_agree(&c, 1.0));

    /* non-finite output fails */
    memcpy(a, ref, sizeof a);
    a[V + 1] = NAN;
    fp4rt_logit_compare(a, ref, R, V, 2e-3, &c);
    CHECK_EQ_INT(c.nonfinite, 1);
    CHECK(!fp4rt_logit_agree(&c, 1.0));
    return test_summary("test_logit_compare");
}
