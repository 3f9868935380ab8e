/* Sampling kernels of the CUDA backend (cu_sample.cu): launchers over device
 * pointers, enqueued on `stream` (no synchronization), shared by the backend
 * slots and the host emulation test (tests/cuda/test_cu_emu.cpp). */
#ifndef FP4RT_CU_SAMPLE_H
#define FP4RT_CU_SAMPLE_H

#include "cuda/cu_ops.h"

/* The greedy pick of logits[0, n) as backend.h argmax defines it: out[0] = the
 * id (ids whose valid byte is 0 count as -inf; ties: the lowest id), out[1] = 1
 * when a valid logit is NaN. valid: [n] bytes or NULL. */
fp4rt_status fp4rt_cu_argmax_launch(cudaStream_t stream, const float *logits, int n, const uint8_t *valid,
                                    int32_t *out);

/* Pairs of candidates the top-k levels need per half of `work`. */
size_t fp4rt_cu_top_k_work_pairs(int n, int k);
/* backend.h top_k for a request already checked against its contract: valid
 * [n] bytes or NULL and pen [r->n_pen] are device copies (r->valid and r->pen
 * are not read); work holds 2 * fp4rt_cu_top_k_work_pairs(n, r->k) pairs (two
 * uint32 each); out gets r->k (value bits, id) pairs, read back with
 * fp4rt_cu_top_k_result. */
fp4rt_status fp4rt_cu_top_k_launch(cudaStream_t stream, const float *logits, int n, const uint8_t *valid,
                                   const fp4rt_topk_penalty *pen, const fp4rt_topk_request *r, uint32_t *work,
                                   uint32_t *out);
/* vals, ids [k] from a host copy of out; returns 0 with ids[0] = -1 for a NaN. */
int fp4rt_cu_top_k_result(const uint32_t *out, int k, float *vals, int32_t *ids);

#endif
