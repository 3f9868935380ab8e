/* The model as a program: an ordered list of ops over activation buffers,
 * built once from the config and the resolved weights. Every backend runs the
 * same program; a backend only implements ops.
 *
 * Activations: a step processes T tokens (1 for decode, up to the prefill chunk
 * for prefill). Each activation buffer holds T rows of `width` floats (FP32).
 * Buffers live in one scratch arena; a planning pass gives each buffer a column
 * offset (in floats per token) so buffers whose lifetimes do not overlap share
 * memory. An op addresses a column range of a buffer through an fp4rt_view. */
#ifndef FP4RT_PROGRAM_H
#define FP4RT_PROGRAM_H

#include "runtime/model/weights.h"

typedef enum fp4rt_op_kind {
    FP4RT_OP_EMBED,         /* y = embed[tokens] */
    FP4RT_OP_RMSNORM,       /* y = x * rsqrt(mean(x^2) + eps) * w, per group (w holds 1 + w') */
    FP4RT_OP_GATED_RMSNORM, /* y = x * rsqrt(mean(x^2) + eps) * w * silu(z), per group */
    FP4RT_OP_L2NORM,        /* y = x * rsqrt(sum(x^2) + eps) * scale, per group */
    FP4RT_OP_LINEAR,        /* y = x W^T (format of `lin`) */
    FP4RT_OP_ROPE,          /* NeoX rotate-half on the first rotary_dim lanes of each group */
    FP4RT_OP_KV_APPEND,     /* cache[slot] rows pos0..pos0+T-1 = (x: K, z: V) */
    FP4RT_OP_ATTENTION,     /* y = causal GQA softmax(q K^T * scale) V over the cache of `slot` */
    FP4RT_OP_SIGMOID_GATE,  /* y = x * sigmoid(z), per group */
    FP4RT_OP_CONV1D_SILU,   /* y = silu(causal depthwise conv(x)) with carried state `slot` */
    FP4RT_OP_GATED_DELTA,   /* gated delta rule (GDN recurrence), state `slot` */
    FP4RT_OP_SWIGLU,        /* y = silu(x) * z */
    FP4RT_OP_ADD,           /* y = x + z */
    /* The vision encoder's ops (issue 18; docs/MODEL.md, the vision section): */
    FP4RT_OP_LAYERNORM,     /* y = (x - mean(x)) * rsqrt(var(x) + eps) * w + b, per group; var is the
                               biased mean of (x - mean)^2 (torch LayerNorm); w, b: [group_dim] */
    FP4RT_OP_BIAS,          /* y = x + b, b: [x.cols] F32, the same for every row */
    FP4RT_OP_GELU,          /* y = 0.5 x (1 + erf(x / sqrt 2)); with gelu_tanh set
                               y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    FP4RT_OP_ATTENTION_FULL, /* y = softmax(q K^T * scale) V over ALL n_tokens rows of the step
                               (bidirectional, no cache, no mask): q = x, k = z, v = a, each
                               n_groups heads of group_dim; n_kv_heads = n_groups (no GQA); head h
                               at columns h * group_dim of x, z, a and y (group_stride unused);
                               y must not overlap x, z or a; group_dim <= 256 on Vulkan / CUDA */
    FP4RT_OP_COUNT
} fp4rt_op_kind;

const char *fp4rt_op_name(fp4rt_op_kind k);

typedef enum fp4rt_rope_mode { FP4RT_ROPE_TEXT = 0, FP4RT_ROPE_VISION_2D = 1 } fp4rt_rope_mode;

/* The logits are not in the arena: [T, vocab] (or [1, vocab]) in a session buffer. */
#define FP4RT_BUF_LOGITS (-2)

/* Columns [col, col + cols) of every row of activation buffer `buf`. */
typedef struct fp4rt_view {
    int buf;
    int col;
    int cols;
} fp4rt_view;

/* Per-op parameters (only the fields an op uses are set). */
typedef struct fp4rt_op {
    fp4rt_op_kind kind;
    int layer;          /* model layer, -1 for none */
    fp4rt_view x, z, y; /* inputs x (and z), output y; y may equal x (in place) */
    const fp4rt_linear *lin; /* LINEAR */
    const float *w;          /* norms: [group_dim] */
    int n_groups;            /* norms, RoPE, gate: groups per row */
    int group_dim;           /* elements per group */
    int group_stride;        /* distance between group starts within the x/y views (>= group_dim) */
    int z_group_stride;      /* SIGMOID_GATE: distance between group starts within z */
    float eps;               /* norms */
    float scale;             /* L2NORM output scale; ATTENTION softmax scale */
    int rotary_dim;          /* ROPE */
    double rope_theta;       /* ROPE */
    /* ROPE: which position drives frequency j (0 <= j < rotary_dim / 2). A row's
     * position has three components (t, h, w): step->positions when set, else
     * pos0 + row + step->rope_delta for all three.
     *   FP4RT_ROPE_TEXT, mrope_section all 0: component t, inv_freq[j] = theta^(-2j / rotary_dim)
     *     (plain 1-D RoPE; the three components are equal for text anyway).
     *   FP4RT_ROPE_TEXT with mrope_section {s0, s1, s2} and mrope_interleaved (Qwen3.5/3.6,
     *     transformers' apply_interleaved_mrope): j % 3 == 1 && j < 3 * s1 -> h,
     *     j % 3 == 2 && j < 3 * s2 -> w, else t; inv_freq as above.
     *   FP4RT_ROPE_VISION_2D (Qwen3-VL vision blocks, rotary_dim = head_dim): with
     *     q = rotary_dim / 4, j < q -> h with inv_freq[j], j >= q -> w with inv_freq[j - q],
     *     inv_freq[i] = theta^(-2i / (rotary_dim / 2)). */
    int rope_mode;           /* fp4rt_rope_mode */
    int mrope_section[3];
    int mrope_interleaved;   /* only the interleaved layout is supported (Qwen3.5/3.6) */
    const float *b;          /* LAYERNORM, BIAS: the bias [group_dim] / [x.cols] */
    int gelu_tanh;           /* GELU: the tanh approximation (gelu_pytorch_tanh) */
    int slot;                /* KV_APPEND / ATTENTION: attention-layer ordinal;
                                CONV1D_SILU / GATED_DELTA: GDN-layer ordinal */
    int n_kv_heads;          /* ATTENTION (n_groups = query heads, group_dim = head_dim) */
    int is_logits;           /* LINEAR into FP4RT_BUF_LOGITS: all rows or only the last,
                                as the step asks */
    /* GATED_DELTA operands: x = conv output [q | k | v] per token (q, k already
     * L2-normalised, q scaled), z = b [v_heads] (beta = sigmoid(b)), a = alpha [v_heads]
     * (g = -exp(A_log) * softplus(alpha + dt_bias)), y = o [v_heads * v_dim]. */
    fp4rt_view a;
} fp4rt_op;

typedef struct fp4rt_program {
    const fp4rt_weights *weights;
    int n_ops;
    fp4rt_op *ops;
    int n_bufs;
    int *buf_width;     /* [n_bufs] floats per token */
    int *buf_offset;    /* [n_bufs] column offset in the arena (floats per token) */
    int arena_width;    /* floats per token of the whole arena */
    int hidden_buf;     /* the residual stream */
    int n_attn_layers;  /* KV cache slots */
    int n_gdn_layers;   /* GDN state slots */
    /* Arena column of the normed hidden state rows the logits are computed from
     * (the final norm's output; the MTP program: mtp.norm's). A step leaves them
     * there for all its rows (the step's logits may cover only the last). */
    int out_hidden_col;
    /* The MTP program only (else -1): arena column where the caller writes each
     * row's input hidden state (hidden floats per row) before the step. */
    int in_hidden_col;
} fp4rt_program;

fp4rt_status fp4rt_program_build(const fp4rt_weights *w, fp4rt_program **out);
/* The MTP head's program (docs/MODEL.md §3; w->n_mtp_layers > 0, else
 * INVALID_ARGUMENT): row t takes token t (EMBED) and the hidden state the caller
 * wrote at in_hidden_col, runs
 *   x = fc([pre_fc_norm_embedding(embed(token)) | pre_fc_norm_hidden(hidden)]),
 * the MTP decoder layers (full attention, KV slots 0 .. n_mtp_layers - 1 of its
 * own cache, positions pos0 + t), h = mtp.norm(x) (at out_hidden_col) and the
 * logits lm_head(h). No GDN slots. */
fp4rt_status fp4rt_program_build_mtp(const fp4rt_weights *w, fp4rt_program **out);
/* The vision tower's two programs (docs/MODEL.md "Vision encoder"; w->vision set,
 * else INVALID_ARGUMENT). One step = one image: n_tokens = all its patches, rows in
 * the processor's order (merge blocks of merge x merge patches), bidirectional
 * attention over the whole step; no EMBED, no KV, no logits (run with no_logits).
 *   encoder: the caller writes each row's patch [patch_dim] at in_hidden_col and
 *     its interpolated position embedding [hidden] at in_hidden_col + patch_dim;
 *     x = patch_embed(patch) + b + pos; depth blocks
 *       x += proj(attn(rope2d(qkv(LN1(x))))) ; x += fc2(gelu_tanh(fc1(LN2(x))))
 *     (ROPE mode FP4RT_ROPE_VISION_2D: step->positions holds (0, h, w) per row);
 *     merger.norm(x) at out_hidden_col [hidden].
 *   merger: the caller writes rows of merge^2 * hidden (merge^2 consecutive encoder
 *     rows) at in_hidden_col; out_hidden_col gets fc2(gelu_erf(fc1(x) + b1)) + b2
 *     [out_hidden]. */
/* Patches of one image at most: the processor's default longest_edge (16,777,216
 * pixels) in 16 x 16 patches (the engine refuses larger images; the planner sizes
 * the per-image activations for it). */
#define FP4RT_VISION_MAX_PATCHES 65536
fp4rt_status fp4rt_program_build_vision(const fp4rt_weights *w, fp4rt_program **encoder, fp4rt_program **merger);
void fp4rt_program_free(fp4rt_program *p);

/* Bytes per KV-cache element, and "BF16" / "F32" / "FP8". */
size_t fp4rt_kv_elem_size(fp4rt_kv_type t);
const char *fp4rt_kv_type_name(fp4rt_kv_type t);

/* A tensor of the weights that the program's ops read (what a GPU backend uploads). */
typedef enum fp4rt_ptensor_kind {
    FP4RT_PT_EMBED,       /* the embedding table [vocab, hidden] in weights->embed_dtype (F32: 4 bytes, else 2) */
    FP4RT_PT_WEIGHT,      /* a linear's weight: lin->n_out rows of lin->row_bytes */
    FP4RT_PT_BLOCK_SCALE, /* a linear's NVFP4 E4M3 block scales: n_out * n_in / 16 bytes */
    FP4RT_PT_F32,         /* an F32 vector: a norm's weight (and LayerNorm's bias), a BIAS op's bias, the conv1d
                             taps, dt_bias, A_log */
} fp4rt_ptensor_kind;

typedef struct fp4rt_program_tensor {
    fp4rt_ptensor_kind kind;
    const void *host; /* never NULL */
    uint64_t bytes;
    const char *name;        /* the linear's module, or "embed_tokens", "norm", "conv1d", "dt_bias", "A_log" */
    const fp4rt_linear *lin; /* WEIGHT, BLOCK_SCALE: the linear; else NULL */
} fp4rt_program_tensor;

typedef fp4rt_status (*fp4rt_program_tensor_fn)(void *user, const fp4rt_program_tensor *t);

static inline fp4rt_status fp4rt_program_tensor_visit(fp4rt_program_tensor_fn fn, void *user, fp4rt_ptensor_kind kind,
                                                      const void *host, uint64_t bytes, const char *name,
                                                      const fp4rt_linear *lin) {
    fp4rt_program_tensor t = {kind, host, bytes, name, lin};
    return host ? fn(user, &t) : FP4RT_OK;
}

/* Calls fn for every tensor the program's ops read, in op order, skipping NULL
 * host pointers; a tensor read by several ops comes once per op (the tied
 * lm_head's weight is the embedding table: dedupe by host pointer where it
 * matters). Stops at fn's first non-OK status and returns it. Inline because
 * the CUDA module, which links none of the runtime, walks with it too. */
static inline fp4rt_status fp4rt_program_tensors(const fp4rt_program *p, fp4rt_program_tensor_fn fn, void *user) {
    const fp4rt_weights *w = p->weights;
    const fp4rt_config *cfg = &w->cfg;
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        const fp4rt_linear *l = op->lin;
        switch (op->kind) {
        case FP4RT_OP_EMBED:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_EMBED, w->embed,
                                            (uint64_t)cfg->vocab * cfg->hidden *
                                                (w->embed_dtype == FP4RT_DT_F32 ? 4 : 2),
                                            "embed_tokens", NULL);
            break;
        case FP4RT_OP_LINEAR:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_WEIGHT, l->weight, (uint64_t)l->n_out * l->row_bytes,
                                            l->module, l);
            if (!st)
                st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_BLOCK_SCALE, l->block_scale,
                                                (uint64_t)l->n_out * (l->n_in / 16), l->module, l);
            break;
        case FP4RT_OP_RMSNORM:
        case FP4RT_OP_GATED_RMSNORM:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, op->w, (uint64_t)op->group_dim * 4, "norm", NULL);
            break;
        case FP4RT_OP_LAYERNORM:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, op->w, (uint64_t)op->group_dim * 4, "norm", NULL);
            if (!st)
                st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, op->b, (uint64_t)op->group_dim * 4, "norm bias",
                                                NULL);
            break;
        case FP4RT_OP_BIAS:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, op->b, (uint64_t)op->x.cols * 4, "bias", NULL);
            break;
        case FP4RT_OP_CONV1D_SILU:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, op->w, (uint64_t)op->x.cols * op->group_dim * 4,
                                            "conv1d", NULL);
            break;
        case FP4RT_OP_GATED_DELTA:
            st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, w->layers[op->layer].dt_bias,
                                            (uint64_t)cfg->lin_v_heads * 4, "dt_bias", NULL);
            if (!st)
                st = fp4rt_program_tensor_visit(fn, user, FP4RT_PT_F32, w->layers[op->layer].neg_A,
                                                (uint64_t)cfg->lin_v_heads * 4, "A_log", NULL);
            break;
        default: break;
        }
    }
    return st;
}

#endif
