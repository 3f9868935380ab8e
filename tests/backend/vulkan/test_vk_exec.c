/* The Vulkan backend's execution architecture against the CPU reference (run on
 * lavapipe in CI with the Khronos validation layer; any validation message
 * fails the test):
 *   - recorded decode steps replayed across sessions: two sessions of one model
 *     decoding in turns, then a third created after one is freed (its buffers
 *     may reuse the freed addresses), each step's logits against the CPU's
 *     decode of the same sequence (a replay bound to the wrong session's
 *     buffers gives another sequence's logits); with --profile on, whose log
 *     must name the op kinds, the linear formats and the replayed steps;
 *   - the device's whole binding limit lowered to 32 KiB (FP4RT_VK_MAX_RANGE),
 *     on tiny-bf16 (no activation quantization to magnify summation order):
 *     the session caps its prefill chunk (logged) so the activation arena fits
 *     one binding, the embedding rows come from the host (the table is not
 *     bound), the lm_head is bound in pieces; teacher-forced prefill logits
 *     and decode steps after a prefill agree with the CPU's decode;
 *   - the greedy pick on the device: the same id as the CPU sampler's greedy
 *     pick on crafted logits (ties, +-inf, masks, odd sizes; -1 for a NaN), and
 *     fp4rt_generate's greedy tokens (picked on the device) identical to the
 *     CPU's;
 *   - buffers limited to 64 KiB (FP4RT_VK_MAX_ALLOC, emulating a driver whose
 *     allocations are smaller than the model): the weights go into several
 *     buffers, the KV cache and GDN state are split at layer boundaries; the
 *     prefill (chunks of 8) and decode logits are bit-identical to the same run
 *     without the limit; a tensor larger than the limit fails the load with one
 *     line naming it;
 *   - a submission over the fence timeout (FP4RT_VK_FENCE_TIMEOUT_MS=1 on a
 *     128-token prefill step, which lavapipe runs in far more than 1 ms) fails
 *     with one line naming the step, the device is given up (the next eval
 *     fails at once, saying so), and freeing the model returns;
 *   - the element-wise fusions (FP4RT_VK_FUSE) on the decode kernels: the same
 *     logits as unfused, fewer dispatches per step (test_fuse).
 * Skips (exit 0, "skipped: ...") when there is no Vulkan device. */
#include "fp4rt.h"
#include "tests/test_util.h"
#include "tests/test_session_util.h"
#include "tests/backend/vulkan/test_vk_util.h"

#include "runtime/base/env.h"
#include "runtime/engine/model.h"
#include "runtime/text/sampler.h"
#include "runtime/backend/vulkan/vk.h"

#include <stdint.h>

#define NMSE_MAX 1e-6

static char g_log[16384];
static size_t g_log_len;

static void capture(fp4rt_log_level level, const char *msg, void *user) {
    (void)level;
    (void)user;
    size_t n = strlen(msg);
    if (g_log_len + n + 2 < sizeof g_log) {
        memcpy(g_log + g_log_len, msg, n);
        g_log_len += n;
        g_log[g_log_len++] = '\n';
        g_log[g_log_len] = 0;
    }
}

/* Teacher-forced logits [n, vocab] of tok[0..n) on dev: the first n_prefill tokens
 * as one evaluation (prefill chunks of `chunk`, all rows' logits), then one token
 * per step. NULL (and a failed CHECK) when anything fails. */
static float *teacher_forced(const char *dir, const char *dev, const int32_t *tok, int n, int n_prefill, int chunk,
                             int *V) {
    fp4rt_model *m = test_load_model(dir, dev);
    fp4rt_session *s = m ? test_session_exact(m, 256, chunk) : NULL;
    *V = m ? fp4rt_model_n_vocab(m) : 0;
    float *out = s ? calloc((size_t)n * *V, sizeof(float)) : NULL;
    fp4rt_status st = out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (!st && n_prefill > 0) st = fp4rt_session_eval(s, tok, n_prefill, out, 1);
    for (int i = n_prefill; !st && i < n; i++) st = fp4rt_session_eval(s, tok + i, 1, out + (size_t)i * *V, 0);
    CHECK_MSG(st == FP4RT_OK, "%s on %s: %s", dir, dev, fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* CPU reference: teacher-forced logits of tok[0..n), token by token. */
static float *cpu_decode(const char *dir, const int32_t *tok, int n, int *V) {
    return teacher_forced(dir, "cpu", tok, n, 0, 64, V);
}

static void compare(const char *what, const float *a, const float *ref, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(a[i]);
    double e = test_nmse(a, ref, n);
    CHECK_MSG(bad == 0, "%s: %zu non-finite logits", what, bad);
    CHECK_MSG(e <= NMSE_MAX, "%s: NMSE %.3g > %.3g", what, e, NMSE_MAX);
}

/* Two sequences decoded in turns by two sessions, then a third session. */
static void test_replay(const char *dir, const char *dev, const int32_t *tok, int n) {
    int V = 0, half = n / 2;
    /* sequence A = tok[0..half), sequence B = tok[half..n) */
    float *ref_a = cpu_decode(dir, tok, half, &V), *ref_b = cpu_decode(dir, tok + half, half, &V);
    fp4rt_model *m = test_load_model_profiled(dir, dev, 1);
    if (!m || !ref_a || !ref_b) goto out;
    float *lg = malloc((size_t)V * sizeof(float));
    fp4rt_session *a = test_session_exact(m, 64, 16), *b = test_session_exact(m, 64, 16);
    fp4rt_status st = a && b && lg ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    char what[96];
    for (int i = 0; !st && i < half; i++) {
        /* A's first token through a 1-token step right after B's, both replayed */
        st = fp4rt_session_eval(a, tok + i, 1, lg, 0);
        snprintf(what, sizeof what, "session A step %d", i);
        if (!st) compare(what, lg, ref_a + (size_t)i * V, (size_t)V);
        if (!st) st = fp4rt_session_eval(b, tok + half + i, 1, lg, 0);
        snprintf(what, sizeof what, "session B step %d", i);
        if (!st) compare(what, lg, ref_b + (size_t)i * V, (size_t)V);
    }
    CHECK_MSG(st == FP4RT_OK, "interleaved sessions: %s", fp4rt_last_error());
    fp4rt_session_free(b);
    /* a new session after a freed one: B's sequence again, prefill then decode */
    fp4rt_session *c = test_session_exact(m, 64, 16);
    st = c ? fp4rt_session_eval(c, tok + half, 3, lg, 0) : FP4RT_OUT_OF_MEMORY;
    if (!st) compare("session C prefill", lg, ref_b + 2 * (size_t)V, (size_t)V);
    for (int i = 3; !st && i < half; i++) {
        st = fp4rt_session_eval(c, tok + half + i, 1, lg, 0);
        snprintf(what, sizeof what, "session C step %d", i);
        if (!st) compare(what, lg, ref_b + (size_t)i * V, (size_t)V);
    }
    CHECK_MSG(st == FP4RT_OK, "session after a freed one: %s", fp4rt_last_error());
    fp4rt_session_free(c);
    fp4rt_session_free(a);
    free(lg);
    g_log_len = 0;
    g_log[0] = 0;
    fp4rt_model_free(m); /* logs the profile */
    printf("%s", g_log);
    CHECK_MSG(strstr(g_log, "profile: linear") && strstr(g_log, "profile: gated_delta"),
              "the profile names no op kinds");
    CHECK_MSG(strstr(g_log, "NVFP4-W4A16") && strstr(g_log, "FP8"), "the profile names no linear formats");
    CHECK_MSG(strstr(g_log, "replayed"), "the profile does not count replayed steps");
    m = NULL;
out:
    fp4rt_model_free(m);
    free(ref_a);
    free(ref_b);
}

/* The whole binding limit lowered: chunk capped, everything else fits or is in pieces. */
static void test_limit(const char *dir, const char *dev, const int32_t *tok, int n) {
    int V = 0;
    float *ref = cpu_decode(dir, tok, n, &V);
    setenv("FP4RT_VK_MAX_RANGE", "32768", 1);
    fp4rt_env_reload(); /* knobs are parsed once (runtime/base/env.h) */
    g_log_len = 0;
    g_log[0] = 0;
    fp4rt_model *m = test_load_model(dir, dev);
    fp4rt_session *s = m ? test_session_exact(m, 64, 48) : NULL;
    unsetenv("FP4RT_VK_MAX_RANGE");
    fp4rt_env_reload();
    CHECK_MSG(strstr(g_log, "prefill chunk capped from 48 to"), "%s: the prefill chunk was not capped", dir);
    float *out = calloc((size_t)n * V, sizeof(float));
    fp4rt_status st = s && out && ref ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (!st) st = fp4rt_session_eval(s, tok, n, out, 1);
    CHECK_MSG(st == FP4RT_OK, "%s prefill under the limit: %s", dir, fp4rt_last_error());
    if (!st) compare("prefill under a 32 KiB binding limit", out, ref, (size_t)n * V);
    /* decode steps after a prefill, under the limit */
    fp4rt_session_reset(s);
    int np = n - 8;
    if (!st) st = fp4rt_session_eval(s, tok, np, out, 0);
    if (!st) compare("prefill (last row) under the limit", out, ref + (size_t)(np - 1) * V, (size_t)V);
    for (int i = np; !st && i < n; i++) {
        st = fp4rt_session_eval(s, tok + i, 1, out, 0);
        if (!st) compare("decode under the limit", out, ref + (size_t)i * V, (size_t)V);
    }
    CHECK_MSG(st == FP4RT_OK, "%s decode under the limit: %s", dir, fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    free(out);
    free(ref);
}

static uint64_t rng_next(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* Device argmax against fp4rt_sampler_sample (greedy) on crafted logits. */
static void test_argmax(int index) {
    void *ctx = NULL;
    const fp4rt_backend_ops *be = &fp4rt_backend_vulkan;
    if (fp4rt_vk_backend_create(index, &ctx)) {
        CHECK_MSG(0, "backend: %s", fp4rt_last_error());
        return;
    }
    const int sizes[] = {1, 7, 64, 65, 512, 1000, 4099, 70001};
    int bad = 0, trials = 0;
    uint64_t x = 12345;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        float *l = malloc((size_t)n * 4), *tmp = malloc((size_t)n * 4);
        uint8_t *valid = malloc((size_t)n);
        fp4rt_buffer *buf = NULL;
        fp4rt_status st = l && tmp && valid ? be->buffer_alloc(ctx, (size_t)n * 4 + 64, "logits", &buf) : FP4RT_OUT_OF_MEMORY;
        for (int t = 0; !st && t < 12; t++, trials++) {
            int mode = t % 4, masked = t % 3 != 0;
            for (int i = 0; i < n; i++) {
                uint64_t r = rng_next(&x);
                /* mode 0: few distinct values (many ties); 1: spread; 2: +-inf mixed in; 3: all equal */
                l[i] = mode == 0   ? (float)(r % 5) - 2.0f
                       : mode == 1 ? (float)(int64_t)(r % 200001) * 1e-3f - 100.0f
                       : mode == 2 ? (r % 7 == 0 ? INFINITY : r % 7 == 1 ? -INFINITY : (float)(r % 3))
                                   : 0.5f;
                valid[i] = masked ? (uint8_t)(rng_next(&x) % 4 != 0) : 1;
            }
            if (t == 11 && n > 3) valid[0] = valid[1] = 0; /* ties not at id 0 */
            size_t off = (size_t)(t & 1) * 16; /* a row not at the buffer start */
            st = be->buffer_upload(ctx, buf, off * 4, l, (size_t)n * 4);
            int32_t dev_id = -2;
            if (!st) st = be->argmax(ctx, buf, off, n, masked ? valid : NULL, &dev_id);
            fp4rt_sampling_resolved sp = {.greedy = 1, .temperature = 1, .top_p = 1, .repetition_penalty = 1};
            fp4rt_sampler smp;
            if (!st) st = fp4rt_sampler_init(&smp, &sp, n, masked ? valid : NULL);
            if (st) break;
            memcpy(tmp, l, (size_t)n * 4);
            int32_t cpu_id = fp4rt_sampler_sample(&smp, tmp);
            fp4rt_sampler_free(&smp);
            if (dev_id != cpu_id && bad++ < 5)
                CHECK_MSG(0, "argmax n=%d trial %d: device %d, CPU sampler %d", n, t, dev_id, cpu_id);
        }
        /* a NaN: the device says so (-1) and the host samples */
        if (!st && n > 2) {
            l[n / 2] = NAN;
            int32_t dev_id = -2;
            st = be->buffer_upload(ctx, buf, 0, l, (size_t)n * 4);
            if (!st) st = be->argmax(ctx, buf, 0, n, NULL, &dev_id);
            CHECK_MSG(dev_id == -1, "argmax n=%d with a NaN: %d, expected -1", n, dev_id);
        }
        CHECK_MSG(st == FP4RT_OK, "argmax n=%d: %s", n, fp4rt_last_error());
        if (buf) be->buffer_free(ctx, buf);
        free(l);
        free(tmp);
        free(valid);
    }
    CHECK_MSG(bad == 0, "%d of %d device picks differ from the CPU sampler", bad, trials);
    printf("argmax: %d crafted rows, %d differ from the CPU sampler\n", trials, bad);
    be->destroy(ctx);
}

/* fp4rt_generate greedy: device picks vs the CPU sampler's. */
static void test_generate(const char *dir, const char *dev, const int32_t *tok) {
    int32_t ids[2][24];
    int have[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        memset(ids[k], 0xff, sizeof ids[k]);
        fp4rt_model *m = test_load_model(dir, k ? dev : "cpu");
        fp4rt_session *s = m ? test_session_exact(m, 64, 16) : NULL;
        fp4rt_generate_params gp = fp4rt_generate_default_params();
        gp.sampling.greedy = 1;
        gp.max_tokens = 24;
        gp.ignore_eos = 1;
        gp.output_ids = ids[k];
        gp.output_cap = 24;
        fp4rt_generate_result r;
        fp4rt_status st = s ? fp4rt_generate(s, tok, 8, &gp, NULL, NULL, &r) : FP4RT_OUT_OF_MEMORY;
        CHECK_MSG(st == FP4RT_OK && r.n_generated == 24, "generate on %s: %s", k ? dev : "cpu",
                  st ? fp4rt_last_error() : "too few tokens");
        if (s) have[k] = s->have_logits; /* the same session state after either path */
        if (k && m) CHECK_MSG(m->backend->argmax != NULL, "%s picks on the host", dev);
        fp4rt_session_free(s);
        fp4rt_model_free(m);
    }
    CHECK_MSG(!memcmp(ids[0], ids[1], sizeof ids[0]), "%s: greedy tokens picked on the device differ", dir);
    CHECK_MSG(have[0] == have[1], "have_logits %d on the CPU, %d on %s", have[0], have[1], dev);
}

/* Teacher-forced logits: a prefill of n - 8 tokens in chunks of 8 (every row),
 * then 8 decode steps; [n, V] floats. */
/* Logits on dev: all but the last 8 tokens prefilled (chunks of 8), then decoded. */
static float *vk_logits(const char *dir, const char *dev, const int32_t *tok, int n, int *V) {
    return teacher_forced(dir, dev, tok, n, n - 8, 8, V);
}

static void test_max_alloc(const char *dir, const char *dev, const int32_t *tok, int n) {
    int V = 0, V2 = 0;
    float *ref = vk_logits(dir, dev, tok, n, &V);
    setenv("FP4RT_VK_MAX_ALLOC", "64K", 1);
    fp4rt_env_reload();
    g_log_len = 0;
    g_log[0] = 0;
    float *got = vk_logits(dir, dev, tok, n, &V2);
    CHECK_MSG(strstr(g_log, "buffers limited to 65536 bytes"), "FP4RT_VK_MAX_ALLOC=64K not logged: %s", g_log);
    if (ref && got && V == V2)
        CHECK_MSG(!memcmp(ref, got, (size_t)n * V * sizeof(float)),
                  "%s: logits with buffers split under 64 KiB differ from the unsplit run", dir);
    /* a tensor larger than every buffer may be: one line naming it */
    setenv("FP4RT_VK_MAX_ALLOC", "8K", 1);
    fp4rt_env_reload();
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    const char *e = fp4rt_last_error();
    CHECK_MSG(!m && strstr(e, "is larger than one buffer may be") && strstr(e, "FP4RT_VK_MAX_ALLOC"),
              "load under an 8 KiB limit: %s", m ? "loaded" : e);
    fp4rt_model_free(m);
    unsetenv("FP4RT_VK_MAX_ALLOC");
    fp4rt_env_reload();
    free(ref);
    free(got);
}

/* Dispatches per step of a profiled run of tok[0..n) on dev, one token per
 * step (every step on the decode kernels), all logits into *out ([n, V]); -1
 * when anything fails. */
static double decode_dispatches(const char *dir, const char *dev, const int32_t *tok, int n, float **out, int *V) {
    fp4rt_model *m = test_load_model_profiled(dir, dev, 1);
    fp4rt_session *s = m ? test_session_exact(m, 64, 8) : NULL;
    *V = m ? fp4rt_model_n_vocab(m) : 0;
    *out = s ? calloc((size_t)n * *V, sizeof(float)) : NULL;
    fp4rt_status st = *out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    for (int i = 0; !st && i < n; i++) st = fp4rt_session_eval(s, tok + i, 1, *out + (size_t)i * *V, 0);
    CHECK_MSG(st == FP4RT_OK, "%s on %s: %s", dir, dev, fp4rt_last_error());
    fp4rt_session_free(s);
    g_log_len = 0;
    g_log[0] = 0;
    fp4rt_model_free(m); /* logs the profile */
    const char *p = strstr(g_log, " dispatches and ");
    while (p && p > g_log && p[-1] != ' ') p--; /* the number before it */
    if (p && p > g_log) p--;
    double d = -1;
    if (st || !p || sscanf(p, " %lf dispatches", &d) != 1) d = -1;
    CHECK_MSG(d > 0, "%s: no dispatches per step in the profile: %s", dir, g_log);
    return d;
}

/* The element-wise fusions (FP4RT_VK_FUSE; SWIGLU into the down projection's
 * and SIGMOID_GATE into o_proj's x staging on the decode kernels, which
 * FP4RT_VK_LINEAR=mv selects on lavapipe; ADD + RMSNORM): the same logits bit
 * for bit as the unfused run, and fewer dispatches per step: at least one per
 * layer (its MLP's SWIGLU) more than the ADD + RMSNORM fusion alone saves. */
static void test_fuse(const char *dir, const char *dev, const int32_t *tok, int n) {
    float *fused = NULL, *plain = NULL, *add_norm_only = NULL;
    int V = 0, V2 = 0, V3 = 0;
    test_set_knob("FP4RT_VK_LINEAR", "mv");
    double d_fused = decode_dispatches(dir, dev, tok, n, &fused, &V);
    test_set_knob("FP4RT_VK_FUSE", "0");
    double d_plain = decode_dispatches(dir, dev, tok, n, &plain, &V2);
    test_set_knob("FP4RT_VK_FUSE", NULL);
    /* the whole-rows kernels (lavapipe's default) have no staging: ADD + RMSNORM alone */
    test_set_knob("FP4RT_VK_LINEAR", NULL);
    double d_add_norm = decode_dispatches(dir, dev, tok, n, &add_norm_only, &V3);
    printf("fusion on %s: %.1f dispatches per decode step unfused, %.1f with ADD + RMSNORM, %.1f all fused\n", dir,
           d_plain, d_add_norm, d_fused);
    if (fused && plain && V == V2)
        CHECK_MSG(!memcmp(fused, plain, (size_t)n * V * sizeof(float)),
                  "%s: fused logits differ from FP4RT_VK_FUSE=0's", dir);
    fp4rt_model *m = test_load_model(dir, "cpu");
    int layers = m ? m->weights->cfg.n_layers : 0;
    fp4rt_model_free(m);
    CHECK_MSG(layers > 0 && d_fused > 0 && d_fused <= d_add_norm - layers && d_add_norm < d_plain,
              "%s: %.1f dispatches per step fused, %.1f with ADD + RMSNORM alone, %.1f unfused (%d layers)", dir,
              d_fused, d_add_norm, d_plain, layers);
    free(fused);
    free(plain);
    free(add_norm_only);
}

static void test_timeout(const char *dir, const char *dev, const int32_t *tok, int n) {
    fp4rt_model *m = test_load_model(dir, dev);
    fp4rt_session *s = m ? test_session_exact(m, 256, 128) : NULL;
    int32_t *ids = malloc(128 * sizeof *ids);
    if (!s || !ids) goto done;
    for (int i = 0; i < 128; i++) ids[i] = tok[i % n];
    CHECK_MSG(fp4rt_session_eval(s, ids, 8, NULL, 0) == FP4RT_OK, "eval before: %s", fp4rt_last_error());
    test_set_knob("FP4RT_VK_FENCE_TIMEOUT_MS", "1");
    fp4rt_status st = fp4rt_session_eval(s, ids, 128, NULL, 0);
    const char *e = fp4rt_last_error();
    CHECK_MSG(st == FP4RT_DEVICE, "a 128-token step under a 1 ms fence timeout: status %d (%s)", (int)st, e);
    CHECK_MSG(strstr(e, "did not finish within") && strstr(e, "step of 128 tokens"), "timeout error: %s", e);
    test_set_knob("FP4RT_VK_FENCE_TIMEOUT_MS", NULL);
    fp4rt_session_reset(s);
    st = fp4rt_session_eval(s, ids, 4, NULL, 0);
    e = fp4rt_last_error();
    CHECK_MSG(st == FP4RT_DEVICE && strstr(e, "lost or hung earlier"), "eval after the timeout: status %d (%s)",
              (int)st, e);
done:
    test_set_knob("FP4RT_VK_FENCE_TIMEOUT_MS", NULL);
    free(ids);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
}

int main(void) {
    char dev[32];
    fp4rt_vk_device_desc d;
    if (!test_vk_pick_device(dev, sizeof dev, &d)) return 0;
    printf("device %s: %s (%s)\n", dev, d.name, d.driver);
    fp4rt_log_set(capture, NULL);
    int n = 0;
    int32_t *tok = test_read_tokens("tests/fixtures/tokens.txt", &n);
    CHECK(tok && n >= 64);
    if (tok && n >= 64) {
        test_replay("tests/fixtures/tiny-mixed", dev, tok, 16);
        test_limit("tests/fixtures/tiny-bf16", dev, tok, 64); /* no activation quantization: KV pieces
                                                                  change only the summation order */
        test_generate("tests/fixtures/tiny-w4a4", dev, tok);
        test_max_alloc("tests/fixtures/tiny-mixed", dev, tok, 64);
        test_fuse("tests/fixtures/tiny-bf16", dev, tok, 12);
        test_timeout("tests/fixtures/tiny-mixed", dev, tok, n);
    }
    test_argmax(atoi(dev + 7));
    free(tok);
    fp4rt_log_set(NULL, NULL);
    long msgs = fp4rt_vk_message_count();
    CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    return test_summary("test_vk_exec");
}
