/* fp4rt bench: where the time goes (issue 14 item 5). After the timed runs, bench
 * measures the arithmetic peak of the backend's linear kernels (backend.h
 * measure_arith_peak) and sets the prefill's linear work against it, then runs
 * the same prefill and decode once more with per-op timing on and prints each
 * phase's shares per op kind (the profile's op kinds, as --profile logs them). */
#include "cli/commands.h"

#include "runtime/engine/model.h"
#include "runtime/model/program.h"

#include <stdio.h>
#include <stdlib.h>

/* "linear 61.1% (12.3 GFLOP/s), gated_delta 21.2%, ...": op kinds by share, the
 * largest first, those under 1% folded into "other". */
static void print_shares(const char *label, const double *sec, const long *calls, double linear_flops) {
    double total = 0;
    int order[FP4RT_OP_COUNT], n = 0;
    for (int k = 0; k < FP4RT_OP_COUNT; k++) {
        total += sec[k];
        if (calls[k]) order[n++] = k;
    }
    if (total <= 0) return;
    for (int i = 1; i < n; i++) /* insertion sort, largest share first */
        for (int j = i; j > 0 && sec[order[j]] > sec[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    printf("%-16s", label);
    double other = 0;
    for (int i = 0; i < n; i++) {
        int k = order[i];
        double share = 100 * sec[k] / total;
        if (share < 1.0) {
            other += share;
            continue;
        }
        printf("%s%s %.1f%%", i ? ", " : " ", fp4rt_op_name((fp4rt_op_kind)k), share);
        if (k == FP4RT_OP_LINEAR && linear_flops > 0 && sec[k] > 0)
            printf(" (%.1f GFLOP/s)", linear_flops / sec[k] / 1e9);
    }
    if (other > 0) printf(", other %.1f%%", other);
    printf("\n");
}

int fp4rt_cli_bench_attribution(fp4rt_model *m, const fp4rt_session_params *sp, const int32_t *ids, int n_prompt,
                                int n_gen, double t_prefill, int keep_profile) {
    double peak = 0;
    char what[160];
    fp4rt_status st = fp4rt_model_arith_peak(m, fp4rt_numerics_relaxed(sp->exact), &peak, what, sizeof what);
    if (st) fprintf(stderr, "fp4rt: bench: arithmetic peak not measured: %s\n", fp4rt_last_error());
    double flops = fp4rt_model_linear_flops(m, n_prompt);
    if (peak > 0) {
        printf("arithmetic peak  %.1f GFLOP/s (%s)\n", peak / 1e9, what);
        printf("prefill linears  %.2f GFLOP per prefill, %.1f GFLOP/s over the whole prefill: %.1f%% of the peak\n",
               flops / 1e9, flops / t_prefill / 1e9, 100 * flops / t_prefill / peak);
    }
    /* the profiled pass: a fresh session, the same prompt, greedy decode */
    double sec[FP4RT_OP_COUNT], pre_sec[FP4RT_OP_COUNT];
    long calls[FP4RT_OP_COUNT], pre_calls[FP4RT_OP_COUNT];
    if (fp4rt_model_profile_set(m, 1)) return 0; /* no profile on this backend: nothing more to say */
    fp4rt_session *s = fp4rt_session_create(m, sp);
    int vocab = fp4rt_model_n_vocab(m);
    float *logits = malloc((size_t)vocab * sizeof(float));
    st = s && logits ? fp4rt_model_profile_take(m, sec, calls) : FP4RT_OUT_OF_MEMORY; /* drop the timed runs' */
    if (!st) st = fp4rt_session_eval(s, ids, n_prompt, logits, 0);
    if (!st) st = fp4rt_model_profile_take(m, pre_sec, pre_calls);
    for (int g = 0; g < n_gen && !st; g++) {
        int32_t next = 0;
        for (int i = 1; i < vocab; i++)
            if (logits[i] > logits[next]) next = i;
        st = fp4rt_session_eval(s, &next, 1, logits, 0);
    }
    if (!st) st = fp4rt_model_profile_take(m, sec, calls);
    fp4rt_session_free(s);
    free(logits);
    fp4rt_status st2 = keep_profile ? FP4RT_OK : fp4rt_model_profile_set(m, 0);
    if (st || st2) return fp4rt_cli_fail(st ? st : st2);
    print_shares("prefill ops", pre_sec, pre_calls, flops);
    if (peak > 0 && pre_sec[FP4RT_OP_LINEAR] > 0)
        printf("prefill linears  %.1f%% of the peak in the linears' own time (the profiled pass)\n",
               100 * flops / pre_sec[FP4RT_OP_LINEAR] / peak);
    print_shares("decode ops", sec, calls, fp4rt_model_linear_flops(m, 1) * n_gen);
    return 0;
}
