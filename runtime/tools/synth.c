/* Deterministic random BF16 checkpoints (see synth.h).
 *
 * Determinism across machines: the PRNG is integer-only, and every float value is
 * produced by IEEE-exact operations (+ - * / sqrt, frexp/ldexp) in double, then
 * rounded once to BF16. log and exp, needed for A_log and dt_bias, are computed
 * here by fixed series instead of libm, whose last bit differs between versions. */
#include "runtime/tools/synth.h"

#include "runtime/text/tokenizer.h"
#include "runtime/tools/synth_tokenizer.h"

#include "runtime/base/common.h"
#include "loader/st_writer.h"
#include "runtime/base/numfmt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* No fused multiply-add: contraction (clang's default where FMA is baseline, as on
 * AArch64) would change the last bits of the values from one machine to another.
 * GCC does not contract in ISO C mode (-std=c11), which the build uses. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- PRNG and distributions ------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1p-53; }

/* Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall), centred
 * and scaled to unit variance. Bounded at +-sqrt(12) = 3.46. */
static double normal(uint64_t *s) {
    uint64_t r = splitmix64(s);
    double sum = (double)(r & 0xffff) + (double)((r >> 16) & 0xffff) +
                 (double)((r >> 32) & 0xffff) + (double)(r >> 48);
    /* variance of one 16-bit uniform: (65536^2 - 1) / 12 */
    static const double inv_sd = 2.6428997921303014e-05; /* 1/sqrt(4 (65536^2-1) / 12) */
    return (sum - 131070.0) * inv_sd;
}

static const double k_ln2 = 0.6931471805599453;

/* Natural log of x > 0 by the atanh series on a mantissa in [sqrt(1/2), sqrt(2)). */
static double det_log(double x) {
    int e;
    double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1) */
    if (m < 0.7071067811865476) {
        m *= 2.0;
        e--;
    }
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int k = 1; k <= 31; k += 2) { /* |z| < 0.172: 16 terms reach 1e-25 */
        sum += term / k;
        term *= z2;
    }
    return 2.0 * sum + e * k_ln2;
}

/* e^x for |x| < 700 by range reduction to |r| <= ln2/2 and a Taylor series. */
static double det_exp(double x) {
    double k = floor(x / k_ln2 + 0.5);
    double r = x - k * k_ln2, term = 1.0, sum = 1.0;
    for (int i = 1; i <= 20; i++) {
        term *= r / i;
        sum += term;
    }
    return ldexp(sum, (int)k);
}

/* ---- tensor values --------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void fp4rt_synth_tensor(const fp4rt_config *cfg, const fp4rt_tensor_spec *t, uint64_t seed,
                        uint16_t *out, size_t n) {
    /* Key by the name without the layout prefix, so the nested and the causal-lm
     * layouts of one seed hold the same numbers. */
    const char *key = t->name;
    size_t plen = strlen(cfg->tensor_prefix);
    if (!strncmp(key, cfg->tensor_prefix, plen)) key += plen;
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL ^ fnv1a(key);
    splitmix64(&s);

    /* The residual stream has unit scale. Untied: so has the embedding. Tied: the
     * embedding is also the output matrix and gets lm_head's scale; layer 0's
     * down_proj then lifts the stream to unit scale (as trained tied models use
     * their first MLP), otherwise every position would predict its own token. Every
     * residual update is 1/sqrt(2 n_layers) of the stream it is added to (GPT-2's
     * scaling), so no layer dominates and the model is not chaotic. */
    const double logit_sd = 2.0 / sqrt((double)cfg->hidden);
    const double embed_sd = cfg->tie_embeddings ? logit_sd : 1.0;
    double sd = 1.0, mean = 0.0;
    switch (t->role) {
    case FP4RT_ROLE_VLINEAR: { /* N(0, 1/K); the blocks' residual outputs / sqrt(2 depth) */
        int64_t k = 1;
        for (int d = 1; d < t->ndim; d++) k *= t->shape[d];
        sd = 1.0 / sqrt((double)k);
        if (ends_with(t->module, "attn.proj") || ends_with(t->module, "mlp.linear_fc2"))
            sd /= sqrt(2.0 * (cfg->vision.depth > 0 ? cfg->vision.depth : 1));
        break;
    }
    case FP4RT_ROLE_VBIAS: sd = 0.02; break;
    case FP4RT_ROLE_VNORM_W:
        sd = 0.1;
        mean = 1.0;
        break;
    case FP4RT_ROLE_VNORM_B: sd = 0.02; break;
    case FP4RT_ROLE_VPOS: sd = 0.5; break;
    case FP4RT_ROLE_LINEAR:
        if (!strcmp(t->module, "lm_head")) {
            sd = logit_sd;
        } else {
            sd = 1.0 / sqrt((double)t->shape[1]);
            int residual_out = ends_with(t->module, "o_proj") ||
                               ends_with(t->module, "out_proj") ||
                               ends_with(t->module, "down_proj");
            /* Stream scale where this update is added: embed_sd before layer 0's MLP. */
            double stream = t->layer == 0 && !ends_with(t->module, "down_proj") ? embed_sd : 1.0;
            if (cfg->tie_embeddings && t->layer == 0 && ends_with(t->module, "down_proj"))
                sd *= 2.0;
            else if (residual_out)
                sd *= stream / sqrt(2.0 * cfg->n_layers);
        }
        break;
    case FP4RT_ROLE_EMBED: sd = embed_sd; break;
    case FP4RT_ROLE_NORM: sd = 0.1; break;
    case FP4RT_ROLE_NORM_PLAIN:
        sd = 0.1;
        mean = 1.0;
        break;
    case FP4RT_ROLE_CONV: sd = 0.5; break;
    case FP4RT_ROLE_VECTOR:
        if (ends_with(t->name, "A_log")) {
            for (size_t i = 0; i < n; i++)
                out[i] = fp4rt_f32_to_bf16((float)det_log(1.0 + 15.0 * uniform(&s)));
        } else { /* dt_bias = log(expm1(dt)), dt = exp(U(log 1e-3, log 1e-1)) */
            const double lo = det_log(1e-3), hi = det_log(1e-1);
            for (size_t i = 0; i < n; i++) {
                double dt = det_exp(lo + (hi - lo) * uniform(&s));
                double em1 = dt * (1.0 + dt / 2.0 * (1.0 + dt / 3.0 * (1.0 + dt / 4.0)));
                out[i] = fp4rt_f32_to_bf16((float)det_log(em1));
            }
        }
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = fp4rt_f32_to_bf16((float)(mean + sd * normal(&s)));
}

/* ---- checkpoint ------------------------------------------------------------ */

static size_t spec_elems(const fp4rt_tensor_spec *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* generation_config.json with Qwen's sampling defaults (docs/MODEL.md §6). */
static char *generation_config_json(const fp4rt_config *cfg) {
    cJSON *g = cJSON_CreateObject();
    if (!g) return NULL;
    if (cfg->n_eos == 1) {
        cJSON_AddNumberToObject(g, "eos_token_id", cfg->eos[0]);
    } else {
        cJSON *a = cJSON_AddArrayToObject(g, "eos_token_id");
        for (int i = 0; i < cfg->n_eos && a; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(cfg->eos[i]));
    }
    if (cfg->n_eos > 0) cJSON_AddNumberToObject(g, "pad_token_id", cfg->eos[cfg->n_eos - 1]);
    cJSON_AddBoolToObject(g, "do_sample", 1);
    cJSON_AddNumberToObject(g, "temperature", 0.6);
    cJSON_AddNumberToObject(g, "top_k", 20);
    cJSON_AddNumberToObject(g, "top_p", 0.95);
    char *s = cJSON_Print(g);
    cJSON_Delete(g);
    return s;
}

/* Writes text to dir/name. */
static fp4rt_status write_json(const char *dir, const char *name, char *text) {
    if (!text) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synth: out of memory building %s", name);
    char *path = fp4rt_path_join(dir, name);
    fp4rt_status st = path ? fp4rt_write_text_file(path, text)
                           : fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synth: out of memory");
    free(path);
    free(text);
    return st;
}

/* eos = [<|im_end|>, <|endoftext|>] of the tokenizer written to dir, and its vision token ids. */
static fp4rt_status synth_stop_ids(const char *dir, fp4rt_config *cfg) {
    fp4rt_tokenizer *tok;
    fp4rt_status st = fp4rt_tokenizer_load_dir(dir, &tok);
    if (st) return st;
    int32_t end = fp4rt_tokenizer_find(tok, "<|im_end|>"), eot = fp4rt_tokenizer_find(tok, "<|endoftext|>");
    /* the vision tokens, where the tokenizer has them (else config.json keeps Qwen's ids) */
    static const char *const vis[] = {"<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"};
    int *ids[] = {&cfg->image_token_id, &cfg->video_token_id, &cfg->vision_start_token_id, &cfg->vision_end_token_id};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(vis); i++) {
        int32_t id = fp4rt_tokenizer_find(tok, vis[i]);
        if (id >= 0) *ids[i] = id;
    }
    fp4rt_tokenizer_free(tok);
    if (end < 0 || eot < 0) return fp4rt_fail(FP4RT_INTERNAL, "synth: tokenizer lacks <|im_end|> / <|endoftext|>");
    cfg->n_eos = 2;
    cfg->eos[0] = end;
    cfg->eos[1] = eot;
    return FP4RT_OK;
}

fp4rt_status fp4rt_synth(const fp4rt_config *cfg, const char *out_dir, uint64_t seed,
                         uint64_t shard_bytes, int force) {
    if (!cfg || !out_dir || cfg->n_layers <= 0 || cfg->hidden <= 0 || cfg->vocab <= 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "synth: invalid config or output directory");
    fp4rt_tensor_spec *specs = NULL;
    size_t n_specs = fp4rt_schema_tensors(cfg, &specs);
    if (!n_specs) return FP4RT_OUT_OF_MEMORY;
    /* the MTP head (cfg->mtp_layers), BF16 like the rest, after the text model */
    fp4rt_tensor_spec *mtp = NULL;
    size_t n_mtp = fp4rt_schema_mtp_tensors(cfg, &mtp);
    if (n_mtp) {
        fp4rt_tensor_spec *all = realloc(specs, (n_specs + n_mtp) * sizeof *all);
        if (!all) {
            free(specs);
            free(mtp);
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synth: out of memory listing the MTP head");
        }
        memcpy(all + n_specs, mtp, n_mtp * sizeof *mtp);
        specs = all;
        n_specs += n_mtp;
        free(mtp);
    } else if (cfg->mtp_layers > 0) {
        free(specs);
        return FP4RT_OUT_OF_MEMORY;
    }
    /* the vision tower (cfg->vision.depth; the Qwen3_5ForConditionalGeneration layout
     * only: a causal-lm config has no vision_config), BF16, last */
    fp4rt_tensor_spec *vis = NULL;
    int with_vision = cfg->nested && cfg->vision.depth > 0;
    size_t n_vis = with_vision ? fp4rt_schema_vision_tensors(cfg, &vis) : 0;
    if (n_vis) {
        fp4rt_tensor_spec *all = realloc(specs, (n_specs + n_vis) * sizeof *all);
        if (!all) {
            free(specs);
            free(vis);
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synth: out of memory listing the vision tower");
        }
        memcpy(all + n_specs, vis, n_vis * sizeof *vis);
        specs = all;
        n_specs += n_vis;
        free(vis);
    } else if (with_vision) {
        free(specs);
        return FP4RT_OUT_OF_MEMORY;
    }

    char *tmp = NULL;
    fp4rt_stw *w = NULL;
    uint16_t *buf = NULL;
    fp4rt_status st = fp4rt_outdir_begin(out_dir, force, &tmp);
    if (st != FP4RT_OK) goto done;
    /* a small byte-level BPE tokenizer, so the model takes text; its
     * <|im_end|> / <|endoftext|> ids become the config's stop ids */
    fp4rt_config text_cfg = *cfg;
    if ((st = fp4rt_synth_tokenizer(tmp, cfg->vocab)) != FP4RT_OK) goto done;
    if ((st = synth_stop_ids(tmp, &text_cfg)) != FP4RT_OK) goto done;
    if ((st = write_json(tmp, "config.json", fp4rt_config_to_json(&text_cfg))) != FP4RT_OK) goto done;
    if (with_vision &&
        (st = write_json(tmp, "preprocessor_config.json", fp4rt_preprocessor_config_json(cfg))) != FP4RT_OK)
        goto done;
    if ((st = write_json(tmp, "generation_config.json", generation_config_json(&text_cfg))) != FP4RT_OK)
        goto done;

    if ((st = fp4rt_stw_create(tmp, shard_bytes, &w)) != FP4RT_OK) goto done;
    size_t max_elems = 0;
    for (size_t i = 0; i < n_specs; i++) {
        st = fp4rt_stw_declare(w, specs[i].name, FP4RT_DT_BF16, specs[i].ndim, specs[i].shape);
        if (st != FP4RT_OK) goto done;
        max_elems = FP4RT_MAX(max_elems, spec_elems(&specs[i]));
    }
    buf = fp4rt_malloc(max_elems * sizeof *buf, "synth tensor buffer");
    if (!buf) {
        st = FP4RT_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < n_specs; i++) {
        size_t n = spec_elems(&specs[i]);
        fp4rt_synth_tensor(cfg, &specs[i], seed, buf, n);
        if ((st = fp4rt_stw_write(w, specs[i].name, buf, n * sizeof *buf)) != FP4RT_OK) goto done;
    }
    if ((st = fp4rt_stw_finish(w)) != FP4RT_OK) goto done;
    fp4rt_stw_free(w);
    w = NULL;
    st = fp4rt_outdir_commit(tmp, out_dir);

done:
    if (w) fp4rt_stw_free(w);
    if (st != FP4RT_OK && tmp) fp4rt_outdir_abort(tmp);
    free(tmp);
    free(buf);
    free(specs);
    return st;
}
