/* Sampling on the device (backend.h top_k and argmax) against the CPU sampler
 * (runtime/text/sampler.c), for one backend kind (argv[1]: "vulkan" or "cuda"):
 *   - top_k on crafted rows: ties, -inf and masked ids, k = 1 and 256, k above
 *     the number of valid ids, sizes that are not a multiple of the device's
 *     slice, a 248320-id row of random values, penalties, temperatures that
 *     make distinct logits tie after the division, overflow to inf and
 *     subnormal quotients: the candidates' value bits and ids equal
 *     fp4rt_sampler_top_k's, and the token drawn from them equals
 *     fp4rt_sampler_sample's on the full row with the same seed; a NaN gives
 *     ids[0] = -1; requests outside the contract are UNSUPPORTED;
 *   - argmax on crafted rows against the greedy sampler;
 *   - seeded fp4rt_generate (top_k 20, top_p 0.95, temperature 0.7, presence
 *     penalty 1.5, several seeds) on a tiny model: the device-candidate tokens
 *     equal the host sampler's on the same backend's downloaded logits and the
 *     CPU backend's tokens.
 * The device comes from the backend registry (tests/test_devices.h); exits 77
 * (ctest: skipped) without a usable device; fails on any validation message. */
#include "fp4rt.h"
#include "tests/test_devices.h"
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "runtime/engine/model.h"
#include "runtime/text/sampler.h"

#include <stdint.h>

static uint64_t rng_next(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

typedef struct dev {
    const fp4rt_backend_ops *be;
    void *ctx;
    fp4rt_buffer *buf; /* logits, room for MAX_N + 64 floats */
} dev;

#define MAX_N 248320

/* A sampler of sp over n ids with the penalty history: every id in seen[0,
 * n_seen) seen in the prompt, out[0, n_out) in the output. */
static fp4rt_status make_sampler(fp4rt_sampler *smp, const fp4rt_sampling_resolved *sp, int n, const uint8_t *valid,
                                 const int32_t *seen, int n_seen, const int32_t *out, int n_out) {
    fp4rt_status st = fp4rt_sampler_init(smp, sp, n, valid);
    for (int i = 0; !st && i < n_seen; i++) fp4rt_sampler_accept(smp, seen[i], 0);
    for (int i = 0; !st && i < n_out; i++) fp4rt_sampler_accept(smp, out[i], 1);
    return st;
}

typedef struct row_case {
    const char *what;
    int n, k, mode, masked, penalties, greedy;
    float temperature;
    size_t off; /* floats into the buffer */
} row_case;

/* Fills l[n] for a mode; valid[n] per masked (0: all valid, 1: ~3/4, 2: ~100 ids). */
static void fill(const row_case *c, float *l, uint8_t *valid, uint64_t *x) {
    for (int i = 0; i < c->n; i++) {
        uint64_t r = rng_next(x);
        switch (c->mode) {
        case 0: l[i] = (float)(r % 5) - 2.0f; break;                            /* many ties */
        case 1: l[i] = (float)(int64_t)(r % 2000001) * 1e-5f - 10.0f; break;    /* spread */
        case 2: l[i] = r % 7 == 0 ? INFINITY : r % 7 == 1 ? -INFINITY : (float)(r % 3); break;
        case 3: l[i] = 1.5f + (float)(r % 64) * 0x1p-23f; break; /* neighbours: tie after / 0.7 */
        default: {                                              /* special magnitudes */
            static const float sp[] = {1e-40f, -1e-39f, 0.0f, -0.0f, 3e38f, -3e38f, 1e-30f, 7.0f, -7.0f, 1e20f};
            l[i] = sp[r % 10] * (r % 3 == 0 ? 1.0f : 0.75f);
        }
        }
        valid[i] = c->masked == 1 ? (uint8_t)(rng_next(x) % 4 != 0) : c->masked == 2 ? (uint8_t)(r % (c->n / 100 + 1) == 0) : 1;
    }
}

static void test_rows(const dev *d) {
    const row_case cases[] = {
        {"k=1", 1000, 1, 1, 0, 0, 0, 1.0f, 0},
        {"ties k=256", 1000, FP4RT_TOPK_MAX, 0, 0, 0, 0, 1.0f, 16},
        {"inf masked", 4099, 20, 2, 1, 0, 0, 0.7f, 0},
        {"odd size", 3001, 40, 1, 1, 1, 0, 0.7f, 3},
        {"k > valid", 5000, FP4RT_TOPK_MAX, 1, 2, 0, 0, 0.7f, 0},
        {"k > valid, penalties", 5000, FP4RT_TOPK_MAX, 1, 2, 1, 0, 1.3f, 0},
        {"ties after /0.7", 2048, 64, 3, 0, 0, 0, 0.7f, 0},
        {"ties after /0.7 k=256", 70001, FP4RT_TOPK_MAX, 3, 1, 1, 0, 0.7f, 5},
        {"overflow", 3000, 50, 4, 0, 1, 0, 0.3f, 0},
        {"subnormal quotients", 3000, 50, 4, 1, 1, 0, 3e7f, 0},
        {"vocab k=20", MAX_N, 20, 1, 1, 1, 0, 0.7f, 0},
        {"vocab k=256", MAX_N, FP4RT_TOPK_MAX, 1, 1, 1, 0, 0.6f, 7},
        {"vocab ties", MAX_N, 100, 0, 1, 0, 0, 1.0f, 0},
        {"greedy + penalties", 70001, 1, 1, 1, 1, 1, 1.0f, 0},
        {"greedy + penalties ties", 5000, 1, 0, 0, 1, 1, 1.0f, 0},
    };
    float *l = malloc((size_t)MAX_N * 4), *tmp = malloc((size_t)MAX_N * 4);
    uint8_t *valid = malloc(MAX_N);
    int32_t seen[200], out[300];
    uint64_t x = 777;
    if (!l || !tmp || !valid) {
        CHECK_MSG(0, "out of memory");
        goto done;
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const row_case *c = &cases[ci];
        fill(c, l, valid, &x);
        int n_seen = 0, n_out = 0;
        if (c->penalties) {
            n_seen = 200;
            n_out = 300;
            for (int i = 0; i < n_seen; i++) seen[i] = (int32_t)(rng_next(&x) % (uint64_t)c->n);
            for (int i = 0; i < n_out; i++) out[i] = (int32_t)(rng_next(&x) % 150 ? seen[rng_next(&x) % 200] : 0);
        }
        fp4rt_sampling_resolved sp = {.greedy = c->greedy, .temperature = c->temperature, .top_k = c->k,
                                      .top_p = 0.9f, .min_p = 0.01f, .repetition_penalty = 1,
                                      .seed = 1000 + ci};
        if (c->penalties) {
            sp.repetition_penalty = 1.3f;
            sp.presence_penalty = 1.5f;
            sp.frequency_penalty = 0.25f;
        }
        const uint8_t *vm = c->masked ? valid : NULL;
        fp4rt_sampler a, b;
        fp4rt_status st = make_sampler(&a, &sp, c->n, vm, seen, n_seen, out, n_out);
        if (st) break;
        st = make_sampler(&b, &sp, c->n, vm, seen, n_seen, out, n_out);
        if (st) {
            fp4rt_sampler_free(&a);
            break;
        }
        fp4rt_topk_request req;
        CHECK_MSG(fp4rt_sampler_topk_request(&a, &req), "%s: no device request", c->what);
        float dv[FP4RT_TOPK_MAX], rv[FP4RT_TOPK_MAX];
        int32_t di[FP4RT_TOPK_MAX], ri[FP4RT_TOPK_MAX];
        st = d->be->buffer_upload(d->ctx, d->buf, c->off * 4, l, (size_t)c->n * 4);
        if (!st) st = d->be->top_k(d->ctx, d->buf, c->off, c->n, &req, dv, di);
        CHECK_MSG(st == FP4RT_OK, "%s: top_k: %s", c->what, fp4rt_last_error());
        memcpy(tmp, l, (size_t)c->n * 4);
        if (!st && c->greedy) {
            int32_t cpu = fp4rt_sampler_sample(&a, tmp);
            CHECK_MSG(di[0] == cpu, "%s: device %d, CPU greedy %d", c->what, di[0], cpu);
        } else if (!st) {
            int k = fp4rt_sampler_top_k(&a, tmp, rv, ri);
            CHECK_EQ_INT(k, c->k);
            int bad = -1;
            for (int i = 0; i < k && bad < 0; i++)
                if (di[i] != ri[i] || memcmp(&dv[i], &rv[i], 4)) bad = i;
            CHECK_MSG(bad < 0, "%s: candidate %d: device (%d, %a), CPU (%d, %a)", c->what, bad, bad < 0 ? 0 : di[bad],
                      bad < 0 ? 0.0 : (double)dv[bad], bad < 0 ? 0 : ri[bad], bad < 0 ? 0.0 : (double)rv[bad]);
            /* the same draw: full logits on sampler b, device candidates on sampler a (fresh RNG) */
            fp4rt_sampler_free(&a);
            st = make_sampler(&a, &sp, c->n, vm, seen, n_seen, out, n_out);
            memcpy(tmp, l, (size_t)c->n * 4);
            if (!st) {
                for (int r = 0; r < 3; r++) {
                    int32_t full = fp4rt_sampler_sample(&b, tmp), dev_tok = fp4rt_sampler_sample_topk(&a, dv, di, c->k);
                    CHECK_MSG(full == dev_tok, "%s: draw %d: full logits %d, device candidates %d", c->what, r, full,
                              dev_tok);
                    memcpy(tmp, l, (size_t)c->n * 4);
                }
            }
        }
        printf("top_k %-26s n=%6d k=%3d: %s\n", c->what, c->n, c->k, test_failed_ ? "FAILED so far" : "ok");
        fp4rt_sampler_free(&a);
        fp4rt_sampler_free(&b);
        if (st) break;
        /* a NaN among valid ids: ids[0] = -1; in a masked id: no effect */
        if (ci == 2 || ci == 10) {
            req.pen = NULL; /* it pointed into the freed sampler */
            req.n_pen = 0;
            int i = c->n / 3;
            while (c->masked && !valid[i]) i++;
            float keep = l[i];
            l[i] = NAN;
            st = d->be->buffer_upload(d->ctx, d->buf, c->off * 4, l, (size_t)c->n * 4);
            di[0] = 5;
            if (!st) st = d->be->top_k(d->ctx, d->buf, c->off, c->n, &req, dv, di);
            CHECK_MSG(st == FP4RT_OK && di[0] == -1, "%s with a NaN: status %d, ids[0] %d", c->what, (int)st, di[0]);
            l[i] = keep;
            if (c->masked) {
                for (i = 0; valid[i]; i++) {
                }
                l[i] = NAN;
                st = d->be->buffer_upload(d->ctx, d->buf, c->off * 4, l, (size_t)c->n * 4);
                if (!st) st = d->be->top_k(d->ctx, d->buf, c->off, c->n, &req, dv, di);
                CHECK_MSG(st == FP4RT_OK && di[0] >= 0, "%s with a NaN in masked id %d: status %d, ids[0] %d", c->what,
                          i, (int)st, di[0]);
                l[i] = keep;
            }
        }
    }
    /* requests outside the contract */
    fp4rt_topk_request bad = {.k = FP4RT_TOPK_MAX + 1, .temperature = 1, .repetition_penalty = 1};
    float v[FP4RT_TOPK_MAX + 1];
    int32_t ids[FP4RT_TOPK_MAX + 1];
    CHECK_EQ_INT(d->be->top_k(d->ctx, d->buf, 0, 1000, &bad, v, ids), FP4RT_UNSUPPORTED);
    bad.k = 0;
    CHECK_EQ_INT(d->be->top_k(d->ctx, d->buf, 0, 1000, &bad, v, ids), FP4RT_UNSUPPORTED);
    bad.k = 5;
    bad.temperature = 0;
    CHECK_EQ_INT(d->be->top_k(d->ctx, d->buf, 0, 1000, &bad, v, ids), FP4RT_UNSUPPORTED);
    bad.temperature = 1;
    fp4rt_topk_penalty unsorted[2] = {{5, 1}, {3, 1}};
    bad.pen = unsorted;
    bad.n_pen = 2;
    CHECK_EQ_INT(d->be->top_k(d->ctx, d->buf, 0, 1000, &bad, v, ids), FP4RT_INVALID_ARGUMENT);
done:
    free(l);
    free(tmp);
    free(valid);
}

/* argmax against the greedy sampler on crafted rows. */
static void test_argmax(const dev *d) {
    const int sizes[] = {1, 65, 4099, 70001, MAX_N};
    float *l = malloc((size_t)MAX_N * 4);
    uint8_t *valid = malloc(MAX_N);
    uint64_t x = 99;
    int bad = 0;
    for (size_t s = 0; l && valid && s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int t = 0; t < 6; t++) {
            row_case c = {"argmax", sizes[s], 1, t % 3, t % 2, 0, 1, 1.0f, (size_t)(t & 1) * 16};
            fill(&c, l, valid, &x);
            if (t == 5 && c.n > 3) valid[0] = valid[1] = 0;
            int32_t dev_id = -2;
            fp4rt_status st = d->be->buffer_upload(d->ctx, d->buf, c.off * 4, l, (size_t)c.n * 4);
            if (!st) st = d->be->argmax(d->ctx, d->buf, c.off, c.n, c.masked ? valid : NULL, &dev_id);
            fp4rt_sampling_resolved sp = {.greedy = 1, .temperature = 1, .top_p = 1, .repetition_penalty = 1};
            fp4rt_sampler smp;
            if (!st) st = fp4rt_sampler_init(&smp, &sp, c.n, c.masked ? valid : NULL);
            CHECK_MSG(st == FP4RT_OK, "argmax n=%d: %s", c.n, fp4rt_last_error());
            if (st) continue;
            int32_t cpu = fp4rt_sampler_sample(&smp, l);
            fp4rt_sampler_free(&smp);
            if (dev_id != cpu && bad++ < 5) CHECK_MSG(0, "argmax n=%d trial %d: device %d, CPU %d", c.n, t, dev_id, cpu);
        }
    }
    CHECK_MSG(bad == 0, "%d device argmax picks differ", bad);
    printf("argmax: %d differ from the CPU sampler\n", bad);
    free(l);
    free(valid);
}

#define GEN 16

/* Tokens of fp4rt_generate (host = 0) or of the same loop sampling downloaded
 * logits on the host (host = 1). */
static int generate(fp4rt_model *m, const fp4rt_generate_params *gp, const int32_t *prompt, int n, int host,
                    int32_t *ids) {
    fp4rt_session_params spp = fp4rt_session_default_params();
    spp.n_ctx = 64;
    spp.prefill_chunk = 16;
    spp.exact = 1; /* the devices' tokens compared with the CPU's */
    fp4rt_session *s = fp4rt_session_create(m, &spp);
    if (!s) return 0;
    fp4rt_status st = FP4RT_OK;
    if (!host) {
        fp4rt_generate_params p = *gp;
        p.output_ids = ids;
        p.output_cap = GEN;
        fp4rt_generate_result r;
        st = fp4rt_generate(s, prompt, (size_t)n, &p, NULL, NULL, &r);
        if (!st && r.n_generated != GEN) st = FP4RT_INTERNAL;
    } else {
        fp4rt_sampling_resolved sp;
        fp4rt_sampling_resolve(&gp->sampling, &m->gen, &sp);
        fp4rt_sampler smp;
        st = fp4rt_sampler_init(&smp, &sp, fp4rt_model_n_vocab(m), m->valid_ids);
        if (st) goto out;
        for (int i = 0; i < n; i++) fp4rt_sampler_accept(&smp, prompt[i], 0);
        st = fp4rt_session_eval(s, prompt, n, s->last_logits, 0);
        for (int i = 0; !st && i < GEN; i++) {
            ids[i] = fp4rt_sampler_sample(&smp, s->last_logits);
            fp4rt_sampler_accept(&smp, ids[i], 1);
            if (i + 1 < GEN) st = fp4rt_session_eval(s, &ids[i], 1, s->last_logits, 0);
        }
        fp4rt_sampler_free(&smp);
    }
out:
    CHECK_MSG(st == FP4RT_OK, "generate (host %d): %s", host, fp4rt_last_error());
    fp4rt_session_free(s);
    return st == FP4RT_OK;
}

static void test_generate(const char *dir, const char *device) {
    static const int32_t prompt[] = {11, 200, 37, 5, 480, 91, 3, 64};
    fp4rt_model *cpu = test_load_model(dir, "cpu"), *m = test_load_model(dir, device);
    if (m) CHECK_MSG(m->backend->top_k != NULL, "%s has no device top-k", device);
    for (int seed = 1; cpu && m && seed <= 3; seed++) {
        fp4rt_generate_params gp = fp4rt_generate_default_params();
        gp.sampling.greedy = -1;
        gp.sampling.top_k = 20;
        gp.sampling.top_p = 0.95f;
        gp.sampling.temperature = 0.7f;
        gp.sampling.presence_penalty = 1.5f;
        gp.sampling.seed = (uint64_t)seed;
        gp.max_tokens = GEN;
        gp.ignore_eos = 1;
        int32_t dev_ids[GEN], host_ids[GEN], cpu_ids[GEN];
        if (!generate(m, &gp, prompt, 8, 0, dev_ids) || !generate(m, &gp, prompt, 8, 1, host_ids) ||
            !generate(cpu, &gp, prompt, 8, 0, cpu_ids))
            break;
        CHECK_MSG(!memcmp(dev_ids, host_ids, sizeof dev_ids), "seed %d: device candidates and host sampling differ",
                  seed);
        CHECK_MSG(!memcmp(dev_ids, cpu_ids, sizeof dev_ids), "seed %d: %s and cpu tokens differ", seed, device);
        printf("generate seed %d:", seed);
        for (int i = 0; i < GEN; i++) printf(" %d", dev_ids[i]);
        printf("\n");
    }
    fp4rt_model_free(m);
    fp4rt_model_free(cpu);
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "vulkan";
    dev d = {0};
    char device[32];
    fp4rt_device_ref ref;
    fp4rt_device_desc desc;
    if (!test_pick_device(kind, NULL, device, sizeof device, &ref, &desc)) return 77;
    printf("device %s: %s\n", device, desc.description);
    int cuda = ref.reg->kind == FP4RT_DEVICE_CUDA;
    if (ref.reg->create(ref.index, 0, &d.be, &d.ctx)) {
        CHECK_MSG(0, "%s backend: %s", device, fp4rt_last_error());
        return test_summary("test_device_sample");
    }
    CHECK_MSG(d.be->top_k && d.be->argmax, "%s lacks the top_k or argmax slot", device);
    if (d.be->top_k && d.be->argmax && !d.be->buffer_alloc(d.ctx, ((size_t)MAX_N + 64) * 4, "logits", &d.buf)) {
        test_rows(&d);
        test_argmax(&d);
        d.be->buffer_free(d.ctx, d.buf);
    }
    d.be->destroy(d.ctx);
    test_generate("tests/fixtures/tiny-w4a4", device);
    long msgs = fp4rt_registry_message_count();
    CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    return test_summary(cuda ? "test_device_sample_cuda" : "test_device_sample_vulkan");
}
