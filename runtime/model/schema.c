/* Tensor schema of a Qwen3.5 / Qwen3.6 dense text model, the named preset configs,
 * config.json generation and the quantization recipes (see schema.h; names and
 * shapes follow docs/MODEL.md §4, recipes docs/MODEL.md §5.2). */
#include "runtime/model/schema.h"

#include "runtime/base/common.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tensor list ---------------------------------------------------------- */

typedef struct spec_list {
    fp4rt_tensor_spec *v;
    size_t n, cap;
} spec_list;

/* Appends "<prefix><mid><leaf>" with the given role and shape. A leaf ending in
 * ".weight" gives a module name without it; other leaves (dt_bias, A_log) are
 * their own module name. Returns 0 on OOM. */
static int add5(spec_list *l, const char *prefix, const char *mid, const char *leaf, fp4rt_tensor_role role,
                int layer, int ndim, const int64_t *shape) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        fp4rt_tensor_spec *v = realloc(l->v, cap * sizeof *v);
        if (!v) return 0;
        l->v = v;
        l->cap = cap;
    }
    fp4rt_tensor_spec *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s%s%s", prefix, mid, leaf);
    snprintf(t->module, sizeof t->module, "%s", t->name);
    size_t len = strlen(t->module);
    if (len > 7 && !strcmp(t->module + len - 7, ".weight")) t->module[len - 7] = 0;
    t->role = role;
    t->layer = layer;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    return 1;
}

static int add(spec_list *l, const char *prefix, const char *mid, const char *leaf,
               fp4rt_tensor_role role, int layer, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    int64_t shape[3] = {d0, d1, d2};
    return add5(l, prefix, mid, leaf, role, layer, ndim, shape);
}

/* A vision linear "<mid><leaf>" [n, k]: its .weight and .bias. */
static int add_vlinear(spec_list *l, const char *mid, const char *leaf, int layer, int64_t n, int64_t k) {
    char w[96], b[96];
    snprintf(w, sizeof w, "%s.weight", leaf);
    snprintf(b, sizeof b, "%s.bias", leaf);
    return add(l, "model.visual.", mid, w, FP4RT_ROLE_VLINEAR, layer, 2, n, k, 0) &&
           add(l, "model.visual.", mid, b, FP4RT_ROLE_VBIAS, layer, 1, n, 0, 0);
}

static int add_vnorm(spec_list *l, const char *mid, const char *leaf, int layer, int64_t h) {
    char w[96], b[96];
    snprintf(w, sizeof w, "%s.weight", leaf);
    snprintf(b, sizeof b, "%s.bias", leaf);
    return add(l, "model.visual.", mid, w, FP4RT_ROLE_VNORM_W, layer, 1, h, 0, 0) &&
           add(l, "model.visual.", mid, b, FP4RT_ROLE_VNORM_B, layer, 1, h, 0, 0);
}

size_t fp4rt_schema_vision_tensors(const fp4rt_config *cfg, fp4rt_tensor_spec **out) {
    spec_list l = {0};
    const fp4rt_vision_config *v = &cfg->vision;
    *out = NULL;
    if (v->depth <= 0) return 0;
    const int64_t H = v->hidden, I = v->intermediate, M = (int64_t)v->hidden * v->merge * v->merge;
    int64_t pe[5] = {H, v->in_channels, v->temporal_patch, v->patch, v->patch};
    int ok = add5(&l, "model.visual.", "", "patch_embed.proj.weight", FP4RT_ROLE_VLINEAR, -1, 5, pe);
    ok &= add(&l, "model.visual.", "", "patch_embed.proj.bias", FP4RT_ROLE_VBIAS, -1, 1, H, 0, 0);
    ok &= add(&l, "model.visual.", "", "pos_embed.weight", FP4RT_ROLE_VPOS, -1, 2, v->n_pos, H, 0);
    char mid[64];
    for (int i = 0; i < v->depth && ok; i++) {
        snprintf(mid, sizeof mid, "blocks.%d.", i);
        ok &= add_vnorm(&l, mid, "norm1", i, H);
        ok &= add_vnorm(&l, mid, "norm2", i, H);
        ok &= add_vlinear(&l, mid, "attn.qkv", i, 3 * H, H);
        ok &= add_vlinear(&l, mid, "attn.proj", i, H, H);
        ok &= add_vlinear(&l, mid, "mlp.linear_fc1", i, I, H);
        ok &= add_vlinear(&l, mid, "mlp.linear_fc2", i, H, I);
    }
    ok &= add_vnorm(&l, "merger.", "norm", -1, H);
    ok &= add_vlinear(&l, "merger.", "linear_fc1", -1, M, M);
    ok &= add_vlinear(&l, "merger.", "linear_fc2", -1, v->out_hidden, M);
    if (!ok) {
        free(l.v);
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "schema: out of memory listing the vision tower");
        return 0;
    }
    *out = l.v;
    return l.n;
}

char *fp4rt_preprocessor_config_json(const fp4rt_config *cfg) {
    const fp4rt_vision_config *v = &cfg->vision;
    if (v->depth <= 0) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON *size = cJSON_AddObjectToObject(o, "size");
    cJSON_AddNumberToObject(size, "longest_edge", 16777216);
    cJSON_AddNumberToObject(size, "shortest_edge", 65536);
    cJSON_AddNumberToObject(o, "patch_size", v->patch);
    cJSON_AddNumberToObject(o, "temporal_patch_size", v->temporal_patch);
    cJSON_AddNumberToObject(o, "merge_size", v->merge);
    double half[3] = {0.5, 0.5, 0.5};
    cJSON_AddItemToObject(o, "image_mean", cJSON_CreateDoubleArray(half, 3));
    cJSON_AddItemToObject(o, "image_std", cJSON_CreateDoubleArray(half, 3));
    cJSON_AddBoolToObject(o, "do_resize", 1);
    cJSON_AddBoolToObject(o, "do_rescale", 1);
    cJSON_AddBoolToObject(o, "do_normalize", 1);
    cJSON_AddBoolToObject(o, "do_convert_rgb", 1);
    cJSON_AddNumberToObject(o, "rescale_factor", 1.0 / 255.0);
    cJSON_AddNumberToObject(o, "resample", 3);
    cJSON_AddStringToObject(o, "image_processor_type", "Qwen2VLImageProcessorFast");
    cJSON_AddStringToObject(o, "processor_class", "Qwen3VLProcessor");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

size_t fp4rt_schema_tensors(const fp4rt_config *cfg, fp4rt_tensor_spec **out) {
    spec_list l = {0};
    const char *p = cfg->tensor_prefix;
    const int64_t H = cfg->hidden, I = cfg->intermediate;
    const int64_t conv_dim = fp4rt_cfg_conv_dim(cfg), vdim = fp4rt_cfg_value_dim(cfg);
    const int64_t vh = cfg->lin_v_heads;
    const int64_t q_out = 2LL * cfg->n_heads * cfg->head_dim;
    const int64_t kv_out = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    const int64_t attn_in = (int64_t)cfg->n_heads * cfg->head_dim;
    int ok = 1;
    char mid[64];

    *out = NULL;
    ok &= add(&l, p, "", "embed_tokens.weight", FP4RT_ROLE_EMBED, -1, 2, cfg->vocab, H, 0);
    for (int i = 0; i < cfg->n_layers && ok; i++) {
        snprintf(mid, sizeof mid, "layers.%d.", i);
        ok &= add(&l, p, mid, "input_layernorm.weight", FP4RT_ROLE_NORM, i, 1, H, 0, 0);
        if (cfg->layer_kind[i] == FP4RT_LAYER_GDN) {
            snprintf(mid, sizeof mid, "layers.%d.linear_attn.", i);
            ok &= add(&l, p, mid, "in_proj_qkv.weight", FP4RT_ROLE_LINEAR, i, 2, conv_dim, H, 0);
            ok &= add(&l, p, mid, "in_proj_z.weight", FP4RT_ROLE_LINEAR, i, 2, vdim, H, 0);
            ok &= add(&l, p, mid, "in_proj_b.weight", FP4RT_ROLE_LINEAR, i, 2, vh, H, 0);
            ok &= add(&l, p, mid, "in_proj_a.weight", FP4RT_ROLE_LINEAR, i, 2, vh, H, 0);
            ok &= add(&l, p, mid, "conv1d.weight", FP4RT_ROLE_CONV, i, 3, conv_dim, 1,
                      cfg->conv_kernel);
            ok &= add(&l, p, mid, "dt_bias", FP4RT_ROLE_VECTOR, i, 1, vh, 0, 0);
            ok &= add(&l, p, mid, "A_log", FP4RT_ROLE_VECTOR, i, 1, vh, 0, 0);
            ok &= add(&l, p, mid, "norm.weight", FP4RT_ROLE_NORM_PLAIN, i, 1, cfg->lin_v_dim, 0, 0);
            ok &= add(&l, p, mid, "out_proj.weight", FP4RT_ROLE_LINEAR, i, 2, H, vdim, 0);
        } else {
            snprintf(mid, sizeof mid, "layers.%d.self_attn.", i);
            ok &= add(&l, p, mid, "q_proj.weight", FP4RT_ROLE_LINEAR, i, 2, q_out, H, 0);
            ok &= add(&l, p, mid, "k_proj.weight", FP4RT_ROLE_LINEAR, i, 2, kv_out, H, 0);
            ok &= add(&l, p, mid, "v_proj.weight", FP4RT_ROLE_LINEAR, i, 2, kv_out, H, 0);
            ok &= add(&l, p, mid, "o_proj.weight", FP4RT_ROLE_LINEAR, i, 2, H, attn_in, 0);
            ok &= add(&l, p, mid, "q_norm.weight", FP4RT_ROLE_NORM, i, 1, cfg->head_dim, 0, 0);
            ok &= add(&l, p, mid, "k_norm.weight", FP4RT_ROLE_NORM, i, 1, cfg->head_dim, 0, 0);
        }
        snprintf(mid, sizeof mid, "layers.%d.", i);
        ok &= add(&l, p, mid, "post_attention_layernorm.weight", FP4RT_ROLE_NORM, i, 1, H, 0, 0);
        snprintf(mid, sizeof mid, "layers.%d.mlp.", i);
        ok &= add(&l, p, mid, "gate_proj.weight", FP4RT_ROLE_LINEAR, i, 2, I, H, 0);
        ok &= add(&l, p, mid, "up_proj.weight", FP4RT_ROLE_LINEAR, i, 2, I, H, 0);
        ok &= add(&l, p, mid, "down_proj.weight", FP4RT_ROLE_LINEAR, i, 2, H, I, 0);
    }
    ok &= add(&l, p, "", "norm.weight", FP4RT_ROLE_NORM, -1, 1, H, 0, 0);
    if (!cfg->tie_embeddings)
        ok &= add(&l, "", "", "lm_head.weight", FP4RT_ROLE_LINEAR, -1, 2, cfg->vocab, H, 0);
    if (!ok) {
        free(l.v);
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "schema: out of memory listing %d layers", cfg->n_layers);
        return 0;
    }
    *out = l.v;
    return l.n;
}

/* The MTP head (docs/MODEL.md §3): "mtp." names, the decoder layers numbered
 * from cfg->n_layers on (so one layers[] array holds both). */
size_t fp4rt_schema_mtp_tensors(const fp4rt_config *cfg, fp4rt_tensor_spec **out) {
    spec_list l = {0};
    const int64_t H = cfg->hidden, I = cfg->intermediate;
    const int64_t q_out = 2LL * cfg->n_heads * cfg->head_dim;
    const int64_t kv_out = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    const int64_t attn_in = (int64_t)cfg->n_heads * cfg->head_dim;
    int ok = 1;
    char mid[64];

    *out = NULL;
    if (cfg->mtp_layers <= 0) return 0;
    ok &= add(&l, "mtp.", "", "pre_fc_norm_embedding.weight", FP4RT_ROLE_NORM, -1, 1, H, 0, 0);
    ok &= add(&l, "mtp.", "", "pre_fc_norm_hidden.weight", FP4RT_ROLE_NORM, -1, 1, H, 0, 0);
    ok &= add(&l, "mtp.", "", "fc.weight", FP4RT_ROLE_LINEAR, -1, 2, H, 2 * H, 0);
    for (int j = 0; j < cfg->mtp_layers && ok; j++) {
        int li = cfg->n_layers + j;
        snprintf(mid, sizeof mid, "layers.%d.", j);
        ok &= add(&l, "mtp.", mid, "input_layernorm.weight", FP4RT_ROLE_NORM, li, 1, H, 0, 0);
        snprintf(mid, sizeof mid, "layers.%d.self_attn.", j);
        ok &= add(&l, "mtp.", mid, "q_proj.weight", FP4RT_ROLE_LINEAR, li, 2, q_out, H, 0);
        ok &= add(&l, "mtp.", mid, "k_proj.weight", FP4RT_ROLE_LINEAR, li, 2, kv_out, H, 0);
        ok &= add(&l, "mtp.", mid, "v_proj.weight", FP4RT_ROLE_LINEAR, li, 2, kv_out, H, 0);
        ok &= add(&l, "mtp.", mid, "o_proj.weight", FP4RT_ROLE_LINEAR, li, 2, H, attn_in, 0);
        ok &= add(&l, "mtp.", mid, "q_norm.weight", FP4RT_ROLE_NORM, li, 1, cfg->head_dim, 0, 0);
        ok &= add(&l, "mtp.", mid, "k_norm.weight", FP4RT_ROLE_NORM, li, 1, cfg->head_dim, 0, 0);
        snprintf(mid, sizeof mid, "layers.%d.", j);
        ok &= add(&l, "mtp.", mid, "post_attention_layernorm.weight", FP4RT_ROLE_NORM, li, 1, H, 0, 0);
        snprintf(mid, sizeof mid, "layers.%d.mlp.", j);
        ok &= add(&l, "mtp.", mid, "gate_proj.weight", FP4RT_ROLE_LINEAR, li, 2, I, H, 0);
        ok &= add(&l, "mtp.", mid, "up_proj.weight", FP4RT_ROLE_LINEAR, li, 2, I, H, 0);
        ok &= add(&l, "mtp.", mid, "down_proj.weight", FP4RT_ROLE_LINEAR, li, 2, H, I, 0);
    }
    ok &= add(&l, "mtp.", "", "norm.weight", FP4RT_ROLE_NORM, -1, 1, H, 0, 0);
    if (!ok) {
        free(l.v);
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "schema: out of memory listing the MTP head");
        return 0;
    }
    *out = l.v;
    return l.n;
}

/* ---- presets --------------------------------------------------------------- */

/* Text model of Qwen3_5ForConditionalGeneration with the 3 GDN : 1 attention
 * pattern: the keys every preset shares, set over a preset's sizes. */
static void base_config(fp4rt_config *c) {
    snprintf(c->architecture, sizeof c->architecture, "Qwen3_5ForConditionalGeneration");
    c->nested = 1;
    snprintf(c->tensor_prefix, sizeof c->tensor_prefix, "model.language_model.");
    c->rms_eps = 1e-6f;
    c->attn_output_gate = 1;
    c->rope_theta = 1e7;
    c->partial_rotary = 0.25f;
    c->conv_kernel = 4;
    /* One MTP layer, as the official Qwen3.5 / 3.6 config.json files declare
     * (fp4rt synth writes the head; synthetic in-memory weights have none). */
    c->mtp_layers = 1;
}

/* A preset's sizes, in the order of its row below. */
#define PRESET(nm, hid, lay, inter, voc, nh, nkv, hd, lkh, lvh, lkd, lvd, tie, maxpos, eos_id)                     \
    {nm,                                                                                                           \
     {.hidden = hid, .n_layers = lay, .intermediate = inter, .vocab = voc, .n_heads = nh, .n_kv_heads = nkv,       \
      .head_dim = hd, .lin_k_heads = lkh, .lin_v_heads = lvh, .lin_k_dim = lkd, .lin_v_dim = lvd,                  \
      .tie_embeddings = tie, .max_positions = maxpos, .n_eos = 1, .eos = {eos_id}}}

/* tiny: a few hundred thousand parameters with the 27B's ratios (3 value heads
 * per key head, 4 query heads per 2 KV heads, rotary 1/4 of head_dim).
 * small: the model-level parity tests' larger model (about 16 M parameters):
 * 16 layers (12 GDN, 4 full attention, every 4th as in the 27B), hidden 256,
 * the real GDN head size 128; a small vocabulary keeps the embedding and
 * lm_head (and the tests) fast.
 * qwen3.5-0.8b: docs/MODEL.md §1.2; qwen3.6-27b: docs/MODEL.md §1.1. */
static const struct {
    const char *name;
    fp4rt_config cfg;
} k_presets[] = {
    /* name, hidden, layers, intermediate, vocab, heads, KV heads, head_dim, GDN key heads, value heads,
     * key dim, value dim, tied embeddings, max positions, EOS id */
    PRESET("tiny", 64, 8, 192, 512, 4, 2, 32, 2, 6, 32, 32, 0, 4096, 1),
    PRESET("small", 256, 16, 512, 1024, 8, 2, 64, 2, 6, 128, 128, 0, 4096, 1),
    PRESET("qwen3.5-0.8b", 1024, 24, 3584, 248320, 8, 2, 256, 16, 16, 128, 128, 1, 262144, 248044),
    PRESET("qwen3.6-27b", 5120, 64, 17408, 248320, 24, 4, 256, 16, 48, 128, 128, 0, 262144, 248044),
};
#undef PRESET

/* The presets' vision towers, in k_presets' order: tiny and small are small
 * (head_dim 32; tiny's 8 x 8 position table); qwen3.5-0.8b and qwen3.6-27b are the
 * released configs (Qwen/Qwen3.5-0.8B, Qwen/Qwen3.6-27B vision_config). out_hidden
 * is the text hidden size, set from the preset. */
#define VISION(dep, hid, nh, inter, npos)                                                                          \
    {.depth = dep, .hidden = hid, .n_heads = nh, .intermediate = inter, .in_channels = 3, .patch = 16,            \
     .temporal_patch = 2, .merge = 2, .n_pos = npos, .gelu_tanh = 1, .rope_theta = 10000.0}
static const fp4rt_vision_config k_preset_vision[] = {
    VISION(2, 64, 2, 128, 64),
    VISION(2, 128, 4, 256, 256),
    VISION(12, 768, 12, 3072, 2304),
    VISION(27, 1152, 16, 4304, 2304),
};
#undef VISION

fp4rt_status fp4rt_config_preset(const char *name, int n_layers, fp4rt_config *out) {
    if (!name) name = "";
    size_t k = 0;
    while (k < FP4RT_ARRAY_LEN(k_presets) && strcmp(name, k_presets[k].name)) k++;
    if (k == FP4RT_ARRAY_LEN(k_presets))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "unknown config '%s' (known: tiny, small, qwen3.5-0.8b, qwen3.6-27b)", name);
    fp4rt_config c = k_presets[k].cfg;
    base_config(&c);
    if (n_layers < 0 || n_layers > FP4RT_MAX_LAYERS)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "config '%s': layer count %d out of range 1..%d",
                          name, n_layers, FP4RT_MAX_LAYERS);
    if (n_layers > 0) c.n_layers = n_layers;
    for (int i = 0; i < c.n_layers; i++)
        c.layer_kind[i] = (i + 1) % 4 == 0 ? FP4RT_LAYER_ATTENTION : FP4RT_LAYER_GDN;
    c.rotary_dim = (int)(c.head_dim * c.partial_rotary);
    c.vision = k_preset_vision[k];
    c.vision.out_hidden = c.hidden;
    c.image_token_id = 248056;
    c.video_token_id = 248057;
    c.vision_start_token_id = 248053;
    c.vision_end_token_id = 248054;
    *out = c;
    return FP4RT_OK;
}

/* ---- config.json ------------------------------------------------------------ */

/* The shortest decimal that reads back as the same float, as a double (so 1e-6f
 * prints as 1e-06 rather than 9.99999997e-07). */
static double float_json(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

static cJSON *eos_json(const fp4rt_config *c) {
    if (c->n_eos == 1) return cJSON_CreateNumber(c->eos[0]);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < c->n_eos && a; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(c->eos[i]));
    return a;
}

/* The text-model keys (Qwen3_5TextConfig) into obj. */
static void add_text_keys(cJSON *o, const fp4rt_config *c) {
    cJSON_AddStringToObject(o, "model_type", "qwen3_5_text");
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(o, "intermediate_size", c->intermediate);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_positions);
    cJSON_AddNumberToObject(o, "rms_norm_eps", float_json(c->rms_eps));
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    cJSON_AddBoolToObject(o, "use_cache", 1);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings);
    cJSON_AddBoolToObject(o, "attention_bias", 0);
    cJSON_AddNumberToObject(o, "attention_dropout", 0.0);
    cJSON_AddBoolToObject(o, "attn_output_gate", c->attn_output_gate);
    cJSON_AddNumberToObject(o, "full_attention_interval", 4);
    cJSON *lt = cJSON_AddArrayToObject(o, "layer_types");
    for (int i = 0; i < c->n_layers && lt; i++)
        cJSON_AddItemToArray(lt, cJSON_CreateString(c->layer_kind[i] == FP4RT_LAYER_ATTENTION
                                                        ? "full_attention"
                                                        : "linear_attention"));
    cJSON_AddNumberToObject(o, "linear_conv_kernel_dim", c->conv_kernel);
    cJSON_AddNumberToObject(o, "linear_key_head_dim", c->lin_k_dim);
    cJSON_AddNumberToObject(o, "linear_value_head_dim", c->lin_v_dim);
    cJSON_AddNumberToObject(o, "linear_num_key_heads", c->lin_k_heads);
    cJSON_AddNumberToObject(o, "linear_num_value_heads", c->lin_v_heads);
    cJSON_AddNumberToObject(o, "mtp_num_hidden_layers", c->mtp_layers);
    cJSON_AddBoolToObject(o, "mtp_use_dedicated_embeddings", 0);
    cJSON_AddStringToObject(o, "mamba_ssm_dtype", "float32");

    /* mrope_section splits rotary_dim/2 frequency slots over (T, H, W), larger
     * parts first: 32 -> [11, 11, 10] as in the real configs. For text-only input
     * the three axes carry the same position, so the split does not change results. */
    cJSON *rp = cJSON_AddObjectToObject(o, "rope_parameters");
    if (rp) {
        int half = c->rotary_dim / 2, sec[3];
        for (int i = 0; i < 3; i++) sec[i] = half / 3 + (i < half % 3);
        cJSON_AddStringToObject(rp, "rope_type", "default");
        cJSON_AddNumberToObject(rp, "rope_theta", c->rope_theta);
        cJSON_AddNumberToObject(rp, "partial_rotary_factor", float_json(c->partial_rotary));
        cJSON_AddItemToObject(rp, "mrope_section", cJSON_CreateIntArray(sec, 3));
        cJSON_AddBoolToObject(rp, "mrope_interleaved", 1);
    }
    cJSON_AddItemToObject(o, "eos_token_id", eos_json(c));
    cJSON_AddStringToObject(o, "torch_dtype", "bfloat16");
    cJSON_AddStringToObject(o, "dtype", "bfloat16");
}

/* vision_config (Qwen3_5VisionConfig) into root. */
static void add_vision_keys(cJSON *root, const fp4rt_vision_config *v) {
    cJSON *o = cJSON_AddObjectToObject(root, "vision_config");
    if (!o) return;
    cJSON_AddStringToObject(o, "model_type", "qwen3_5");
    cJSON_AddNumberToObject(o, "depth", v->depth);
    cJSON_AddNumberToObject(o, "hidden_size", v->hidden);
    cJSON_AddStringToObject(o, "hidden_act", v->gelu_tanh ? "gelu_pytorch_tanh" : "gelu");
    cJSON_AddNumberToObject(o, "intermediate_size", v->intermediate);
    cJSON_AddNumberToObject(o, "num_heads", v->n_heads);
    cJSON_AddNumberToObject(o, "in_channels", v->in_channels);
    cJSON_AddNumberToObject(o, "patch_size", v->patch);
    cJSON_AddNumberToObject(o, "spatial_merge_size", v->merge);
    cJSON_AddNumberToObject(o, "temporal_patch_size", v->temporal_patch);
    cJSON_AddNumberToObject(o, "out_hidden_size", v->out_hidden);
    cJSON_AddNumberToObject(o, "num_position_embeddings", v->n_pos);
    cJSON_AddItemToObject(o, "deepstack_visual_indexes", cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
}

char *fp4rt_config_to_json(const fp4rt_config *cfg) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    if (cfg->nested) {
        cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen3_5ForConditionalGeneration"));
        cJSON_AddStringToObject(root, "model_type", "qwen3_5");
        cJSON *tc = cJSON_AddObjectToObject(root, "text_config");
        if (tc) add_text_keys(tc, cfg);
        /* transformers reads tie_word_embeddings of the composite model at top level. */
        cJSON_AddBoolToObject(root, "tie_word_embeddings", cfg->tie_embeddings);
        cJSON_AddNumberToObject(root, "image_token_id", cfg->image_token_id > 0 ? cfg->image_token_id : 248056);
        cJSON_AddNumberToObject(root, "video_token_id", cfg->video_token_id > 0 ? cfg->video_token_id : 248057);
        cJSON_AddNumberToObject(root, "vision_start_token_id",
                                cfg->vision_start_token_id > 0 ? cfg->vision_start_token_id : 248053);
        cJSON_AddNumberToObject(root, "vision_end_token_id",
                                cfg->vision_end_token_id > 0 ? cfg->vision_end_token_id : 248054);
        if (cfg->vision.depth > 0) add_vision_keys(root, &cfg->vision);
        cJSON_AddItemToObject(root, "eos_token_id", eos_json(cfg));
        cJSON_AddStringToObject(root, "torch_dtype", "bfloat16");
    } else {
        cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen3_5ForCausalLM"));
        add_text_keys(root, cfg);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* ---- recipes --------------------------------------------------------------- */

static const char *const k_recipes[] = {"nvidia-mixed", "nvfp4-all", "nvfp4-w4a4", "fp8"};

int fp4rt_recipe_known(const char *recipe) {
    for (size_t i = 0; recipe && i < FP4RT_ARRAY_LEN(k_recipes); i++)
        if (!strcmp(recipe, k_recipes[i])) return (int)i;
    return -1;
}

/* True when module's last component is one of the NULL-terminated names. */
static int leaf_in(const char *module, const char *const *names) {
    const char *dot = strrchr(module, '.');
    const char *leaf = dot ? dot + 1 : module;
    for (; *names; names++)
        if (!strcmp(leaf, *names)) return 1;
    return 0;
}

fp4rt_qalgo fp4rt_recipe_algo(const char *recipe, const fp4rt_tensor_spec *t) {
    static const char *const mlp[] = {"gate_proj", "up_proj", "down_proj", NULL};
    static const char *const attn[] = {"q_proj", "k_proj", "v_proj", "o_proj", NULL};
    static const char *const gdn_big[] = {"in_proj_qkv", "in_proj_z", "out_proj", NULL};
    static const char *const gdn_small[] = {"in_proj_a", "in_proj_b", NULL};
    int r = fp4rt_recipe_known(recipe);
    if (r < 0 || t->role != FP4RT_ROLE_LINEAR) return FP4RT_Q_NONE; /* the vision tower's: VLINEAR */
    int is_head = !strcmp(t->module, "lm_head");
    if (r == 0) { /* nvidia-mixed, docs/MODEL.md §5.2 */
        if (is_head || leaf_in(t->module, mlp)) return FP4RT_Q_NVFP4_W4A16;
        if (leaf_in(t->module, attn) || leaf_in(t->module, gdn_big)) return FP4RT_Q_FP8;
        return FP4RT_Q_NONE;
    }
    if (r == 3) /* fp8: the same modules in FP8; lm_head stays BF16 (ModelOpt's FP8 default) */
        return !is_head && (leaf_in(t->module, mlp) || leaf_in(t->module, attn) ||
                            leaf_in(t->module, gdn_big))
                   ? FP4RT_Q_FP8
                   : FP4RT_Q_NONE;
    if (leaf_in(t->module, gdn_small)) return FP4RT_Q_NONE;
    return r == 1 ? FP4RT_Q_NVFP4_W4A16 : FP4RT_Q_NVFP4_W4A4;
}
