/* fp4rt verify: runs the model on every available device (the CPU reference,
 * every Vulkan device including software ones, and whatever else
 * fp4rt_device_get lists), compares teacher-forced logits and greedy tokens
 * against the CPU and prints one table. Exit 0 when every row agrees, 1 on
 * a mismatch (the default-mode row's included) or a device that fails to run.
 *
 * What is compared, per device (runtime/tools/logit_compare.h):
 *   - prefill: the logits of every prompt position (one prefill);
 *   - decode: N greedy steps after the prompt, each device fed the CPU's
 *     choice (teacher-forced, so one near-tie cannot derail the rest); the
 *     tokens each device picks are counted against the CPU's.
 * A device agrees when prefill NMSE <= --max-nmse (default 5e-4: the numerics
 * contract's ceiling where FP16 operands feed matrix units in prefill),
 * decode NMSE <= --max-decode-nmse (default 1e-6, the contract's decode
 * ceiling), nothing is non-finite, and no step whose CPU top-2 margin is clear
 * of the error (2 sqrt(ceiling) x RMS of the logits) picks another token.
 *
 * Numerics modes (docs/NUMERICS.md "Modes"): the reference and every device run
 * in the exact mode; one more row, "cpu (default mode)", runs the CPU in the
 * default mode (teacher-forced with the exact CPU's picks) and is judged against
 * the default mode's bound, NMSE <= 1e-6 in prefill and decode, whatever the
 * ceilings. --exact leaves that row out, as FP4RT_EXACT=1 does (it forces every
 * session exact: the row would compare the exact mode with itself). */
#include "cli/commands.h"

#include "runtime/engine/model.h"
#include "runtime/tools/logit_compare.h"

#include <math.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "--model DIR [--prompt TEXT | --tokens 1,2,3|@FILE] [-n N] [--max-nmse X] [--max-decode-nmse X]\n"
    "    [--threads N] [--chunk N] [--kv bf16|f32|fp8] [--exact]";

/* The default mode's promised distance to the exact mode (docs/NUMERICS.md "Modes"). */
#define DEFAULT_MODE_NMSE 1e-6

/* What one device produced. */
typedef struct dev_run {
    fp4rt_device_info info;
    float *prefill; /* [n_prompt, V] */
    float *decode;  /* [n_gen, V]: logits after the prompt, then after each CPU token */
    int32_t *picks; /* [n_gen] this device's argmax at each step */
    double prefill_s, decode_s;
    int vocab;
    int skipped;     /* present but not usable by this build: not compared */
    int relaxed;     /* the CPU's default-mode row (the others run exact) */
    char error[256]; /* non-empty: the device failed to run (or why it was skipped) */
    char desc[256]; /* fp4rt_model_device: up to 255 characters */
} dev_run;

/* Runs prompt + n_gen teacher-forced greedy steps on one device, in the exact
 * mode unless r->relaxed. feed: the tokens to continue with (the CPU's picks),
 * NULL on the CPU reference itself (it feeds its own picks). */
static void run_device(const fp4rt_cli_model_opts *o, const int32_t *prompt, int n, int n_gen,
                       const int32_t *feed, dev_run *r) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = r->info.name;
    mp.n_threads = o->threads;
    fp4rt_model *m = fp4rt_model_load(o->model, &mp);
    fp4rt_session *s = NULL;
    fp4rt_session_params sp = o->session;
    sp.n_ctx = n + n_gen + 1;
    sp.exact = !r->relaxed;
    if (m) s = fp4rt_session_create(m, &sp);
    if (!m || !s) {
        snprintf(r->error, sizeof r->error, "%s", fp4rt_last_error());
        fp4rt_model_free(m);
        return;
    }
    snprintf(r->desc, sizeof r->desc, "%s", fp4rt_model_device(m));
    int V = r->vocab = fp4rt_model_n_vocab(m);
    r->prefill = malloc((size_t)n * V * sizeof(float));
    r->decode = malloc((size_t)n_gen * V * sizeof(float));
    r->picks = malloc((size_t)n_gen * sizeof(int32_t));
    fp4rt_status st = r->prefill && r->decode && r->picks ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    double t0 = fp4rt_cli_now();
    if (!st) st = fp4rt_session_eval(s, prompt, n, r->prefill, 1);
    r->prefill_s = fp4rt_cli_now() - t0;
    if (!st) memcpy(r->decode, r->prefill + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    t0 = fp4rt_cli_now();
    for (int g = 0; !st && g < n_gen; g++) {
        r->picks[g] = fp4rt_logit_argmax(r->decode + (size_t)g * V, V);
        if (g + 1 == n_gen) break;
        int32_t next = feed ? feed[g] : r->picks[g];
        st = fp4rt_session_eval(s, &next, 1, r->decode + (size_t)(g + 1) * V, 0);
    }
    r->decode_s = fp4rt_cli_now() - t0;
    if (st) snprintf(r->error, sizeof r->error, "%s", fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
}

/* A deterministic prompt for checkpoints without a tokenizer: n ids in [0, V). */
static int32_t *default_ids(int n, int V) {
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; ids && i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)V);
    }
    return ids;
}

static const char *kind_name(fp4rt_device_kind k) {
    return k == FP4RT_DEVICE_CPU ? "cpu" : k == FP4RT_DEVICE_VULKAN ? "vulkan" : k == FP4RT_DEVICE_CUDA ? "cuda" : "?";
}

/* Prints run r's row against the reference ref (V 0: the reference failed) with
 * the ceilings pre / dec; returns 1 when it counts as a mismatch. */
static int print_row(const dev_run *r, const dev_run *ref, int V, int n, int n_gen, double pre, double dec,
                     int is_ref) {
    char label[160];
    snprintf(label, sizeof label, "%s%s", r->info.name, r->relaxed ? " (default mode)" : "");
    const char *kind = kind_name(r->info.kind);
    if (r->error[0] || !V) {
        printf("%-8s %-18s %-12s %-12s %-12s %-10s %-12s %-12s %s%s\n", kind, label, "-", "-", "-", "-", "-", "-",
               r->skipped ? "" : "FAIL: ", r->error[0] ? r->error : "no reference");
        return !r->skipped;
    }
    fp4rt_logit_cmp pc, dc;
    fp4rt_logit_compare(r->prefill, ref->prefill, n, V, 2 * sqrt(pre), &pc);
    fp4rt_logit_compare(r->decode, ref->decode, n_gen, V, 2 * sqrt(dec), &dc);
    int same = 0;
    for (int g = 0; g < n_gen; g++) same += r->picks[g] == ref->picks[g];
    int ok = fp4rt_logit_agree(&pc, pre) && fp4rt_logit_agree(&dc, dec);
    double max_abs = pc.max_abs > dc.max_abs ? pc.max_abs : dc.max_abs;
    char tokens[32];
    snprintf(tokens, sizeof tokens, "%d/%d", same, n_gen);
    char result[96];
    if (is_ref)
        snprintf(result, sizeof result, "reference");
    else if (ok)
        snprintf(result, sizeof result, same == n_gen ? "ok" : "ok (near-tie flips only)");
    else
        snprintf(result, sizeof result, "MISMATCH%s%s%s", pc.nonfinite + dc.nonfinite ? " (non-finite)" : "",
                 dc.clear_bad || pc.clear_bad ? " (clear argmax flips)" : "",
                 pc.nmse > pre || dc.nmse > dec ? " (NMSE)" : "");
    printf("%-8s %-18s %-12.3g %-12.3g %-12.3g %-10s %-12.2f %-12.2f %s\n", kind, label, pc.nmse, dc.nmse, max_abs,
           tokens, r->prefill_s > 0 ? n / r->prefill_s : 0.0,
           r->decode_s > 0 && n_gen > 1 ? (n_gen - 1) / r->decode_s : 0.0, result);
    return !is_ref && !ok;
}

int fp4rt_cmd_verify(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    const char *tokens_spec = NULL, *prompt = NULL, *v;
    long n_gen = 16;
    double max_nmse = 5e-4, max_dec_nmse = 1e-6;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o)) {
            if (o.device) return fp4rt_cli_bad("verify: --device: verify runs every device"); /* and compares */
            continue;
        }
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--tokens"))) tokens_spec = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--prompt"))) prompt = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "-n"))) n_gen = fp4rt_cli_parse_range("-n", v, 1, INT_MAX / 2);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--max-nmse")))
            max_nmse = fp4rt_cli_parse_real("--max-nmse", v, 0, 1, INFINITY);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--max-decode-nmse")))
            max_dec_nmse = fp4rt_cli_parse_real("--max-decode-nmse", v, 0, 1, INFINITY);
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!o.model) return fp4rt_cli_bad("verify: --model DIR is required");
    /* --exact / FP4RT_EXACT=1: no default-mode row (every session would run exact) */
    int default_row = fp4rt_numerics_relaxed(o.session.exact);
    if (tokens_spec && prompt) return fp4rt_cli_bad("verify: give --prompt or --tokens, not both");
    if (prompt && !prompt[0]) return fp4rt_cli_error("--prompt: the prompt is empty");

    /* the prompt: ids, text through the model's tokenizer, or 64 fixed ids */
    int32_t *ids = NULL;
    int n = 0, rc = 0;
    if (tokens_spec && fp4rt_cli_parse_tokens(tokens_spec, &ids, &n)) return 1;
    if (!tokens_spec) {
        fp4rt_model_params mp = fp4rt_model_default_params();
        mp.device = "cpu";
        mp.n_threads = o.threads;
        fp4rt_model *m = fp4rt_model_load(o.model, &mp);
        if (!m) return fp4rt_cli_fail(1);
        size_t nn = 0;
        fp4rt_status st = FP4RT_OK;
        if (prompt)
            st = fp4rt_tokenize(m, prompt, &ids, &nn);
        else if (!(ids = default_ids(64, fp4rt_model_n_vocab(m))))
            st = FP4RT_OUT_OF_MEMORY;
        else
            nn = 64;
        fp4rt_model_free(m);
        if (st) return fp4rt_cli_fail(st);
        n = (int)nn;
        if (n == 0) {
            fp4rt_free(ids);
            return fp4rt_cli_error("--prompt: the prompt has no tokens");
        }
    }

    int n_dev = fp4rt_device_count();
    /* runs[n_dev]: the CPU's default-mode row (when asked for and the reference ran) */
    dev_run *runs = calloc((size_t)n_dev + 1, sizeof *runs);
    if (!runs) {
        free(ids);
        return fp4rt_cli_error("out of memory");
    }
    int V = 0;
    dev_run *dm = &runs[n_dev];
    dm->relaxed = 1;
    dm->info.kind = FP4RT_DEVICE_CPU;
    snprintf(dm->info.name, sizeof dm->info.name, "cpu");
    snprintf(dm->error, sizeof dm->error, "not run: the CPU reference failed");
    for (int d = 0; d < n_dev; d++) {
        if (fp4rt_device_get(d, &runs[d].info)) {
            snprintf(runs[d].error, sizeof runs[d].error, "%s", fp4rt_last_error());
            continue;
        }
        if (!runs[d].info.usable) {
            runs[d].skipped = 1;
            snprintf(runs[d].error, sizeof runs[d].error, "skipped: %s", runs[d].info.description);
            continue;
        }
        if (d > 0 && !runs[0].picks) {
            snprintf(runs[d].error, sizeof runs[d].error, "not run: the CPU reference failed");
            continue;
        }
        fprintf(stderr, "fp4rt: verify: running %s (%s)\n", runs[d].info.name, runs[d].info.description);
        run_device(&o, ids, n, (int)n_gen, d == 0 ? NULL : runs[0].picks, &runs[d]);
        if (d == 0 && default_row && runs[0].picks) { /* the CPU in the default mode, fed the exact run's picks */
            dm->info = runs[0].info;
            dm->error[0] = 0;
            fprintf(stderr, "fp4rt: verify: running %s in the default numerics mode\n", dm->info.name);
            run_device(&o, ids, n, (int)n_gen, runs[0].picks, dm);
        }
    }
    V = runs[0].error[0] ? 0 : runs[0].vocab;

    printf("model %s: prompt %d tokens, %ld greedy steps; ceilings: prefill NMSE %.0e, decode NMSE %.0e", o.model, n,
           n_gen, max_nmse, max_dec_nmse);
    if (default_row) printf("; cpu (default mode) vs exact: %.0e", DEFAULT_MODE_NMSE);
    printf("\n%-8s %-18s %-12s %-12s %-12s %-10s %-12s %-12s %s\n", "backend", "device", "prefill NMSE",
           "decode NMSE", "max |diff|", "tokens", "prefill t/s", "decode t/s", "result");
    int mismatches = 0;
    for (int k = 0; k < n_dev + default_row; k++) { /* the reference, its default-mode row, the others */
        int d = k == 0 ? 0 : !default_row ? k : k == 1 ? n_dev : k - 1;
        mismatches += print_row(&runs[d], &runs[0], V, n, (int)n_gen, d == n_dev ? DEFAULT_MODE_NMSE : max_nmse,
                                d == n_dev ? DEFAULT_MODE_NMSE : max_dec_nmse, d == 0);
    }
    for (int d = 0; d < n_dev; d++)
        if (runs[d].desc[0]) printf("  %s\n", runs[d].desc);
    if (mismatches) rc = fp4rt_cli_error("verify: %d row%s disagree with the exact CPU or failed", mismatches,
                                         mismatches == 1 ? "" : "s");
    for (int d = 0; d <= n_dev; d++) free(runs[d].prefill), free(runs[d].decode), free(runs[d].picks);
    free(runs);
    free(ids);
    return rc;
}
