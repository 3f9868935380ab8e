/* The tiled prefill linear: a step of several tokens as a blocked matrix
 * multiply that keeps the numerics contract's sums.
 *
 * A thread owns whole panels of FP4RT_TILE_ROWS output rows. For each block of
 * tokens (sized so the block's activation rows stay in L2), each panel is
 * decoded to FP32 once (ws) and a tile kernel runs it against t_max tokens at
 * a time, holding the rows x tokens accumulators in registers: one decoded
 * weight vector serves t_max tokens and one activation vector 4 rows. Long
 * rows go in k-segments that stay in L1, the chains carried over in memory
 * (a stored float reloads exactly, so the sums are unchanged). Every
 * output still gets its own 16 chains in k order from +0, the fixed reduce16
 * tree, the scalar tail and then the post scale: exactly the operations of
 * the one-row kernel, in the job's mode (exact, or one FMA per chain step), so
 * the bits do not depend on the tiling, the ISA or the thread count
 * (tests/backend/test_cpu_tile.c).
 *
 * The tile kernels are x86 AVX2 and AVX-512 (cpu_linear_tile_x86.c). Without
 * AVX2 the per-row path runs instead: a portable 4 x 4 tile of 16-float chains
 * did not fit a baseline SSE2 build's registers and ran 6x slower than it. */
#include "runtime/backend/cpu/cpu_ops.h"

#include <string.h>

const char *fp4rt_cpu_isa_name(int isa) {
    return isa == FP4RT_CPU_ISA_AVX512 ? "avx512" : isa == FP4RT_CPU_ISA_AVX2 ? "avx2" : "c";
}

fp4rt_cpu_tile_kernel fp4rt_cpu_tile_kernel_for(int isa, int relaxed) { return fp4rt_cpu_tile_kernel_x86(isa, relaxed); }

/* Token blocks: about 256 KiB of activation rows (at most BLOCK_TOKENS), so a
 * block stays in L2 while every panel of the thread passes over it. */
#define BLOCK_BYTES (256u << 10)
#define BLOCK_TOKENS 256
/* K-segments of the panel: 4 rows x SEG_K floats (16 KiB) stay in L1 while
 * the block's token groups pass over them; the chains carry over in acc. */
#define SEG_K 1024

size_t fp4rt_cpu_tile_ws_floats(int K) {
    return (size_t)FP4RT_TILE_ROWS * (size_t)K + (size_t)FP4RT_TILE_ROWS * (BLOCK_TOKENS + FP4RT_TILE_TOKENS_MAX) * 16;
}

void fp4rt_cpu_linear_tiles(const cpu_lin_job *j, int isa, long p0, long p1, float *ws) {
    const fp4rt_linear *l = j->l;
    int K = l->n_in, K16 = K & ~15, n_out = j->n_out, n_tok = j->n_rows;
    fp4rt_cpu_tile_kernel kern = fp4rt_cpu_tile_kernel_for(isa, j->relaxed);
    int tm = kern.t_max;
    float *panel = ws, *acc = ws + (size_t)FP4RT_TILE_ROWS * K;
    /* token blocks of equal size, a multiple of t_max (<= BLOCK_TOKENS + t_max - 1) */
    int block_max = (int)(BLOCK_BYTES / ((size_t)K * sizeof(float)));
    if (block_max > BLOCK_TOKENS) block_max = BLOCK_TOKENS;
    if (block_max < tm) block_max = tm;
    int n_blocks = (n_tok + block_max - 1) / block_max;
    int block = (n_tok + n_blocks - 1) / n_blocks;
    block = (block + tm - 1) / tm * tm;
    for (int b0 = 0; b0 < n_tok; b0 += block) {
        int b1 = b0 + block < n_tok ? b0 + block : n_tok;
        for (long p = p0; p < p1; p++) {
            int n0 = (int)p * FP4RT_TILE_ROWS;
            int rows = n_out - n0 < FP4RT_TILE_ROWS ? n_out - n0 : FP4RT_TILE_ROWS;
            for (int r = 0; r < rows; r++)
                if (!fp4rt_cpu_decode_row_simd(l, n0 + r, panel + (size_t)r * K))
                    fp4rt_cpu_decode_row(l, n0 + r, panel + (size_t)r * K);
            if (rows < FP4RT_TILE_ROWS) /* the matrix's last panel: zero rows, results dropped */
                memset(panel + (size_t)rows * K, 0, sizeof(float) * (size_t)(FP4RT_TILE_ROWS - rows) * K);
            /* group g (tokens g .. g + T - 1 of the block) keeps its chains at acc + g * 64 */
            const float *x[FP4RT_TILE_TOKENS_MAX];
            int k0 = 0;
            do { /* once with k0 = k1 = 0 when K < 16: the chains are +0 */
                int k1 = K16 - k0 > SEG_K ? k0 + SEG_K : K16;
                for (int g = 0; g < b1 - b0; g += tm) {
                    int T = b1 - b0 - g < tm ? b1 - b0 - g : tm;
                    for (int t = 0; t < T; t++) x[t] = j->x + (size_t)(b0 + g + t) * j->x_stride;
                    kern.fn(panel, K, k0, k1, x, T, acc + (size_t)g * FP4RT_TILE_ROWS * 16, k0 > 0);
                }
                k0 = k1;
            } while (k0 < K16);
            for (int g = 0; g < b1 - b0; g += tm) {
                int T = b1 - b0 - g < tm ? b1 - b0 - g : tm;
                float sums[FP4RT_TILE_ROWS * FP4RT_TILE_TOKENS_MAX]; /* [r * T + t]: the chains reduced */
                kern.reduce(acc + (size_t)g * FP4RT_TILE_ROWS * 16, FP4RT_TILE_ROWS * T, sums);
                for (int t = 0; t < T; t++) {
                    const float *xt = j->x + (size_t)(b0 + g + t) * j->x_stride;
                    float post = j->row_post ? j->row_post[b0 + g + t] : j->post;
                    float *y = j->y + (size_t)(b0 + g + t) * j->y_stride + n0;
                    for (int r = 0; r < rows; r++) {
                        const float *w = panel + (size_t)r * K;
                        float s = sums[r * T + t];
                        for (int k = K16; k < K; k++) s = FP4RT_CPU_CHAIN(s, w[k], xt[k], j->relaxed);
                        y[r] = s * post;
                    }
                }
            }
        }
    }
}
