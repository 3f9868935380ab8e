#include "runtime/model/plan.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

static void add_linear(fp4rt_format_totals *t, fp4rt_wfmt f, uint64_t bytes, int n_tensors) {
    t->modules[f]++;
    t->tensors[f] += (uint64_t)n_tensors;
    t->bytes[f] += bytes;
}

static const fp4rt_linear *layer_linears(const fp4rt_layer_weights *L, int i) {
    const fp4rt_linear *all[] = {&L->gate, &L->up, &L->down, &L->q,  &L->k, &L->v,
                                 &L->o,    &L->qkv, &L->z,   &L->b, &L->a, &L->out};
    return i < (int)FP4RT_ARRAY_LEN(all) ? all[i] : NULL;
}

/* The device bytes of one image of FP4RT_VISION_MAX_PATCHES patches: both vision
 * programs' arenas (w->vision set; the programs only need the linears' addresses). */
static uint64_t vision_image_bytes(const fp4rt_weights *w) {
    fp4rt_program *e = NULL, *m = NULL;
    if (fp4rt_program_build_vision(w, &e, &m)) {
        fp4rt_clear_error();
        return 0;
    }
    int mm = w->cfg.vision.merge * w->cfg.vision.merge;
    uint64_t b = (uint64_t)FP4RT_VISION_MAX_PATCHES * e->arena_width * 4 +
                 (uint64_t)(FP4RT_VISION_MAX_PATCHES / mm) * m->arena_width * 4;
    fp4rt_program_free(e);
    fp4rt_program_free(m);
    return b;
}

void fp4rt_plan_checkpoint(const fp4rt_weights *w, fp4rt_memory_plan *plan, fp4rt_format_totals *tot) {
    memset(tot, 0, sizeof *tot);
    plan->mtp_weights = plan->mtp_tensors = 0;
    plan->vision_weights = w->vision ? w->vision->bytes : 0;
    plan->vision_tensors = w->vision ? w->vision->n_tensors : 0;
    plan->vision_image = w->vision ? vision_image_bytes(w) : 0;
    const fp4rt_checkpoint *ck = w->ckpt;
    uint64_t total = 0, embed = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const char *n = ck->tensors[i]->name;
        if (!strncmp(n, "mtp.", 4) && w->n_mtp_layers) {
            plan->mtp_weights += ck->tensors[i]->nbytes;
            plan->mtp_tensors++;
        }
        if (!strncmp(n, "model.visual.", 13) || !strncmp(n, "mtp.", 4) || !strncmp(n, "model.mtp.", 10))
            continue;
        total += ck->tensors[i]->nbytes;
        if (ck->tensors[i]->data == w->embed) embed = ck->tensors[i]->nbytes;
    }
    /* linears: weight + block scales as resolved; scalar scales counted as tensors */
    uint64_t lin_bytes = 0;
    for (int l = 0; l < w->cfg.n_layers; l++)
        for (int j = 0;; j++) {
            const fp4rt_linear *lin = layer_linears(&w->layers[l], j);
            if (!lin) break;
            if (!lin->module) continue;
            int nt = lin->fmt == FP4RT_W_FP8 ? 3 : lin->fmt >= FP4RT_W_NVFP4 ? 4 : 1;
            add_linear(tot, lin->fmt, lin->bytes + (nt - 1 - (lin->block_scale != NULL)) * 4, nt);
            lin_bytes += lin->bytes;
        }
    if (!w->cfg.tie_embeddings) {
        const fp4rt_linear *lin = &w->lm_head;
        int nt = lin->fmt == FP4RT_W_FP8 ? 3 : lin->fmt >= FP4RT_W_NVFP4 ? 4 : 1;
        add_linear(tot, lin->fmt, lin->bytes + (nt - 1 - (lin->block_scale != NULL)) * 4, nt);
    }
    uint64_t lin_total = 0, lin_tensors = 0;
    for (int f = 0; f < FP4RT_W_COUNT; f++) {
        lin_total += tot->bytes[f];
        lin_tensors += tot->tensors[f];
    }
    tot->bytes[FP4RT_FMT_OTHER] = total - lin_total;
    tot->tensors[FP4RT_FMT_OTHER] = w->n_tensors_used - w->n_tensors_mtp - plan->vision_tensors - lin_tensors;
    tot->modules[FP4RT_FMT_OTHER] = tot->tensors[FP4RT_FMT_OTHER];
    plan->weights = total;
    /* a decode step reads everything but the embedding table (one row of it),
     * and the whole table again when lm_head is tied to it */
    uint64_t row = (uint64_t)w->cfg.hidden * fp4rt_dtype_size(w->embed_dtype);
    plan->weights_per_token = total - embed + row + (w->cfg.tie_embeddings ? embed : 0);
    (void)lin_bytes;
}

/* Bytes of a linear [n, k] under an algorithm, as the quantizer writes it. */
static uint64_t linear_bytes(fp4rt_qalgo a, int64_t n, int64_t k, int *n_tensors, fp4rt_wfmt *f) {
    uint64_t scales = 0; /* NVFP4 block scales and the F32 scalar scales */
    switch (a) {
    case FP4RT_Q_FP8:
        *n_tensors = 3;
        *f = FP4RT_W_FP8;
        scales = 8;
        break;
    case FP4RT_Q_NVFP4_W4A16:
    case FP4RT_Q_NVFP4_W4A4:
        *n_tensors = 4;
        *f = a == FP4RT_Q_NVFP4_W4A4 ? FP4RT_W_NVFP4_W4A4 : FP4RT_W_NVFP4;
        scales = (uint64_t)(n * k / 16) + 8;
        break;
    default:
        *n_tensors = 1;
        *f = FP4RT_W_BF16;
        break;
    }
    return (uint64_t)n * fp4rt_wfmt_row_bytes(*f, k) + scales;
}

fp4rt_status fp4rt_plan_config(const fp4rt_config *cfg, const char *recipe, int n_ctx, int chunk,
                               fp4rt_kv_type kv, fp4rt_memory_plan *plan, fp4rt_format_totals *tot) {
    memset(plan, 0, sizeof *plan);
    memset(tot, 0, sizeof *tot);
    if (recipe && strcmp(recipe, "none") && fp4rt_recipe_known(recipe) < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "unknown recipe '%s' (nvidia-mixed, nvfp4-all, nvfp4-w4a4, fp8, none)", recipe);
    fp4rt_tensor_spec *specs;
    size_t n = fp4rt_schema_tensors(cfg, &specs);
    if (!n) return FP4RT_OUT_OF_MEMORY;
    uint64_t embed = 0;
    for (size_t i = 0; i < n; i++) {
        const fp4rt_tensor_spec *t = &specs[i];
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
        if (t->role == FP4RT_ROLE_LINEAR) {
            fp4rt_qalgo a = recipe && strcmp(recipe, "none") ? fp4rt_recipe_algo(recipe, t) : FP4RT_Q_NONE;
            int nt;
            fp4rt_wfmt f;
            uint64_t b = linear_bytes(a, t->shape[0], t->shape[1], &nt, &f);
            add_linear(tot, f, b, nt);
            plan->weights += b;
        } else {
            tot->modules[FP4RT_FMT_OTHER]++;
            tot->tensors[FP4RT_FMT_OTHER]++;
            tot->bytes[FP4RT_FMT_OTHER] += (uint64_t)numel * 2;
            plan->weights += (uint64_t)numel * 2;
            if (t->role == FP4RT_ROLE_EMBED) embed = (uint64_t)numel * 2;
        }
    }
    free(specs);
    /* the MTP head as NVIDIA's files and fp4rt quantize store it: BF16 */
    if ((n = fp4rt_schema_mtp_tensors(cfg, &specs))) {
        for (size_t i = 0; i < n; i++) {
            int64_t numel = 1;
            for (int d = 0; d < specs[i].ndim; d++) numel *= specs[i].shape[d];
            plan->mtp_weights += (uint64_t)numel * 2;
        }
        plan->mtp_tensors = n;
        free(specs);
    }
    plan->weights_per_token = plan->weights - embed + (uint64_t)cfg->hidden * 2 + (cfg->tie_embeddings ? embed : 0);
    /* the vision tower as NVIDIA's files and fp4rt quantize store it: BF16 */
    if ((n = fp4rt_schema_vision_tensors(cfg, &specs))) {
        for (size_t i = 0; i < n; i++) {
            int64_t numel = 1;
            for (int d = 0; d < specs[i].ndim; d++) numel *= specs[i].shape[d];
            plan->vision_weights += (uint64_t)numel * 2;
        }
        plan->vision_tensors = n;
        free(specs);
    }

    /* the session parts need the program's arena: build it over empty weights */
    fp4rt_weights *w = fp4rt_calloc(1, sizeof *w, "plan");
    if (!w) return FP4RT_OUT_OF_MEMORY;
    w->cfg = *cfg;
    w->n_mtp_layers = cfg->mtp_layers;
    w->layers = fp4rt_calloc((size_t)cfg->n_layers, sizeof *w->layers, "plan");
    fp4rt_program *p = NULL;
    fp4rt_status st = w->layers ? fp4rt_program_build(w, &p) : FP4RT_OUT_OF_MEMORY;
    if (!st && cfg->vision.depth > 0) { /* the vision programs over empty weights too */
        fp4rt_vision_weights vw = {0};
        vw.blocks = fp4rt_calloc((size_t)cfg->vision.depth, sizeof *vw.blocks, "plan");
        w->vision = vw.blocks ? &vw : NULL;
        plan->vision_image = w->vision ? vision_image_bytes(w) : 0;
        w->vision = NULL;
        free(vw.blocks);
    }
    if (!st) {
        fp4rt_memory_plan s;
        fp4rt_plan_session(p, n_ctx, chunk, kv, &s);
        plan->kv = s.kv;
        plan->conv = s.conv;
        plan->ssm = s.ssm;
        plan->scratch = s.scratch;
        plan->logits = s.logits;
        plan->rope = s.rope;
        plan->mtp_kv = s.mtp_kv;
    }
    fp4rt_program_free(p);
    free(w->layers);
    free(w);
    return st;
}

void fp4rt_session_params_resolve(const fp4rt_config *cfg, int kv_fp8_declared,
                                  const fp4rt_session_params *in, fp4rt_session_params *out) {
    *out = *in;
    if (out->n_ctx <= 0) out->n_ctx = 4096;
    if (cfg->max_positions > 0 && out->n_ctx > cfg->max_positions) out->n_ctx = cfg->max_positions;
    if (out->prefill_chunk <= 0) out->prefill_chunk = 512;
    if (out->prefill_chunk > out->n_ctx) out->prefill_chunk = out->n_ctx;
    if (out->kv_type == FP4RT_KV_DEFAULT) out->kv_type = kv_fp8_declared ? FP4RT_KV_FP8 : FP4RT_KV_BF16;
}


void fp4rt_plan_session(const fp4rt_program *p, int n_ctx, int chunk, fp4rt_kv_type kv,
                        fp4rt_memory_plan *out) {
    const fp4rt_config *c = &p->weights->cfg;
    size_t kv_elem = fp4rt_kv_elem_size(kv);
    out->kv = (uint64_t)p->n_attn_layers * 2 * n_ctx * c->n_kv_heads * c->head_dim * kv_elem;
    out->conv = (uint64_t)p->n_gdn_layers * fp4rt_cfg_conv_dim(c) * (c->conv_kernel - 1) * 4;
    out->ssm = (uint64_t)p->n_gdn_layers * c->lin_v_heads * c->lin_k_dim * c->lin_v_dim * 4;
    out->scratch = (uint64_t)chunk * p->arena_width * 4;
    out->logits = (uint64_t)chunk * c->vocab * 4;
    out->rope = 0;
    /* the main program's session: the MTP head's KV cache, when the model has one */
    out->mtp_kv = p->in_hidden_col < 0 ? (uint64_t)p->weights->n_mtp_layers * 2 * n_ctx * c->n_kv_heads *
                                             c->head_dim * kv_elem
                                       : 0;
    for (int i = 0; i < p->n_ops; i++) /* one table per program: every RoPE op has the same rotary_dim */
        if (p->ops[i].kind == FP4RT_OP_ROPE) {
            out->rope = (uint64_t)n_ctx * (p->ops[i].rotary_dim / 2) * 2 * 4;
            break;
        }
}
