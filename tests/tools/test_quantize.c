/* NVFP4 / FP8 weight quantizers against hand-computed values, the half-step
 * error bound, and end-to-end quantization of a synthesized tiny checkpoint with
 * every recipe (names, dtypes, shapes, config files, values, refusals). */
#include "runtime/base/common.h"
#include "loader/config.h"
#include "loader/quant_config.h"
#include "loader/safetensors.h"
#include "loader/st_writer.h"
#include "runtime/base/numfmt.h"
#include "runtime/tools/nvfp4.h"
#include "runtime/tools/quantize.h"
#include "runtime/model/schema.h"
#include "runtime/tools/synth.h"
#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- row quantizers ------------------------------------------------------ */

static void test_rows(void) {
    uint8_t packed[8], sc[1], q[4];
    float x[16];

    CHECK(fp4rt_nvfp4_weight_tensor_scale(2688.0f) == 1.0f);
    CHECK(fp4rt_nvfp4_weight_tensor_scale(6.0f) == 6.0f / 2688.0f);
    CHECK(fp4rt_nvfp4_weight_tensor_scale(0.0f) == 1.0f);

    /* amax 6 exactly representable: s2 = 0.5 -> sb = 6 / 3 = 2 (E4M3 0x40), divisor 1. */
    memset(x, 0, sizeof x);
    x[0] = 6, x[1] = 3, x[2] = -1.5f, x[3] = 0.5f;
    fp4rt_nvfp4_quantize_row(x, 16, 0.5f, packed, sc);
    CHECK(sc[0] == 0x40);
    CHECK(packed[0] == 0x57 && packed[1] == 0x1b); /* even element in the low nibble */
    CHECK(packed[2] == 0 && packed[7] == 0);

    /* All-zero block: scale 1.0 (0x38), codes 0. */
    memset(x, 0, sizeof x);
    memset(packed, 0xff, sizeof packed);
    fp4rt_nvfp4_quantize_row(x, 16, 0.01f, packed, sc);
    CHECK(sc[0] == 0x38);
    int nz = 0;
    for (int i = 0; i < 8; i++) nz += packed[i] != 0;
    CHECK(nz == 0);

    /* Tiny block: amax/(6 s2) < 2^-9 clamps to 2^-9 (0x01); divisor 2^-9. */
    memset(x, 0, sizeof x);
    x[0] = 1.5f * 0x1p-10f; /* 0.75 of a step -> tie -> 1.0 (code 2) */
    x[1] = 0x1p-10f;        /* 0.5 -> code 1 */
    x[2] = 0x1p-11f;        /* 0.25 -> tie -> 0 */
    x[3] = -1.5f * 0x1p-10f;/* -0.75 -> -1.0 (code 0xA) */
    fp4rt_nvfp4_quantize_row(x, 16, 1.0f, packed, sc);
    CHECK(sc[0] == 0x01);
    CHECK(packed[0] == 0x12 && packed[1] == 0xa0);

    /* E2M1 ties: s2 = 0.25, amax 6 -> sb = 4 (0x48), divisor exactly 1. */
    const float v[16] = {6, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5,
                         -0.25f, -0.75f, -5, 5.5f, 0.1f, -6, 4, 2};
    const uint8_t want[16] = {7, 0, 2, 2, 4, 4, 6, 6, 8, 0xa, 0xe, 7, 0, 0xf, 6, 4};
    fp4rt_nvfp4_quantize_row(v, 16, 0.25f, packed, sc);
    CHECK(sc[0] == 0x48);
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        uint8_t c = (i & 1) ? packed[i / 2] >> 4 : packed[i / 2] & 15;
        bad += c != want[i];
    }
    CHECK_MSG(bad == 0, "%d E2M1 tie codes wrong", bad);

    /* The block scale can round down (1.0625 -> 1.0, tie to even); the block max
     * then exceeds 6 steps and saturates. */
    memset(x, 0, sizeof x);
    x[5] = 6.375f;
    fp4rt_nvfp4_quantize_row(x, 16, 1.0f, packed, sc);
    CHECK(sc[0] == 0x38 && packed[2] == 0x70);
    CHECK(fp4rt_nvfp4_block_scale(448.0f * 6 * 2, 1.0f) == 0x7e); /* clamped at 448 */

    /* Dequantization inverts the hand example. */
    float back[16];
    fp4rt_nvfp4_quantize_row(v, 16, 0.25f, packed, sc);
    fp4rt_nvfp4_dequantize_row(packed, sc, 16, 0.25f, back);
    CHECK(back[0] == 6 && back[2] == 1 && back[11] == 6 && back[13] == -6 && back[14] == 4);

    /* FP8 per tensor. */
    CHECK(fp4rt_fp8_weight_scale(448.0f) == 1.0f && fp4rt_fp8_weight_scale(0) == 1.0f);
    const float f[4] = {1, -2, 0.001f, 500};
    fp4rt_fp8_quantize_row(f, 4, 1.0f, q);
    CHECK(q[0] == 0x38 && q[1] == 0xc0 && q[2] == 0x01 && q[3] == 0x7e);
}

/* Random rows of several shapes of distribution: every dequantized value lies
 * within half a grid step of its input (or is the saturated block maximum). */
static void test_half_step(void) {
    uint64_t s = 12345;
    enum { K = 256 };
    float x[K], back[K];
    uint8_t packed[K / 2], sc[K / 16];
    int bad = 0;
    for (int row = 0; row < 2000; row++) {
        double mag = ldexp(1.0, (int)(row % 40) - 20);
        for (int i = 0; i < K; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = (double)(s >> 11) * 0x1p-53 - 0.5;
            x[i] = (float)(u * mag * ((i % 37) == 0 ? 40.0 : 1.0)); /* some outliers */
            if (row % 7 == 0 && i < 16) x[i] = 0; /* a zero block now and then */
        }
        float s2 = fp4rt_nvfp4_weight_tensor_scale(fp4rt_absmax(x, K));
        fp4rt_nvfp4_quantize_row(x, K, s2, packed, sc);
        fp4rt_nvfp4_dequantize_row(packed, sc, K, s2, back);
        for (int i = 0; i < K; i++) {
            float div = fp4rt_e4m3_to_f32(sc[i / 16]) * s2;
            float y = fabsf(x[i]) / div;
            float half = y < 2 ? 0.25f : y < 4 ? 0.5f : 1.0f;
            double err = fabs((double)back[i] - x[i]);
            int ok = y <= 6 ? err <= half * div * 1.0001 + 1e-30
                            : fabs(fabsf(back[i]) - 6.0 * div) <= 1e-6 * 6 * div && y < 6.4f;
            if (!ok && !bad++)
                fprintf(stderr, "row %d elem %d: x %g back %g div %g\n", row, i, x[i], back[i], div);
        }
    }
    CHECK_MSG(bad == 0, "%d values outside half a step", bad);
}

/* ---- end to end ---------------------------------------------------------- */

enum variant { V_NAN, V_MISSING, V_EXTRA, V_MTP, V_SHAPE, V_F32 };

/* Copies the checkpoint in src to dst (a new directory), altered as `v` says. */
static void make_variant(const char *src, const char *dst, enum variant v, const char *victim) {
    fp4rt_checkpoint *ck = NULL;
    fp4rt_stw *w = NULL;
    mkdir(dst, 0755);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/config.json", src);
    snprintf(b, sizeof b, "%s/config.json", dst);
    fp4rt_copy_file(a, b);
    if (fp4rt_checkpoint_open(src, &ck) != FP4RT_OK || fp4rt_stw_create(dst, 0, &w) != FP4RT_OK) {
        CHECK(!"variant setup");
        return;
    }
    static const int64_t small[2] = {4, 4};
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const fp4rt_st_tensor *t = ck->tensors[i];
        if (v == V_MISSING && !strcmp(t->name, victim)) continue;
        int64_t shape[FP4RT_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (v == V_SHAPE && !strcmp(t->name, victim)) shape[0] /= 2, shape[1] *= 2;
        int f32 = v == V_F32 && !strcmp(t->name, victim);
        fp4rt_stw_declare(w, t->name, f32 ? FP4RT_DT_F32 : t->dtype, t->ndim, shape);
    }
    if (v == V_EXTRA || v == V_MTP)
        fp4rt_stw_declare(w, victim, FP4RT_DT_BF16, 2, small);
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const fp4rt_st_tensor *t = ck->tensors[i];
        if (v == V_MISSING && !strcmp(t->name, victim)) continue;
        uint16_t *buf = malloc(t->nbytes);
        memcpy(buf, t->data, t->nbytes);
        if (v == V_NAN && !strcmp(t->name, victim)) buf[5] = 0x7fc0;
        if (v == V_F32 && !strcmp(t->name, victim)) { /* widen BF16 -> F32 (exact) */
            size_t n = t->nbytes / 2;
            float *f = malloc(n * sizeof *f);
            for (size_t k = 0; k < n; k++) f[k] = fp4rt_bf16_to_f32(buf[k]);
            fp4rt_stw_write(w, t->name, f, n * sizeof *f);
            free(f);
        } else {
            fp4rt_stw_write(w, t->name, buf, t->nbytes);
        }
        free(buf);
    }
    uint16_t extra[16] = {0x3f80};
    if (v == V_EXTRA || v == V_MTP) fp4rt_stw_write(w, victim, extra, sizeof extra);
    CHECK(fp4rt_stw_finish(w) == FP4RT_OK);
    fp4rt_stw_free(w);
    fp4rt_checkpoint_close(ck);
}

static int has_dim(const fp4rt_st_tensor *t, fp4rt_dtype dt, int ndim, int64_t d0, int64_t d1) {
    return t && t->dtype == dt && t->ndim == ndim && (ndim < 1 || t->shape[0] == d0) &&
           (ndim < 2 || t->shape[1] == d1);
}

static float scalar(const fp4rt_checkpoint *c, const char *module, const char *suffix) {
    char name[200];
    float v = NAN;
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    const fp4rt_st_tensor *t = fp4rt_checkpoint_find(c, name);
    if (t && t->nbytes == 4) memcpy(&v, t->data, 4);
    return v;
}

/* Checks a quantized output against the schema, the recipe and the source. */
static void check_output(const char *in, const char *out, const char *recipe) {
    fp4rt_config cfg;
    fp4rt_quant_config qc;
    fp4rt_checkpoint *src = NULL, *dst = NULL;
    fp4rt_tensor_spec *s = NULL;
    CHECK(fp4rt_config_load(out, &cfg) == FP4RT_OK);
    CHECK(fp4rt_quant_config_load(out, &qc) == FP4RT_OK);
    CHECK(fp4rt_checkpoint_open(in, &src) == FP4RT_OK);
    CHECK(fp4rt_checkpoint_open(out, &dst) == FP4RT_OK);
    if (!src || !dst) return;
    size_t n = fp4rt_schema_tensors(&cfg, &s), expect = 0;
    int bad = 0, nv = 0, f8 = 0;
    char name[200];
    for (size_t i = 0; i < n; i++) {
        fp4rt_qalgo a = fp4rt_recipe_algo(recipe, &s[i]);
        const char *m = s[i].module;
        int64_t N = s[i].shape[0], K = s[i].shape[1];
        int ok = 1;
        if (s[i].role == FP4RT_ROLE_LINEAR) ok = fp4rt_quant_algo_for(&qc, m) == a;
        snprintf(name, sizeof name, "%s.weight", m);
        const fp4rt_st_tensor *w = fp4rt_checkpoint_find(dst, a ? name : s[i].name);
        snprintf(name, sizeof name, "%s.weight_scale", m);
        const fp4rt_st_tensor *ws = fp4rt_checkpoint_find(dst, name);
        snprintf(name, sizeof name, "%s.weight_scale_2", m);
        const fp4rt_st_tensor *ws2 = fp4rt_checkpoint_find(dst, name);
        snprintf(name, sizeof name, "%s.input_scale", m);
        const fp4rt_st_tensor *is = fp4rt_checkpoint_find(dst, name);
        if (a == FP4RT_Q_NVFP4_W4A16 || a == FP4RT_Q_NVFP4_W4A4) {
            nv++;
            expect += 4;
            ok = ok && has_dim(w, FP4RT_DT_U8, 2, N, K / 2) &&
                 has_dim(ws, FP4RT_DT_F8_E4M3, 2, N, K / 16) && has_dim(ws2, FP4RT_DT_F32, 0, 0, 0) &&
                 has_dim(is, FP4RT_DT_F32, 0, 0, 0);
            /* Bytes equal a fresh quantization of the source rows with the stored s2,
             * and the dequantized weight is close to the source. */
            const fp4rt_st_tensor *t = fp4rt_checkpoint_find(src, s[i].name);
            float s2 = scalar(dst, m, "weight_scale_2");
            float *row = malloc(K * sizeof *row), *deq = malloc(K * sizeof *deq);
            uint8_t *pk = malloc(K / 2), *sc = malloc(K / 16);
            double num = 0, den = 0;
            for (int64_t r = 0; ok && r < N; r++) {
                for (int64_t k = 0; k < K; k++)
                    row[k] = fp4rt_bf16_to_f32(((const uint16_t *)t->data)[r * K + k]);
                fp4rt_nvfp4_quantize_row(row, K, s2, pk, sc);
                ok = !memcmp(pk, (const uint8_t *)w->data + r * K / 2, K / 2) &&
                     !memcmp(sc, (const uint8_t *)ws->data + r * K / 16, K / 16);
                fp4rt_nvfp4_dequantize_row(pk, sc, K, s2, deq);
                for (int64_t k = 0; k < K; k++) {
                    num += (deq[k] - row[k]) * (deq[k] - row[k]);
                    den += row[k] * row[k];
                }
            }
            ok = ok && num / den < 0.02;
            free(row), free(deq), free(pk), free(sc);
        } else if (a == FP4RT_Q_FP8) {
            f8++;
            expect += 3;
            ok = ok && has_dim(w, FP4RT_DT_F8_E4M3, 2, N, K) && has_dim(ws, FP4RT_DT_F32, 0, 0, 0) &&
                 has_dim(is, FP4RT_DT_F32, 0, 0, 0) && !ws2;
            float scale = scalar(dst, m, "weight_scale");
            const fp4rt_st_tensor *t = fp4rt_checkpoint_find(src, s[i].name);
            for (int64_t e = 0; ok && e < N * K; e += 97) { /* spot checks */
                float x = fp4rt_bf16_to_f32(((const uint16_t *)t->data)[e]);
                ok = ((const uint8_t *)w->data)[e] == fp4rt_f32_to_e4m3_sat(x / scale);
            }
        } else {
            expect += 1;
            const fp4rt_st_tensor *t = fp4rt_checkpoint_find(src, s[i].name);
            ok = ok && w && t && w->dtype == t->dtype && w->nbytes == t->nbytes &&
                 !memcmp(w->data, t->data, t->nbytes) && !ws && !is;
        }
        if (!ok && !bad++) fprintf(stderr, "%s: tensor %s wrong\n", recipe, s[i].name);
    }
    CHECK_MSG(bad == 0, "%s: %d tensors wrong", recipe, bad);
    CHECK_EQ_INT(dst->n_tensors, expect);

    /* Fused groups share the tensor scale: gate/up (NVFP4 in every recipe but fp8,
     * where they are FP8 and share the per-tensor weight_scale). */
    int fp8 = !strcmp(recipe, "fp8");
    const char *L = "model.language_model.layers.";
    char g[160], u[160];
    snprintf(g, sizeof g, "%s1.mlp.gate_proj", L);
    snprintf(u, sizeof u, "%s1.mlp.up_proj", L);
    const char *tscale = fp8 ? "weight_scale" : "weight_scale_2";
    CHECK(scalar(dst, g, tscale) == scalar(dst, u, tscale));
    float in_s = scalar(dst, g, "input_scale");
    CHECK(in_s == (fp8 ? 32.0f / 448.0f : 32.0f / 2688.0f));

    /* hf_quant_config.json contents. */
    char *text = NULL;
    size_t len = 0;
    snprintf(name, sizeof name, "%s/hf_quant_config.json", out);
    CHECK(fp4rt_read_file(name, 1 << 24, &text, &len) == FP4RT_OK);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    cJSON *prod = cJSON_GetObjectItem(root, "producer");
    cJSON *quant = cJSON_GetObjectItem(root, "quantization");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(prod, "name")) &&
          !strcmp(cJSON_GetObjectItem(prod, "name")->valuestring, "modelopt"));
    char algo_buf[64] = "";
    const char *algo = cJSON_GetStringValue(cJSON_GetObjectItem(quant, "quant_algo"));
    if (algo) snprintf(algo_buf, sizeof algo_buf, "%s", algo);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(quant, "kv_cache_quant_algo")));
    if (!strcmp(recipe, "nvidia-mixed")) {
        CHECK(algo && !strcmp(algo, "MIXED_PRECISION"));
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(quant, "quantized_layers")), nv + f8);
        snprintf(name, sizeof name, "%s0.linear_attn.in_proj_z", L);
        cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(quant, "quantized_layers"), name);
        CHECK(e && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "quant_algo")), "FP8"));
        e = cJSON_GetObjectItem(cJSON_GetObjectItem(quant, "quantized_layers"), "lm_head");
        CHECK(e && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "quant_algo")),
                           "W4A16_NVFP4") &&
              cJSON_GetObjectItem(e, "group_size")->valueint == 16);
        CHECK(nv == 8 * 3 + 1 && f8 == 6 * 3 + 2 * 4);
    } else if (fp8) {
        /* ModelOpt's FP8 layout: no group_size; lm_head and in_proj_a/b excluded. */
        CHECK(algo && !strcmp(algo, "FP8"));
        CHECK(cJSON_GetObjectItem(quant, "group_size") == NULL);
        cJSON *ex = cJSON_GetObjectItem(quant, "exclude_modules");
        CHECK_EQ_INT(cJSON_GetArraySize(ex), 1 + 6 * 2);
        int head = 0;
        for (int k = 0; k < cJSON_GetArraySize(ex); k++)
            head += !strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(ex, k)), "lm_head");
        CHECK(head == 1);
        CHECK(nv == 0 && f8 == 8 * 3 + 6 * 3 + 2 * 4);
    } else {
        int w4a4 = !strcmp(recipe, "nvfp4-w4a4");
        CHECK(algo && !strcmp(algo, w4a4 ? "NVFP4" : "W4A16_NVFP4"));
        CHECK(cJSON_GetObjectItem(quant, "group_size")->valueint == 16);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(quant, "exclude_modules")), 6 * 2);
        CHECK(nv == 8 * 3 + 1 + 6 * 3 + 2 * 4 && f8 == 0);
        CHECK(in_s == 32.0f / 2688.0f);
    }
    cJSON_Delete(root);
    free(text);
    snprintf(name, sizeof name, "%s/config.json", out);
    CHECK(fp4rt_read_file(name, 1 << 24, &text, &len) == FP4RT_OK);
    root = text ? cJSON_Parse(text) : NULL;
    cJSON *qcfg = cJSON_GetObjectItem(root, "quantization_config");
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(qcfg, "quant_method")), "modelopt"));
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(qcfg, "quant_algo")), algo_buf));
    if (fp8) { /* convert_hf_quant_config_format's FP8 group: 8-bit float, static */
        cJSON *g0 = cJSON_GetObjectItem(cJSON_GetObjectItem(qcfg, "config_groups"), "group_0");
        for (int k = 0; k < 2; k++) {
            cJSON *e = cJSON_GetObjectItem(g0, k ? "weights" : "input_activations");
            CHECK(cJSON_GetObjectItem(e, "num_bits") && cJSON_GetObjectItem(e, "num_bits")->valueint == 8);
            CHECK(cJSON_IsFalse(cJSON_GetObjectItem(e, "dynamic")));
            CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), "float"));
        }
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(qcfg, "ignore")), 1 + 6 * 2);
    }
    cJSON_Delete(root);
    free(text);
    snprintf(name, sizeof name, "%s/generation_config.json", out);
    CHECK(access(name, F_OK) == 0);

    free(s);
    fp4rt_quant_config_free(&qc);
    fp4rt_checkpoint_close(src);
    fp4rt_checkpoint_close(dst);
}

static void test_end_to_end(void) {
    fp4rt_config c;
    char in[256], out[256];
    snprintf(in, sizeof in, "%s", test_tmp_path("bf16"));
    CHECK(fp4rt_config_preset("tiny", 0, &c) == FP4RT_OK);
    c.vision.depth = 0; /* the text model's counts below; a vision tower passes through: test_vision */
    c.mtp_layers = 0; /* the text model only: MTP copy-through is checked on its own (V_MTP below) */
    CHECK(fp4rt_synth(&c, in, 3, 0, 0) == FP4RT_OK);

    static const char *const recipes[] = {"nvidia-mixed", "nvfp4-all", "nvfp4-w4a4", "fp8"};
    for (int r = 0; r < 4; r++) {
        fp4rt_quantize_summary sum;
        snprintf(out, sizeof out, "%s", test_tmp_path(recipes[r]));
        fp4rt_status st = fp4rt_quantize(in, out, recipes[r], 0, NULL, &sum);
        CHECK_MSG(st == FP4RT_OK, "%s: %s", recipes[r], fp4rt_last_error());
        if (st != FP4RT_OK) continue;
        CHECK(sum.default_input_scale && sum.n_copied == 0 && sum.bytes > 0);
        CHECK(sum.text && strstr(sum.text, "no calibration") && sum.scale == FP4RT_SCALE_ABSMAX);
        free(sum.text);
        check_output(in, out, recipes[r]);
    }
    fp4rt_quantize_opts opts = {.shard_bytes = 128 << 10};
    snprintf(out, sizeof out, "%s", test_tmp_path("nvidia-mixed"));
    CHECK(fp4rt_quantize(in, out, "nvidia-mixed", 0, NULL, NULL) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "exists") != NULL);
    CHECK(fp4rt_quantize(in, out, "nvidia-mixed", 1, &opts, NULL) == FP4RT_OK);
    char idx[300];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", out);
    CHECK(access(idx, F_OK) == 0);
    check_output(in, out, "nvidia-mixed");
    CHECK(fp4rt_quantize(in, test_tmp_path("bad"), "nvfp4-bogus", 0, NULL, NULL) ==
          FP4RT_INVALID_ARGUMENT);

    /* Refusals name the tensor and leave nothing behind. */
    const char *L = "model.language_model.layers.";
    char victim[160];
    snprintf(victim, sizeof victim, "%s2.mlp.down_proj.weight", L);
    make_variant(in, test_tmp_path("nan"), V_NAN, victim);
    CHECK(fp4rt_quantize(test_tmp_path("nan"), test_tmp_path("nan-out"), "nvfp4-all", 0, NULL, NULL) ==
          FP4RT_FORMAT);
    CHECK(strstr(fp4rt_last_error(), victim) && strstr(fp4rt_last_error(), "element 5"));
    CHECK(access(test_tmp_path("nan-out"), F_OK) != 0 && test_tmpdir_count(".tmp-") == 0);

    snprintf(victim, sizeof victim, "%s5.linear_attn.A_log", L);
    make_variant(in, test_tmp_path("missing"), V_MISSING, victim);
    CHECK(fp4rt_quantize(test_tmp_path("missing"), test_tmp_path("m-out"), "nvfp4-all", 0, NULL, NULL) ==
          FP4RT_FORMAT);
    CHECK(strstr(fp4rt_last_error(), victim) && strstr(fp4rt_last_error(), "missing"));

    snprintf(victim, sizeof victim, "%s0.mlp.bogus.weight", L);
    make_variant(in, test_tmp_path("extra"), V_EXTRA, victim);
    CHECK(fp4rt_quantize(test_tmp_path("extra"), test_tmp_path("e-out"), "nvfp4-all", 0, NULL, NULL) ==
          FP4RT_FORMAT);
    CHECK(strstr(fp4rt_last_error(), victim) != NULL);

    snprintf(victim, sizeof victim, "%s1.mlp.up_proj.weight", L);
    make_variant(in, test_tmp_path("shape"), V_SHAPE, victim);
    CHECK(fp4rt_quantize(test_tmp_path("shape"), test_tmp_path("s-out"), "nvfp4-all", 0, NULL, NULL) ==
          FP4RT_FORMAT);
    CHECK(strstr(fp4rt_last_error(), victim) && strstr(fp4rt_last_error(), "[96, 128]"));
    CHECK(test_tmpdir_count(".tmp-") == 0);

    /* An F32 source tensor quantizes to the same bytes as its BF16 original. */
    snprintf(victim, sizeof victim, "%s4.mlp.down_proj.weight", L);
    make_variant(in, test_tmp_path("f32"), V_F32, victim);
    CHECK(fp4rt_quantize(test_tmp_path("f32"), test_tmp_path("f32-out"), "nvfp4-all", 0, NULL, NULL) ==
          FP4RT_OK);
    CHECK(fp4rt_quantize(in, test_tmp_path("bf16-out"), "nvfp4-all", 0, NULL, NULL) == FP4RT_OK);
    fp4rt_checkpoint *ca = NULL, *cb = NULL;
    CHECK(fp4rt_checkpoint_open(test_tmp_path("f32-out"), &ca) == FP4RT_OK);
    CHECK(fp4rt_checkpoint_open(test_tmp_path("bf16-out"), &cb) == FP4RT_OK);
    if (ca && cb) {
        int same = ca->n_tensors == cb->n_tensors;
        for (size_t i = 0; same && i < ca->n_tensors; i++)
            same = ca->tensors[i]->nbytes == cb->tensors[i]->nbytes &&
                   !memcmp(ca->tensors[i]->data, cb->tensors[i]->data, ca->tensors[i]->nbytes);
        CHECK(same);
    }
    if (ca) fp4rt_checkpoint_close(ca);
    if (cb) fp4rt_checkpoint_close(cb);

    /* MTP tensors are copied through and excluded. */
    make_variant(in, test_tmp_path("mtp"), V_MTP, "mtp.fc.weight");
    fp4rt_quantize_summary sum;
    CHECK(fp4rt_quantize(test_tmp_path("mtp"), test_tmp_path("mtp-out"), "nvfp4-all", 0, NULL, &sum) ==
          FP4RT_OK);
    CHECK(sum.n_copied == 1);
    free(sum.text);
    fp4rt_quant_config qc;
    CHECK(fp4rt_quant_config_load(test_tmp_path("mtp-out"), &qc) == FP4RT_OK);
    CHECK(fp4rt_quant_algo_for(&qc, "mtp.fc") == FP4RT_Q_NONE);
    fp4rt_quant_config_free(&qc);
}

int main(void) {
    fp4rt_numfmt_init();
    test_tmpdir("quant");
    test_rows();
    test_half_step();
    test_end_to_end();
    test_tmpdir_remove();
    return test_summary("quantize");
}
