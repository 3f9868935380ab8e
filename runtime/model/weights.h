/* The model's weights as the executor sees them: every tensor resolved from the
 * checkpoint, its format checked against the quantization config, small vectors
 * (norms, gates' parameters, conv kernels) converted to FP32 and owned here, and
 * large matrices left in the mmapped files (the CPU backend reads them in place;
 * GPU backends upload them). */
#ifndef FP4RT_WEIGHTS_H
#define FP4RT_WEIGHTS_H

#include "loader/config.h"
#include "loader/quant_config.h"
#include "loader/safetensors.h"

/* Storage format of a linear layer's weight, and therefore its math. */
typedef enum fp4rt_wfmt {
    FP4RT_W_BF16,
    FP4RT_W_F16,
    FP4RT_W_F32,
    FP4RT_W_FP8,         /* W8A8 static: x_q = e4m3_sat(x / input_scale); y = (x_q . w_q) * input_scale * weight_scale */
    FP4RT_W_NVFP4,       /* W4A16: y = (sum_b sb * sum_k e2m1 * x) * weight_scale_2 */
    FP4RT_W_NVFP4_W4A4,  /* activations quantized to NVFP4 per 16 with input_scale */
    FP4RT_W_COUNT
} fp4rt_wfmt;

const char *fp4rt_wfmt_name(fp4rt_wfmt f); /* "BF16", "F16", "F32", "FP8", "NVFP4-W4A16", "NVFP4-W4A4" */
/* Bytes of a weight row of n_in elements in format f (NVFP4: packed E2M1, two
 * per byte; its E4M3 block scales, n_in / 16 bytes, not included). The only
 * place the formats' sizes are written: fp4rt_linear's row_bytes and bytes,
 * and the planner's estimates, come from it. */
uint64_t fp4rt_wfmt_row_bytes(fp4rt_wfmt f, int64_t n_in);

/* One linear layer y[N] = W[N, K] x[K]. */
typedef struct fp4rt_linear {
    char *module;          /* "model.language_model.layers.0.mlp.up_proj" (owned) */
    fp4rt_wfmt fmt;
    int n_out, n_in;       /* logical N, K */
    const void *weight;    /* BF16/F16/F32 [N, K]; FP8 [N, K] bytes; NVFP4 [N, K/2] packed */
    const uint8_t *block_scale; /* NVFP4 only: E4M3 [N, K/16] */
    float weight_scale;    /* FP8 weight_scale; NVFP4 weight_scale_2; 1 otherwise */
    float input_scale;     /* FP8 and W4A4: activation scale; 0 otherwise (and for act_dynamic) */
    int act_dynamic;       /* W4A4 only: 1 = the activation tensor scale is per row,
                              amax(|row|) / (6 * 448) (1 for an all-zero row), instead of
                              input_scale; set by --fp4-activations on a layer without one */
    int fp4_act;           /* 1: NVFP4 W4A16 in the checkpoint, run as W4A4 because the model
                              was loaded with fp4_activations (fmt is then FP4RT_W_NVFP4_W4A4) */
    uint64_t row_bytes;    /* bytes of one weight row (n_out rows; block scales not included) */
    uint64_t bytes;        /* bytes read for one full pass over the layer: n_out * row_bytes
                              + the block scales; both set once (fp4rt_linear_set_bytes) */
} fp4rt_linear;

/* Sets l->row_bytes and l->bytes from fmt, n_out, n_in and block_scale; called
 * once, where a linear's weights are set (load, synthetic weights). */
void fp4rt_linear_set_bytes(fp4rt_linear *l);

typedef struct fp4rt_layer_weights {
    fp4rt_layer_kind kind;
    float *input_norm; /* [hidden], stored as 1 + w (zero-centred RMSNorm) */
    float *post_norm;  /* [hidden], 1 + w */
    fp4rt_linear gate, up, down;

    /* full attention */
    fp4rt_linear q, k, v, o; /* q: [2 * n_heads * head_dim, hidden] (query/gate interleaved per head) */
    float *q_norm, *k_norm;  /* [head_dim], 1 + w */
    float k_scale, v_scale;  /* FP8 KV-cache scales (k_proj.k_scale / v_proj.v_scale; 1 if absent) */

    /* Gated DeltaNet */
    fp4rt_linear qkv, z, b, a, out;
    float *conv_w;   /* [conv_dim, conv_kernel] */
    float *dt_bias;  /* [lin_v_heads] */
    float *neg_A;    /* [lin_v_heads], -exp(A_log) */
    float *gdn_norm; /* [lin_v_dim], plain weight (gated RMSNorm) */
} fp4rt_layer_weights;

/* The vision tower (docs/MODEL.md "Vision encoder"): every vector FP32 and owned;
 * linears in the format their tensors have (a float weight is unquantized whatever
 * the quant config says; NVFP4 / FP8 through the quant config, as the MTP head's). */
typedef struct fp4rt_vision_block {
    float *norm1_w, *norm1_b, *norm2_w, *norm2_b; /* LayerNorm [hidden] */
    fp4rt_linear qkv, proj, fc1, fc2;             /* attn.qkv [3 hidden, hidden] (q | k | v), attn.proj,
                                                     mlp.linear_fc1 [inter, hidden], mlp.linear_fc2 */
    float *qkv_b, *proj_b, *fc1_b, *fc2_b;        /* their biases [n_out] */
} fp4rt_vision_block;

typedef struct fp4rt_vision_weights {
    fp4rt_linear patch;   /* patch_embed.proj: the Conv3d as a linear [hidden, 3 * T * P * P] over
                             a patch flattened [c][t][py][px] (float formats only) */
    float *patch_b;       /* [hidden] */
    float *pos_embed;     /* [n_pos, hidden]: the learned table (sqrt(n_pos) x sqrt(n_pos) grid) */
    fp4rt_vision_block *blocks; /* [depth] */
    float *merger_norm_w, *merger_norm_b; /* merger.norm [hidden] */
    fp4rt_linear merger_fc1, merger_fc2;  /* [4 hidden, 4 hidden], [out_hidden, 4 hidden] (merge 2) */
    float *merger_fc1_b, *merger_fc2_b;
    uint64_t n_tensors;   /* model.visual.* tensors read */
    uint64_t bytes;       /* their bytes in the checkpoint */
} fp4rt_vision_weights;


typedef struct fp4rt_synth_region fp4rt_synth_region; /* weights_synth.c */

typedef struct fp4rt_weights {
    fp4rt_config cfg;
    fp4rt_quant_config quant;
    fp4rt_checkpoint *ckpt;
    fp4rt_layer_weights *layers; /* [n_layers] */
    fp4rt_dtype embed_dtype;     /* BF16, F16 or F32 */
    const void *embed;           /* [vocab, hidden] */
    float *final_norm;           /* [hidden], 1 + w */
    fp4rt_linear lm_head;        /* tied: BF16 view of embed */
    /* The MTP head (docs/MODEL.md §3), when config.json declares mtp_num_hidden_layers
     * and the checkpoint has mtp.* tensors (else n_mtp_layers = 0, the fields unset):
     * its decoder layers are layers[cfg.n_layers .. cfg.n_layers + n_mtp_layers - 1]
     * (full attention). Linears in the format their tensors have: a float weight is
     * unquantized whatever the quant config says (NVIDIA's files keep mtp.fc BF16
     * without excluding it), a packed one follows the quant config. */
    int n_mtp_layers;
    float *mtp_norm_embed;  /* [hidden], 1 + w: mtp.pre_fc_norm_embedding */
    float *mtp_norm_hidden; /* [hidden], 1 + w: mtp.pre_fc_norm_hidden */
    float *mtp_norm;        /* [hidden], 1 + w: mtp.norm */
    fp4rt_linear mtp_fc;    /* [hidden, 2 * hidden] over [embedding | hidden state] */
    uint64_t n_tensors_mtp; /* tensors of the MTP head read (also in n_tensors_used) */
    fp4rt_vision_weights *vision; /* NULL: no vision tower (text only) */
    uint64_t n_tensors_used;     /* tensors read by the text model (and the vision tower) */
    uint64_t n_tensors_skipped;  /* unloaded vision / MTP tensors recognized and not read */
    int n_fp4_act;               /* linears run as W4A4 by fp4rt_weights_fp4_activations */
    int n_fp4_act_dynamic;       /* ... of which with the per-row dynamic tensor scale */
    /* Synthetic weights (fp4rt_weights_synthetic; ckpt is NULL): the big tensors
     * (linear weights, block scales, the embedding) are placeholders inside one
     * PROT_NONE reservation [synth_base, synth_base + synth_bytes) until
     * fp4rt_weights_materialize makes it host memory. */
    int synthetic;
    char synth_recipe[32];
    unsigned char *synth_base;
    size_t synth_bytes;
    fp4rt_synth_region *synth_regions; /* sorted by offset */
    size_t n_synth_regions;
    int synth_materialized;
} fp4rt_weights;

/* Resolves model.visual.* into w->vision when w->cfg.vision.depth > 0 and the
 * checkpoint has model.visual.patch_embed.proj.weight (else w->vision stays NULL:
 * a text-only model). A missing tensor or a wrong shape / dtype: FORMAT naming the
 * file and the tensor. Called by fp4rt_weights_load. */
fp4rt_status fp4rt_weights_load_vision(fp4rt_weights *w);
void fp4rt_weights_free_vision(fp4rt_weights *w);

/* Resolves every tensor of the text model. Every problem is reported with the
 * file, the tensor name and what was expected. */
fp4rt_status fp4rt_weights_load(const char *dir, fp4rt_weights **out);
void fp4rt_weights_free(fp4rt_weights *w);

/* The model setting fp4_activations (--fp4-activations): every NVFP4 W4A16 linear
 * of the decoder layers becomes W4A4 (FP4RT_W_NVFP4_W4A4, fp4_act = 1): its
 * activations are quantized to NVFP4 per 16 at run time, with the tensor scale
 * `<module>.input_scale` when the checkpoint has one, else per row amax / (6 * 448)
 * (act_dynamic). The lm_head keeps FP32 activations (it runs on one row per step:
 * FP4 tensor cores gain nothing there, and the logits are the most sensitive
 * product). Idempotent; sets n_fp4_act / n_fp4_act_dynamic. */
fp4rt_status fp4rt_weights_fp4_activations(fp4rt_weights *w);

/* The format a module is declared to have (from the quant config and the dtype). */
fp4rt_status fp4rt_linear_resolve(const fp4rt_checkpoint *ck, const fp4rt_quant_config *q,
                                  const char *module, int n_out, int n_in, fp4rt_linear *out);

/* The linear field of a layer a module name ends with (".mlp.up_proj" -> up), or NULL. */
fp4rt_linear *fp4rt_weights_linear_slot(fp4rt_layer_weights *L, const char *module);
/* Frees the synthetic reservation and regions (fp4rt_weights_free calls it). */
void fp4rt_weights_synth_release(fp4rt_weights *w);

/* Weights of a preset config ("tiny", "qwen3.6-27b", ...; schema.h) with every
 * linear in the format the recipe gives it (NULL = "nvidia-mixed"), without a
 * checkpoint: big tensors are placeholder addresses (no memory; see
 * fp4rt_weights::synth_base), small FP32 vectors real plausible values (norms
 * near 1, neg_A < 0, ...), and the preset's vision tower (BF16 linears). Backends
 * fill the placeholders (backend.h prepare_synthetic). */
fp4rt_status fp4rt_weights_synthetic(const char *preset, const char *recipe, fp4rt_weights **out);
/* True when ptr lies in w's placeholder reservation (synthetic weights only). */
int fp4rt_weights_is_placeholder(const fp4rt_weights *w, const void *ptr);
/* The deterministic content of bytes [ptr, ptr + n) of placeholder tensors for
 * `seed`, written to dst: valid values of each tensor's format (E2M1 nibbles any;
 * E4M3 block scales 0.5 .. 0.94, never NaN; FP8 weight codes |x| < 2, never NaN;
 * BF16 |x| < 0.125). A pure function of (seed, offset in the reservation), so any
 * chunking gives the same bytes. */
void fp4rt_weights_synth_bytes(const fp4rt_weights *w, const void *ptr, size_t n, uint64_t seed, void *dst);
/* Host memory for the placeholders (the CPU backend): checks the bytes first
 * (fp4rt_host_mem_check), then makes the
 * reservation readable and fills it with fp4rt_weights_synth_bytes. Idempotent. */
fp4rt_status fp4rt_weights_materialize(fp4rt_weights *w, uint64_t seed);
/* Host memory available to a new allocation (MemAvailable), bytes; 0 if unknown. */
uint64_t fp4rt_host_mem_available(void);
/* OUT_OF_MEMORY (one line naming `what` and the sizes) unless `need` bytes fit
 * the available host memory with a quarter of the machine (>= 2 GiB) to spare. */
fp4rt_status fp4rt_host_mem_check(uint64_t need, const char *what);

#endif
