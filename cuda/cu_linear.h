/* The linear family's launch interface (cu_linear.cu), below the op recorder:
 * one linear layer on device pointers, so that tests and benchmarks can run the
 * kernels without a program. fp4rt_cu_op_linear resolves an op's views and
 * weights into this call. */
#ifndef FP4RT_CU_LINEAR_H
#define FP4RT_CU_LINEAR_H

#include "cuda/cu_ops.h"

/* y[t, n] = post * sum_k x'[t, k] * w'[n, k], t < rows, n < N (runtime/backend/cpu/cpu_linear.c). */
typedef struct fp4rt_cu_linear_call {
    int fmt;           /* fp4rt_wfmt: BF16, F16, F32, FP8 or NVFP4 (W4A16) */
    const void *w;     /* device [N, K] in fmt (NVFP4: [N, K / 2] packed) */
    const uint8_t *sb; /* device NVFP4 block scales [N, K / 16] (else NULL) */
    const float *x;    /* device, row t at x + t * xs */
    size_t xs;         /* floats */
    float *y;          /* device, row t at y + t * ys */
    size_t ys;         /* floats */
    int rows, N, K;
    float input_scale;  /* FP8: activation scale */
    float weight_scale; /* FP8 weight_scale; NVFP4 weight_scale_2 */
    float *ws;          /* workspace (16-byte aligned), at least */
    size_t ws_bytes;    /*   fp4rt_cu_linear_ws_bytes(...) bytes */
    int sm;             /* compute capability, major * 10 + minor */
    int path;         /* 0: by row count; 1: matrix-vector; 2: tensor-core GEMM (sm_80+, not F32) */
    const char *what; /* module name for messages (may be NULL) */
} fp4rt_cu_linear_call;

/* Whether a call takes the tensor-core GEMM (else the matrix-vector kernels). */
int fp4rt_cu_linear_uses_gemm(int fmt, int rows, int sm, int path);
/* Workspace bytes of a call: GEMM: activations staged in the operand format;
 * matrix-vector: FP8 quantized activations or unaligned rows as f32; else 0. */
size_t fp4rt_cu_linear_ws_bytes(int fmt, int rows, int K, int gemm, int x_aligned);

/* Enqueues the layer on `stream` (no synchronization, no allocation). */
fp4rt_status fp4rt_cu_linear_launch(const fp4rt_cu_linear_call *c, cudaStream_t stream);

/* Row stride (floats) of activations staged in the workspace. */
static inline size_t fp4rt_cu_linear_ld(int K) {
    return ((size_t)K + 3) & ~(size_t)3;
}

/* Whether rows at x, xs floats apart, can be read with 16-byte loads. */
static inline int fp4rt_cu_linear_x_aligned(const float *x, size_t xs) {
    return (uintptr_t)x % 16 == 0 && xs % 4 == 0;
}

/* Bytes of one weight row of K elements. */
static inline size_t fp4rt_cu_linear_row_bytes(int fmt, int K) {
    switch (fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16:
        return (size_t)K * 2;
    case FP4RT_W_F32:
        return (size_t)K * 4;
    case FP4RT_W_FP8:
        return (size_t)K;
    default:
        return (size_t)K / 2;
    }
}

#endif
