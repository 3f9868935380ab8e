/* The CUDA per-row kernels (embedding, norms, element-wise) compiled for the
 * host emulation (test_cu_emu). */
#include "cuda/cu_basic.cu"
