/* Bad checkpoints through the whole loading path (fp4rt_model_load): each must
 * fail with the right status and a one-line message naming the file and the
 * tensor or key, never crash. The corrupt checkpoints are copies of a
 * synthesized + quantized tiny model with one thing changed. */
#include "tests/test_util.h"

#include "loader/st_writer.h"
#include "runtime/base/common.h"
#include "runtime/engine/model.h"
#include "runtime/model/check.h"
#include "runtime/base/numfmt.h"
#include "runtime/tools/quantize.h"
#include "runtime/tools/synth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_src[512]; /* nvidia-mixed tiny checkpoint */

/* How to change the copy. */
typedef struct mutation {
    const char *drop;      /* tensor to leave out */
    const char *reshape;   /* tensor whose last dim loses one element (data truncated) */
    const char *poke;      /* tensor whose byte poke_at becomes poke_value */
    size_t poke_at;
    uint8_t poke_value, poke_value2; /* poke_value2 (if non-zero) goes to poke_at + 1 */
    const char *shape_of;  /* tensor declared with new_shape (same bytes) */
    int new_ndim;
    int64_t new_shape[4];
    const char *file;      /* text file to rewrite: "config.json" or "hf_quant_config.json" */
    const char *find, *replace; /* first occurrence of find -> replace in that file */
} mutation;

static int copy_text(const char *name, const char *dst_dir, const mutation *mu) {
    char src[768], dst[768];
    snprintf(src, sizeof src, "%s/%s", g_src, name);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, name);
    char *text;
    size_t len;
    if (fp4rt_read_file(src, 1 << 20, &text, &len)) return access(src, F_OK) == 0 ? -1 : 0;
    char *out = text;
    if (mu->file && !strcmp(mu->file, name)) {
        char *at = strstr(text, mu->find);
        if (!at) {
            fprintf(stderr, "mutation: '%s' not in %s\n", mu->find, name);
            free(text);
            return -1;
        }
        out = malloc(len + strlen(mu->replace) + 1);
        size_t pre = (size_t)(at - text);
        memcpy(out, text, pre);
        strcpy(out + pre, mu->replace);
        strcat(out, at + strlen(mu->find));
    }
    int rc = fp4rt_write_text_file(dst, out) ? -1 : 0;
    if (out != text) free(out);
    free(text);
    return rc;
}

static int make_copy(const char *dst, const mutation *mu) {
    if (mkdir(dst, 0700) != 0) return -1;
    fp4rt_checkpoint *ck;
    if (fp4rt_checkpoint_open(g_src, &ck)) return -1;
    fp4rt_stw *w;
    if (fp4rt_stw_create(dst, 0, &w)) return -1;
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++)
        for (size_t i = 0; i < ck->n_tensors && !rc; i++) {
            const fp4rt_st_tensor *t = ck->tensors[i];
            if (mu->drop && !strcmp(t->name, mu->drop)) continue;
            int64_t shape[FP4RT_ST_MAX_DIMS];
            memcpy(shape, t->shape, sizeof shape);
            uint64_t nbytes = t->nbytes;
            if (mu->reshape && !strcmp(t->name, mu->reshape)) {
                nbytes = nbytes / (uint64_t)shape[t->ndim - 1] * (uint64_t)(shape[t->ndim - 1] - 1);
                shape[t->ndim - 1]--;
            }
            int ndim = (int)t->ndim;
            if (mu->shape_of && !strcmp(t->name, mu->shape_of)) {
                ndim = mu->new_ndim;
                memcpy(shape, mu->new_shape, sizeof mu->new_shape);
            }
            if (pass == 0) {
                rc = fp4rt_stw_declare(w, t->name, t->dtype, ndim, shape) ? -1 : 0;
                continue;
            }
            uint8_t *data = malloc(nbytes ? nbytes : 1);
            memcpy(data, t->data, nbytes);
            if (mu->poke && !strcmp(t->name, mu->poke)) {
                data[mu->poke_at] = mu->poke_value;
                if (mu->poke_value2) data[mu->poke_at + 1] = mu->poke_value2;
            }
            rc = fp4rt_stw_write(w, t->name, data, nbytes) ? -1 : 0;
            free(data);
        }
    if (!rc && fp4rt_stw_finish(w)) rc = -1;
    fp4rt_stw_free(w);
    fp4rt_checkpoint_close(ck);
    if (!rc) rc = copy_text("config.json", dst, mu);
    if (!rc) rc = copy_text("hf_quant_config.json", dst, mu);
    return rc;
}

/* Loads a mutated copy; expects status `want` and every `needle` in the message. */
static void expect_failure(const char *label, const mutation *mu, fp4rt_status want,
                           const char *needle1, const char *needle2) {
    char dst[512];
    snprintf(dst, sizeof dst, "%s", test_tmp_path(label));
    int made = make_copy(dst, mu);
    CHECK_MSG(made == 0, "%s: could not make the corrupt copy", label);
    if (made) return;
    fp4rt_clear_error();
    fp4rt_model *m = fp4rt_model_load(dst, NULL);
    const char *msg = fp4rt_last_error();
    printf("%-22s -> %s\n", label, msg);
    CHECK_MSG(m == NULL, "%s: loaded anyway", label);
    fp4rt_model_free(m);
    int got = 0;
    /* the status is not returned by the constructor; check it through the loader */
    fp4rt_weights *w = NULL;
    got = fp4rt_weights_load(dst, &w);
    fp4rt_weights_free(w);
    CHECK_MSG(got == (int)want, "%s: status %s, expected %s", label, fp4rt_status_name(got),
              fp4rt_status_name(want));
    CHECK_MSG(strchr(msg, '\n') == NULL && msg[0], "%s: message is not one line", label);
    CHECK_MSG(!needle1 || strstr(msg, needle1), "%s: message lacks '%s'", label, needle1);
    CHECK_MSG(!needle2 || strstr(msg, needle2), "%s: message lacks '%s'", label, needle2);
}

/* fp4rt_checkpoint_check on dir: exactly `tensor` is reported (none when NULL),
 * at `element`, its description containing `what`. */
static int on_bad(const fp4rt_bad_tensor *b, void *user) {
    *(fp4rt_bad_tensor *)user = *b;
    return 0;
}

static void expect_check(const char *dir, const char *tensor, uint64_t element, const char *what) {
    fp4rt_checkpoint *ck;
    CHECK_MSG(!fp4rt_checkpoint_open(dir, &ck), "%s: %s", dir, fp4rt_last_error());
    fp4rt_bad_tensor b = {0};
    size_t n = 99;
    fp4rt_checkpoint_check(ck, on_bad, &b, &n);
    CHECK_MSG(n == (tensor ? 1u : 0u), "%s: %zu bad tensors", dir, n);
    if (tensor && n == 1) {
        CHECK_MSG(!strcmp(b.t->name, tensor) && b.first == element && b.count == 1 && strstr(b.what, what),
                  "%s: reported %s element %llu (%llu bad): %s", dir, b.t->name, (unsigned long long)b.first,
                  (unsigned long long)b.count, b.what);
    }
    fp4rt_checkpoint_close(ck);
}

int main(void) {
    fp4rt_numfmt_init();
    test_tmpdir("bad");
    char bf16[512];
    snprintf(bf16, sizeof bf16, "%s", test_tmp_path("bf16"));
    snprintf(g_src, sizeof g_src, "%s", test_tmp_path("mixed"));
    fp4rt_config cfg;
    CHECK(!fp4rt_config_preset("tiny", 0, &cfg));
    CHECK(!fp4rt_synth(&cfg, bf16, 5, 0, 0));
    CHECK(!fp4rt_quantize(bf16, g_src, "nvidia-mixed", 0, NULL, NULL));

    /* the unmodified copy loads (the copier itself is sound) */
    mutation none = {0};
    char ok_dir[512];
    snprintf(ok_dir, sizeof ok_dir, "%s", test_tmp_path("unchanged"));
    CHECK(make_copy(ok_dir, &none) == 0);
    fp4rt_model *m = fp4rt_model_load(ok_dir, NULL);
    CHECK_MSG(m != NULL, "unchanged copy: %s", fp4rt_last_error());
    fp4rt_model_free(m);

    const char *P = "model.language_model.layers.";
    char up[160], up_scale[160], q_w[160], q_ws[160], ws2[160];
    snprintf(up, sizeof up, "%s0.mlp.up_proj.weight", P);
    snprintf(up_scale, sizeof up_scale, "%s0.mlp.up_proj.weight_scale", P);
    snprintf(ws2, sizeof ws2, "%s1.mlp.down_proj.weight_scale_2", P);
    snprintf(q_w, sizeof q_w, "%s3.self_attn.q_proj.weight", P);
    snprintf(q_ws, sizeof q_ws, "%s3.self_attn.q_proj.weight_scale", P);

    mutation mu;
    mu = (mutation){.drop = up};
    expect_failure("missing-tensor", &mu, FP4RT_FORMAT, up, "missing");
    mu = (mutation){.drop = q_ws};
    expect_failure("missing-fp8-scale", &mu, FP4RT_FORMAT, q_ws, "missing");
    mu = (mutation){.reshape = up_scale};
    expect_failure("scale-wrong-shape", &mu, FP4RT_FORMAT, up_scale, "shape");
    mu = (mutation){.poke = up_scale, .poke_at = 5, .poke_value = 0x7f};
    expect_failure("nan-block-scale", &mu, FP4RT_FORMAT, up_scale, "NaN");
    mu = (mutation){.poke = ws2, .poke_at = 2, .poke_value = 0xc0, .poke_value2 = 0x7f}; /* F32 NaN */
    expect_failure("nan-tensor-scale", &mu, FP4RT_FORMAT, ws2, "scale");
    mu = (mutation){.reshape = q_w};
    expect_failure("weight-wrong-shape", &mu, FP4RT_FORMAT, q_w, "shape");
    mu = (mutation){.file = "hf_quant_config.json", .find = "\"MIXED_PRECISION\"", .replace = "\"INT4_AWQ\""};
    expect_failure("unknown-quant-algo", &mu, FP4RT_UNSUPPORTED, "INT4_AWQ", "quant_algo");
    mu = (mutation){.file = "hf_quant_config.json", .find = "\"FP8\"", .replace = "\"W4A16_NVFP4\", \"group_size\": 16"};
    expect_failure("dtype-vs-config", &mu, FP4RT_FORMAT, "F8_E4M3", "expected U8");
    mu = (mutation){.file = "config.json", .find = "\"num_attention_heads\":\t4", .replace = "\"num_attention_heads\": 5"};
    expect_failure("inconsistent-heads", &mu, FP4RT_FORMAT, "config.json", "num_attention_heads");
    mu = (mutation){.file = "config.json", .find = "\"num_hidden_layers\":\t8", .replace = "\"num_hidden_layers\": 4"};
    expect_failure("fewer-layers-in-config", &mu, FP4RT_FORMAT, "config.json", "num_hidden_layers");

    /* a norm of the right element count in the wrong shape ([hidden / 2, 2] for [hidden]) */
    char norm[160];
    snprintf(norm, sizeof norm, "%s0.input_layernorm.weight", P);
    mu = (mutation){.shape_of = norm, .new_ndim = 2, .new_shape = {cfg.hidden / 2, 2}};
    expect_failure("norm-wrong-shape", &mu, FP4RT_FORMAT, norm, "shape");
    mu = (mutation){.poke = ws2, .poke_at = 2, .poke_value = 0x96, .poke_value2 = 0x7e}; /* ~1e38 */
    expect_failure("huge-tensor-scale", &mu, FP4RT_FORMAT, ws2, "overflows");
    /* inspect --check finds what the loader refuses too (files opened, not resolved) */
    expect_check(test_tmp_path("huge-tensor-scale"), ws2, 0, "overflows FP32");
    expect_check(test_tmp_path("nan-block-scale"), up_scale, 5, "NaN (F8_E4M3 0x7f)");
    expect_check(test_tmp_path("nan-tensor-scale"), ws2, 0, "NaN (F32)");
    expect_check(ok_dir, NULL, 0, NULL);

    /* an end-of-generation id outside the vocabulary, in config.json and in
       generation_config.json: refused by fp4rt_model_load naming the file */
    for (int k = 0; k < 2; k++) {
        char dst[512], gpath[600];
        snprintf(dst, sizeof dst, "%s", test_tmp_path(k ? "eos-gen-config" : "eos-config"));
        mu = k ? (mutation){0}
               : (mutation){.file = "config.json", .find = "\"eos_token_id\":\t[", .replace = "\"eos_token_id\":\t[999999, "};
        CHECK(make_copy(dst, &mu) == 0);
        snprintf(gpath, sizeof gpath, "%s/generation_config.json", dst);
        if (k) CHECK(!fp4rt_write_text_file(gpath, "{\"eos_token_id\": [3, 70000]}"));
        fp4rt_clear_error();
        fp4rt_model *em = fp4rt_model_load(dst, NULL);
        printf("%-22s -> %s\n", k ? "eos-gen-config" : "eos-config", fp4rt_last_error());
        CHECK(em == NULL);
        CHECK(strstr(fp4rt_last_error(), k ? "generation_config.json: eos_token_id 70000" : "config.json: eos_token_id 999999"));
        CHECK(strstr(fp4rt_last_error(), "outside the vocabulary") != NULL);
        fp4rt_model_free(em);
    }

    /* bad weights the loader does not scan (the bulk of the data): generation
     * stops with NUMERIC naming the step instead of sampling from NaN logits */
    char embed[160];
    snprintf(embed, sizeof embed, "model.language_model.embed_tokens.weight");
    struct {
        const char *label;
        mutation mu;
        uint64_t element; /* what fp4rt_checkpoint_check reports */
        const char *what;
    } nan_cases[] = {
        {"fp8-weight-nan", {.poke = q_w, .poke_at = 7, .poke_value = 0x7f}, 7, "NaN (F8_E4M3 0x7f)"},
        {"fp8-weight-nan-neg", {.poke = q_w, .poke_at = 9, .poke_value = 0xff}, 9, "NaN (F8_E4M3 0xff)"},
        /* BF16 NaN 0x7fc0 in row 1 (the prompt's token) */
        {"bf16-embed-nan",
         {.poke = embed, .poke_at = (size_t)cfg.hidden * 2 + 4, .poke_value = 0xc0, .poke_value2 = 0x7f},
         (uint64_t)cfg.hidden + 2, "NaN (BF16 0x7fc0)"},
    };
    for (size_t c = 0; c < sizeof nan_cases / sizeof nan_cases[0]; c++) {
        char dst[512];
        snprintf(dst, sizeof dst, "%s", test_tmp_path(nan_cases[c].label));
        CHECK(make_copy(dst, &nan_cases[c].mu) == 0);
        expect_check(dst, nan_cases[c].mu.poke, nan_cases[c].element, nan_cases[c].what);
        fp4rt_model *nm = fp4rt_model_load(dst, NULL);
        CHECK_MSG(nm != NULL, "%s: %s", nan_cases[c].label, fp4rt_last_error());
        if (!nm) continue;
        for (int greedy = 0; greedy < 2; greedy++) { /* device pick and the sampler */
            fp4rt_session *ns = fp4rt_session_create(nm, NULL);
            fp4rt_generate_params gp = fp4rt_generate_default_params();
            gp.sampling.greedy = greedy ? 1 : -1;
            gp.sampling.top_k = greedy ? 0 : 5;
            gp.max_tokens = 4;
            int32_t prompt[2] = {1, 1};
            fp4rt_generate_result r;
            fp4rt_status st = fp4rt_generate(ns, prompt, 2, &gp, NULL, NULL, &r);
            printf("%-22s -> %s\n", nan_cases[c].label, fp4rt_last_error());
            CHECK_MSG(st == FP4RT_NUMERIC, "%s greedy %d: status %s", nan_cases[c].label, greedy,
                      fp4rt_status_name(st));
            CHECK(strstr(fp4rt_last_error(), "step 0") && strstr(fp4rt_last_error(), "NaN") &&
                  strstr(fp4rt_last_error(), "inspect --check"));
            CHECK_EQ_INT(r.n_generated, 0);
            fp4rt_session_free(ns);
        }
        fp4rt_model_free(nm);
    }

    /* out of memory at every allocation of load + session + one step: a clean
     * failure (OUT_OF_MEMORY message, nothing leaked: LeakSanitizer checks the
     * sanitizer build), then success once the failure point is past the end */
    int n_fail = 0, loaded = 0;
    for (long k = 1; k < 2000 && !loaded; k++) {
        fp4rt_clear_error();
        fp4rt_debug_fail_alloc_after(k);
        fp4rt_model *om = fp4rt_model_load(g_src, NULL);
        fp4rt_session *os = om ? fp4rt_session_create(om, NULL) : NULL;
        int32_t tok = 1;
        fp4rt_status st = os ? fp4rt_session_eval(os, &tok, 1, NULL, 0) : FP4RT_OUT_OF_MEMORY;
        fp4rt_debug_fail_alloc_after(0);
        if (st == FP4RT_OK) {
            loaded = 1;
        } else {
            n_fail++;
            CHECK_MSG(strstr(fp4rt_last_error(), "out of memory") != NULL,
                      "allocation %ld failed without an out-of-memory message: '%s'", k, fp4rt_last_error());
        }
        fp4rt_session_free(os);
        fp4rt_model_free(om);
    }
    printf("allocation failure injected at %d points, each reported as out of memory\n", n_fail);
    CHECK(loaded && n_fail > 10);

    test_tmpdir_remove();
    return test_summary("bad_model");
}
