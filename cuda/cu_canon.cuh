/* The numerics contract on the device (docs/NUMERICS.md; runtime/base/canon_math.h):
 * the op families around the quantized linears (cu_basic.cu, cu_attention.cu,
 * cu_gdn.cu) evaluate exp, log, sigmoid, SiLU and softplus with canon_math.h's
 * functions, reduce in the CPU's order and round every +, -, *, / once, so that
 * they give the CPU backend's bits.
 *
 * A file that includes this header must be compiled with --fmad=false (no
 * multiply-add contraction), and without --use_fast_math (division and sqrtf
 * correctly rounded, no flush to zero): CMakeLists.txt lists those files in
 * FP4RT_CUDA_CONTRACT_SOURCES, which also defines FP4RT_CU_NOFMAD for the check
 * below. The linear / GEMM families keep FMA. The host emulation
 * (tests/cu_emu, FP4RT_CU_EMU) compiles these files with -ffp-contract=off. */
#ifndef FP4RT_CU_CANON_CUH
#define FP4RT_CU_CANON_CUH

#if defined(__CUDACC__) && !defined(FP4RT_CU_EMU)
#if !defined(FP4RT_CU_NOFMAD)
#error "cu_canon.cuh: compile this file with --fmad=false (CMakeLists.txt FP4RT_CUDA_CONTRACT_SOURCES)"
#endif
#if defined(__USE_FAST_MATH__)
#error "cu_canon.cuh: --use_fast_math breaks the numerics contract"
#endif
#endif

#include "runtime/base/canon_math.h"

#endif
