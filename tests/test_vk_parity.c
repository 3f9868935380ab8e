/* Model-level parity of the Vulkan backend against the CPU reference, on a
 * synthesized preset quantized with one recipe (run on lavapipe in CI with the
 * Khronos validation layer on; any validation message fails the test).
 *
 * usage: test_vk_parity PRESET RECIPE LENGTHS [GEN]
 *   PRESET   tiny | small (fp4rt_config_preset; synthesized with seed 5)
 *   RECIPE   nvidia-mixed | nvfp4-all | nvfp4-w4a4 (the quantizer's recipes)
 *   LENGTHS  prompt lengths, e.g. 1,17,64,600 (600 > the default prefill chunk
 *            of 512, so prefill runs in two chunks; every prompt over 64 tokens
 *            runs the chunked GDN over several of its 64-token chunks)
 *   GEN      greedy tokens after each prompt (default 32)
 *
 * For each prompt length, on both backends, with the default session (prefill
 * chunk 512, BF16 KV cache unless the checkpoint declares FP8):
 *   - teacher-forced logits of the whole prompt (prefill, all rows): NMSE
 *     against the CPU <= 1e-6, all finite, and the argmax identical at every
 *     position whose top-2 margin in the CPU logits is clear of the error
 *     (margin > 2 x the largest |VK - CPU| difference of the whole run, which
 *     bounds how far any logit moved);
 *   - GEN greedy decode steps after the prompt, teacher-forced by the CPU's
 *     choices: each step's logits held to the same NMSE and margin rule, and
 *     the tokens the two backends pick must be identical;
 *   - determinism: the prefill of the first prompt of >= 17 tokens, run again
 *     in a fresh session, is bit-identical.
 *
 * Activation quantization. nvidia-mixed (FP8 W8A8 attention and GDN
 * projections) and nvfp4-w4a4 (NVFP4 activations) snap each activation to a
 * code; a 1e-12 difference in summation order can move one value across a
 * rounding boundary and change its code, which moves the logits by far more
 * than 1e-6 (test_model.c measured up to 5e-4 NMSE between the CPU's own
 * chunked and recurrent GDN forms). For these recipes only, a comparison that
 * misses 1e-6 is accepted when it stays within 2x the CPU's own sensitivity
 * to summation order, measured on the same prompt (CPU prefill vs CPU
 * token-by-token decode of the same tokens), and that gap is printed. The
 * W4A16 recipe (nvfp4-all) has no activation quantization and is always held
 * to 1e-6. Today the Vulkan results equal the CPU's to ~1e-12, so the widened
 * ceiling is not used; it exists so a legitimate reordering (a chunked GDN on
 * the device) does not fail while a real bug (NMSE >> the CPU's own gap) does.
 *
 * Skips (exit 0, "skipped: ...") when there is no Vulkan device. */
#include "fp4rt.h"
#include "test_util.h"
#include "test_vk_util.h"

#include "../runtime/logit_compare.h"
#include "../runtime/numfmt.h"
#include "../runtime/quantize.h"
#include "../runtime/schema.h"
#include "../runtime/synth.h"

#include <stdint.h>

#define NMSE_CEILING 1e-6

typedef struct run_cfg {
    const char *dir;
    int act_quant; /* the recipe quantizes activations (see above) */
} run_cfg;

static fp4rt_model *load(const char *dir, const char *dev) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "load %s on %s: %s", dir, dev, fp4rt_last_error());
    return m;
}

static fp4rt_session *session(fp4rt_model *m, int n_ctx) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = n_ctx;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    return s;
}

/* Teacher-forced logits [n, V] of the prompt in a fresh session with room for
 * `extra` more tokens: prefill (decode = 0) or one token per step (decode = 1).
 * keep: receives the session (else it is freed). */
static float *prompt_logits(fp4rt_model *m, const int32_t *tok, int n, int decode, int extra,
                            fp4rt_session **keep) {
    int V = fp4rt_model_n_vocab(m);
    fp4rt_session *s = session(m, n + extra + 1);
    float *out = malloc((size_t)n * V * sizeof(float));
    fp4rt_status st = s && out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (decode)
        for (int i = 0; !st && i < n; i++) st = fp4rt_session_eval(s, tok + i, 1, out + (size_t)i * V, 0);
    else if (!st)
        st = fp4rt_session_eval(s, tok, n, out, 1);
    CHECK_MSG(st == FP4RT_OK, "eval of %d tokens: %s", n, fp4rt_last_error());
    if (keep && !st)
        *keep = s;
    else
        fp4rt_session_free(s);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* Applies the ceilings (see the file comment); gap: the CPU's own prefill vs
 * decode NMSE on the same prompt, or -1 when not measured. */
static void judge(const char *what, int len, const float *a, const float *ref, int rows, int V, int act_quant,
                  double gap) {
    double ceiling = NMSE_CEILING;
    if (act_quant && gap > 0 && 2 * gap > ceiling) ceiling = 2 * gap;
    fp4rt_logit_cmp c, *r = &c;
    fp4rt_logit_compare(a, ref, rows, V, 2 * sqrt(ceiling), &c);
    printf("  %-26s len %4d: NMSE %.3g (ceiling %.3g), max |diff| %.3g, argmax clear rows %d\n", what, len,
           r->nmse, ceiling, r->max_abs, r->clear_rows);
    CHECK_MSG(r->nonfinite == 0, "%s len %d: %ld non-finite logits", what, len, r->nonfinite);
    CHECK_MSG(r->nmse <= ceiling, "%s len %d: NMSE %.3g > %.3g", what, len, r->nmse, ceiling);
    CHECK_MSG(r->clear_bad == 0, "%s len %d: argmax differs at %d clear rows", what, len, r->clear_bad);
}

/* GEN greedy steps on both backends after the prompt held by sc / sv, whose
 * last prompt rows are pc / pv; teacher-forced by the CPU's choice. */
static void greedy(fp4rt_session *sc, fp4rt_session *sv, const float *pc, const float *pv, int V, int n,
                   int gen, int act_quant, double gap) {
    float *lc = malloc((size_t)gen * V * sizeof(float)), *lv = malloc((size_t)gen * V * sizeof(float));
    int32_t *tc = malloc((size_t)gen * sizeof *tc), *tv = malloc((size_t)gen * sizeof *tv);
    fp4rt_status st = sc && sv && lc && lv && tc && tv ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (!st) {
        memcpy(lc, pc, (size_t)V * sizeof(float));
        memcpy(lv, pv, (size_t)V * sizeof(float));
    }
    for (int g = 0; !st && g < gen; g++) {
        float *c = lc + (size_t)g * V, *v = lv + (size_t)g * V;
        tc[g] = fp4rt_logit_argmax(c, V);
        tv[g] = fp4rt_logit_argmax(v, V);
        if (g + 1 == gen) break;
        /* both continue with the CPU's token so one flip cannot cascade */
        st = fp4rt_session_eval(sc, &tc[g], 1, c + V, 0);
        if (!st) st = fp4rt_session_eval(sv, &tc[g], 1, v + V, 0);
    }
    CHECK_MSG(st == FP4RT_OK, "greedy after %d tokens: %s", n, fp4rt_last_error());
    if (!st) {
        judge("decode (greedy steps)", n, lv, lc, gen, V, act_quant, gap);
        int diff = 0;
        for (int g = 0; g < gen; g++) diff += tc[g] != tv[g];
        printf("  %-26s len %4d: %d of %d greedy tokens identical\n", "greedy", n, gen - diff, gen);
        CHECK_MSG(diff == 0, "greedy after %d tokens: %d of %d tokens differ", n, diff, gen);
    }
    free(lc), free(lv), free(tc), free(tv);
}

static void make_tokens(int32_t *ids, int n, int V, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)V);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_vk_parity PRESET RECIPE LENGTHS [GEN]\n");
        return 2;
    }
    const char *preset = argv[1], *recipe = argv[2];
    int gen = argc > 4 ? atoi(argv[4]) : 32;
    int lens[16], n_lens = 0;
    for (char *p = argv[3]; *p && n_lens < 16;) {
        lens[n_lens++] = (int)strtol(p, &p, 10);
        if (*p == ',') p++;
    }
    char dev[32];
    fp4rt_vk_device_desc d;
    if (!test_vk_pick_device(dev, sizeof dev, &d)) return 0;
    printf("device %s: %s (%s); %s %s, prompts %s, %d greedy tokens\n", dev, d.name, d.driver, preset, recipe,
           argv[3], gen);
    fp4rt_numfmt_init();

    char name[64];
    snprintf(name, sizeof name, "vkpar-%s", preset);
    test_tmpdir(name);
    fp4rt_config cfg;
    char bf16[512], q[512];
    snprintf(bf16, sizeof bf16, "%s", test_tmp_path("bf16"));
    snprintf(q, sizeof q, "%s", test_tmp_path(recipe));
    CHECK(!fp4rt_config_preset(preset, 0, &cfg));
    CHECK_MSG(!fp4rt_synth(&cfg, bf16, 5, 0, 0), "synth: %s", fp4rt_last_error());
    CHECK_MSG(!fp4rt_quantize(bf16, q, recipe, 0, NULL, NULL), "quantize %s: %s", recipe, fp4rt_last_error());
    int act_quant = strcmp(recipe, "nvfp4-all") != 0;

    fp4rt_model *cpu = load(q, "cpu"), *vk = load(q, dev);
    int did_determinism = 0;
    for (int k = 0; cpu && vk && k < n_lens; k++) {
        int n = lens[k], V = fp4rt_model_n_vocab(cpu);
        int32_t *tok = malloc((size_t)n * sizeof *tok);
        make_tokens(tok, n, V, 1000 + (uint64_t)n);
        fp4rt_session *sc = NULL, *sv = NULL;
        float *c = prompt_logits(cpu, tok, n, 0, gen, &sc), *v = prompt_logits(vk, tok, n, 0, gen, &sv);
        double gap = -1;
        if (act_quant && c) { /* the CPU's own sensitivity to summation order */
            float *cd = prompt_logits(cpu, tok, n, 1, 0, NULL);
            if (cd) gap = test_nmse(c, cd, (size_t)n * V);
            printf("  %-26s len %4d: NMSE %.3g\n", "(CPU prefill vs decode)", n, gap);
            free(cd);
        }
        if (c && v) judge("prefill (teacher-forced)", n, v, c, n, V, act_quant, gap);
        if (v && n >= 17 && !did_determinism) {
            float *again = prompt_logits(vk, tok, n, 0, 0, NULL);
            CHECK_MSG(again && !memcmp(again, v, (size_t)n * V * sizeof(float)),
                      "len %d: a second Vulkan run differs (not deterministic)", n);
            printf("  %-26s len %4d: bit-identical\n", "second run", n);
            free(again);
            did_determinism = 1;
        }
        if (gen > 0 && c && v)
            greedy(sc, sv, c + (size_t)(n - 1) * V, v + (size_t)(n - 1) * V, V, n, gen, act_quant, gap);
        fp4rt_session_free(sc);
        fp4rt_session_free(sv);
        free(c);
        free(v);
        free(tok);
    }
    fp4rt_model_free(vk);
    fp4rt_model_free(cpu);
    test_tmpdir_remove();
    long msgs = fp4rt_vk_message_count();
    CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    return test_summary("test_vk_parity");
}
