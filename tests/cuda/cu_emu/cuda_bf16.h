/* Host emulation (see cuda_runtime.h here): BF16 conversion, RNE as CUDA's
 * __float2bfloat16_rn (the runtime's fp4rt_f32_to_bf16 computes the same). */
#ifndef FP4RT_CU_EMU_BF16_H
#define FP4RT_CU_EMU_BF16_H
#include <stdint.h>
extern "C" {
#include "runtime/base/numfmt.h"
}
struct __nv_bfloat16 {
    uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {fp4rt_f32_to_bf16(f)}; }
inline uint16_t __bfloat16_as_ushort(__nv_bfloat16 h) { return h.bits; }
#endif
