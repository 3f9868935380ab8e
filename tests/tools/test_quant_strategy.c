/* The better-than-absmax quantizer: the 4over6 and mse block-scale rules on
 * random blocks, their round trip through the runtime's dequantization and the
 * model loader, calibration (input_scale = observed amax formula, fused groups),
 * the report (fields, consistency with the written checkpoint), the KL
 * evaluation, and refusals (missing files, cancelled runs). Small sizes: the
 * sanitizer build runs this too. */
#include "runtime/base/common.h"
#include "loader/safetensors.h"
#include "runtime/engine/model.h"
#include "runtime/base/numfmt.h"
#include "runtime/tools/nvfp4.h"
#include "runtime/tools/quantize.h"
#include "runtime/model/schema.h"
#include "runtime/tools/synth.h"
#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>

static uint64_t rng = 88172645463325252ULL;
static double urand(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(rng >> 11) + 0.5) * 0x1p-53;
}
static double gauss(void) { return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()); }

/* A random block: Gaussian, heavy-tailed, one outlier, tiny, or constant. */
static void random_block(float *x, int kind) {
    for (int i = 0; i < 16; i++) {
        double g = gauss();
        switch (kind % 5) {
        case 0: x[i] = (float)(0.02 * g); break;
        case 1: x[i] = (float)(0.02 * g / (0.2 + urand())); break;
        case 2: x[i] = (float)(0.02 * g * (i == 7 ? 20 : 1)); break;
        case 3: x[i] = (float)(1e-7 * g); break;
        default: x[i] = i & 1 ? 0.5f : -0.5f; break;
        }
    }
}

static uint8_t code_for(float amax_b, float m, float s2) {
    float sb = amax_b / (m * s2);
    sb = sb < 0x1p-9f ? 0x1p-9f : sb > 448 ? 448 : sb;
    return fp4rt_f32_to_e4m3_sat(sb);
}

/* 4over6 keeps the 4-candidate only when strictly better; mse is no worse than
 * any code of its range, than 4over6 and than the 6-candidate; the errors the
 * rules compare are those of the dequantized output. */
static void test_block_rules(void) {
    float x[16], w[16], back[16], s2 = 0.02f * 4 / 1536;
    uint8_t pk[8], sc[1];
    int bad4 = 0, bad4mae = 0, badmse = 0, badw = 0, bad_deq = 0, picked4 = 0;
    for (int t = 0; t < 4000; t++) {
        random_block(x, t);
        float amax_b = fp4rt_absmax(x, 16);
        uint8_t c6 = code_for(amax_b, 6, s2), c4 = code_for(amax_b, 4, s2);
        for (int m = 0; m < 2; m++) {
            fp4rt_err_metric met = m ? FP4RT_ERR_MAE : FP4RT_ERR_MSE;
            float e6 = fp4rt_nvfp4_block_error(x, NULL, c6, s2, met);
            float e4 = fp4rt_nvfp4_block_error(x, NULL, c4, s2, met);
            fp4rt_nvfp4_quantize_row_with(x, 16, s2, FP4RT_SCALE_4OVER6, met, NULL, pk, sc);
            uint8_t want = e4 < e6 ? c4 : c6;
            if (sc[0] != want) *(m ? &bad4mae : &bad4) += 1;
            picked4 += !m && sc[0] == c4 && c4 != c6;
        }
        fp4rt_nvfp4_quantize_row_with(x, 16, s2, FP4RT_SCALE_4OVER6, FP4RT_ERR_MSE, NULL, pk, sc);
        float e46 = fp4rt_nvfp4_block_error(x, NULL, sc[0], s2, FP4RT_ERR_MSE);
        fp4rt_nvfp4_quantize_row_with(x, 16, s2, FP4RT_SCALE_MSE, FP4RT_ERR_MSE, NULL, pk, sc);
        float em = fp4rt_nvfp4_block_error(x, NULL, sc[0], s2, FP4RT_ERR_MSE);
        int ok = em <= e46 && e46 <= fp4rt_nvfp4_block_error(x, NULL, c6, s2, FP4RT_ERR_MSE);
        for (int c = FP4RT_MAX(1, c6 - FP4RT_MSE_CODES_BELOW);
             c <= FP4RT_MIN(0x7e, c6 + FP4RT_MSE_CODES_ABOVE); c++)
            ok &= em <= fp4rt_nvfp4_block_error(x, NULL, (uint8_t)c, s2, FP4RT_ERR_MSE);
        badmse += !ok;
        /* the dequantized block has exactly the error the search computed */
        fp4rt_nvfp4_dequantize_row(pk, sc, 16, s2, back);
        double e = 0;
        for (int i = 0; i < 16; i++) e += ((double)x[i] - back[i]) * ((double)x[i] - back[i]);
        bad_deq += fabs(e - em) > 1e-5 * e + 1e-30;
        /* weighted: the pick minimizes the weighted error over the range */
        for (int i = 0; i < 16; i++) w[i] = (float)(urand() * urand() * 4);
        fp4rt_nvfp4_quantize_row_with(x, 16, s2, FP4RT_SCALE_MSE, FP4RT_ERR_MSE, w, pk, sc);
        float ew = fp4rt_nvfp4_block_error(x, w, sc[0], s2, FP4RT_ERR_MSE);
        for (int c = FP4RT_MAX(1, c6 - FP4RT_MSE_CODES_BELOW);
             c <= FP4RT_MIN(0x7e, c6 + FP4RT_MSE_CODES_ABOVE); c++)
            badw += ew > fp4rt_nvfp4_block_error(x, w, (uint8_t)c, s2, FP4RT_ERR_MSE);
    }
    CHECK_MSG(bad4 == 0 && bad4mae == 0, "4over6 decisions wrong: %d (mse) %d (mae)", bad4, bad4mae);
    CHECK_MSG(picked4 > 400, "4over6 picked 4 only %d times", picked4);
    CHECK_MSG(badmse == 0, "%d blocks: mse worse than a candidate", badmse);
    CHECK_MSG(badw == 0, "%d blocks: weighted mse worse than a candidate", badw);
    CHECK_MSG(bad_deq == 0, "%d blocks: dequantized error differs from the search's", bad_deq);

    /* A tie (both candidates exact: one non-zero element) goes to 6. */
    memset(x, 0, sizeof x);
    x[3] = 0.75f;
    fp4rt_nvfp4_quantize_row_with(x, 16, 0.25f / 1536, FP4RT_SCALE_4OVER6, FP4RT_ERR_MSE, NULL, pk, sc);
    CHECK(sc[0] == code_for(0.75f, 6, 0.25f / 1536));
    /* All-zero block: scale 1.0, codes 0, for every strategy. */
    memset(x, 0, sizeof x);
    for (int s = 0; s < 3; s++) {
        memset(pk, 0xff, sizeof pk);
        fp4rt_nvfp4_quantize_row_with(x, 16, 1.0f, (fp4rt_scale_strategy)s, FP4RT_ERR_MSE, NULL, pk, sc);
        CHECK(sc[0] == 0x38 && pk[0] == 0 && pk[7] == 0);
    }
    /* Tensor scales; absmax through the strategy entry is the ModelOpt row quantizer. */
    CHECK(fp4rt_nvfp4_tensor_scale_for(FP4RT_SCALE_ABSMAX, 2688) == 1.0f);
    CHECK(fp4rt_nvfp4_tensor_scale_for(FP4RT_SCALE_4OVER6, 1536) == 1.0f);
    CHECK(fp4rt_nvfp4_tensor_scale_for(FP4RT_SCALE_MSE, 0) == 1.0f);
    CHECK(fp4rt_scale_strategy_parse("4over6") == FP4RT_SCALE_4OVER6 &&
          fp4rt_scale_strategy_parse("bogus") < 0);
}

/* Whole rows: every element of every strategy's output is within half a grid
 * step of its input at the chosen scale (RNE codes), and mse's tensor error is
 * <= 4over6's <= absmax's on Gaussian rows. */
static void test_rows(void) {
    enum { K = 512, N = 64 };
    float *x = malloc(N * K * sizeof *x), back[K];
    uint8_t pk[K / 2], sc[K / 16];
    for (int i = 0; i < N * K; i++) x[i] = (float)(0.02 * gauss());
    float amax = fp4rt_absmax(x, N * K);
    double err[3] = {0};
    int bad = 0;
    for (int s = 0; s < 3; s++) {
        float s2 = fp4rt_nvfp4_tensor_scale_for((fp4rt_scale_strategy)s, amax);
        for (int r = 0; r < N; r++) {
            const float *xr = x + r * K;
            fp4rt_nvfp4_quantize_row_with(xr, K, s2, (fp4rt_scale_strategy)s, FP4RT_ERR_MSE, NULL, pk, sc);
            fp4rt_nvfp4_dequantize_row(pk, sc, K, s2, back);
            for (int i = 0; i < K; i++) {
                float div = fp4rt_e4m3_to_f32(sc[i / 16]) * s2, y = fabsf(xr[i]) / div;
                float half = y < 2 ? 0.25f : y < 4 ? 0.5f : 1.0f;
                double e = fabs((double)back[i] - xr[i]);
                bad += y <= 6 ? e > half * div * 1.0001 : fabs(fabsf(back[i]) - 6 * div) > 1e-6 * div;
                err[s] += e * e;
            }
        }
    }
    CHECK_MSG(bad == 0, "%d elements off the nearest grid value", bad);
    CHECK_MSG(err[2] <= err[1] && err[1] < err[0] && err[2] < 0.8 * err[0],
              "errors absmax %g 4over6 %g mse %g", err[0], err[1], err[2]);
    free(x);
}

/* ---- checkpoints ------------------------------------------------------------ */

static const char k_text[] =
    "The quick brown fox jumps over the lazy dog. Quantization maps each block of sixteen "
    "weights to a shared scale and four-bit codes; a better scale lowers the error. "
    "Calibration runs the model over text like this one and records every linear layer's "
    "input range, which sets the activation scales.";

static float read_scalar(const fp4rt_checkpoint *c, const char *module, const char *suffix) {
    char name[200];
    float v = NAN;
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    const fp4rt_st_tensor *t = fp4rt_checkpoint_find(c, name);
    if (t && t->nbytes == 4) memcpy(&v, t->data, 4);
    return v;
}

/* Logits of the first tokens of k_text on a checkpoint (NULL on failure). */
static float *logits_of(const char *dir, int *n_out, int *vocab) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    if (!m) {
        fprintf(stderr, "load %s: %s\n", dir, fp4rt_last_error());
        return NULL;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    float *lg = NULL;
    fp4rt_session *s = NULL;
    if (fp4rt_tokenize(m, k_text, &ids, &n) == FP4RT_OK && n > 16) {
        n = 16;
        *vocab = fp4rt_model_n_vocab(m);
        lg = malloc(n * (size_t)*vocab * sizeof *lg);
        s = fp4rt_session_create(m, NULL);
        if (!s || fp4rt_session_eval(s, ids, (int)n, lg, 1) != FP4RT_OK) {
            free(lg);
            lg = NULL;
        }
        *n_out = (int)n;
    }
    fp4rt_session_free(s);
    fp4rt_free(ids);
    fp4rt_model_free(m);
    return lg;
}

/* Each strategy's output loads unchanged in the runtime and its logits stay
 * close to the BF16 model's. */
static void test_load(const char *in) {
    int n0 = 0, v0 = 0;
    float *ref = logits_of(in, &n0, &v0);
    CHECK(ref != NULL);
    for (int s = 0; s < 3 && ref; s++) {
        fp4rt_quantize_opts o = {.scale = (fp4rt_scale_strategy)s, .n_threads = 2};
        char out[64];
        snprintf(out, sizeof out, "load-%d", s);
        CHECK(fp4rt_quantize(in, test_tmp_path(out), "nvfp4-all", 0, &o, NULL) == FP4RT_OK);
        int n = 0, v = 0;
        float *lg = logits_of(test_tmp_path(out), &n, &v);
        CHECK_MSG(lg && n == n0 && v == v0, "strategy %d: no logits", s);
        if (lg) {
            double e = test_nmse(lg, ref, (size_t)n * v);
            CHECK_MSG(e < 0.05, "strategy %d: logits NMSE %g", s, e);
        }
        free(lg);
    }
    free(ref);
}

/* Observer in the test: amax of every module's input over the same windows the
 * quantizer uses (one window of < 512 tokens, chunks of 64). */
typedef struct seen {
    char name[64][96];
    float amax[64];
    int n;
} seen;

static void observe(void *user, const fp4rt_linear *lin, const float *x, size_t stride, int rows) {
    seen *s = user;
    int i = 0;
    while (i < s->n && strcmp(s->name[i], lin->module)) i++;
    if (i == s->n && s->n < 64) snprintf(s->name[s->n++], sizeof s->name[0], "%s", lin->module);
    if (i >= 64) return;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < lin->n_in; k++)
            s->amax[i] = FP4RT_MAX(s->amax[i], fabsf(x[(size_t)r * stride + k]));
}

static float seen_amax(const seen *s, const char *module) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], module)) return s->amax[i];
    return NAN;
}

/* input_scale = group amax / 448 (FP8) or / 2688 (NVFP4), from the BF16 model. */
static void test_calibration(const char *in, const char *text) {
    seen *sn = calloc(1, sizeof *sn);
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    fp4rt_model *m = fp4rt_model_load(in, &mp);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(m && fp4rt_tokenize(m, k_text, &ids, &n) == FP4RT_OK && n > 64 && n < 512);
    fp4rt_session_params sp = {.n_ctx = 512, .prefill_chunk = 64};
    fp4rt_session *s = m ? fp4rt_session_create(m, &sp) : NULL;
    float *lg = malloc(64 * (size_t)(m ? fp4rt_model_n_vocab(m) : 1) * sizeof *lg);
    CHECK(s && fp4rt_model_set_observer(m, observe, sn) == FP4RT_OK);
    for (size_t i = 0; s && i < n; i += 64)
        CHECK(fp4rt_session_eval(s, ids + i, (int)FP4RT_MIN(64, n - i), lg, 1) == FP4RT_OK);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    fp4rt_free(ids);
    free(lg);

    fp4rt_quantize_opts o = {.scale = FP4RT_SCALE_MSE, .calib_path = text};
    fp4rt_quantize_summary sum;
    CHECK(fp4rt_quantize(in, test_tmp_path("calib"), "nvidia-mixed", 0, &o, &sum) == FP4RT_OK);
    CHECK(sum.calib_tokens == (int)n && !sum.default_input_scale && sum.n_uncalibrated == 0);
    CHECK(sum.text && strstr(sum.text, "calibration:") && !strstr(sum.text, "no calibration"));
    free(sum.text);
    fp4rt_checkpoint *c = NULL;
    CHECK(fp4rt_checkpoint_open(test_tmp_path("calib"), &c) == FP4RT_OK);
    const char *L = "model.language_model.layers.";
    char q[128], k[128], v[128], z[128], gp[128];
    snprintf(q, sizeof q, "%s3.self_attn.q_proj", L); /* FP8 in nvidia-mixed */
    snprintf(k, sizeof k, "%s3.self_attn.k_proj", L);
    snprintf(v, sizeof v, "%s3.self_attn.v_proj", L);
    snprintf(z, sizeof z, "%s0.linear_attn.in_proj_z", L);
    snprintf(gp, sizeof gp, "%s1.mlp.gate_proj", L); /* NVFP4 W4A16 */
    if (c) {
        /* q/k/v read the same input: one amax */
        float a = seen_amax(sn, q);
        CHECK(a > 0 && a == seen_amax(sn, k));
        CHECK(read_scalar(c, q, "input_scale") == a / 448.0f);
        CHECK(read_scalar(c, v, "input_scale") == a / 448.0f);
        CHECK(read_scalar(c, z, "input_scale") == seen_amax(sn, z) / 448.0f);
        CHECK(read_scalar(c, gp, "input_scale") == seen_amax(sn, gp) / 2688.0f);
        fp4rt_checkpoint_close(c);
    }
    free(sn);
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Report fields; per-tensor figures equal a recomputation from the written
 * checkpoint; KL >= 0 and lower for mse than for absmax. */
static void test_report_eval(const char *in, const char *text) {
    double kl[3] = {0};
    for (int s = 0; s < 3; s += 2) { /* absmax, mse */
        char out[64], rep[64];
        snprintf(out, sizeof out, "rep-%d", s);
        snprintf(rep, sizeof rep, "rep-%d.json", s);
        char rep_path[512];
        snprintf(rep_path, sizeof rep_path, "%s", test_tmp_path(rep));
        fp4rt_quantize_opts o = {.scale = (fp4rt_scale_strategy)s, .calib_path = text,
                                 .eval_path = text, .report_path = rep_path};
        fp4rt_quantize_summary sum;
        fp4rt_status st = fp4rt_quantize(in, test_tmp_path(out), "nvfp4-w4a4", 0, &o, &sum);
        CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
        if (st) continue;
        CHECK(sum.eval_tokens > 50 && sum.kl >= 0 && sum.ppl_source > 1 && sum.ppl_quant > 1);
        kl[s] = sum.kl;
        free(sum.text);
        char *txt = NULL;
        size_t len = 0;
        CHECK(fp4rt_read_file(rep_path, 1 << 24, &txt, &len) == FP4RT_OK);
        cJSON *r = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        CHECK(r != NULL);
        if (!r) continue;
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "strategy")),
                      fp4rt_scale_strategy_name((fp4rt_scale_strategy)s)));
        const cJSON *ev = cJSON_GetObjectItem(r, "eval");
        CHECK_MSG(fabs(jnum(ev, "kl_mean") - sum.kl) <= 1e-12 * sum.kl &&
                      jnum(ev, "predictions") == sum.eval_tokens,
                  "%.17g %.17g %g %d", jnum(ev, "kl_mean"), sum.kl, jnum(ev, "predictions"),
                  sum.eval_tokens);
        CHECK(jnum(cJSON_GetObjectItem(r, "calibration"), "tokens") == sum.calib_tokens);
        const cJSON *nv = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "overall"), "nvfp4");
        double rm = jnum(nv, "rel_mse"), ra = jnum(nv, "absmax_rel_mse");
        CHECK(rm > 0 && fabs(jnum(nv, "sqnr_db") + 10 * log10(rm)) < 1e-9);
        CHECK(s == 0 ? rm == ra : rm < 0.85 * ra);
        CHECK(fabs(jnum(nv, "ratio_vs_absmax") - rm / ra) < 1e-12);
        /* per tensor: recompute the relative MSE from the files */
        fp4rt_checkpoint *src = NULL, *dst = NULL;
        CHECK(fp4rt_checkpoint_open(in, &src) == FP4RT_OK);
        CHECK(fp4rt_checkpoint_open(test_tmp_path(out), &dst) == FP4RT_OK);
        const cJSON *t;
        int n_t = 0, bad = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(r, "tensors")) {
            n_t++;
            const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(t, "module"));
            char name[200];
            snprintf(name, sizeof name, "%s.weight", m);
            const fp4rt_st_tensor *sw = src ? fp4rt_checkpoint_find(src, name) : NULL;
            const fp4rt_st_tensor *qw = dst ? fp4rt_checkpoint_find(dst, name) : NULL;
            snprintf(name, sizeof name, "%s.weight_scale", m);
            const fp4rt_st_tensor *qs = dst ? fp4rt_checkpoint_find(dst, name) : NULL;
            if (!sw || !qw || !qs) {
                bad++;
                continue;
            }
            size_t N = (size_t)sw->shape[0], K = (size_t)sw->shape[1];
            float s2 = read_scalar(dst, m, "weight_scale_2");
            float *deq = malloc(K * sizeof *deq);
            double e = 0, en = 0;
            for (size_t i = 0; i < N; i++) {
                fp4rt_nvfp4_dequantize_row((const uint8_t *)qw->data + i * K / 2,
                                           (const uint8_t *)qs->data + i * K / 16, K, s2, deq);
                for (size_t k = 0; k < K; k++) {
                    double x = fp4rt_bf16_to_f32(((const uint16_t *)sw->data)[i * K + k]);
                    e += (deq[k] - x) * (deq[k] - x);
                    en += x * x;
                }
            }
            free(deq);
            double want = jnum(t, "rel_mse");
            bad += !(fabs(e / en - want) <= 1e-9 * want) || !cJSON_IsBool(cJSON_GetObjectItem(t, "calibrated")) ||
                   !(jnum(t, "absmax_rel_mse") > 0) || !(jnum(t, "input_scale") > 0);
        }
        CHECK_MSG(bad == 0, "%d report tensors disagree with the checkpoint", bad);
        CHECK(n_t > 40);
        if (src) fp4rt_checkpoint_close(src);
        if (dst) fp4rt_checkpoint_close(dst);
        cJSON_Delete(r);
    }
    CHECK_MSG(kl[2] < kl[0], "KL mse %g, absmax %g", kl[2], kl[0]);
    printf("KL (W4A4, calibrated): absmax %.5f, mse %.5f\n", kl[0], kl[2]);
}

static int cancel_at_third(float f, const char *stage, void *user) {
    (void)f, (void)stage;
    return ++*(int *)user >= 3;
}

/* Refusals leave nothing under the final name and no temporary directory. */
static void test_refusals(const char *in, const char *text) {
    fp4rt_quantize_opts o = {.calib_path = test_tmp_path("no-such.txt")};
    CHECK(fp4rt_quantize(in, test_tmp_path("r1"), "nvfp4-all", 0, &o, NULL) == FP4RT_IO);
    CHECK(strstr(fp4rt_last_error(), "no-such.txt") != NULL);
    fp4rt_quantize_opts e = {.eval_path = test_tmp_path("no-such.txt")};
    CHECK(fp4rt_quantize(in, test_tmp_path("r2"), "nvfp4-all", 0, &e, NULL) == FP4RT_IO);
    FILE *f = fopen(test_tmp_path("short.txt"), "w");
    if (f) fputs("a", f), fclose(f);
    fp4rt_quantize_opts sh = {.calib_path = test_tmp_path("short.txt")};
    CHECK(fp4rt_quantize(in, test_tmp_path("r3"), "nvfp4-all", 0, &sh, NULL) == FP4RT_INVALID_ARGUMENT);
    int calls = 0;
    fp4rt_quantize_opts c = {.scale = FP4RT_SCALE_MSE, .progress = cancel_at_third, .progress_user = &calls};
    CHECK(fp4rt_quantize(in, test_tmp_path("r4"), "nvfp4-all", 0, &c, NULL) == FP4RT_CANCELLED);
    fp4rt_quantize_opts bad = {.scale = (fp4rt_scale_strategy)7};
    CHECK(fp4rt_quantize(in, test_tmp_path("r5"), "nvfp4-all", 0, &bad, NULL) == FP4RT_INVALID_ARGUMENT);
    /* an existing output is kept unless force */
    fp4rt_quantize_opts ok = {.scale = FP4RT_SCALE_4OVER6, .err = FP4RT_ERR_MAE};
    CHECK(fp4rt_quantize(in, test_tmp_path("r6"), "nvfp4-all", 0, &ok, NULL) == FP4RT_OK);
    CHECK(fp4rt_quantize(in, test_tmp_path("r6"), "nvfp4-all", 0, &ok, NULL) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_quantize(in, test_tmp_path("r6"), "nvfp4-all", 1, &ok, NULL) == FP4RT_OK);
    for (int i = 1; i <= 5; i++) {
        char leaf[8];
        snprintf(leaf, sizeof leaf, "r%d", i);
        CHECK(access(test_tmp_path(leaf), F_OK) != 0);
    }
    CHECK(test_tmpdir_count(".tmp-") == 0);
    (void)text;
}

int main(void) {
    fp4rt_numfmt_init();
    fp4rt_log_set_level(FP4RT_LOG_WARN);
    test_tmpdir("qstrat");
    test_block_rules();
    test_rows();

    fp4rt_config c;
    char in[512], text[512];
    snprintf(in, sizeof in, "%s", test_tmp_path("bf16"));
    snprintf(text, sizeof text, "%s", test_tmp_path("calib.txt"));
    CHECK(fp4rt_config_preset("tiny", 0, &c) == FP4RT_OK);
    CHECK(fp4rt_synth(&c, in, 1, 0, 0) == FP4RT_OK);
    FILE *f = fopen(text, "w");
    if (f) fputs(k_text, f), fclose(f);
    test_load(in);
    test_calibration(in, text);
    test_report_eval(in, text);
    test_refusals(in, text);
    test_tmpdir_remove();
    return test_summary("quant_strategy");
}
