/* Host emulation (see cuda_runtime.h here): FP8 E4M3 conversions as CUDA's
 * __nv_cvt_* define them (satfinite: out of range and +-Inf to +-448, NaN to
 * NaN), through the runtime's E4M3 code, which the CPU backend also uses; the
 * real intrinsics are checked on a GPU by test_backend_ops_cuda. */
#ifndef FP4RT_CU_EMU_FP8_H
#define FP4RT_CU_EMU_FP8_H
#include <stdint.h>

#include "cuda_fp16.h"
extern "C" {
#include "runtime/base/numfmt.h"
}
typedef uint8_t __nv_fp8_storage_t;
typedef enum { __NV_E4M3, __NV_E5M2 } __nv_fp8_interpretation_t;
typedef enum { __NV_NOSAT, __NV_SATFINITE } __nv_saturation_t;
inline __half_raw __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t x, __nv_fp8_interpretation_t) {
    return {fp4rt_e4m3_to_f32(x)};
}
inline __nv_fp8_storage_t __nv_cvt_float_to_fp8(float x, __nv_saturation_t, __nv_fp8_interpretation_t) {
    return fp4rt_f32_to_e4m3_sat(x);
}
#endif
