/* Logit comparison (see logit_compare.h). */
#include "runtime/tools/logit_compare.h"

#include <math.h>
#include <string.h>

int fp4rt_logit_argmax(const float *x, int V) {
    int b = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

void fp4rt_logit_compare(const float *a, const float *ref, int rows, int V, double margin_rel,
                         fp4rt_logit_cmp *out) {
    memset(out, 0, sizeof *out);
    size_t n = (size_t)rows * (size_t)V;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) {
            out->nonfinite++;
            continue;
        }
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (fabs(d) > out->max_abs) out->max_abs = fabs(d);
    }
    out->nmse = den > 0 ? num / den : num;
    out->rows = rows;
    out->ref_rms = n ? sqrt(den / (double)n) : 0;
    for (int t = 0; t < rows && V > 1; t++) {
        const float *r = ref + (size_t)t * V;
        int top = fp4rt_logit_argmax(r, V), second = top == 0 ? 1 : 0;
        for (int i = 0; i < V; i++)
            if (i != top && r[i] > r[second]) second = i;
        int same = fp4rt_logit_argmax(a + (size_t)t * V, V) == top;
        out->same_argmax += same;
        if ((double)r[top] - (double)r[second] > margin_rel * out->ref_rms) {
            out->clear_rows++;
            out->clear_bad += !same;
        }
    }
}

int fp4rt_logit_agree(const fp4rt_logit_cmp *c, double max_nmse) {
    return c->nonfinite == 0 && c->nmse <= max_nmse && c->clear_bad == 0;
}
