/* The CUDA vision kernels (LayerNorm, bias, GELU, bidirectional attention)
 * compiled for the host emulation (test_cu_emu). */
#include "cuda/cu_vision.cu"
