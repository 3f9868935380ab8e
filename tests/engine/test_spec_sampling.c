/* Speculative sampling (runtime/engine/speculate.h) draws from the distribution
 * plain sampling draws from. On a synthesized "tiny" model (vocabulary 512,
 * with an MTP head) on the CPU, a fixed prompt, N seeds: the 2nd and 3rd
 * generated tokens (the ones drawn through the acceptance rule: the 2nd from
 * the verify step's first row with draft 1, the 3rd from its second row with
 * draft 2 or from a new step after a rejection) of speculative generation vs
 * plain generation, a two-sample chi-square test per token position
 * (cells with fewer than 10 draws together pooled), at the 0.1 % level; the
 * 1st token (drawn from the prompt's logits either way) as the calibration.
 * Settings: plain temperature 1; temperature with top-k, top-p, min-p and all
 * three penalties; and draft 1 replaced (the residual path on every step).
 * The seeds are fixed, so the test is deterministic. It can fail: the same
 * test between temperatures 1 and 1.25 must reject (it is checked to). */
#include "tests/test_util.h"

#include "runtime/engine/model.h"
#include "runtime/tools/synth.h"

#include <math.h>
#include <stdint.h>

#ifndef N_SEEDS
#define N_SEEDS 3000
#endif
#define N_GEN 3
#define MAXV 8192

static int V;
static const int32_t k_prompt[] = {17, 230, 5, 99, 411, 64};

typedef struct setting {
    const char *name;
    fp4rt_sampling_params sp;
    int k, corrupt;
} setting;

/* counts[pos][id] of N_SEEDS generations (seeds seed0 + 1000003 i); statistics summed into *sum. */
static int sample(fp4rt_session *s, const setting *c, int k, uint64_t seed0, int (*counts)[MAXV],
                  fp4rt_generate_result *sum) {
    memset(counts, 0, sizeof(int[N_GEN][MAXV]));
    memset(sum, 0, sizeof *sum);
    s->spec_corrupt_draft = c->corrupt;
    for (int seed = 0; seed < N_SEEDS; seed++) {
        fp4rt_session_reset(s);
        fp4rt_generate_params gp = fp4rt_generate_default_params();
        gp.sampling = c->sp;
        gp.sampling.seed = seed0 + 1000003u * (uint64_t)seed;
        gp.max_tokens = N_GEN;
        gp.ignore_eos = 1;
        gp.spec_drafts = k;
        int32_t ids[N_GEN];
        gp.output_ids = ids;
        gp.output_cap = N_GEN;
        fp4rt_generate_result r;
        fp4rt_status st = fp4rt_generate(s, k_prompt, sizeof k_prompt / sizeof *k_prompt, &gp, NULL, NULL, &r);
        CHECK_MSG(!st && r.n_generated == N_GEN, "%s seed %d: %s", c->name, seed, fp4rt_last_error());
        if (st) return 0;
        for (int i = 0; i < N_GEN; i++) counts[i][ids[i]]++;
        sum->spec_steps += r.spec_steps;
        sum->spec_drafted += r.spec_drafted;
        sum->spec_accepted += r.spec_accepted;
    }
    return 1;
}

/* Two-sample chi-square of equal-size samples a, b over V cells (cells with
 * fewer than 10 draws together pooled); *df its degrees of freedom. */
static double chi2(const int *a, const int *b, int *df) {
    double x = 0;
    long pa = 0, pb = 0;
    int cells = 0;
    for (int i = 0; i < V; i++) {
        int t = a[i] + b[i];
        if (t == 0) continue;
        if (t < 10) {
            pa += a[i];
            pb += b[i];
            continue;
        }
        x += (double)(a[i] - b[i]) * (a[i] - b[i]) / t;
        cells++;
    }
    if (pa + pb > 0) {
        x += (double)(pa - pb) * (pa - pb) / (double)(pa + pb);
        cells++;
    }
    *df = cells - 1;
    return x;
}

/* The chi-square quantile at 1 - 0.001 (Wilson-Hilferty). */
static double critical(int df) {
    double z = 3.0902, h = 2.0 / (9.0 * df);
    return df * pow(1 - h + z * sqrt(h), 3);
}

static int g_plain[N_GEN][MAXV], g_spec[N_GEN][MAXV];

/* Returns the largest chi-square / critical ratio over the positions. */
static double compare(fp4rt_session *s, const setting *c, const setting *ref) {
    fp4rt_generate_result rp, rs;
    /* other seeds for the two samples: independent draws */
    if (!sample(s, ref, 0, 7, g_plain, &rp) || !sample(s, c, c->k, 7 + 1000003ull * N_SEEDS, g_spec, &rs)) return 1e9;
    double worst = 0;
    printf("  %-44s", c->name);
    for (int pos = 0; pos < N_GEN; pos++) {
        int df;
        double x = chi2(g_plain[pos], g_spec[pos], &df);
        double crit = critical(df);
        printf(" tok%d chi2 %.1f (df %d, crit %.1f)", pos + 1, x, df, crit);
        if (x / crit > worst) worst = x / crit;
    }
    if (c->k)
        printf("; accepted %d of %d drafts in %d steps", rs.spec_accepted, rs.spec_drafted, rs.spec_steps);
    printf("\n");
    if (c->k) { /* both branches of the rule ran (a replaced draft is rarely kept) */
        CHECK_MSG(rs.spec_steps >= N_SEEDS && (c->corrupt || rs.spec_accepted > N_SEEDS / 20) &&
                  rs.spec_accepted < rs.spec_drafted - N_SEEDS / 20,
                  "%s: accepted %d of %d: the test does not exercise both acceptance and rejection", c->name,
                  rs.spec_accepted, rs.spec_drafted);
    }
    return worst;
}

int main(int argc, char **argv) {
    test_tmpdir("spec_sampling");
    fp4rt_config cfg;
    CHECK(!fp4rt_config_preset("tiny", 0, &cfg));
    CHECK_MSG(cfg.mtp_layers == 1, "the tiny preset has %d MTP layers", cfg.mtp_layers);
    const char *dir = argc > 1 ? argv[1] : test_tmp_path("tiny");
    if (argc < 2) CHECK(!fp4rt_synth(&cfg, dir, 11, 0, 0));
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = 1;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "%s: %s", dir, fp4rt_last_error());
    if (!m) return test_summary("test_spec_sampling");
    V = fp4rt_model_n_vocab(m);
    CHECK(V <= MAXV);
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 32;
    sp.mtp = 1;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    if (!s || V > MAXV) return test_summary("test_spec_sampling");
    fp4rt_sampling_params plain = {.greedy = -1, .temperature = 1.0f, .top_k = -1, .top_p = 1.0f, .min_p = -1};
    fp4rt_sampling_params filtered = {.greedy = -1, .temperature = 1.5f, .top_k = 100, .top_p = 0.95f, .min_p = 0.02f,
                                      .repetition_penalty = 1.3f, .presence_penalty = 0.4f,
                                      .frequency_penalty = 0.3f};
    setting settings[][2] = {
        {{"temperature 1, K = 2", plain, 2, 0}, {"", plain, 0, 0}},
        {{"top-k, top-p, min-p, penalties, K = 3", filtered, 3, 0}, {"", filtered, 0, 0}},
        {{"temperature 1, K = 2, draft 1 replaced", plain, 2, 1}, {"", plain, 0, 0}},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        double w = compare(s, &settings[i][0], &settings[i][1]);
        CHECK_MSG(w < 1, "%s: the token distribution differs from plain sampling's", settings[i][0].name);
    }
    /* the test's power: plain sampling at temperature 1.25 against 1 is rejected */
    fp4rt_sampling_params hot = plain;
    hot.temperature = 1.25f;
    setting ctl = {"control: plain T = 1.25 vs T = 1 (must differ)", hot, 0, 0}, ref = {"", plain, 0, 0};
    double w = compare(s, &ctl, &ref);
    CHECK_MSG(w > 1, "the chi-square test does not tell temperature 1.25 from 1 (ratio %.2f)", w);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    test_tmpdir_remove();
    return test_summary("test_spec_sampling");
}
