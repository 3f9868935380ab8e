/* fp4rt bench: prefill and decode tokens/s on the chosen device, and the
 * memory-bandwidth limit of decode measured in the same run: the device's
 * bandwidth as its backend measures it (backend.h measure_bandwidth: the CPU
 * streams a buffer much larger than the caches with all threads; a GPU copies
 * a large device buffer, timed on the device), best of the measurements taken
 * before and after decoding, divided by the bytes one
 * decode step reads (weights + GDN state read and written + the KV cache at
 * the mean decode position). The percentage compares the median decode step
 * with that limit, so one slow step on a shared machine does not decide it.
 * --spec K adds speculative decoding with the MTP head: greedy fp4rt_generate
 * of --gen tokens after the prompt, plain (a session without MTP state) then
 * with K drafts per verify step (a session with it), each on a fresh session:
 * decode tokens/s of both, the speedup, the acceptance statistics, and whether
 * the outputs are identical (they must be). --image FILE adds the vision
 * encoder's time for that image (decode, preprocessing with the model's
 * preprocessor_config.json or, for --synthetic, Qwen3.5's defaults, then the encoder and merger on the device: the
 * first run, which starts the vision tower, and the median of 3 more). The "numerics" line names
 * the session's numerics mode (docs/NUMERICS.md "Modes"): the default, or exact with --exact or
 * FP4RT_EXACT=1, so that `fp4rt bench` and `FP4RT_EXACT=1 fp4rt bench` compare the two. */
#include "cli/commands.h"

#include "runtime/engine/model.h"
#include "runtime/engine/mtp.h"
#include "runtime/engine/vision.h"

#include <math.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_usage = "--model DIR | --synthetic NAME [--recipe R] [--prompt N] [--gen N] [--seed S] [--spec K]\n"
                             "    [--tokens 1,2,3|@FILE] [--image FILE] "
                             FP4RT_CLI_MODEL_USAGE;

/* The backend's own bandwidth measurement (backend.h); 0 when it has none. */
static double measure_bandwidth(fp4rt_model *m) {
    double bw = 0;
    if (fp4rt_model_bandwidth(m, &bw)) {
        fprintf(stderr, "fp4rt: bench: bandwidth not measured: %s\n", fp4rt_last_error());
        return 0;
    }
    return bw;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Greedy generation of n_gen tokens after the prompt on a fresh session (mtp
 * state when k > 0), K drafts per verify step; ids [n_gen]. */
static fp4rt_status spec_run(fp4rt_model *m, const fp4rt_session_params *sp0, const int32_t *prompt, int n_prompt,
                             int n_gen, int k, int32_t *ids, fp4rt_generate_result *res) {
    fp4rt_session_params sp = *sp0;
    sp.mtp = k > 0;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    if (!s) return FP4RT_OUT_OF_MEMORY;
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.sampling.greedy = 1;
    gp.max_tokens = n_gen;
    gp.ignore_eos = 1;
    gp.spec_drafts = k;
    gp.output_ids = ids;
    gp.output_cap = (size_t)n_gen;
    fp4rt_status st = fp4rt_generate(s, prompt, (size_t)n_prompt, &gp, NULL, NULL, res);
    fp4rt_session_free(s);
    return st;
}

static double median_of(double *x, int n) {
    qsort(x, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

#define COST_REPS 15
/* The costs speculation is made of, medians of COST_REPS after the prompt:
 * a decode step on a session without MTP state (plain) and with it (the head
 * fed the row), a verify step of k + 1 rows (then keep(1)), k drafts, 1 draft,
 * the head fed one row alone (its step without the lm_head; on the CPU only up to
 * its KV append, fp4rt_step.kv_only). Greedy picks as
 * generation makes them: on the device where the backend can, else on the
 * host from downloaded logits. */
static fp4rt_status spec_costs(fp4rt_model *m, const fp4rt_session_params *sp0, const int32_t *prompt, int n_prompt,
                               int k, double out[6]) {
    fp4rt_session_params sp = *sp0;
    sp.n_ctx = n_prompt + 4 * COST_REPS + k + 2;
    fp4rt_session *s[2] = {fp4rt_session_create(m, &sp), NULL};
    sp.mtp = 1;
    s[1] = fp4rt_session_create(m, &sp);
    int vocab = fp4rt_model_n_vocab(m);
    float *lg = malloc((size_t)(k + 1) * vocab * sizeof(float));
    fp4rt_status st = s[0] && s[1] && lg ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    double t[6][COST_REPS];
    int32_t tok[FP4RT_SPEC_MAX_DRAFTS + 1] = {0}, d[FP4RT_SPEC_MAX_DRAFTS], picks[FP4RT_SPEC_MAX_DRAFTS + 1], pick;
    /* greedy picks on the device where generation makes them (the logits stay there) */
    int device = m->backend->argmax != NULL;
    for (int i = 0; !st && i < 2; i++) st = fp4rt_session_eval(s[i], prompt, n_prompt, NULL, 0);
    for (int r = 0; !st && r < COST_REPS; r++) {
        for (int i = 0; !st && i < 2; i++) { /* decode steps */
            double t0 = fp4rt_cli_now();
            st = device ? fp4rt_session_eval_pick(s[i], prompt[r % n_prompt], &pick)
                        : fp4rt_session_step1(s[i], prompt[r % n_prompt], lg);
            t[i][r] = fp4rt_cli_now() - t0;
        }
        double t0 = fp4rt_cli_now();
        if (!st) st = fp4rt_session_mtp_draft(s[1], prompt[r % n_prompt], k, NULL, d, NULL);
        t[3][r] = fp4rt_cli_now() - t0;
        t0 = fp4rt_cli_now();
        if (!st) st = fp4rt_session_mtp_draft(s[1], prompt[r % n_prompt], 1, NULL, d, NULL);
        t[4][r] = fp4rt_cli_now() - t0;
        memcpy(tok + 1, d, sizeof(int32_t)); /* any tokens: the cost is the same */
        t0 = fp4rt_cli_now(); /* the head fed the last row again (the same entries rewritten) */
        int np = fp4rt_session_n_past(s[1]);
        if (!st) st = fp4rt_session_mtp_after_step(s[1], &fp4rt_session_tokens(s[1])[np - 1], 1, np - 1);
        t[5][r] = fp4rt_cli_now() - t0;
        t0 = fp4rt_cli_now();
        if (!st) st = fp4rt_session_verify_pick(s[1], tok, k + 1, lg, device ? picks : NULL);
        t[2][r] = fp4rt_cli_now() - t0;
        if (!st) st = fp4rt_session_keep(s[1], 1);
        if (!st) st = fp4rt_session_mtp_keep(s[1], fp4rt_session_n_past(s[1]));
    }
    for (int i = 0; !st && i < 6; i++) out[i] = median_of(t[i], COST_REPS);
    fp4rt_session_free(s[0]);
    fp4rt_session_free(s[1]);
    free(lg);
    return st;
}

/* --spec K: plain vs speculative decoding, printed. */
static int bench_spec(fp4rt_model *m, const fp4rt_session_params *sp, const int32_t *prompt, int n_prompt, int n_gen,
                      int k) {
    int32_t *a = calloc((size_t)n_gen, sizeof *a), *b = calloc((size_t)n_gen, sizeof *b);
    fp4rt_generate_result ra, rb;
    fp4rt_status st = a && b ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (!st) st = spec_run(m, sp, prompt, n_prompt, n_gen, 0, a, &ra);
    if (!st) st = spec_run(m, sp, prompt, n_prompt, n_gen, k, b, &rb);
    int rc = 0;
    if (st) {
        rc = fp4rt_cli_fail(st);
    } else {
        double plain = ra.n_generated / ra.decode_seconds, spec = rb.n_generated / rb.decode_seconds;
        int same = ra.n_generated == rb.n_generated && !memcmp(a, b, (size_t)ra.n_generated * sizeof *a);
        char stats[512];
        printf("generate plain   %d tokens (greedy) in %.3f s: %.2f tokens/s\n", ra.n_generated, ra.decode_seconds,
               plain);
        printf("generate MTP K=%d %d tokens in %.3f s: %.2f tokens/s, %.2fx plain; outputs %s\n", k, rb.n_generated,
               rb.decode_seconds, spec, spec / plain, same ? "identical" : "DIFFER");
        printf("speculation      %s\n", fp4rt_cli_spec_stats(&rb, k, stats, sizeof stats) + 2);
        if (!same) rc = fp4rt_cli_error("bench --spec: speculative greedy output differs from plain");
        double c[6];
        if (!rc && (st = spec_costs(m, sp, prompt, n_prompt, k, c))) rc = fp4rt_cli_fail(st);
        if (!rc) {
            printf("step costs       (medians of %d) decode %.3f ms, with the MTP head fed %.3f ms; verify of %d rows "
                   "%.3f ms = %.2f decode steps\n", COST_REPS, 1e3 * c[0], 1e3 * c[1], k + 1, 1e3 * c[2], c[2] / c[0]);
            printf("                 drafts: %d in %.3f ms, 1 in %.3f ms; the head fed one row %.3f ms (no lm_head; "
                   "%s)\n", k, 1e3 * c[3], 1e3 * c[4], 1e3 * c[5],
                   fp4rt_model_on_cpu(m) ? "up to its KV append: fp4rt_step.kv_only" : "its whole layer");
        }
    }
    free(a);
    free(b);
    return rc;
}

/* --image FILE: the vision encoder's time per image (in the session's numerics mode), printed. */
static int bench_image(fp4rt_model *m, const char *dir, const char *path, int exact) {
    if (!fp4rt_model_has_vision(m))
        return fp4rt_cli_error("bench --image: the model has no vision tower (config.json vision_config and "
                               "model.visual.* tensors)");
    fp4rt_image_config cfg;
    if (!dir || fp4rt_image_config_load(dir, &cfg)) { /* synthetic: Qwen3.5's processor */
        fp4rt_clear_error();
        fp4rt_image_config_default(&cfg);
    }
    fp4rt_image img = {0};
    fp4rt_image_patches ip = {0};
    fp4rt_vision_embeds e = {0};
    double t0 = fp4rt_cli_now();
    fp4rt_status st = fp4rt_image_load_file(path, NULL, &img);
    if (!st) st = fp4rt_image_preprocess(&img, &cfg, path, &ip);
    double t_pre = fp4rt_cli_now() - t0, t_first = 0, runs[3];
    for (int r = 0; !st && r < 4; r++) {
        fp4rt_vision_embeds_free(&e);
        t0 = fp4rt_cli_now();
        st = fp4rt_vision_encode(m, &ip, exact, &e);
        double t = fp4rt_cli_now() - t0;
        if (r) runs[r - 1] = t;
        else t_first = t;
    }
    int rc = 0;
    for (size_t i = 0; !st && i < (size_t)e.n_tokens * (size_t)e.hidden; i++)
        if (!isfinite(e.data[i])) { /* synthetic weights must give finite embeddings too */
            rc = fp4rt_cli_error("bench --image: vision embedding %zu of %s is not finite", i, path);
            break;
        }
    if (st) {
        rc = fp4rt_cli_fail(st);
    } else if (!rc) {
        qsort(runs, 3, sizeof(double), cmp_double);
        printf("image            %s: %d x %d px -> %d x %d patches (%lld), %d tokens; decode + preprocess %.1f ms\n",
               path, img.width, img.height, ip.grid_w, ip.grid_h, (long long)ip.n_patches, e.n_tokens, 1e3 * t_pre);
        printf("vision encoder   %.1f ms per image (median of 3; the first, starting the tower, %.1f ms)\n",
               1e3 * runs[1], 1e3 * t_first);
    }
    fp4rt_vision_embeds_free(&e);
    fp4rt_image_patches_free(&ip);
    fp4rt_image_free(&img);
    return rc;
}

int fp4rt_cmd_bench(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    long n_prompt = 128, n_gen = 32, seed = 1, spec_k = 0;
    const char *v, *synthetic = NULL, *recipe = NULL, *tokens = NULL, *image = NULL;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o)) continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--prompt"))) n_prompt = fp4rt_cli_parse_range("--prompt", v, 1, INT_MAX / 2);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--gen"))) n_gen = fp4rt_cli_parse_range("--gen", v, 1, INT_MAX / 2);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--seed"))) seed = fp4rt_cli_parse_long("--seed", v);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--synthetic"))) synthetic = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--recipe"))) recipe = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--tokens"))) tokens = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--image"))) image = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--spec"))) spec_k = fp4rt_cli_parse_range("--spec", v, 1, FP4RT_SPEC_MAX_DRAFTS);
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!o.model == !synthetic) return fp4rt_cli_bad("bench: give one of --model and --synthetic");
    if (recipe && !synthetic) return fp4rt_cli_bad("bench: --recipe applies to --synthetic only");
    if (spec_k && synthetic) return fp4rt_cli_bad("bench: --spec needs --model (a trained MTP head: random drafts are never accepted)");
    int32_t *given = NULL; /* --tokens: the prompt (else random ids) */
    int n_given = 0;
    if (tokens && fp4rt_cli_parse_tokens(tokens, &given, &n_given)) return 1;
    if (given) n_prompt = n_given;
    if (o.session.n_ctx == 0) o.session.n_ctx = (int)(n_prompt + n_gen);
    fp4rt_model *m;
    fp4rt_session *s;
    if (synthetic ? fp4rt_cli_open_synthetic(&o, synthetic, recipe, seed, &m, &s) : fp4rt_cli_open(&o, &m, &s)) {
        free(given);
        return 1;
    }
    int vocab = fp4rt_model_n_vocab(m), rc = 0;
    int32_t *ids = malloc((size_t)n_prompt * sizeof *ids);
    float *logits = malloc((size_t)vocab * sizeof(float));
    if (!ids || !logits) {
        rc = fp4rt_cli_error("out of memory");
        goto done;
    }
    if (image && !fp4rt_model_has_vision(m)) { /* before the benches, not after them */
        rc = bench_image(m, o.model, image, !s->relaxed);
        goto done;
    }
    uint64_t x = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
    for (long i = 0; i < n_prompt; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)vocab);
    }
    for (int i = 0; i < n_given; i++) {
        if (given[i] < 0 || given[i] >= vocab) {
            rc = fp4rt_cli_error("--tokens: id %d at index %d is outside the vocabulary [0, %d)", given[i], i, vocab);
            goto done;
        }
        ids[i] = given[i];
    }
    double t0 = fp4rt_cli_now();
    fp4rt_status st = fp4rt_session_eval(s, ids, (int)n_prompt, logits, 0);
    double t_prefill = fp4rt_cli_now() - t0;
    /* bandwidth before and after decode (best of both): the machine may be shared */
    double bw = measure_bandwidth(m);
    double t_decode = 0, *steps = calloc((size_t)n_gen, sizeof(double));
    for (long g = 0; g < n_gen && !st && steps; g++) {
        int32_t next = 0;
        for (int i = 1; i < vocab; i++)
            if (logits[i] > logits[next]) next = i;
        t0 = fp4rt_cli_now();
        st = fp4rt_session_eval(s, &next, 1, logits, 0);
        steps[g] = fp4rt_cli_now() - t0;
        t_decode += steps[g];
    }
    if (!steps) st = FP4RT_OUT_OF_MEMORY;
    double bw2 = measure_bandwidth(m);
    if (bw2 > bw) bw = bw2;
    double median = 0;
    if (steps) {
        qsort(steps, (size_t)n_gen, sizeof(double), cmp_double);
        median = n_gen % 2 ? steps[n_gen / 2] : 0.5 * (steps[n_gen / 2 - 1] + steps[n_gen / 2]);
        free(steps);
    }
    if (st) {
        rc = fp4rt_cli_fail(st);
        goto done;
    }
    /* generated weights must give finite logits: else a fill broke a format */
    for (int i = 0; synthetic && i < vocab; i++)
        if (!isfinite(logits[i])) {
            rc = fp4rt_cli_error("synthetic %s: logit %d of the last step is not finite", synthetic, i);
            goto done;
        }
    double mean_pos = n_prompt + (n_gen - 1) / 2.0, bytes_per_step;
    uint64_t weight_bytes;
    st = fp4rt_session_decode_bytes(s, mean_pos, &bytes_per_step, &weight_bytes);
    if (st) {
        rc = fp4rt_cli_fail(st);
        goto done;
    }
    double prefill_tps = n_prompt / t_prefill, decode_tps = 1.0 / median;
    double limit_tps = bw > 0 ? bw / bytes_per_step : 0;
    char b1[32];
    if (synthetic)
        printf("model            synthetic %s, %s (weights generated on the device)\n", synthetic,
               fp4rt_model_synthetic_recipe(m));
    else
        printf("model            %s\n", o.model);
    printf("device           %s\n", fp4rt_model_device(m));
    printf("numerics         %s\n", fp4rt_session_numerics(s)); /* --exact, FP4RT_EXACT=1 */
    printf("prefill          %ld tokens in %.3f s: %.2f tokens/s\n", n_prompt, t_prefill, prefill_tps);
    printf("decode           %ld tokens in %.3f s: %.2f tokens/s mean, %.2f tokens/s median step (%.2f ms)\n",
           n_gen, t_decode, n_gen / t_decode, decode_tps, 1e3 * median);
    printf("bytes per decode %s (weights %s + state + KV)\n",
           fp4rt_cli_bytes((uint64_t)bytes_per_step, b1, sizeof b1),
           fp4rt_cli_bytes(weight_bytes, (char[32]){0}, 32));
    if (fp4rt_model_on_cpu(m))
        printf("bandwidth        %.2f GB/s (read, %d threads; measured before and after decode, best)\n", bw / 1e9,
               fp4rt_model_n_threads(m));
    else
        printf("bandwidth        %.2f GB/s (device buffer copy, read + write, timed on the device; before and "
               "after decode, best)\n",
               bw / 1e9);
    printf("bandwidth limit  %.2f tokens/s\n", limit_tps);
    printf("decode reaches   %.1f%% of the bandwidth limit (median step)\n",
           limit_tps > 0 ? 100.0 * decode_tps / limit_tps : 0);
    rc = fp4rt_cli_bench_attribution(m, &o.session, ids, (int)n_prompt, (int)n_gen, t_prefill, o.profile);
    if (!rc && spec_k) rc = bench_spec(m, &o.session, ids, (int)n_prompt, (int)n_gen, (int)spec_k);
    if (image && !rc) rc = bench_image(m, o.model, image, !s->relaxed);
done:
    free(given);
    free(ids);
    free(logits);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    return rc;
}
