/* A stand-in NVIDIA driver (built as libcuda.so.1 in its own directory) that
 * reports CUDA 12.4: test_cuda_loader runs with it on LD_LIBRARY_PATH to check
 * that a driver too old for the CUDA module is reported clearly. */
int cuDriverGetVersion(int *version);

int cuDriverGetVersion(int *version) {
    *version = 12040;
    return 0;
}
