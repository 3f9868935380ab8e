/* Host emulation (see cuda_runtime.h here): the F16 type as far as the kernels
 * use it (loads converted to float), through the runtime's F16 code. */
#ifndef FP4RT_CU_EMU_FP16_H
#define FP4RT_CU_EMU_FP16_H
#include <stdint.h>
extern "C" {
#include "runtime/base/numfmt.h"
}
struct __half_raw {
    float value; /* the emulation keeps the (exact) value as float */
};
struct __half {
    float value;
    __half(__half_raw r) : value(r.value) {}
};
inline float __half2float(__half h) { return h.value; }
inline __half __ushort_as_half(unsigned short u) { return __half(__half_raw{fp4rt_f16_to_f32(u)}); }
#endif
