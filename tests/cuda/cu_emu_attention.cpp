/* The CUDA attention kernels compiled for the host emulation (test_cu_emu). */
#include "cuda/cu_attention.cu"
