/* The pieces of speculative decoding in a loop, one kind at a time, so that
 * perf (or FP4RT_PROFILE) sees only that piece (issue 16's speed target).
 *
 * usage: spec_profile MODEL_DIR MODE [K] [REPS] [THREADS]
 *   MODE decode: REPS plain 1-token decode steps (session without MTP state)
 *        step:   REPS 1-token steps of a session with MTP state (the head fed)
 *        verify: REPS verify steps of K + 1 rows, each then keep(1) (the rows'
 *                greedy picks on the device where the backend can, as the
 *                speculative loop makes them)
 *        draft:  REPS rounds of K drafts
 *        round:  REPS rounds of K drafts + a verify of K + 1 rows + keep(1)
 * The prompt: ids 1 .. 32; positions stay within 32 .. 332 (as bench --gen 300).
 * Prints the median and mean wall time per repetition and the process's CPU
 * time per repetition (both threads: steadier than wall time on a loaded machine). */
#include "fp4rt.h"
#include "runtime/engine/model.h"
#include "runtime/engine/mtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return now_of(CLOCK_MONOTONIC); }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: spec_profile MODEL_DIR decode|step|verify|draft|round [K] [REPS] [THREADS]\n");
        return 2;
    }
    const char *mode = argv[2];
    int k = argc > 3 ? atoi(argv[3]) : 3, reps = argc > 4 ? atoi(argv[4]) : 1000;
    int threads = argc > 5 ? atoi(argv[5]) : 2;
    if (k < 1 || k > FP4RT_SPEC_MAX_DRAFTS || reps < 1) {
        fprintf(stderr, "spec_profile: K in 1 .. %d, REPS >= 1\n", FP4RT_SPEC_MAX_DRAFTS);
        return 2;
    }
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = threads;
    const char *dev = getenv("SPEC_PROFILE_DEVICE");
    if (dev) mp.device = dev;
    fp4rt_model *m = fp4rt_model_load(argv[1], &mp);
    if (!m) return 1;
    fp4rt_session_params sp = fp4rt_session_default_params();
    int n_prompt = 32;
    sp.n_ctx = n_prompt + 300; /* positions 32 .. ~330, as bench --gen 300 */
    sp.mtp = strcmp(mode, "decode") != 0;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    if (!s) return 1;
    int vocab = fp4rt_model_n_vocab(m);
    float *lg = malloc((size_t)(k + 1) * vocab * sizeof(float));
    int32_t prompt[32], tok[FP4RT_SPEC_MAX_DRAFTS + 1] = {0}, d[FP4RT_SPEC_MAX_DRAFTS];
    /* the verify rows picked on the device where it can, as the speculative loop does */
    int32_t pick_rows[FP4RT_SPEC_MAX_DRAFTS + 1], *picks = m->backend->argmax ? pick_rows : NULL;
    for (int i = 0; i < n_prompt; i++) prompt[i] = 1 + i;
    fp4rt_status st = fp4rt_session_eval(s, prompt, n_prompt, NULL, 0);
    double *t = calloc((size_t)reps, sizeof *t), cpu = 0;
    for (int r = 0; !st && r < reps; r++) {
        if (fp4rt_session_n_past(s) + k + 2 >= sp.n_ctx) { /* back to the prompt, untimed */
            fp4rt_session_reset(s);
            st = fp4rt_session_eval(s, prompt, n_prompt, NULL, 0);
            if (st) break;
        }
        double t0 = now(), c0 = now_of(CLOCK_PROCESS_CPUTIME_ID);
        if (!strcmp(mode, "decode") || !strcmp(mode, "step")) {
            st = fp4rt_session_step1(s, prompt[r % n_prompt], lg);
        } else if (!strcmp(mode, "verify")) {
            st = fp4rt_session_verify_pick(s, tok, k + 1, lg, picks);
            if (!st) st = fp4rt_session_keep(s, 1);
            if (!st) st = fp4rt_session_mtp_keep(s, fp4rt_session_n_past(s));
        } else if (!strcmp(mode, "draft")) {
            st = fp4rt_session_mtp_draft(s, prompt[r % n_prompt], k, NULL, d, NULL);
        } else if (!strcmp(mode, "round")) {
            st = fp4rt_session_mtp_draft(s, prompt[r % n_prompt], k, NULL, d, NULL);
            memcpy(tok + 1, d, (size_t)k * sizeof *d);
            if (!st) st = fp4rt_session_verify_pick(s, tok, k + 1, lg, picks);
            if (!st) st = fp4rt_session_keep(s, 1);
            if (!st) st = fp4rt_session_mtp_keep(s, fp4rt_session_n_past(s));
        } else {
            fprintf(stderr, "spec_profile: unknown mode %s\n", mode);
            return 2;
        }
        t[r] = now() - t0;
        cpu += now_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    if (st) {
        fprintf(stderr, "spec_profile: %s\n", fp4rt_last_error());
        return 1;
    }
    double sum = 0;
    for (int r = 0; r < reps; r++) sum += t[r];
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    printf("%-6s K=%d: %d reps, median %.3f ms, mean %.3f ms, CPU time (all threads) %.3f ms per rep\n", mode, k, reps,
           1e3 * t[reps / 2], 1e3 * sum / reps, 1e3 * cpu / reps);
    free(t);
    free(lg);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    return 0;
}
