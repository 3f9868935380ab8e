/* The contract between the CUDA backend core (cu_backend.cu: context, buffers,
 * weight upload, the step loop, CUDA graphs) and the op families (one .cu per
 * family). Compiled by nvcc only; the module is loaded by libfp4rt with dlopen.
 *
 * Every op family exports one recorder per op kind it implements:
 *     fp4rt_status fp4rt_cu_op_<name>(const fp4rt_cu_step *s, const fp4rt_op *op);
 * A recorder only enqueues kernels on s->stream (no host synchronization, no
 * allocation, no host-to-device copies) so that a decode step can be captured
 * into a CUDA graph and replayed: everything that changes between decode steps
 * (the position, the token) is read by kernels from s->d_step, never baked
 * into kernel arguments. Shapes (n_tokens, flags) are fixed per captured graph.
 *
 * Numerics: the same math as the CPU backend (runtime/backend/cpu/), FP32
 * accumulation; see docs/NUMERICS.md. The families around the
 * linears (cu_basic.cu, cu_attention.cu, cu_gdn.cu) follow the contract to
 * the bit (cu_canon.cuh: canon_math.h's exp / log, the CPU's summation order,
 * no fused multiply-add); the linear families keep fused multiply-add and
 * their own accumulation order. */
#ifndef FP4RT_CU_OPS_H
#define FP4RT_CU_OPS_H

#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "runtime/backend/backend.h"
#include "runtime/model/program.h"
}

/* A device buffer of the CUDA backend. */
struct fp4rt_buffer {
    void *dev;
    size_t bytes;
    const char *what;
};

/* Per-step values kernels read on the device (graph replay updates them). */
typedef struct fp4rt_cu_step_info {
    int32_t pos0;     /* position of row 0 */
    int32_t n_tokens; /* rows in this step */
    int32_t tokens[]; /* [chunk] token ids */
} fp4rt_cu_step_info;

typedef struct fp4rt_cu_ctx fp4rt_cu_ctx; /* cu_internal.h (core) */

typedef struct fp4rt_cu_step {
    fp4rt_cu_ctx *c;
    cudaStream_t stream;
    const fp4rt_program *p;
    const fp4rt_session_buffers *sb; /* sb->scratch->dev: arena [chunk, arena_width] f32, ... */
    const fp4rt_step *step;          /* host view: n_tokens, all_logits, no_logits (pos0, tokens: use d_step;
                                        while a decode graph is captured, step->pos0 is -1 and tokens NULL) */
    const fp4rt_cu_step_info *d_step; /* device copy of pos0 / n_tokens / tokens */
    int sm;                           /* compute capability major * 10 + minor, e.g. 90, 120 */
    /* the program's RoPE table on the device, uploaded by the core per (program,
     * n_ctx) from fp4rt_cu_rope_table: [rope_ctx][rope_dim / 2][2] (cos, sin) of
     * positions 0 .. rope_ctx - 1 (rope_ctx >= sb->n_ctx); NULL: the program has
     * no RoPE op */
    const float *rope_tab;
    int rope_ctx, rope_dim;
    double rope_theta;
    /* device copies refreshed per step, outside any captured graph (NULL where the
     * core has none): the rotary positions [n_tokens][3] (t, h, w) of
     * fp4rt_step_rope_pos (NULL: pos0 + t for every component), the override
     * flags [n_tokens] and rows [n_tokens][hidden] of the EMBED op (flags NULL:
     * no overrides) */
    const int32_t *rpos;
    const uint8_t *embed_rows;
    const float *embeds;
    int rope_mode; /* the mode rope_tab was built for */
} fp4rt_cu_step;

/* Row 0 of view v (a column range of the arena, or of the logits for
 * FP4RT_BUF_LOGITS) on the device, and the distance between rows in floats. */
static inline float *fp4rt_cu_view_ptr(const fp4rt_cu_step *s, fp4rt_view v) {
    if (v.buf == FP4RT_BUF_LOGITS) return (float *)s->sb->logits->dev + v.col;
    return (float *)s->sb->scratch->dev + s->p->buf_offset[v.buf] + v.col;
}
static inline size_t fp4rt_cu_view_stride(const fp4rt_cu_step *s, fp4rt_view v) {
    return v.buf == FP4RT_BUF_LOGITS ? (size_t)s->p->weights->cfg.vocab : (size_t)s->p->arena_width;
}

/* Device copy of host tensor `host` uploaded by prepare (NULL if none). */
const void *fp4rt_cu_weight(const fp4rt_cu_ctx *c, const void *host);
/* Records an error (one line, printf-style) and returns st, as fp4rt_fail. */
fp4rt_status fp4rt_cu_fail(fp4rt_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs one line through libfp4rt's logger (fp4rt_log). */
void fp4rt_cu_log(fp4rt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* FP4RT_OK, or the error of the last launch named `what`. */
fp4rt_status fp4rt_cu_check_launch(const char *what);
/* A device scratch area of at least `bytes` owned by the context, valid for the
 * step (reserved before recording by the core from fp4rt_cu_workspace_bytes). */
void *fp4rt_cu_workspace(const fp4rt_cu_step *s, size_t bytes);
/* Bytes of workspace the op needs for a step of `chunk` rows (0: none); each
 * family that needs workspace implements its part. */
size_t fp4rt_cu_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk);
/* The linear family's part (cu_linear.cu): FP8 W8A8 activations quantized to
 * E4M3 values, or an input view whose rows are not 16-byte aligned, are staged
 * as [chunk, round_up(K, 4)] f32; 0 for other ops and for NVFP4 W4A4. */
size_t fp4rt_cu_linear_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk);

/* Standalone NVFP4 -> F16 dequantization (cu_linear.cu), enqueued on `stream`:
 * out[i] = f16(e2m1(code i) * e4m3(scales[i / 16])), exact and bit-identical to
 * the CPU's (the tensor scale is not applied). Device pointers: packed [n / 2]
 * (element 2i in the low nibble of byte i), scales [n / 16], out [n] (4-byte
 * aligned); n a multiple of 16. */
fp4rt_status fp4rt_cu_dequant_nvfp4(cudaStream_t stream, const uint8_t *packed, const uint8_t *scales, size_t n,
                                    uint16_t *out);

/* The part of the attention and GDN families (cu_attention.cu): ATTENTION needs
 * [n_heads][FP4RT_ATTN_MAX_SPLITS][head_dim + 2] floats of decode partials
 * (chunk-independent); every other op 0. */
size_t fp4rt_cu_attn_gdn_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk);

/* Op families. */
fp4rt_status fp4rt_cu_op_embed(const fp4rt_cu_step *s, const fp4rt_op *op);     /* cu_basic.cu */
fp4rt_status fp4rt_cu_op_norm(const fp4rt_cu_step *s, const fp4rt_op *op);      /* RMSNORM, GATED_RMSNORM, L2NORM */
fp4rt_status fp4rt_cu_op_eltwise(const fp4rt_cu_step *s, const fp4rt_op *op);   /* SIGMOID_GATE, SWIGLU, ADD */
fp4rt_status fp4rt_cu_op_linear(const fp4rt_cu_step *s, const fp4rt_op *op);    /* cu_linear.cu */
fp4rt_status fp4rt_cu_op_linear_w4a4(const fp4rt_cu_step *s, const fp4rt_op *op); /* cu_fp4_mma.cu: NVFP4 W4A4 */
/* cu_fp4_mma.cu: workspace of a W4A4 linear for `chunk` rows (0 for other ops);
 * fp4rt_cu_workspace_bytes adds it. */
size_t fp4rt_cu_w4a4_workspace_bytes(const fp4rt_op *op, int chunk);
/* cu_fp4_mma.cu: *native = 1 when the module's code for the current device uses
 * the block-scaled FP4 MMA (sm_120a / sm_121a cubin), 0 for the emulation.
 * Launches and synchronizes: call at prepare / describe time, not while recording. */
fp4rt_status fp4rt_cu_fp4_native(int *native);
/* cu_attention.cu, host code: the RoPE table of program p for positions
 * 0 .. n_ctx - 1, with exactly the CPU's FP32 expressions and libm's cosf /
 * sinf (cpu_attention.c; glibc's are not always correctly rounded, so the
 * device cannot compute them itself and keep the CPU's bits): *tab [n_ctx]
 * [rotary_dim / 2][2] (cos, sin), malloc'ed, the caller frees it; *n_floats its
 * length. *tab NULL: no RoPE op. UNSUPPORTED: RoPE ops of different rotary_dim
 * / theta / mode, or a rotary_dim the kernel does not take. The angles of
 * frequency j use fp4rt_rope_inv_freq (backend.h) of the program's mode. */
fp4rt_status fp4rt_cu_rope_table(const fp4rt_program *p, int n_ctx, float **tab, size_t *n_floats);
fp4rt_status fp4rt_cu_op_rope(const fp4rt_cu_step *s, const fp4rt_op *op);      /* reads s->rope_tab */
fp4rt_status fp4rt_cu_op_kv_append(const fp4rt_cu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cu_op_attention(const fp4rt_cu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cu_op_conv(const fp4rt_cu_step *s, const fp4rt_op *op);      /* cu_gdn.cu */
fp4rt_status fp4rt_cu_op_gdn(const fp4rt_cu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cu_op_layernorm(const fp4rt_cu_step *s, const fp4rt_op *op); /* cu_vision.cu */
fp4rt_status fp4rt_cu_op_bias_gelu(const fp4rt_cu_step *s, const fp4rt_op *op);  /* BIAS, GELU */
fp4rt_status fp4rt_cu_op_attention_full(const fp4rt_cu_step *s, const fp4rt_op *op);

#endif
