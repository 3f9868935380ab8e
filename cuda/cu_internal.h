/* CUDA backend core internals (cu_module.cu, cu_backend.cu): the context, the
 * uploaded weights, the CUDA graph of the decode step. Op families use
 * cu_ops.h only. */
#ifndef FP4RT_CU_INTERNAL_H
#define FP4RT_CU_INTERNAL_H

#include "cuda/cu_ops.h"

extern "C" {
#include "runtime/backend/cu_abi.h"
}

/* A host tensor uploaded to the weights allocation (dedup by host pointer). */
typedef struct cu_tensor {
    const void *host;
    size_t bytes, offset; /* in c->weights */
    const char *name;
    int fill; /* synthetic weights: what the bytes hold (cu_backend.cu, CU_FILL_*) */
} cu_tensor;

/* The captured decode (or verify) step and what it was captured for: a change
 * of any of these re-captures it. */
typedef struct cu_graph_key {
    const fp4rt_program *p;
    const void *bufs[6]; /* scratch, kv, conv, ssm, logits, ckpt device pointers */
    int n_ctx, chunk, kv_type, all_logits, no_logits;
    int n_tokens, decode_rows, logits_rows;
    const void *workspace, *d_step, *rope_tab, *d_embeds;
    size_t workspace_bytes;
} cu_graph_key;

/* Device sampling (cu_sample.cu): result, valid mask, penalty list and top-k
 * candidate buffers, allocated on first use and grown as needed. */
typedef struct fp4rt_sample_state {
    void *d_out;      /* [FP4RT_TOPK_MAX] (value bits, id) pairs, or the pick (id, NaN seen) */
    void *h_out;      /* pinned copy of d_out */
    void *d_mask;     /* [mask_n] bytes: the valid mask last uploaded */
    uint8_t *h_mask;  /* [mask_n] host copy of it, compared with the next mask */
    int mask_n;       /* 0: none uploaded */
    void *d_pen;      /* [n_pen] fp4rt_topk_penalty */
    void *d_work;     /* top-k candidates: two halves */
    size_t d_out_cap, d_mask_cap, d_pen_cap, d_work_cap;
} fp4rt_sample_state;

#define CU_STEP_SLOTS 2 /* pinned host copies of the step info, used in turn */

struct fp4rt_cu_ctx {
    int device;
    int sm; /* major * 10 + minor */
    fp4rt_cuda_device_desc desc;
    cudaStream_t stream;

    /* bounded pinned staging for uploads / downloads: two halves used in turn */
    unsigned char *staging;
    size_t staging_half;
    cudaEvent_t staging_done[2];
    int staging_next;

    /* weights of the prepared program: one allocation, tensors sorted by host pointer */
    const fp4rt_program *prepared;
    void *weights;
    size_t weights_bytes;
    cu_tensor *tensors;
    int n_tensors;

    /* step info: device copy read by kernels, pinned host slots it is copied from */
    fp4rt_cu_step_info *d_step;
    fp4rt_cu_step_info *h_step[CU_STEP_SLOTS];
    cudaEvent_t h_step_done[CU_STEP_SLOTS];
    int step_slot;
    int step_cap; /* tokens the step info holds: after its tokens [step_cap] come the
                     rotary positions [step_cap][3] i32 and the EMBED override flags
                     [step_cap] bytes (cu_backend.cu step_extra) */
    float *d_embeds;    /* [embeds_cap] floats: the step's override rows (input_embeds) */
    size_t embeds_cap;

    void *workspace;
    const fp4rt_program *ws_program; /* what workspace_bytes and the RoPE table were made for (once per program,
                                        chunk and n_ctx) */
    int ws_chunk, ws_n_ctx;
    size_t workspace_bytes;

    /* the RoPE table (fp4rt_cu_step.rope_tab): [rope_ctx][rope_dim / 2][2] floats,
     * built on the host and uploaded by ensure_workspace for rope_program; a
     * table of more positions serves a smaller n_ctx */
    float *rope_tab;
    const fp4rt_program *rope_program;
    int rope_ctx, rope_dim, rope_mode;
    double rope_theta;

    /* decode / verify step CUDA graph */
    int use_graphs; /* 0: FP4RT_CUDA_GRAPHS=0 */
    cudaGraphExec_t graph;
    cu_graph_key graph_key;
    long graph_captures, graph_launches; /* for tests and the profile line */

    fp4rt_sample_state sample;
};

/* The host table libfp4rt lent at init (cu_module.cu). */
extern const fp4rt_cuda_host *fp4rt_cu_host;

/* Records "what: <CUDA error>" (DEVICE, OUT_OF_MEMORY for allocation failures). */
fp4rt_status fp4rt_cu_error(cudaError_t e, const char *what);
/* The device's description (filled at init). */
fp4rt_status fp4rt_cu_device_desc(int index, fp4rt_cuda_device_desc *out);
/* The backend (cu_backend.cu). */
extern const fp4rt_backend_ops fp4rt_cu_backend_ops;
fp4rt_status fp4rt_cu_backend_create(int index, void **ctx);
/* The measure_bandwidth slot (cu_bandwidth.cu): device copy bandwidth, read +
 * written bytes per second. */
fp4rt_status fp4rt_cu_measure_bandwidth(void *ctx, double *bytes_per_s);
/* Sampling (cu_sample.cu): the argmax and top_k slots; pick enqueues the greedy
 * pick of n logits at device pointer `logits` after the work already on the
 * stream, waits and writes the id (-1: a NaN); free releases the buffers. */
fp4rt_status fp4rt_cu_argmax(void *ctx, fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                             int32_t *out);
fp4rt_status fp4rt_cu_top_k(void *ctx, fp4rt_buffer *logits, size_t offset, int n, const fp4rt_topk_request *req,
                            float *vals, int32_t *ids);
fp4rt_status fp4rt_cu_pick(fp4rt_cu_ctx *c, const float *logits, int n, const uint8_t *valid, int32_t *out);
void fp4rt_cu_sample_free(fp4rt_cu_ctx *c);

#endif
