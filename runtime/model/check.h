/* Scanning a checkpoint for values no computation can use (`fp4rt inspect
 * --check`): the loader checks shapes, dtypes and the small tensors (norms,
 * scalar scales, block scales of the linears it resolves); this reads every
 * byte of every tensor. */
#ifndef FP4RT_CHECK_H
#define FP4RT_CHECK_H

#include "loader/safetensors.h"

/* One tensor with bad values: the first bad element and how many there are. */
typedef struct fp4rt_bad_tensor {
    const fp4rt_st_tensor *t;
    uint64_t first; /* element index of the first bad value */
    uint64_t count; /* bad values in the tensor */
    char what[96]; /* what the first one is: "NaN (BF16 0x7fc0)", "F32 scale 1e+38 overflows ..." */
} fp4rt_bad_tensor;

/* Called for each tensor with bad values, in name order; return non-zero to stop. */
typedef int (*fp4rt_bad_fn)(const fp4rt_bad_tensor *bad, void *user);

/* Scans every tensor of ck: BF16 / F16 / F32 NaN or Inf; F8_E4M3 NaN codes
 * (0x7f, 0xff; weights and block scales alike); F32 scalars named *scale*
 * (weight_scale, weight_scale_2, input_scale, k_scale, v_scale) that are <= 0
 * or overflow FP32 times 448 * 6. Packed FP4 (U8) and integer tensors have no
 * bad codes. *n_bad gets the number of tensors reported. */
void fp4rt_checkpoint_check(const fp4rt_checkpoint *ck, fp4rt_bad_fn fn, void *user, size_t *n_bad);

#endif
