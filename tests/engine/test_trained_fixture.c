/* The committed trained model (models/qwen35-kjv-10m) against Hugging Face
 * transformers on a fixed English text (tests/fixtures/qwen35-kjv-10m.*, made
 * by tools/make_fixtures.sh --only trained; tests/fixtures/README.md):
 *   - fp4rt's tokenizer turns the fixture text into exactly the fixture's ids
 *     (transformers' tokenizer.json);
 *   - teacher-forced logits over all 64 tokens, prefill in one chunk, prefill in
 *     chunks of 24 (crossing chunk boundaries) and decode (one token per step),
 *     F32 KV cache, each within NMSE 1e-6 of transformers' float32 logits (test_model.c's
 *     ceiling for the unquantized tiny-bf16 fixture), all finite, and the same
 *     argmax (greedy choice) as transformers at every position whose reference
 *     top-2 margin exceeds 1e-3. These runs are in the exact numerics mode
 *     (docs/NUMERICS.md "Modes"); each is repeated in the default mode, which must
 *     stay within NMSE 1e-6 of the exact run's logits (its promise) and pass the
 *     same checks against transformers.
 * argv[1]: "cpu" (default) or "vulkan": the Vulkan device of test_pick_device
 * (lavapipe in CI, validation layer on; exits 0 with "skipped: ..." without
 * one), where any validation message fails the test and greedy generation of
 * 16 tokens after the first 16 of the text must equal the CPU's. */
#include "fp4rt.h"
#include "tests/test_devices.h"
#include "tests/test_greedy.h"
#include "tests/test_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "models/qwen35-kjv-10m"
#define FIX "tests/fixtures/qwen35-kjv-10m"
#define N_TOKENS 64
#define NMSE_CEILING 1e-6
#define DEFAULT_MODE_NMSE 1e-6 /* the default numerics mode's promised distance to the exact one */

/* The whole file as a NUL-terminated string (at most 1 MiB), or NULL. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = malloc((1 << 20) + 1);
    size_t n = s ? fread(s, 1, 1 << 20, f) : 0;
    int more = fgetc(f) != EOF;
    fclose(f);
    if (!s || more) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

/* Teacher-forced logits [n, V] in the numerics mode `exact`: chunk 0 = decode
 * (one token per eval), else prefill in chunks of `chunk` tokens. An F32 KV cache,
 * as transformers keeps it (the default BF16 cache rounds V: max |logit diff|
 * ~7e-3 on this model). NULL (a failed check) on error. */
static float *run_logits(fp4rt_model *m, const int32_t *ids, int n, int chunk, int exact) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.exact = exact;
    sp.n_ctx = n;
    sp.prefill_chunk = chunk;
    sp.kv_type = FP4RT_KV_F32;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    int V = fp4rt_model_n_vocab(m);
    float *out = malloc((size_t)n * V * sizeof *out);
    fp4rt_status st = s && out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (!chunk)
        for (int i = 0; i < n && !st; i++)
            st = fp4rt_session_eval(s, ids + i, 1, out + (size_t)i * V, 0);
    else if (!st)
        st = fp4rt_session_eval(s, ids, n, out, 1);
    CHECK_MSG(st == FP4RT_OK, "eval (chunk %d): %s", chunk, fp4rt_last_error());
    fp4rt_session_free(s);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* Positions whose argmax equals the reference's (exactly). */
static int argmax_agree(const float *a, const float *ref, int n, int V) {
    int same = 0;
    for (int t = 0; t < n; t++) {
        const float *x = a + (size_t)t * V, *r = ref + (size_t)t * V;
        int ia = 0, ir = 0;
        for (int i = 1; i < V; i++) {
            if (x[i] > x[ia]) ia = i;
            if (r[i] > r[ir]) ir = i;
        }
        same += ia == ir;
    }
    return same;
}

static void vs_transformers(const char *what, const float *got, const float *ref, int n, int V) {
    if (!got || !ref) return;
    size_t nv = (size_t)n * V, bad = 0;
    for (size_t i = 0; i < nv; i++)
        bad += !isfinite(got[i]);
    double e = test_nmse(got, ref, nv);
    int clear_bad = test_argmax_disagreements(got, ref, n, V, 1e-3f);
    printf("  %-38s NMSE vs transformers %.3g (ceiling %.0e), argmax agrees at %d/%d positions\n",
           what, e, NMSE_CEILING, argmax_agree(got, ref, n, V), n);
    CHECK_MSG(bad == 0, "%s: %zu non-finite logits", what, bad);
    CHECK_MSG(e <= NMSE_CEILING, "%s: NMSE %.3g vs transformers > %.0e", what, e, NMSE_CEILING);
    CHECK_MSG(clear_bad == 0,
              "%s: argmax differs from transformers at %d positions with a clear margin", what,
              clear_bad);
}

int main(int argc, char **argv) {
    const char *want = argc > 1 ? argv[1] : "cpu";
    char dev[32] = "cpu";
    int on_device = strcmp(want, "cpu") != 0;
    if (on_device) {
        fp4rt_device_ref ref;
        fp4rt_device_desc d;
        if (!test_pick_device(want, NULL, dev, sizeof dev, &ref, &d)) return 0;
        printf("device %s: %s\n", dev, d.description);
    }
    const char *name = on_device ? "test_trained_fixture_vulkan" : "test_trained_fixture";

    int n = 0;
    int32_t *ids = test_read_tokens(FIX ".tokens.txt", &n);
    char *text = read_text(FIX ".text.txt");
    CHECK_MSG(ids && n == N_TOKENS, FIX ".tokens.txt missing or not %d ids", N_TOKENS);
    CHECK_MSG(text != NULL, FIX ".text.txt missing");
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load(MODEL, &mp);
    CHECK_MSG(m != NULL, MODEL " on %s: %s", dev, fp4rt_last_error());
    if (!ids || n != N_TOKENS || !text || !m) {
        fp4rt_model_free(m);
        free(ids);
        free(text);
        return test_summary(name);
    }
    int V = fp4rt_model_n_vocab(m);
    float *ref = test_read_floats(FIX ".logits.bin", (size_t)n * V);
    CHECK_MSG(ref != NULL, FIX ".logits.bin missing or not %d x %d floats", n, V);

    /* the same tokenizer as transformers */
    int32_t *tok = NULL;
    size_t nt = 0;
    CHECK_MSG(fp4rt_tokenize(m, text, &tok, &nt) == FP4RT_OK, "tokenize: %s", fp4rt_last_error());
    CHECK_MSG(nt == (size_t)n && tok && !memcmp(tok, ids, (size_t)n * sizeof *ids),
              "fp4rt tokenizes the fixture text into %zu ids, not the fixture's %d", nt, n);
    fp4rt_free(tok);

    printf("%s on %s, %d tokens, vocab %d\n", MODEL, dev, n, V);
    static const struct {
        const char *what;
        int chunk;
    } runs[] = {{"prefill (one chunk)", 512},
                {"prefill (chunks of 24)", 24},
                {"decode (token by token)", 0}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        float *got = run_logits(m, ids, n, runs[r].chunk, 1);
        vs_transformers(runs[r].what, got, ref, n, V);
        float *def = run_logits(m, ids, n, runs[r].chunk, 0);
        char what[64];
        snprintf(what, sizeof what, "%s, default mode", runs[r].what);
        vs_transformers(what, def, ref, n, V);
        if (got && def) {
            double e = test_nmse(def, got, (size_t)n * V);
            printf("  %-38s NMSE default vs exact mode %.3g (bound %.0e)\n", runs[r].what, e, DEFAULT_MODE_NMSE);
            CHECK_MSG(e <= DEFAULT_MODE_NMSE, "%s: the default mode's NMSE to the exact mode %.3g > %.0e",
                      runs[r].what, e, DEFAULT_MODE_NMSE);
        }
        free(def);
        free(got);
    }
    fp4rt_model_free(m);

    if (on_device) {
        /* greedy continuation: the device picks the CPU's tokens */
        int32_t g_cpu[16] = {0}, g_dev[16] = {0};
        fp4rt_model_params cp = mp;
        cp.device = "cpu";
        test_greedy(MODEL, &cp, ids, 16, g_cpu, 16);
        test_greedy(MODEL, &mp, ids, 16, g_dev, 16);
        CHECK_MSG(!memcmp(g_cpu, g_dev, sizeof g_cpu), "greedy tokens on %s differ from the CPU's",
                  dev);
        long msgs = fp4rt_registry_message_count();
        CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    }
    free(ref);
    free(ids);
    free(text);
    return test_summary(name);
}
