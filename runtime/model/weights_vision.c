/* Resolving the vision tower's tensors (model.visual.*) into fp4rt_vision_weights
 * (weights.h; names and shapes: schema.h fp4rt_schema_vision_tensors). */
#include "runtime/model/weights.h"

#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"
#include "runtime/model/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fp4rt_quant_config k_unquantized; /* algo NONE for every module */

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* The tensor of spec sp, present with exactly sp's shape. */
static fp4rt_status find_exact(const fp4rt_checkpoint *ck, const fp4rt_tensor_spec *sp, const fp4rt_st_tensor **out) {
    const fp4rt_st_tensor *t = fp4rt_checkpoint_find(ck, sp->name);
    *out = t;
    if (!t) return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s of the vision tower is missing", ck->dir, sp->name);
    int ok = t->ndim == sp->ndim;
    for (int i = 0; ok && i < sp->ndim; i++) ok = t->shape[i] == sp->shape[i];
    if (ok) return FP4RT_OK;
    char want[96], got[96];
    shape_str(sp->shape, sp->ndim, want, sizeof want);
    shape_str(t->shape, t->ndim, got, sizeof got);
    return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has shape %s, expected %s (vision_config)", t->file_path, t->name,
                      got, want);
}

static int is_float(fp4rt_dtype d) { return d == FP4RT_DT_BF16 || d == FP4RT_DT_F16 || d == FP4RT_DT_F32; }

/* A float tensor of sp's shape as a new FP32 array; NaN / Inf refused. */
static fp4rt_status vector(const fp4rt_checkpoint *ck, const fp4rt_tensor_spec *sp, float **out) {
    const fp4rt_st_tensor *t;
    fp4rt_status st = find_exact(ck, sp, &t);
    if (st) return st;
    if (!is_float(t->dtype))
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s, expected BF16, F16 or F32", t->file_path,
                          t->name, fp4rt_dtype_name(t->dtype));
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    float *v = fp4rt_malloc((size_t)n * sizeof(float), t->name);
    if (!v) return FP4RT_OUT_OF_MEMORY;
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        if (t->dtype == FP4RT_DT_F32) {
            memcpy(&v[i], p + 4 * i, 4);
        } else {
            memcpy(&h, p + 2 * i, 2);
            v[i] = t->dtype == FP4RT_DT_BF16 ? fp4rt_bf16_to_f32(h) : fp4rt_f16_to_f32(h);
        }
        if (!isfinite(v[i])) {
            free(v);
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has a non-finite value at index %lld", t->file_path,
                              t->name, (long long)i);
        }
    }
    *out = v;
    return FP4RT_OK;
}

/* A vision linear: a float weight is unquantized; a packed one follows the quant config. */
static fp4rt_status linear(const fp4rt_weights *w, const fp4rt_tensor_spec *sp, fp4rt_linear *out) {
    const fp4rt_st_tensor *t = fp4rt_checkpoint_find(w->ckpt, sp->name);
    if (!t) return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s of the vision tower is missing", w->ckpt->dir, sp->name);
    const fp4rt_quant_config *q = is_float(t->dtype) ? &k_unquantized : &w->quant;
    return fp4rt_linear_resolve(w->ckpt, q, sp->module, (int)sp->shape[0], (int)sp->shape[1], out);
}

/* The patch embedding: a float Conv3d weight [H, C, T, P, P], read as [H, C*T*P*P]. */
static fp4rt_status patch_linear(const fp4rt_weights *w, const fp4rt_tensor_spec *sp, fp4rt_linear *out) {
    const fp4rt_st_tensor *t;
    fp4rt_status st = find_exact(w->ckpt, sp, &t);
    if (st) return st;
    if (!is_float(t->dtype))
        return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s, expected BF16, F16 or F32 (the patch "
                          "embedding is not quantized)", t->file_path, t->name, fp4rt_dtype_name(t->dtype));
    memset(out, 0, sizeof *out);
    out->module = fp4rt_strdup(sp->module);
    if (!out->module) return FP4RT_OUT_OF_MEMORY;
    out->fmt = t->dtype == FP4RT_DT_BF16 ? FP4RT_W_BF16 : t->dtype == FP4RT_DT_F16 ? FP4RT_W_F16 : FP4RT_W_F32;
    out->n_out = (int)sp->shape[0];
    out->n_in = (int)(sp->shape[1] * sp->shape[2] * sp->shape[3] * sp->shape[4]);
    out->weight = t->data;
    out->weight_scale = 1.0f;
    fp4rt_linear_set_bytes(out);
    return FP4RT_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Where spec sp goes: a linear slot or a vector slot (exactly one non-NULL). */
static void slot_of(fp4rt_vision_weights *v, const fp4rt_tensor_spec *sp, fp4rt_linear **lin, float ***vec) {
    *lin = NULL;
    *vec = NULL;
    const char *n = sp->name + strlen("model.visual.");
    if (sp->layer >= 0) {
        fp4rt_vision_block *b = &v->blocks[sp->layer];
        static const struct {
            const char *suffix;
            size_t lin, vec; /* offsets + 1; 0: none */
        } map[] = {
            {".norm1.weight", 0, offsetof(fp4rt_vision_block, norm1_w) + 1},
            {".norm1.bias", 0, offsetof(fp4rt_vision_block, norm1_b) + 1},
            {".norm2.weight", 0, offsetof(fp4rt_vision_block, norm2_w) + 1},
            {".norm2.bias", 0, offsetof(fp4rt_vision_block, norm2_b) + 1},
            {".attn.qkv.weight", offsetof(fp4rt_vision_block, qkv) + 1, 0},
            {".attn.qkv.bias", 0, offsetof(fp4rt_vision_block, qkv_b) + 1},
            {".attn.proj.weight", offsetof(fp4rt_vision_block, proj) + 1, 0},
            {".attn.proj.bias", 0, offsetof(fp4rt_vision_block, proj_b) + 1},
            {".mlp.linear_fc1.weight", offsetof(fp4rt_vision_block, fc1) + 1, 0},
            {".mlp.linear_fc1.bias", 0, offsetof(fp4rt_vision_block, fc1_b) + 1},
            {".mlp.linear_fc2.weight", offsetof(fp4rt_vision_block, fc2) + 1, 0},
            {".mlp.linear_fc2.bias", 0, offsetof(fp4rt_vision_block, fc2_b) + 1},
        };
        for (size_t i = 0; i < FP4RT_ARRAY_LEN(map); i++)
            if (ends_with(n, map[i].suffix)) {
                if (map[i].lin) *lin = (fp4rt_linear *)((char *)b + map[i].lin - 1);
                if (map[i].vec) *vec = (float **)((char *)b + map[i].vec - 1);
                return;
            }
        return;
    }
    if (!strcmp(n, "patch_embed.proj.weight")) *lin = &v->patch;
    else if (!strcmp(n, "patch_embed.proj.bias")) *vec = &v->patch_b;
    else if (!strcmp(n, "pos_embed.weight")) *vec = &v->pos_embed;
    else if (!strcmp(n, "merger.norm.weight")) *vec = &v->merger_norm_w;
    else if (!strcmp(n, "merger.norm.bias")) *vec = &v->merger_norm_b;
    else if (!strcmp(n, "merger.linear_fc1.weight")) *lin = &v->merger_fc1;
    else if (!strcmp(n, "merger.linear_fc1.bias")) *vec = &v->merger_fc1_b;
    else if (!strcmp(n, "merger.linear_fc2.weight")) *lin = &v->merger_fc2;
    else if (!strcmp(n, "merger.linear_fc2.bias")) *vec = &v->merger_fc2_b;
}

fp4rt_status fp4rt_weights_load_vision(fp4rt_weights *w) {
    const fp4rt_config *cfg = &w->cfg;
    if (cfg->vision.depth <= 0 || !w->ckpt) return FP4RT_OK;
    if (!fp4rt_checkpoint_find(w->ckpt, "model.visual.patch_embed.proj.weight")) {
        fp4rt_log(FP4RT_LOG_INFO, "%s: config.json has a vision_config but the checkpoint has no "
                  "model.visual.patch_embed.proj.weight: text only", w->ckpt->dir);
        return FP4RT_OK;
    }
    if (cfg->vision.out_hidden != cfg->hidden)
        return fp4rt_fail(FP4RT_FORMAT, "%s/config.json: key vision_config.out_hidden_size: %d, but the text model's "
                          "hidden_size is %d", w->ckpt->dir, cfg->vision.out_hidden, cfg->hidden);
    fp4rt_tensor_spec *specs = NULL;
    size_t n = fp4rt_schema_vision_tensors(cfg, &specs);
    if (!n) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st = FP4RT_OK;
    fp4rt_vision_weights *v = fp4rt_calloc(1, sizeof *v, "vision weights");
    if (v) v->blocks = fp4rt_calloc((size_t)cfg->vision.depth, sizeof *v->blocks, "vision blocks");
    w->vision = v;
    if (!v || !v->blocks) st = FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; !st && i < n; i++) {
        fp4rt_linear *lin;
        float **vec;
        slot_of(v, &specs[i], &lin, &vec);
        if (lin == &v->patch) st = patch_linear(w, &specs[i], lin);
        else if (lin) st = linear(w, &specs[i], lin);
        else if (vec) st = vector(w->ckpt, &specs[i], vec);
        else st = fp4rt_fail(FP4RT_INTERNAL, "no slot for vision tensor %s", specs[i].name);
    }
    /* every model.visual.* tensor must be one of the schema's (or an auxiliary scale of one) */
    static const char *const aux[] = {".weight_scale", ".weight_scale_2", ".input_scale"};
    for (size_t i = 0; !st && i < w->ckpt->n_tensors; i++) {
        const fp4rt_st_tensor *t = w->ckpt->tensors[i];
        if (strncmp(t->name, "model.visual.", 13)) continue;
        char base[256];
        snprintf(base, sizeof base, "%s", t->name);
        for (size_t a = 0; a < FP4RT_ARRAY_LEN(aux); a++)
            if (ends_with(base, aux[a]) && strlen(base) + 8 < sizeof base) {
                base[strlen(base) - strlen(aux[a])] = 0;
                strcat(base, ".weight");
                break;
            }
        int found = 0;
        for (size_t j = 0; j < n && !found; j++) found = !strcmp(specs[j].name, base);
        if (!found)
            st = fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s is not part of the vision tower config.json describes "
                            "(check vision_config.depth)", t->file_path, t->name);
        v->n_tensors++;
        v->bytes += t->nbytes;
    }
    free(specs);
    if (!st) w->n_tensors_used += v->n_tensors;
    return st;
}

static void free_linear(fp4rt_linear *l) {
    free(l->module);
    l->module = NULL;
}

void fp4rt_weights_free_vision(fp4rt_weights *w) {
    fp4rt_vision_weights *v = w->vision;
    if (!v) return;
    for (int i = 0; v->blocks && i < w->cfg.vision.depth; i++) {
        fp4rt_vision_block *b = &v->blocks[i];
        float *vecs[] = {b->norm1_w, b->norm1_b, b->norm2_w, b->norm2_b, b->qkv_b, b->proj_b, b->fc1_b, b->fc2_b};
        for (size_t j = 0; j < FP4RT_ARRAY_LEN(vecs); j++) free(vecs[j]);
        fp4rt_linear *lins[] = {&b->qkv, &b->proj, &b->fc1, &b->fc2};
        for (size_t j = 0; j < FP4RT_ARRAY_LEN(lins); j++) free_linear(lins[j]);
    }
    free(v->blocks);
    free(v->patch_b);
    free(v->pos_embed);
    free(v->merger_norm_w);
    free(v->merger_norm_b);
    free(v->merger_fc1_b);
    free(v->merger_fc2_b);
    free_linear(&v->patch);
    free_linear(&v->merger_fc1);
    free_linear(&v->merger_fc2);
    free(v);
    w->vision = NULL;
}
