/* The model setting fp4_activations (--fp4-activations): NVFP4 W4A16 linears run
 * as W4A4 with activations quantized to NVFP4 per 16 at run time.
 *   - weights: every W4A16 linear of the decoder layers converted, the lm_head
 *     not; tensor scale from input_scale when the checkpoint has one, else the
 *     per-row dynamic rule;
 *   - op level, CPU backend: a converted linear against a direct emulation written
 *     here from the rule (numfmt only, double sums), for both tensor-scale kinds,
 *     with rows of very different magnitudes and an all-zero row;
 *   - model level, CPU: the setting changes the logits by a plausible amount (not
 *     zero, far below the logits' own spread), prefill and decode agree;
 *   - model level, Vulkan (when a device is present, lavapipe in CI, validation
 *     on): the same logits as the CPU with the setting on, and the same greedy
 *     tokens, for both tensor-scale kinds.
 * The dynamic kind is exercised on a copy of tests/fixtures/tiny-mixed without
 * its W4A16 input_scale tensors (written to a scratch directory). */
#include "fp4rt.h"
#include "tests/test_greedy.h"
#include "tests/test_util.h"

#include "loader/st_writer.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/model.h"
#include "runtime/base/numfmt.h"
#include "tests/test_devices.h"

#include <stdint.h>

#define FIXTURE "tests/fixtures/tiny-mixed"
#define N_TOK 64

/* FIXTURE without the input_scale of its NVFP4 W4A16 linears, into dst. */
static int make_dynamic_copy(const char *dst) {
    fp4rt_weights *w;
    if (fp4rt_weights_load(FIXTURE, &w)) return 0;
    char drop[64][200];
    int n_drop = 0;
    for (int l = 0; l < w->cfg.n_layers && n_drop < 60; l++) {
        fp4rt_layer_weights *L = &w->layers[l];
        fp4rt_linear *all[] = {&L->gate, &L->up, &L->down, &L->q, &L->k, &L->v,
                               &L->o,    &L->qkv, &L->z,   &L->b, &L->a, &L->out};
        for (int j = 0; j < 12; j++)
            if (all[j]->module && all[j]->fmt == FP4RT_W_NVFP4)
                snprintf(drop[n_drop++], sizeof drop[0], "%s.input_scale", all[j]->module);
    }
    const fp4rt_checkpoint *ck = w->ckpt;
    mkdir(dst, 0755);
    fp4rt_stw *sw = NULL;
    fp4rt_status st = fp4rt_stw_create(dst, 0, &sw);
    int kept = 0, dropped = 0;
    for (int pass = 0; pass < 2 && !st; pass++)
        for (size_t i = 0; i < ck->n_tensors && !st; i++) {
            const fp4rt_st_tensor *t = ck->tensors[i];
            int skip = 0;
            for (int d = 0; d < n_drop; d++) skip |= !strcmp(t->name, drop[d]);
            if (skip) {
                dropped += pass == 0;
                continue;
            }
            kept += pass == 0;
            st = pass == 0 ? fp4rt_stw_declare(sw, t->name, t->dtype, t->ndim, t->shape)
                           : fp4rt_stw_write(sw, t->name, t->data, t->nbytes);
        }
    if (!st) st = fp4rt_stw_finish(sw);
    fp4rt_stw_free(sw);
    const char *files[] = {"config.json", "hf_quant_config.json", "generation_config.json", "tokenizer.json",
                           "tokenizer_config.json"};
    char a[512], b[512];
    for (size_t i = 0; !st && i < 5; i++) {
        snprintf(a, sizeof a, "%s/%s", FIXTURE, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        st = fp4rt_copy_file(a, b);
    }
    fp4rt_weights_free(w);
    CHECK_MSG(!st, "writing the copy: %s", fp4rt_last_error());
    CHECK_MSG(dropped == n_drop && n_drop > 0 && kept > 0, "dropped %d of %d input_scale tensors", dropped, n_drop);
    return !st;
}

/* ---- weights ---- */
static void test_weights(const char *dyn_dir) {
    fp4rt_weights *w;
    CHECK(fp4rt_weights_load(FIXTURE, &w) == FP4RT_OK);
    int w4a16 = 0;
    for (int l = 0; l < w->cfg.n_layers; l++)
        w4a16 += (w->layers[l].gate.fmt == FP4RT_W_NVFP4) + (w->layers[l].up.fmt == FP4RT_W_NVFP4) +
                 (w->layers[l].down.fmt == FP4RT_W_NVFP4);
    fp4rt_wfmt head_fmt = w->lm_head.fmt;
    CHECK(w4a16 > 0);
    CHECK(fp4rt_weights_fp4_activations(w) == FP4RT_OK);
    CHECK_EQ_INT(w->n_fp4_act, w4a16);
    CHECK_EQ_INT(w->n_fp4_act_dynamic, 0); /* the fixture has input_scale everywhere */
    const fp4rt_linear *up = &w->layers[0].up;
    CHECK(up->fmt == FP4RT_W_NVFP4_W4A4 && up->fp4_act && !up->act_dynamic && up->input_scale > 0);
    CHECK(w->lm_head.fmt == head_fmt); /* the lm_head keeps its activations */
    CHECK(fp4rt_weights_fp4_activations(w) == FP4RT_OK && w->n_fp4_act == w4a16); /* idempotent */
    fp4rt_weights_free(w);
    CHECK(fp4rt_weights_load(dyn_dir, &w) == FP4RT_OK);
    CHECK(fp4rt_weights_fp4_activations(w) == FP4RT_OK);
    CHECK_EQ_INT(w->n_fp4_act, w4a16);
    CHECK_EQ_INT(w->n_fp4_act_dynamic, w4a16);
    up = &w->layers[0].up;
    CHECK(up->fmt == FP4RT_W_NVFP4_W4A4 && up->act_dynamic && up->input_scale == 0);
    fp4rt_weights_free(w);
}

/* ---- op level: the CPU backend against a direct emulation ---- */

/* The rule, written out: y[t,n] = sum_k q[t,k] w[n,k] * s_t * weight_scale_2 with
 * s_t = input_scale or amax(|x_t|) / (6 * 448) (1 for a zero row), per block
 * sf = e4m3(min(amax_b / 6 / s_t, 448)), q = e2m1(x / (sf s_t)) sf. */
static void emulate(const fp4rt_linear *l, const float *x, int T, double *y) {
    int K = l->n_in, N = l->n_out;
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * K;
        float s = l->input_scale;
        if (l->act_dynamic) {
            float amax = 0;
            for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(xr[k]));
            s = amax > 0 ? amax / (6.0f * 448.0f) : 1.0f;
        }
        double *q = malloc((size_t)K * sizeof *q);
        for (int b = 0; b < K; b += 16) {
            float amax = 0;
            for (int i = 0; i < 16; i++) amax = fmaxf(amax, fabsf(xr[b + i]));
            float sf = fp4rt_round_e4m3(fminf(amax / 6.0f / s, 448.0f));
            for (int i = 0; i < 16; i++)
                q[b + i] = sf == 0 ? 0.0 : (double)fp4rt_e2m1_to_f32(fp4rt_f32_to_e2m1(xr[b + i] / (sf * s))) * sf;
        }
        const uint8_t *wc = l->weight;
        for (int n = 0; n < N; n++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                uint8_t byte = wc[((size_t)n * K + k) / 2];
                double wv = (double)fp4rt_e2m1_to_f32(k & 1 ? byte >> 4 : byte & 15) *
                            fp4rt_e4m3_to_f32(l->block_scale[((size_t)n * K + k) / 16]);
                acc += q[k] * wv;
            }
            y[(size_t)t * N + n] = acc * (double)(s * l->weight_scale);
        }
        free(q);
    }
}

/* Runs one LINEAR op on the CPU backend over T rows of x; y [T, N]. */
static fp4rt_status run_linear(const fp4rt_weights *w, const fp4rt_linear *l, const float *x, int T, float *y) {
    int K = l->n_in, N = l->n_out;
    int width[2] = {K, N}, offset[2] = {0, K};
    fp4rt_op op;
    memset(&op, 0, sizeof op);
    op.kind = FP4RT_OP_LINEAR;
    op.x = (fp4rt_view){0, 0, K};
    op.y = (fp4rt_view){1, 0, N};
    op.z.buf = op.a.buf = -1;
    op.lin = l;
    fp4rt_program p = {.weights = w, .n_ops = 1, .ops = &op, .n_bufs = 2, .buf_width = width,
                       .buf_offset = offset, .arena_width = K + N, .hidden_buf = 0};
    const fp4rt_backend_ops *ops = &fp4rt_backend_cpu;
    void *ctx = NULL;
    fp4rt_session_buffers sb = {.n_ctx = T, .chunk = T, .kv_type = FP4RT_KV_F32};
    fp4rt_status st = ops->create(2, &ctx);
    if (!st) st = ops->buffer_alloc(ctx, (size_t)T * (K + N) * 4, "arena", &sb.scratch);
    if (!st) st = ops->buffer_alloc(ctx, 16, "logits", &sb.logits);
    if (!st && ops->prepare) st = ops->prepare(ctx, &p);
    float *arena = calloc((size_t)T * (K + N), 4);
    for (int t = 0; arena && t < T; t++) memcpy(arena + (size_t)t * (K + N), x + (size_t)t * K, (size_t)K * 4);
    if (!st) st = ops->buffer_upload(ctx, sb.scratch, 0, arena, (size_t)T * (K + N) * 4);
    int32_t tok[64] = {0};
    fp4rt_step step = {.tokens = tok, .n_tokens = T, .pos0 = 0};
    if (!st) st = ops->run(ctx, &p, &sb, &step);
    if (!st) st = ops->buffer_download(ctx, sb.scratch, 0, arena, (size_t)T * (K + N) * 4);
    for (int t = 0; !st && t < T; t++) memcpy(y + (size_t)t * N, arena + (size_t)t * (K + N) + K, (size_t)N * 4);
    free(arena);
    if (sb.scratch) ops->buffer_free(ctx, sb.scratch);
    if (sb.logits) ops->buffer_free(ctx, sb.logits);
    if (ctx) ops->destroy(ctx);
    return st;
}

static void test_op(const char *dir, int expect_dynamic) {
    fp4rt_weights *w;
    if (fp4rt_weights_load(dir, &w) || fp4rt_weights_fp4_activations(w)) {
        CHECK_MSG(0, "%s: %s", dir, fp4rt_last_error());
        return;
    }
    const fp4rt_linear *lins[] = {&w->layers[0].up, &w->layers[0].down};
    for (int li = 0; li < 2; li++) {
        const fp4rt_linear *l = lins[li];
        CHECK(l->fmt == FP4RT_W_NVFP4_W4A4 && l->act_dynamic == expect_dynamic);
        for (int T = 1; T <= 7; T += 6) {
            int K = l->n_in, N = l->n_out;
            float *x = malloc((size_t)T * K * 4), *y = malloc((size_t)T * N * 4);
            double *ref = malloc((size_t)T * N * sizeof *ref);
            uint64_t r = 12345 + (uint64_t)T;
            for (int t = 0; t < T; t++) {
                float mag = t == 1 ? 1e-3f : t == 2 ? 300.0f : 1.0f; /* rows far apart in magnitude */
                for (int k = 0; k < K; k++) {
                    r = r * 6364136223846793005ull + 1442695040888963407ull;
                    x[(size_t)t * K + k] = t == 3 ? 0.0f : mag * ((float)(r >> 40) / 8388608.0f - 1.0f);
                }
            }
            fp4rt_status st = run_linear(w, l, x, T, y);
            CHECK_MSG(!st, "%s", fp4rt_last_error());
            emulate(l, x, T, ref);
            /* per row: each row's own scale must hold, whatever the others' magnitude */
            for (int t = 0; !st && t < T; t++) {
                double num = 0, den = 0;
                for (int n = 0; n < N; n++) {
                    double d = y[(size_t)t * N + n] - ref[(size_t)t * N + n];
                    num += d * d;
                    den += ref[(size_t)t * N + n] * ref[(size_t)t * N + n];
                }
                if (t == 3) CHECK_MSG(num == 0 && den == 0, "the all-zero row gives %g", num);
                else CHECK_MSG(den > 0 && num / den < 1e-12, "%s T=%d row %d: NMSE %g", l->module, T, t, num / den);
            }
            free(x);
            free(y);
            free(ref);
        }
    }
    fp4rt_weights_free(w);
}

/* ---- model level ---- */
static int32_t toks[N_TOK];

static float *logits(const char *dir, const char *dev, int fp4_act, int chunk, int *vocab, char *device_line) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 2;
    mp.fp4_activations = fp4_act;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    if (!m) {
        CHECK_MSG(0, "%s on %s: %s", dir, dev, fp4rt_last_error());
        return NULL;
    }
    if (device_line) snprintf(device_line, 256, "%s", fp4rt_model_device(m));
    int V = *vocab = fp4rt_model_n_vocab(m);
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 128;
    sp.prefill_chunk = chunk > 1 ? chunk : 64;
    sp.exact = 1; /* CPU vs Vulkan */
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    float *out = calloc((size_t)N_TOK * V, sizeof(float));
    fp4rt_status st = s && out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (chunk == 1)
        for (int i = 0; !st && i < N_TOK; i++) st = fp4rt_session_eval(s, toks + i, 1, out + (size_t)i * V, 0);
    else if (!st)
        st = fp4rt_session_eval(s, toks, N_TOK, out, 1);
    CHECK_MSG(!st, "%s on %s: %s", dir, dev, fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

static double variance(const float *a, size_t n) {
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += a[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) v += (a[i] - m) * (a[i] - m);
    return v / (double)n;
}

#ifdef FP4RT_HAVE_VULKAN /* only the Vulkan comparison uses these */
static void greedy(const char *dir, const char *dev, int32_t *gen, int n) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    mp.n_threads = 2;
    mp.fp4_activations = 1;
    test_greedy(dir, &mp, toks, 8, gen, n);
}

/* 0 on a software Vulkan device (lavapipe): under the numerics contract its
 * logits equal the CPU's bit for bit; 1e-6 on a GPU */
static double g_vk_ceiling = 1e-6;
#endif

/* full: also the Vulkan prefill and greedy runs (the slow part under validation) */
static void test_model(const char *dir, const char *vk_dev, int full) {
    int V = 0;
    char line[256] = "";
    printf("%s\n", dir);
    float *off = logits(dir, "cpu", 0, 1, &V, NULL);
    float *on = logits(dir, "cpu", 1, 1, &V, line);
    float *on_pre = logits(dir, "cpu", 1, 48, &V, NULL);
    CHECK_MSG(strstr(line, "fp4-activations") != NULL, "device line '%s' does not name the setting", line);
    if (!off || !on || !on_pre) goto done;
    size_t nv = (size_t)N_TOK * V;
    double change = test_nmse(on, off, nv), gap = test_nmse(on_pre, on, nv);
    int same_argmax = 0;
    for (int t = 0; t < N_TOK; t++) {
        int a = 0, b = 0;
        for (int v = 1; v < V; v++) {
            if (on[(size_t)t * V + v] > on[(size_t)t * V + a]) a = v;
            if (off[(size_t)t * V + v] > off[(size_t)t * V + b]) b = v;
        }
        same_argmax += a == b;
    }
    printf("  CPU: on vs off NMSE %.3g (argmax equal at %d of %d), prefill vs decode NMSE %.3g; logit variance %.3g\n",
           change, same_argmax, N_TOK, gap, variance(off, nv));
    /* plausible: 4-bit activations move the logits, by a small fraction of their spread */
    CHECK_MSG(change > 1e-6 && change < 0.05, "on vs off NMSE %g", change);
    CHECK_MSG(same_argmax >= N_TOK / 2, "argmax equal at only %d of %d positions", same_argmax, N_TOK);
    CHECK_MSG(gap < 1e-6, "prefill vs decode with the setting on: NMSE %g", gap);
    if (vk_dev) {
        float *vk_dec = logits(dir, vk_dev, 1, 1, &V, line);
        float *vk_pre = full ? logits(dir, vk_dev, 1, 48, &V, NULL) : NULL;
        if (vk_dec) {
            double e = test_nmse(vk_dec, on, nv);
            printf("  %s decode vs CPU decode NMSE %.3g\n", vk_dev, e);
            CHECK_MSG(e <= g_vk_ceiling, "vulkan decode vs CPU with fp4-activations: NMSE %g", e);
            CHECK_MSG(strstr(line, "fp4-activations") != NULL, "device line '%s'", line);
        }
        if (vk_pre) {
            double e = test_nmse(vk_pre, on_pre, nv);
            printf("  %s prefill vs CPU prefill NMSE %.3g\n", vk_dev, e);
            CHECK_MSG(e <= g_vk_ceiling, "vulkan prefill vs CPU with fp4-activations: NMSE %g", e);
        }
        if (full) {
            int32_t g_cpu[32] = {0}, g_vk[32] = {1};
            greedy(dir, "cpu", g_cpu, 32);
            greedy(dir, vk_dev, g_vk, 32);
            CHECK_MSG(!memcmp(g_cpu, g_vk, sizeof g_cpu), "%s: greedy tokens differ with fp4-activations", dir);
        }
        free(vk_dec);
        free(vk_pre);
    }
done:
    free(off);
    free(on);
    free(on_pre);
}

int main(void) {
    fp4rt_numfmt_init();
    FILE *f = fopen("tests/fixtures/tokens.txt", "r");
    int n = 0;
    while (f && n < N_TOK && fscanf(f, " %d ,", &toks[n]) == 1) n++;
    if (f) fclose(f);
    CHECK_MSG(n == N_TOK, "tests/fixtures/tokens.txt: %d tokens", n);
    test_tmpdir("fp4act");
    const char *dyn = test_tmp_path("tiny-mixed-dynamic");
    if (!make_dynamic_copy(dyn)) return test_summary("test_fp4_act");
    test_weights(dyn);
    test_op(FIXTURE, 0);
    test_op(dyn, 1);
    const char *vk_dev = NULL;
    char devname[32];
    fp4rt_device_ref ref;
    fp4rt_device_desc d;
    if (test_pick_device("vulkan", NULL, devname, sizeof devname, &ref, &d)) vk_dev = devname;
    if (vk_dev && d.software) g_vk_ceiling = 0;
    test_model(FIXTURE, vk_dev, 0);
    test_model(dyn, vk_dev, 1);
    if (vk_dev) CHECK_MSG(fp4rt_registry_message_count() == 0, "%ld validation messages", fp4rt_registry_message_count());
    test_tmpdir_remove();
    return test_summary("test_fp4_act");
}
