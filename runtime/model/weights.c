/* Resolving a checkpoint into fp4rt_weights: every tensor of the text model is
 * found, its dtype and shape checked against the config, the format of every
 * linear checked against the quantization config, and the small vectors
 * converted to FP32. The vision tower: weights_vision.c; MTP and vision tensors of
 * a model loaded without them are recognized and skipped. */
#include "runtime/model/weights.h"

#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"
#include "runtime/model/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fp4rt_wfmt_name(fp4rt_wfmt f) {
    static const char *const names[FP4RT_W_COUNT] = {"BF16", "F16",         "F32",
                                                     "FP8",  "NVFP4-W4A16", "NVFP4-W4A4"};
    return (unsigned)f < FP4RT_W_COUNT ? names[f] : "?";
}

uint64_t fp4rt_wfmt_row_bytes(fp4rt_wfmt f, int64_t n_in) {
    switch (f) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: return (uint64_t)n_in * 2;
    case FP4RT_W_F32: return (uint64_t)n_in * 4;
    case FP4RT_W_FP8: return (uint64_t)n_in;
    default: return (uint64_t)n_in / 2; /* NVFP4 */
    }
}

void fp4rt_linear_set_bytes(fp4rt_linear *l) {
    l->row_bytes = fp4rt_wfmt_row_bytes(l->fmt, l->n_in);
    l->bytes = (uint64_t)l->n_out * l->row_bytes + (l->block_scale ? (uint64_t)l->n_out * (l->n_in / 16) : 0);
}

static int64_t numel(const fp4rt_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static const fp4rt_st_tensor *require(const fp4rt_checkpoint *ck, const char *name,
                                      fp4rt_status *st) {
    const fp4rt_st_tensor *t = fp4rt_checkpoint_find(ck, name);
    if (!t) *st = fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s is missing", ck->dir, name);
    return t;
}

/* Checks t has exactly `shape`. */
static fp4rt_status check_shape(const fp4rt_st_tensor *t, int ndim, const int64_t *shape) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (ok) return FP4RT_OK;
    char want[96], got[96];
    shape_str(shape, ndim, want, sizeof want);
    shape_str(t->shape, t->ndim, got, sizeof got);
    return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has shape %s, expected %s", t->file_path,
                      t->name, got, want);
}

static int is_float_dtype(fp4rt_dtype d) {
    return d == FP4RT_DT_BF16 || d == FP4RT_DT_F16 || d == FP4RT_DT_F32;
}

static float load_float(const void *base, fp4rt_dtype dt, size_t i) {
    const unsigned char *p = base;
    if (dt == FP4RT_DT_BF16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return fp4rt_bf16_to_f32(h);
    }
    if (dt == FP4RT_DT_F16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return fp4rt_f16_to_f32(h);
    }
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
}

/* Converts a float tensor (BF16/F16/F32) of exactly n elements to a new FP32 array,
 * applying y = x + add. Refuses NaN/Inf. */
static fp4rt_status vector_f32(const fp4rt_st_tensor *t, int64_t n, float add, float **out) {
    *out = NULL;
    if (!is_float_dtype(t->dtype))
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s, expected BF16, F16 or F32",
                          t->file_path, t->name, fp4rt_dtype_name(t->dtype));
    if (numel(t) != n)
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has %lld elements, expected %lld",
                          t->file_path, t->name, (long long)numel(t), (long long)n);
    float *v = fp4rt_malloc((size_t)n * sizeof(float), t->name);
    if (!v) return FP4RT_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        float x = load_float(t->data, t->dtype, (size_t)i);
        if (!isfinite(x)) {
            free(v);
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has a non-finite value at index %lld",
                              t->file_path, t->name, (long long)i);
        }
        v[i] = x + add;
    }
    *out = v;
    return FP4RT_OK;
}

/* A positive finite F32 scalar (shape [] or [1]). */
static fp4rt_status scalar_f32(const fp4rt_checkpoint *ck, const char *name, float *out) {
    fp4rt_status st = FP4RT_OK;
    const fp4rt_st_tensor *t = require(ck, name, &st);
    if (!t) return st;
    if (t->dtype != FP4RT_DT_F32 || numel(t) != 1 || t->ndim > 1)
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s must be an F32 scalar, found %s with %lld elements",
                          t->file_path, name, fp4rt_dtype_name(t->dtype), (long long)numel(t));
    memcpy(out, t->data, 4);
    if (!isfinite(*out) || *out <= 0)
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s is %g, expected a positive finite scale",
                          t->file_path, name, (double)*out);
    if (!isfinite(*out * 448.0f * 6.0f)) /* times the largest E4M3 block scale and E2M1 value */
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s is %g: times 448 * 6 it overflows FP32 (a scale out of range)",
                          t->file_path, name, (double)*out);
    return FP4RT_OK;
}

fp4rt_status fp4rt_linear_resolve(const fp4rt_checkpoint *ck, const fp4rt_quant_config *q,
                                  const char *module, int n_out, int n_in, fp4rt_linear *out) {
    memset(out, 0, sizeof *out);
    char name[256];
    fp4rt_status st = FP4RT_OK;
    out->module = fp4rt_strdup(module);
    if (!out->module) return FP4RT_OUT_OF_MEMORY;
    out->n_out = n_out;
    out->n_in = n_in;
    out->weight_scale = 1.0f;

    snprintf(name, sizeof name, "%s.weight", module);
    const fp4rt_st_tensor *w = require(ck, name, &st);
    if (!w) return st;
    fp4rt_qalgo algo = fp4rt_quant_algo_for(q, module);
    const char *where = q->source[0] ? q->source : "quantization config";

    switch (algo) {
    case FP4RT_Q_NONE: {
        if (!is_float_dtype(w->dtype))
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: tensor %s has dtype %s but %s declares module %s unquantized "
                              "(expected BF16, F16 or F32)",
                              w->file_path, name, fp4rt_dtype_name(w->dtype), where, module);
        int64_t shape[2] = {n_out, n_in};
        if ((st = check_shape(w, 2, shape))) return st;
        out->fmt = w->dtype == FP4RT_DT_BF16 ? FP4RT_W_BF16
                   : w->dtype == FP4RT_DT_F16 ? FP4RT_W_F16
                                              : FP4RT_W_F32;
        out->weight = w->data;
        fp4rt_linear_set_bytes(out);
        return FP4RT_OK;
    }
    case FP4RT_Q_FP8: {
        if (w->dtype != FP4RT_DT_F8_E4M3)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s but %s declares %s FP8 (expected F8_E4M3)",
                              w->file_path, name, fp4rt_dtype_name(w->dtype), where, module);
        int64_t shape[2] = {n_out, n_in};
        if ((st = check_shape(w, 2, shape))) return st;
        out->fmt = FP4RT_W_FP8;
        out->weight = w->data;
        fp4rt_linear_set_bytes(out);
        snprintf(name, sizeof name, "%s.weight_scale", module);
        if ((st = scalar_f32(ck, name, &out->weight_scale))) return st;
        snprintf(name, sizeof name, "%s.input_scale", module);
        if ((st = scalar_f32(ck, name, &out->input_scale))) return st;
        return FP4RT_OK;
    }
    case FP4RT_Q_NVFP4_W4A16:
    case FP4RT_Q_NVFP4_W4A4: {
        if (w->dtype != FP4RT_DT_U8)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s but %s declares %s %s (expected U8 packed E2M1)",
                              w->file_path, name, fp4rt_dtype_name(w->dtype), where, module,
                              fp4rt_qalgo_name(algo));
        if (n_in % 16)
            return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: module %s has %d inputs, not a multiple of the NVFP4 block of 16",
                              w->file_path, module, n_in);
        int64_t shape[2] = {n_out, n_in / 2};
        if ((st = check_shape(w, 2, shape))) return st;
        snprintf(name, sizeof name, "%s.weight_scale", module);
        const fp4rt_st_tensor *s = require(ck, name, &st);
        if (!s) return st;
        if (s->dtype != FP4RT_DT_F8_E4M3)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s, expected F8_E4M3 block scales",
                              s->file_path, name, fp4rt_dtype_name(s->dtype));
        int64_t sshape[2] = {n_out, n_in / 16};
        if ((st = check_shape(s, 2, sshape))) return st;
        const uint8_t *sb = s->data;
        for (int64_t i = 0; i < (int64_t)n_out * (n_in / 16); i++)
            if ((sb[i] & 0x7f) == 0x7f)
                return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has a NaN block scale at row %lld, block %lld",
                                  s->file_path, name, (long long)(i / (n_in / 16)),
                                  (long long)(i % (n_in / 16)));
        out->fmt = algo == FP4RT_Q_NVFP4_W4A4 ? FP4RT_W_NVFP4_W4A4 : FP4RT_W_NVFP4;
        out->weight = w->data;
        out->block_scale = sb;
        fp4rt_linear_set_bytes(out);
        snprintf(name, sizeof name, "%s.weight_scale_2", module);
        if ((st = scalar_f32(ck, name, &out->weight_scale))) return st;
        snprintf(name, sizeof name, "%s.input_scale", module);
        if (algo == FP4RT_Q_NVFP4_W4A4) {
            if ((st = scalar_f32(ck, name, &out->input_scale))) return st;
        }
        return FP4RT_OK;
    }
    default:
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: module %s has unsupported quantization %s", where,
                          module, fp4rt_qalgo_name(algo));
    }
}

static fp4rt_status fp4_act_linear(const fp4rt_checkpoint *ck, fp4rt_linear *l, fp4rt_weights *w) {
    if (l->fp4_act) {
        w->n_fp4_act++;
        w->n_fp4_act_dynamic += l->act_dynamic;
        return FP4RT_OK;
    }
    if (!l->module || l->fmt != FP4RT_W_NVFP4) return FP4RT_OK;
    char name[300];
    snprintf(name, sizeof name, "%s.input_scale", l->module);
    if (ck && fp4rt_checkpoint_find(ck, name)) {
        fp4rt_status st = scalar_f32(ck, name, &l->input_scale);
        if (st) return st;
        l->act_dynamic = 0;
    } else {
        l->input_scale = 0;
        l->act_dynamic = 1;
    }
    l->fmt = FP4RT_W_NVFP4_W4A4;
    l->fp4_act = 1;
    w->n_fp4_act++;
    w->n_fp4_act_dynamic += l->act_dynamic;
    return FP4RT_OK;
}

fp4rt_status fp4rt_weights_fp4_activations(fp4rt_weights *w) {
    w->n_fp4_act = w->n_fp4_act_dynamic = 0;
    for (int i = 0; i < w->cfg.n_layers; i++) {
        fp4rt_layer_weights *L = &w->layers[i];
        fp4rt_linear *all[] = {&L->gate, &L->up, &L->down, &L->q, &L->k, &L->v,
                               &L->o,    &L->qkv, &L->z,   &L->b, &L->a, &L->out};
        for (size_t j = 0; j < FP4RT_ARRAY_LEN(all); j++) {
            fp4rt_status st = fp4_act_linear(w->ckpt, all[j], w);
            if (st) return st;
        }
    }
    return FP4RT_OK;
}

static void linear_free(fp4rt_linear *l) {
    free(l->module);
    l->module = NULL;
}

void fp4rt_weights_free(fp4rt_weights *w) {
    if (!w) return;
    if (w->layers) {
        for (int i = 0; i < w->cfg.n_layers + w->n_mtp_layers; i++) {
            fp4rt_layer_weights *L = &w->layers[i];
            free(L->input_norm);
            free(L->post_norm);
            free(L->q_norm);
            free(L->k_norm);
            free(L->conv_w);
            free(L->dt_bias);
            free(L->neg_A);
            free(L->gdn_norm);
            fp4rt_linear *lins[] = {&L->gate, &L->up, &L->down, &L->q, &L->k,  &L->v,
                                    &L->o,    &L->qkv, &L->z,   &L->b, &L->a, &L->out};
            for (size_t j = 0; j < FP4RT_ARRAY_LEN(lins); j++) linear_free(lins[j]);
        }
        free(w->layers);
    }
    fp4rt_weights_free_vision(w);
    free(w->final_norm);
    free(w->mtp_norm_embed);
    free(w->mtp_norm_hidden);
    free(w->mtp_norm);
    linear_free(&w->mtp_fc);
    linear_free(&w->lm_head);
    fp4rt_quant_config_free(&w->quant);
    fp4rt_checkpoint_close(w->ckpt);
    fp4rt_weights_synth_release(w);
    free(w);
}

/* The per-layer field a schema entry fills, by the name's last components. */
fp4rt_linear *fp4rt_weights_linear_slot(fp4rt_layer_weights *L, const char *module) {
    static const struct {
        const char *suffix;
        size_t off;
    } map[] = {
        {".mlp.gate_proj", offsetof(fp4rt_layer_weights, gate)},
        {".mlp.up_proj", offsetof(fp4rt_layer_weights, up)},
        {".mlp.down_proj", offsetof(fp4rt_layer_weights, down)},
        {".self_attn.q_proj", offsetof(fp4rt_layer_weights, q)},
        {".self_attn.k_proj", offsetof(fp4rt_layer_weights, k)},
        {".self_attn.v_proj", offsetof(fp4rt_layer_weights, v)},
        {".self_attn.o_proj", offsetof(fp4rt_layer_weights, o)},
        {".linear_attn.in_proj_qkv", offsetof(fp4rt_layer_weights, qkv)},
        {".linear_attn.in_proj_z", offsetof(fp4rt_layer_weights, z)},
        {".linear_attn.in_proj_b", offsetof(fp4rt_layer_weights, b)},
        {".linear_attn.in_proj_a", offsetof(fp4rt_layer_weights, a)},
        {".linear_attn.out_proj", offsetof(fp4rt_layer_weights, out)},
    };
    size_t n = strlen(module);
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(map); i++) {
        size_t m = strlen(map[i].suffix);
        if (n >= m && !strcmp(module + n - m, map[i].suffix))
            return (fp4rt_linear *)((char *)L + map[i].off);
    }
    return NULL;
}

/* t's shape equals shape[ndim] once dimensions of 1 are dropped from both. */
static int same_squeezed(const fp4rt_st_tensor *t, int ndim, const int64_t *shape) {
    int i = 0, j = 0;
    for (;;) {
        while (i < t->ndim && t->shape[i] == 1) i++;
        while (j < ndim && shape[j] == 1) j++;
        if (i == t->ndim || j == ndim) return i == t->ndim && j == ndim;
        if (t->shape[i++] != shape[j++]) return 0;
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static fp4rt_status load_vector(fp4rt_weights *w, const fp4rt_tensor_spec *sp,
                                fp4rt_layer_weights *L) {
    fp4rt_status st = FP4RT_OK;
    const fp4rt_st_tensor *t = require(w->ckpt, sp->name, &st);
    if (!t) return st;
    int64_t n = 1;
    for (int i = 0; i < sp->ndim; i++) n *= sp->shape[i];
    if ((st = check_shape(t, sp->ndim, sp->shape))) {
        /* A_log / dt_bias / norms are sometimes exported with extra dimensions of 1
         * ([1, 64] for [64]); the other dimensions must be the expected ones, in
         * order: [32, 2] for [64] has the count but not the shape */
        if (!same_squeezed(t, sp->ndim, sp->shape)) return st;
        fp4rt_clear_error();
    }
    float **dst = NULL;
    float add = 0;
    if (sp->role == FP4RT_ROLE_NORM) {
        add = 1.0f; /* zero-centred RMSNorm: stored w, used as 1 + w */
        if (!L && !strcmp(sp->name, "mtp.pre_fc_norm_embedding.weight")) dst = &w->mtp_norm_embed;
        else if (!L && !strcmp(sp->name, "mtp.pre_fc_norm_hidden.weight")) dst = &w->mtp_norm_hidden;
        else if (!L && !strcmp(sp->name, "mtp.norm.weight")) dst = &w->mtp_norm;
        else if (!L) dst = &w->final_norm;
        else if (ends_with(sp->name, "input_layernorm.weight")) dst = &L->input_norm;
        else if (ends_with(sp->name, "post_attention_layernorm.weight")) dst = &L->post_norm;
        else if (ends_with(sp->name, "q_norm.weight")) dst = &L->q_norm;
        else if (ends_with(sp->name, "k_norm.weight")) dst = &L->k_norm;
    } else if (sp->role == FP4RT_ROLE_NORM_PLAIN) {
        dst = &L->gdn_norm;
    } else if (sp->role == FP4RT_ROLE_CONV) {
        dst = &L->conv_w;
    } else if (ends_with(sp->name, "dt_bias")) {
        dst = &L->dt_bias;
    } else if (ends_with(sp->name, "A_log")) {
        dst = &L->neg_A;
    }
    if (!dst) return fp4rt_fail(FP4RT_INTERNAL, "no slot for tensor %s", sp->name);
    if ((st = vector_f32(t, n, add, dst))) return st;
    if (L && dst == &L->neg_A)
        for (int64_t i = 0; i < n; i++) L->neg_A[i] = -expf(L->neg_A[i]);
    return FP4RT_OK;
}

/* Every tensor must belong to the text model, the vision tower, MTP, or be a
 * known auxiliary scale; anything else means the config does not describe the
 * checkpoint (e.g. more layers than num_hidden_layers). */
static fp4rt_status check_extra_tensors(fp4rt_weights *w, const fp4rt_tensor_spec *specs,
                                        size_t n_specs, const fp4rt_tensor_spec *mtp, size_t n_mtp) {
    static const char *const aux[] = {".weight_scale", ".weight_scale_2", ".input_scale",
                                      ".k_scale",      ".v_scale"};
    for (size_t i = 0; i < w->ckpt->n_tensors; i++) {
        const fp4rt_st_tensor *t = w->ckpt->tensors[i];
        int is_mtp = !strncmp(t->name, "mtp.", 4);
        if (w->vision && !strncmp(t->name, "model.visual.", 13)) continue; /* checked by weights_vision.c */
        if (!strncmp(t->name, "model.visual.", 13) || (is_mtp && !w->n_mtp_layers) ||
            !strncmp(t->name, "model.mtp.", 10)) {
            w->n_tensors_skipped++;
            continue;
        }
        char base[256];
        snprintf(base, sizeof base, "%s", t->name);
        for (size_t a = 0; a < FP4RT_ARRAY_LEN(aux); a++)
            if (ends_with(base, aux[a])) {
                base[strlen(base) - strlen(aux[a])] = 0;
                strcat(base, ".weight");
                break;
            }
        /* binary search would need sorted specs; the list is small enough */
        int found = 0;
        for (size_t j = 0; j < n_specs && !found && !is_mtp; j++) found = !strcmp(specs[j].name, base);
        for (size_t j = 0; j < n_mtp && !found && is_mtp; j++) found = !strcmp(mtp[j].name, base);
        if (!found && is_mtp)
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: tensor %s is not part of the MTP head config.json describes "
                              "(check mtp_num_hidden_layers)",
                              t->file_path, t->name);
        if (!found)
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: tensor %s is not part of the model config.json describes "
                              "(check num_hidden_layers, layer_types and the tensor prefix)",
                              t->file_path, t->name);
        w->n_tensors_used++;
        w->n_tensors_mtp += is_mtp;
    }
    return FP4RT_OK;
}

/* Resolves the tensors of specs into w (layers allocated). An MTP linear
 * ("mtp." names) whose weight is a float tensor is unquantized whatever the
 * quant config says (the tensors present decide, weights.h). */
static fp4rt_status load_specs(fp4rt_weights *w, const fp4rt_tensor_spec *specs, size_t n_specs) {
    static const fp4rt_quant_config unquantized; /* algo NONE */
    fp4rt_status st = FP4RT_OK;
    for (size_t i = 0; i < n_specs; i++) {
        const fp4rt_tensor_spec *sp = &specs[i];
        fp4rt_layer_weights *L = sp->layer >= 0 ? &w->layers[sp->layer] : NULL;
        int is_mtp = !strncmp(sp->name, "mtp.", 4);
        switch (sp->role) {
        case FP4RT_ROLE_LINEAR: {
            fp4rt_linear *slot = L ? fp4rt_weights_linear_slot(L, sp->module) : is_mtp ? &w->mtp_fc : &w->lm_head;
            if (!slot) return fp4rt_fail(FP4RT_INTERNAL, "no slot for module %s", sp->module);
            const fp4rt_quant_config *q = &w->quant;
            const fp4rt_st_tensor *t = is_mtp ? fp4rt_checkpoint_find(w->ckpt, sp->name) : NULL;
            if (t && is_float_dtype(t->dtype)) q = &unquantized;
            st = fp4rt_linear_resolve(w->ckpt, q, sp->module, (int)sp->shape[0], (int)sp->shape[1], slot);
            if (st) return st;
            break;
        }
        case FP4RT_ROLE_EMBED: {
            const fp4rt_st_tensor *t = require(w->ckpt, sp->name, &st);
            if (!t) return st;
            if (!is_float_dtype(t->dtype))
                return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s, expected BF16, F16 or F32",
                                  t->file_path, t->name, fp4rt_dtype_name(t->dtype));
            if ((st = check_shape(t, 2, sp->shape))) return st;
            w->embed = t->data;
            w->embed_dtype = t->dtype;
            break;
        }
        default:
            if ((st = load_vector(w, sp, L))) return st;
            break;
        }
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_weights_load(const char *dir, fp4rt_weights **out) {
    *out = NULL;
    fp4rt_numfmt_init();
    fp4rt_weights *w = fp4rt_calloc(1, sizeof *w, "weights");
    if (!w) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st;
    fp4rt_tensor_spec *specs = NULL, *mtp = NULL;
    size_t n_mtp = 0;
    if ((st = fp4rt_config_load(dir, &w->cfg))) goto fail;
    if ((st = fp4rt_quant_config_load(dir, &w->quant))) goto fail;
    if ((st = fp4rt_checkpoint_open(dir, &w->ckpt))) goto fail;
    fp4rt_config *cfg = &w->cfg;

    /* The prefix follows the architecture, but text-only re-exports exist: accept
     * whichever of the two prefixes the checkpoint actually uses. */
    char probe[96];
    snprintf(probe, sizeof probe, "%sembed_tokens.weight", cfg->tensor_prefix);
    if (!fp4rt_checkpoint_find(w->ckpt, probe)) {
        const char *alt = strcmp(cfg->tensor_prefix, "model.") ? "model." : "model.language_model.";
        snprintf(probe, sizeof probe, "%sembed_tokens.weight", alt);
        if (fp4rt_checkpoint_find(w->ckpt, probe)) {
            snprintf(cfg->tensor_prefix, sizeof cfg->tensor_prefix, "%s", alt);
        } else {
            st = fp4rt_fail(FP4RT_FORMAT, "%s: tensor %sembed_tokens.weight is missing", dir,
                            cfg->tensor_prefix);
            goto fail;
        }
    }

    size_t n_specs = fp4rt_schema_tensors(cfg, &specs);
    if (!n_specs) {
        st = FP4RT_OUT_OF_MEMORY;
        goto fail;
    }
    /* the MTP head when config.json declares one and the checkpoint has it
     * (re-exports without mtp.* exist: then no head, as with mtp_num_hidden_layers 0) */
    int n_mtp_layers = cfg->mtp_layers > 0 && fp4rt_checkpoint_find(w->ckpt, "mtp.fc.weight") ? cfg->mtp_layers : 0;
    if (n_mtp_layers && !(n_mtp = fp4rt_schema_mtp_tensors(cfg, &mtp))) {
        st = FP4RT_OUT_OF_MEMORY;
        goto fail;
    }
    if (cfg->mtp_layers > 0 && !n_mtp_layers)
        fp4rt_log(FP4RT_LOG_INFO, "%s: config.json declares %d MTP layers but the checkpoint has no mtp.fc.weight: "
                  "no MTP head", dir, cfg->mtp_layers);
    w->layers = fp4rt_calloc((size_t)(cfg->n_layers + n_mtp_layers), sizeof *w->layers, "layers");
    if (!w->layers) {
        st = FP4RT_OUT_OF_MEMORY;
        goto fail;
    }
    w->n_mtp_layers = n_mtp_layers;
    for (int i = 0; i < cfg->n_layers; i++) w->layers[i].kind = cfg->layer_kind[i];
    for (int i = 0; i < n_mtp_layers; i++) {
        fp4rt_layer_weights *L = &w->layers[cfg->n_layers + i];
        L->kind = FP4RT_LAYER_ATTENTION;
        L->k_scale = L->v_scale = 1.0f;
    }

    if ((st = load_specs(w, specs, n_specs))) goto fail;
    if (w->n_mtp_layers && (st = load_specs(w, mtp, n_mtp))) goto fail;
    /* FP8 KV-cache scales, where the exporter wrote them */
    for (int l = 0; l < cfg->n_layers; l++) {
        fp4rt_layer_weights *L = &w->layers[l];
        L->k_scale = L->v_scale = 1.0f;
        if (L->kind != FP4RT_LAYER_ATTENTION) continue;
        char name[160];
        snprintf(name, sizeof name, "%slayers.%d.self_attn.k_proj.k_scale", cfg->tensor_prefix, l);
        if (fp4rt_checkpoint_find(w->ckpt, name) && (st = scalar_f32(w->ckpt, name, &L->k_scale))) goto fail;
        snprintf(name, sizeof name, "%slayers.%d.self_attn.v_proj.v_scale", cfg->tensor_prefix, l);
        if (fp4rt_checkpoint_find(w->ckpt, name) && (st = scalar_f32(w->ckpt, name, &L->v_scale))) goto fail;
    }
    if (cfg->tie_embeddings) {
        fp4rt_linear *l = &w->lm_head;
        l->module = fp4rt_strdup("lm_head (tied to embed_tokens)");
        if (!l->module) {
            st = FP4RT_OUT_OF_MEMORY;
            goto fail;
        }
        l->fmt = w->embed_dtype == FP4RT_DT_BF16  ? FP4RT_W_BF16
                 : w->embed_dtype == FP4RT_DT_F16 ? FP4RT_W_F16
                                                  : FP4RT_W_F32;
        l->n_out = cfg->vocab;
        l->n_in = cfg->hidden;
        l->weight = w->embed;
        l->weight_scale = 1.0f;
        fp4rt_linear_set_bytes(l);
    }
    if ((st = fp4rt_weights_load_vision(w))) goto fail;
    if ((st = check_extra_tensors(w, specs, n_specs, mtp, n_mtp))) goto fail;
    free(specs);
    free(mtp);
    *out = w;
    return FP4RT_OK;
fail:
    free(specs);
    free(mtp);
    fp4rt_weights_free(w);
    return st;
}
