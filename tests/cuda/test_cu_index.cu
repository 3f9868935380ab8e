/* Host unit test of the CUDA attention / GDN index arithmetic (cuda/cu_attn_index.h),
 * built with nvcc; runs without a GPU. Checks the contract's decode splits
 * (cover the positions exactly once, never more splits than the grid has), the
 * merge of split partials against a direct softmax, the causal key range of a prefill
 * tile and the GDN chunk boundaries (the CPU's chunk). */
#include "cuda/cu_attn_index.h"

extern "C" {
#include "runtime/backend/cpu/cpu_ops.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            if (failures > 20) exit(1);                                                            \
        }                                                                                          \
    } while (0)

/* The contract's decode splits (backend.h): at most FP4RT_ATTN_MAX_SPLITS (the
 * grid), spans that cover positions 0 .. len - 1 once, in order, whole tiles
 * of FP4RT_ATTN_TILE but for the last non-empty one, empty ones only at the end. */
static void test_split_ranges(void) {
    const int S = FP4RT_ATTN_MAX_SPLITS;
    int counts_seen[FP4RT_ATTN_MAX_SPLITS + 1] = {0};
    for (int n_ctx : {1, 16, 255, 256, 257, 600, 4096, 8192, 8193, 40000, 262144}) {
        int ns = fp4rt_attn_splits(n_ctx, 1);
        CHECK(ns >= 1 && ns <= S, "n_ctx %d: %d splits", n_ctx, ns);
        CHECK(fp4rt_attn_splits(n_ctx, 2) == 1, "n_ctx %d: prefill runs one span", n_ctx);
        counts_seen[ns]++;
        for (int len = 1; len <= n_ctx; len += len < 3000 ? 1 : 997) {
            int next = 0, empty_seen = 0;
            for (int i = 0; i < S; i++) {
                int b, e;
                fp4rt_cu_attn_span_range(len, ns, i, &b, &e);
                if (i >= ns) break; /* blocks past ns exit */
                if (b >= e) {
                    empty_seen = 1;
                    continue;
                }
                CHECK(!empty_seen, "n_ctx %d len %d: split %d non-empty after an empty one", n_ctx, len, i);
                CHECK(b == next, "n_ctx %d len %d: split %d starts at %d, expected %d", n_ctx, len, i, b, next);
                CHECK(ns == 1 || e == len || (e - b) % FP4RT_ATTN_TILE == 0, "n_ctx %d len %d: split %d of %d",
                      n_ctx, len, i, e - b);
                next = e;
            }
            CHECK(next == len, "n_ctx %d len %d: splits cover %d positions", n_ctx, len, next);
        }
    }
    /* short contexts use one split, long ones the whole grid */
    CHECK(counts_seen[1] > 0 && counts_seen[S] > 0, "split counts 1 and %d both occur", S);
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
}

/* Partials computed per span by the contract's online softmax (as the decode
 * kernel), merged with the kernel's merge, against a direct softmax in double;
 * records past the split count are poisoned and must stay unread. */
static void test_merge(void) {
    unsigned seed = 12345;
    const int hd = 40, nh = 3, n_ctx = 8192;
    int ns = fp4rt_attn_splits(n_ctx, 1);
    for (int n : {1, 2, 15, 16, 17, 100, 1000, 4097, 8192}) {
        float *sc = (float *)malloc(sizeof(float) * n), *v = (float *)malloc(sizeof(float) * n * hd);
        size_t ws = (size_t)fp4rt_cu_attn_part_off(nh, 0, hd);
        float *part = (float *)malloc(sizeof(float) * ws);
        for (size_t i = 0; i < ws; i++) part[i] = NAN;
        for (int h = 0; h < nh; h++) {
            for (int p = 0; p < n; p++) sc[p] = 8.0f * frand(&seed);
            for (int i = 0; i < n * hd; i++) v[i] = frand(&seed);
            for (int sp = 0; sp < ns; sp++) {
                int b, e;
                fp4rt_cu_attn_span_range(n, ns, sp, &b, &e);
                float *rec = part + fp4rt_cu_attn_part_off(h, sp, hd);
                CHECK(rec + hd + 2 <= part + ws, "record of head %d split %d inside the workspace", h, sp);
                float m = -INFINITY, l = 0;
                for (int i = 0; i < hd; i++) rec[i] = 0;
                for (int p = b; p < e; p++) {
                    if (sc[p] > m) {
                        float c = fp4rt_cexp(m - sc[p]);
                        l = l * c;
                        for (int i = 0; i < hd; i++) rec[i] = rec[i] * c;
                        m = sc[p];
                    }
                    float w = fp4rt_cexp(sc[p] - m);
                    l = l + w;
                    for (int i = 0; i < hd; i++) rec[i] = rec[i] + w * v[p * hd + i];
                }
                rec[hd] = m;
                rec[hd + 1] = l;
            }
            double mx = -INFINITY, den = 0;
            for (int p = 0; p < n; p++) mx = fmax(mx, sc[p]);
            for (int p = 0; p < n; p++) den += exp(sc[p] - mx);
            double err = 0, ref2 = 0;
            for (int e = 0; e < hd; e++) {
                double ref = 0;
                for (int p = 0; p < n; p++) ref += exp(sc[p] - mx) * v[p * hd + e];
                ref /= den;
                float got = fp4rt_cu_attn_merge_lane(part + fp4rt_cu_attn_part_off(h, 0, hd), ns, hd, e);
                CHECK(isfinite(got), "n %d head %d lane %d: %g", n, h, e, got);
                err += (got - ref) * (got - ref);
                ref2 += ref * ref;
            }
            CHECK(err <= 1e-10 * ref2 + 1e-20, "n %d head %d: NMSE %g", n, h, err / ref2);
        }
        free(sc);
        free(v);
        free(part);
    }
}

static void test_prefill_tiles(void) {
    const int bq = 16;
    for (int pos0 : {0, 1, 31, 500})
        for (int T : {2, 17, 32, 33, 600}) {
            for (int t0 = 0; t0 < T; t0 += bq) {
                int n = fp4rt_cu_tile_keys(pos0, T, t0, bq), maxvis = -1;
                for (int t = t0; t < t0 + bq && t < T; t++) {
                    CHECK(fp4rt_cu_key_visible(pos0, t, 0), "key 0 visible to row %d", t);
                    CHECK(fp4rt_cu_key_visible(pos0, t, pos0 + t), "own key of row %d", t);
                    CHECK(!fp4rt_cu_key_visible(pos0, t, pos0 + t + 1), "future key of row %d", t);
                    if (pos0 + t > maxvis) maxvis = pos0 + t;
                }
                CHECK(n == maxvis + 1, "pos0 %d T %d t0 %d: %d keys, rows see %d", pos0, T, t0, n, maxvis + 1);
            }
        }
}

static void test_gdn_chunks(void) {
    CHECK(FP4RT_CU_GDN_CHUNK == FP4RT_GDN_CHUNK, "CUDA chunk %d, CPU chunk %d", FP4RT_CU_GDN_CHUNK,
          FP4RT_GDN_CHUNK);
    for (int T = 2; T <= 700; T++) {
        int sum = 0, chunks = 0;
        for (int t0 = 0; t0 < T; t0 += FP4RT_CU_GDN_CHUNK) {
            int c = fp4rt_cu_gdn_chunk_rows(T, FP4RT_CU_GDN_CHUNK, t0);
            CHECK(c >= 1 && c <= FP4RT_CU_GDN_CHUNK, "T %d t0 %d: %d rows", T, t0, c);
            CHECK(t0 + c == T || c == FP4RT_CU_GDN_CHUNK, "T %d: short chunk at %d not last", T, t0);
            sum += c;
            chunks++;
        }
        CHECK(sum == T && chunks == (T + FP4RT_CU_GDN_CHUNK - 1) / FP4RT_CU_GDN_CHUNK, "T %d: %d rows in %d chunks",
              T, sum, chunks);
    }
    for (int dv = 1; dv <= 300; dv++) {
        int n = fp4rt_cu_gdn_slices(dv);
        CHECK(n * FP4RT_CU_GDN_DVS >= dv && (n - 1) * FP4RT_CU_GDN_DVS < dv, "dv %d: %d slices", dv, n);
    }
}

int main(void) {
    test_split_ranges();
    test_merge();
    test_prefill_tiles();
    test_gdn_chunks();
    if (failures) {
        fprintf(stderr, "test_cu_index: %d failures\n", failures);
        return 1;
    }
    printf("test_cu_index: ok\n");
    return 0;
}
