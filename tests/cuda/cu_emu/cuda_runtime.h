/* Host emulation of the few CUDA features the non-linear kernels use
 * (tests/cuda/test_cu_emu.cpp), standing in for <cuda_runtime.h> when the kernels
 * are compiled by the host C++ compiler with -DFP4RT_CU_EMU (this directory
 * first on the include path). A launch runs its blocks one after another; each
 * block runs on one std::thread per CUDA thread, so __syncthreads (a barrier over
 * the block) and warp shuffles (an exchange through a per-warp slot between two
 * barriers over the warp) keep their meaning. __shared__ arrays become static
 * (blocks never overlap); dynamic shared memory is poisoned with NaN before each
 * block. Device intrinsics compute what the CUDA documentation specifies.
 * Not a CUDA runtime: only what cuda/cu_basic.cu, cu_attention.cu, cu_gdn.cu
 * and cu_sample.cu need. The test is compiled with -ffp-contract=off, so float
 * operations round as on a GPU compiled with --fmad=false. */
#ifndef FP4RT_CU_EMU_RUNTIME_H
#define FP4RT_CU_EMU_RUNTIME_H

#ifndef FP4RT_CU_EMU
#error "tests/cu_emu is only for the host emulation (-DFP4RT_CU_EMU)"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <condition_variable>
#include <mutex>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
#define __shared__ static

typedef struct fp4rt_emu_stream *cudaStream_t;
typedef enum cudaError { cudaSuccess = 0 } cudaError_t;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace fp4rt_emu {

/* A blocking barrier (threads sleep, they do not spin: a block's threads far
 * outnumber the cores) whose threads may leave (drop) as CUDA threads exit. */
struct barrier {
    std::mutex m;
    std::condition_variable cv;
    int expected = 0, count = 0;
    unsigned long phase = 0;
    void reset(int n) {
        expected = n;
        count = 0;
    }
    void release() {
        count = 0;
        phase++;
        cv.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> l(m);
        unsigned long ph = phase;
        if (++count == expected)
            release();
        else
            cv.wait(l, [&] { return phase != ph; });
    }
    void drop() {
        std::unique_lock<std::mutex> l(m);
        if (--expected == count && count > 0) release();
    }
};

struct block_state {
    barrier bar;
    std::vector<std::unique_ptr<barrier>> warp_bar;
    std::vector<float> slot; /* [warps * 32] shuffle exchange */
    std::vector<float> dyn;  /* dynamic shared memory */
};

inline thread_local dim3 tl_thread(0, 0, 0), tl_block(0, 0, 0);
inline thread_local int tl_linear = 0;
inline dim3 g_block_dim, g_grid_dim;
inline block_state *g_block = nullptr;

/* Runs kernel k over the grid: blocks one after another, the threads of a block
 * at once (one std::thread per CUDA thread, kept for the whole launch). */
template <class K, class... A> void launch(K k, dim3 grid, dim3 block, size_t smem, A... a) {
    g_grid_dim = grid;
    g_block_dim = block;
    int n = (int)(block.x * block.y * block.z), n_warps = (n + 31) / 32;
    block_state bs;
    for (int w = 0; w < n_warps; w++) bs.warp_bar.push_back(std::make_unique<barrier>());
    bs.slot.assign((size_t)n_warps * 32, 0.0f);
    barrier outer;
    outer.reset(n);
    g_block = &bs;
    unsigned n_blocks = grid.x * grid.y * grid.z;
    std::vector<std::thread> th;
    th.reserve(n);
    for (int i = 0; i < n; i++)
        th.emplace_back([&, i] {
            tl_linear = i;
            tl_thread = dim3(i % block.x, i / block.x % block.y, i / (block.x * block.y));
            for (unsigned b = 0; b < n_blocks; b++) {
                tl_block = dim3(b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y));
                if (i == 0) { /* a fresh block: every thread back, shared memory poisoned */
                    bs.bar.reset(n);
                    for (int w = 0; w < n_warps; w++) bs.warp_bar[w]->reset(n - w * 32 < 32 ? n - w * 32 : 32);
                    bs.dyn.assign(smem / sizeof(float) + 1, NAN);
                }
                outer.wait();
                k(a...);
                /* an exited thread no longer holds back barriers (as on sm_70+) */
                bs.warp_bar[i / 32]->drop();
                bs.bar.drop();
                outer.wait();
            }
        });
    for (auto &t : th) t.join();
    g_block = nullptr;
}

inline float shfl_xor(float v, int o) {
    block_state *b = g_block;
    int lane = tl_linear % 32, w = tl_linear / 32;
    b->slot[w * 32 + lane] = v;
    b->warp_bar[w]->wait();
    float r = b->slot[w * 32 + (lane ^ o)];
    b->warp_bar[w]->wait();
    return r;
}

} // namespace fp4rt_emu

#define threadIdx (fp4rt_emu::tl_thread)
#define blockIdx (fp4rt_emu::tl_block)
#define blockDim (fp4rt_emu::g_block_dim)
#define gridDim (fp4rt_emu::g_grid_dim)

#define FP4RT_CU_LAUNCH(kernel, grid, block, smem, stream, ...) \
    fp4rt_emu::launch(kernel, dim3(grid), dim3(block), (size_t)(smem), __VA_ARGS__)
#define FP4RT_CU_DYN_SMEM(type, name) type *name = (type *)fp4rt_emu::g_block->dyn.data()

inline void __syncthreads() { fp4rt_emu::g_block->bar.wait(); }
inline float __shfl_xor_sync(unsigned, float v, int o) { return fp4rt_emu::shfl_xor(v, o); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float __uint_as_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline uint32_t __float_as_uint(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
/* IEEE round-to-nearest operations, never contracted */
inline float __fdiv_rn(float a, float b) {
    volatile float r = a / b;
    return r;
}
inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
inline float __fadd_rn(float a, float b) {
    volatile float r = a + b;
    return r;
}
inline float __fsub_rn(float a, float b) {
    volatile float r = a - b;
    return r;
}
template <class K> cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }

#endif
