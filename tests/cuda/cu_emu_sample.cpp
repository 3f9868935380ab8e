/* The CUDA sampling kernels (cuda/cu_sample.cu) compiled for the host emulation
 * (test_cu_emu), against the CPU sampler: top-k candidates bit for bit (value
 * bits and ids, in order) over crafted rows (ties, ties made by the temperature
 * division, -inf and masked ids, k above the number of valid ids, penalties,
 * overflow and subnormal quotients, sizes that are not a multiple of the slice,
 * several levels), a NaN reported as ids[0] = -1, and argmax against the greedy
 * pick. */
#include "cuda/cu_sample.cu"

#include <stdio.h>
#include <stdlib.h>

#include <vector>

extern "C" {
#include "runtime/text/sampler.h"
}

static uint64_t rng_next(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

static float value(int mode, uint64_t r) {
    static const float sp[] = {1e-40f, -1e-39f, 0.0f, -0.0f, 3e38f, -3e38f, 1e-30f, 7.0f, -7.0f, 1e20f};
    switch (mode) {
    case 0: return (float)(r % 5) - 2.0f;                         /* many ties */
    case 1: return (float)(int64_t)(r % 2000001) * 1e-5f - 10.0f; /* spread */
    case 2: return r % 7 == 0 ? INFINITY : r % 7 == 1 ? -INFINITY : (float)(r % 3);
    case 3: return 1.5f + (float)(r % 64) * 0x1p-23f; /* neighbours that tie after / 0.7 */
    default: return sp[r % 10] * (r % 3 == 0 ? 1.0f : 0.75f);
    }
}

/* Returns the number of failed checks. */
int fp4rt_emu_case_sample(void) {
    struct rc {
        const char *what;
        int n, k, mode, masked, penalties;
        float temperature;
    } cases[] = {
        {"k=1", 700, 1, 1, 0, 0, 1.0f},
        {"ties k=256, 2 levels", 3001, 256, 0, 1, 0, 1.0f},
        {"ties after /0.7", 2100, 64, 3, 0, 1, 0.7f},
        {"inf, penalties", 1500, 20, 2, 1, 1, 0.7f},
        {"k > valid", 2000, 256, 1, 2, 1, 1.3f},
        {"overflow", 1200, 50, 4, 0, 1, 0.3f},
        {"subnormal quotients", 1200, 50, 4, 1, 1, 3e7f},
    };
    int fails = 0;
    uint64_t x = 4242;
    for (const rc &c : cases) {
        std::vector<float> l(c.n), tmp(c.n);
        std::vector<uint8_t> valid(c.n);
        for (int i = 0; i < c.n; i++) {
            uint64_t r = rng_next(&x);
            l[i] = value(c.mode, r);
            valid[i] = c.masked == 1 ? (uint8_t)(rng_next(&x) % 4 != 0) : c.masked == 2 ? (uint8_t)(r % 20 == 0) : 1;
        }
        fp4rt_sampling_resolved sp = {};
        sp.temperature = c.temperature;
        sp.top_k = c.k;
        sp.top_p = 1;
        sp.repetition_penalty = c.penalties ? 1.3f : 1.0f;
        sp.presence_penalty = c.penalties ? 1.5f : 0.0f;
        sp.frequency_penalty = c.penalties ? 0.25f : 0.0f;
        fp4rt_sampler smp;
        if (fp4rt_sampler_init(&smp, &sp, c.n, c.masked ? valid.data() : NULL)) return fails + 1;
        for (int i = 0; c.penalties && i < 120; i++) fp4rt_sampler_accept(&smp, (int32_t)(rng_next(&x) % c.n), i % 3 != 0);
        fp4rt_topk_request req;
        if (!fp4rt_sampler_topk_request(&smp, &req)) {
            fprintf(stderr, "top-k %s: no device request\n", c.what);
            fails++;
            fp4rt_sampler_free(&smp);
            continue;
        }
        std::vector<uint32_t> work(2 * fp4rt_cu_top_k_work_pairs(c.n, c.k) * 2 + 2), out(2 * FP4RT_TOPK_MAX, 7);
        fp4rt_status st = fp4rt_cu_top_k_launch(0, l.data(), c.n, req.valid, req.pen, &req, work.data(), out.data());
        float dv[FP4RT_TOPK_MAX], rv[FP4RT_TOPK_MAX];
        int32_t di[FP4RT_TOPK_MAX], ri[FP4RT_TOPK_MAX];
        fp4rt_cu_top_k_result(out.data(), c.k, dv, di);
        tmp = l;
        int k = fp4rt_sampler_top_k(&smp, tmp.data(), rv, ri);
        int bad = st || k != c.k ? 0 : -1;
        for (int i = 0; bad < 0 && i < k; i++)
            if (di[i] != ri[i] || memcmp(&dv[i], &rv[i], 4)) bad = i;
        if (bad >= 0) {
            fails++;
            fprintf(stderr, "top-k %s (n %d, k %d): candidate %d: device (%d, %a), CPU (%d, %a)\n", c.what, c.n, c.k,
                    bad, di[bad], (double)dv[bad], ri[bad], (double)rv[bad]);
        }
        /* a NaN among the valid ids */
        int i = c.n / 2;
        while (c.masked && !valid[i]) i++;
        float keep = l[i];
        l[i] = NAN;
        fp4rt_cu_top_k_launch(0, l.data(), c.n, req.valid, req.pen, &req, work.data(), out.data());
        if (fp4rt_cu_top_k_result(out.data(), c.k, dv, di) || di[0] != -1) {
            fails++;
            fprintf(stderr, "top-k %s with a NaN: ids[0] = %d\n", c.what, di[0]);
        }
        l[i] = keep;
        printf("%-40s %s\n", c.what, bad >= 0 ? "FAILED" : "ok");
        fp4rt_sampler_free(&smp);

        /* argmax of the same row against the greedy pick */
        sp.greedy = 1;
        if (fp4rt_sampler_init(&smp, &sp, c.n, c.masked ? valid.data() : NULL)) return fails + 1;
        tmp = l;
        int32_t cpu = fp4rt_sampler_sample(&smp, tmp.data()), dev[2] = {-2, -2};
        fp4rt_sampler_free(&smp);
        fp4rt_cu_argmax_launch(0, l.data(), c.n, c.masked ? valid.data() : NULL, dev);
        if (dev[1] != 0 || dev[0] != cpu) {
            fails++;
            fprintf(stderr, "argmax %s: device %d (NaN %d), CPU %d\n", c.what, dev[0], dev[1], cpu);
        }
    }
    return fails;
}
