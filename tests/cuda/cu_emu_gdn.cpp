/* The CUDA GDN kernels compiled for the host emulation (test_cu_emu). */
#include "cuda/cu_gdn.cu"
