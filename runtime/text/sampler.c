#include "runtime/text/sampler.h"

#include "runtime/base/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

fp4rt_status fp4rt_sampling_check(const fp4rt_sampling_params *p) {
    const char *f = "fp4rt_sampling_params";
    if (p->greedy < -1 || p->greedy > 1)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.greedy = %d: expected -1, 0 or 1", f, p->greedy);
    if (!(p->temperature >= 0) || isinf(p->temperature))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.temperature = %g: expected 0 (default) or a finite value > 0",
                          f, p->temperature);
    if (p->top_k < -1)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.top_k = %d: expected -1 (off), 0 (default) or > 0", f, p->top_k);
    if (!(p->top_p >= 0 && p->top_p <= 1))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.top_p = %g: expected 0 (default) or in (0, 1]", f, p->top_p);
    if (!(p->min_p == -1 || (p->min_p >= 0 && p->min_p <= 1)))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.min_p = %g: expected -1 (off), 0 (default) or in (0, 1]", f,
                          p->min_p);
    if (!(p->repetition_penalty >= 0) || isinf(p->repetition_penalty))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "%s.repetition_penalty = %g: expected 0 (default) or a finite value > 0", f,
                          p->repetition_penalty);
    if (!isfinite(p->presence_penalty))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.presence_penalty = %g: expected a finite value", f,
                          p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s.frequency_penalty = %g: expected a finite value", f,
                          p->frequency_penalty);
    return FP4RT_OK;
}

void fp4rt_sampling_resolve(const fp4rt_sampling_params *p, const fp4rt_gen_config *g,
                            fp4rt_sampling_resolved *r) {
    memset(r, 0, sizeof *r);
    r->temperature = p->temperature > 0 ? p->temperature : g->temperature;
    r->greedy = p->greedy > 0 || (p->greedy == 0 && g->present && !g->do_sample) || r->temperature <= 0;
    r->top_k = p->top_k > 0 ? p->top_k : p->top_k < 0 ? 0 : g->top_k;
    r->top_p = p->top_p > 0 ? p->top_p : g->top_p;
    if (r->top_p <= 0 || r->top_p > 1) r->top_p = 1;
    r->min_p = p->min_p > 0 ? p->min_p : p->min_p < 0 ? 0 : g->min_p;
    r->repetition_penalty = p->repetition_penalty > 0 ? p->repetition_penalty : g->repetition_penalty;
    if (r->repetition_penalty <= 0) r->repetition_penalty = 1;
    r->presence_penalty = p->presence_penalty != 0 ? p->presence_penalty : g->presence_penalty;
    r->frequency_penalty = p->frequency_penalty;
    r->seed = p->seed;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) { /* xoshiro256** */
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

fp4rt_status fp4rt_sampler_init(fp4rt_sampler *s, const fp4rt_sampling_resolved *p, int n_vocab,
                                const uint8_t *valid) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->n_vocab = n_vocab;
    s->valid = valid;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->seen = fp4rt_calloc((size_t)n_vocab, 1, "sampler");
    s->count = fp4rt_calloc((size_t)n_vocab, sizeof(int), "sampler");
    s->idx = fp4rt_malloc((size_t)n_vocab * sizeof(int), "sampler");
    s->prob = fp4rt_malloc((size_t)n_vocab * sizeof(float), "sampler");
    s->pen = fp4rt_malloc((size_t)n_vocab * sizeof *s->pen, "sampler");
    if (!s->seen || !s->count || !s->idx || !s->prob || !s->pen) {
        fp4rt_sampler_free(s);
        return FP4RT_OUT_OF_MEMORY;
    }
    return FP4RT_OK;
}

void fp4rt_sampler_free(fp4rt_sampler *s) {
    free(s->seen);
    free(s->count);
    free(s->idx);
    free(s->prob);
    free(s->pen);
    memset(s, 0, sizeof *s);
}

void fp4rt_sampler_accept(fp4rt_sampler *s, int32_t id, int output) {
    if (id < 0 || id >= s->n_vocab) return;
    s->seen[id] = 1;
    if (output) s->count[id]++;
}

/* Order: higher logit first, then lower id. */
static const float *g_sort_logits;
static int by_logit(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = g_sort_logits[i], y = g_sort_logits[j];
    if (x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

static int better(const float *l, int i, int j) { return l[i] > l[j] || (l[i] == l[j] && i < j); }

/* The k best ids of logits[0, n) into idx[0, k), best first (k <= n). */
static void top_k_ids(const float *l, int n, int k, int *idx) {
    /* a min-heap of the k best so far (root = worst) */
    int size = 0;
    for (int i = 0; i < n; i++) {
        if (size < k) {
            int c = size++;
            idx[c] = i;
            while (c > 0 && better(l, idx[(c - 1) / 2], idx[c])) {
                int p = (c - 1) / 2, t = idx[p];
                idx[p] = idx[c], idx[c] = t, c = p;
            }
        } else if (better(l, i, idx[0])) {
            idx[0] = i;
            int c = 0;
            for (;;) {
                int a = 2 * c + 1, b = a + 1, w = c;
                if (a < size && better(l, idx[w], idx[a])) w = a;
                if (b < size && better(l, idx[w], idx[b])) w = b;
                if (w == c) break;
                int t = idx[w];
                idx[w] = idx[c], idx[c] = t, c = w;
            }
        }
    }
    g_sort_logits = l;
    qsort(idx, (size_t)size, sizeof(int), by_logit);
}

/* The weights of candidates idx[0, m) with values prob[0, m) (best first when
 * top_p < 1; m >= 1): probabilities relative to the largest value, top-p,
 * min-p; returns the candidates kept (idx, prob [0, result)) and their total.
 * draw() then makes one draw of the RNG. Shared by the full-logits path, the
 * device top-k path and fp4rt_sampler_probs, so the same candidates give the
 * same token and the same distribution. */
static int weigh(fp4rt_sampler *s, int m, double *total) {
    const fp4rt_sampling_resolved *p = &s->p;
    float mx = -INFINITY;
    for (int i = 0; i < m; i++) mx = fmaxf(mx, s->prob[i]);
    double sum = 0;
    for (int i = 0; i < m; i++) sum += s->prob[i] = expf(s->prob[i] - mx);
    if (p->top_p < 1.0f) { /* smallest prefix whose mass reaches top_p (candidates are sorted) */
        double acc = 0, target = p->top_p * sum;
        int k = 0;
        while (k < m && (k == 0 || acc < target)) acc += s->prob[k++];
        m = k;
        sum = acc;
    }
    if (p->min_p > 0) { /* drop p < min_p * p_max (HF order: after top-p); the max has exp(0) = 1 */
        int k = 0;
        double kept = 0;
        for (int i = 0; i < m; i++)
            if (s->prob[i] >= p->min_p) {
                s->idx[k] = s->idx[i];
                kept += s->prob[k++] = s->prob[i];
            }
        if (k > 0) { /* none kept: the probabilities are NaN (+inf values); keep them all */
            m = k;
            sum = kept;
        }
    }
    *total = sum;
    return m;
}

static int32_t draw(fp4rt_sampler *s, int m) {
    double sum;
    m = weigh(s, m, &sum);
    double u = next_unit(s->rng) * sum, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += s->prob[i];
        if (u < acc) return s->idx[i];
    }
    return s->idx[m - 1];
}

/* Masking and penalties, in place, in the order the device top-k contract
 * (backend.h top_k) repeats. */
static void penalize(const fp4rt_sampler *s, float *l) {
    const fp4rt_sampling_resolved *p = &s->p;
    int n = s->n_vocab;
    if (s->valid)
        for (int i = 0; i < n; i++)
            if (!s->valid[i]) l[i] = -INFINITY;
    if (p->repetition_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0)
        for (int i = 0; i < n; i++) {
            if (s->seen[i] && p->repetition_penalty != 1.0f)
                l[i] = l[i] > 0 ? l[i] / p->repetition_penalty : l[i] * p->repetition_penalty;
            if (s->count[i]) l[i] -= p->presence_penalty + p->frequency_penalty * (float)s->count[i];
        }
}

/* Non-greedy candidates of penalized logits l (divided by the temperature in
 * place) into idx, prob (their values); returns how many. Best first when a
 * filter needs the order; top-k includes -inf ids when fewer than k are
 * valid, otherwise only valid ids are candidates. */
static int candidates(fp4rt_sampler *s, float *l) {
    const fp4rt_sampling_resolved *p = &s->p;
    int n = s->n_vocab, m;
    for (int i = 0; i < n; i++) l[i] /= p->temperature;
    if (p->top_k > 0 && p->top_k < n) {
        m = p->top_k;
        top_k_ids(l, n, m, s->idx);
    } else {
        m = 0;
        for (int i = 0; i < n; i++)
            if (!s->valid || s->valid[i]) s->idx[m++] = i;
        if (p->top_p < 1.0f) {
            g_sort_logits = l;
            qsort(s->idx, (size_t)m, sizeof(int), by_logit);
        }
    }
    for (int i = 0; i < m; i++) s->prob[i] = l[s->idx[i]];
    return m;
}

int32_t fp4rt_sampler_sample(fp4rt_sampler *s, float *l) {
    penalize(s, l);
    if (s->p.greedy) {
        int best = 0;
        for (int i = 1; i < s->n_vocab; i++)
            if (l[i] > l[best]) best = i;
        return best;
    }
    return draw(s, candidates(s, l));
}

int fp4rt_sampler_top_k(fp4rt_sampler *s, float *l, float *vals, int32_t *ids) {
    if (s->p.greedy || s->p.top_k < 1 || s->p.top_k >= s->n_vocab) return 0;
    penalize(s, l);
    int m = candidates(s, l);
    for (int i = 0; i < m; i++) {
        vals[i] = s->prob[i];
        ids[i] = s->idx[i];
    }
    return m;
}

static int normal_positive(float x) { return isnormal(x) && x > 0; }

int fp4rt_sampler_topk_request(fp4rt_sampler *s, fp4rt_topk_request *req) {
    const fp4rt_sampling_resolved *p = &s->p;
    memset(req, 0, sizeof *req);
    int penalties = p->repetition_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0;
    if (p->greedy) {
        req->k = 1; /* the strict-greater scan over x is the top-1 of x / 1 */
        req->temperature = 1.0f;
    } else {
        if (p->top_k < 1 || p->top_k > FP4RT_TOPK_MAX || p->top_k >= s->n_vocab ||
            !normal_positive(p->temperature))
            return 0;
        req->k = p->top_k;
        req->temperature = p->temperature;
    }
    req->valid = s->valid;
    req->repetition_penalty = p->repetition_penalty;
    req->presence_penalty = p->presence_penalty;
    req->frequency_penalty = p->frequency_penalty;
    if (penalties) {
        if (!normal_positive(p->repetition_penalty)) return 0;
        int n = 0;
        for (int i = 0; i < s->n_vocab; i++)
            if (s->seen[i]) s->pen[n++] = (fp4rt_topk_penalty){i, s->count[i]};
        req->pen = n ? s->pen : NULL;
        req->n_pen = n;
    }
    return 1;
}

int32_t fp4rt_sampler_sample_topk(fp4rt_sampler *s, const float *vals, const int32_t *ids, int k) {
    if (s->p.greedy) return ids[0];
    for (int i = 0; i < k; i++) {
        s->idx[i] = ids[i];
        s->prob[i] = vals[i];
    }
    return draw(s, k);
}

void fp4rt_sampler_probs(fp4rt_sampler *s, float *l, float *probs) {
    memset(probs, 0, (size_t)s->n_vocab * sizeof *probs);
    penalize(s, l);
    if (s->p.greedy) {
        int best = 0;
        for (int i = 1; i < s->n_vocab; i++)
            if (l[i] > l[best]) best = i;
        probs[best] = 1;
        return;
    }
    double sum;
    int m = weigh(s, candidates(s, l), &sum);
    for (int i = 0; i < m; i++) probs[s->idx[i]] = (float)(s->prob[i] / sum);
}

double fp4rt_sampler_uniform(fp4rt_sampler *s) { return next_unit(s->rng); }

int32_t fp4rt_sampler_draw_weights(fp4rt_sampler *s, const float *w) {
    double sum = 0;
    int32_t last = -1;
    for (int i = 0; i < s->n_vocab; i++)
        if (w[i] > 0) {
            sum += w[i];
            last = i;
        }
    if (last < 0) return -1;
    double u = next_unit(s->rng) * sum, acc = 0;
    for (int i = 0; i <= last; i++) {
        if (!(w[i] > 0)) continue;
        acc += w[i];
        if (u < acc) return i;
    }
    return last;
}

void fp4rt_sampler_copy_history(fp4rt_sampler *dst, const fp4rt_sampler *src) {
    memcpy(dst->seen, src->seen, (size_t)src->n_vocab);
    memcpy(dst->count, src->count, (size_t)src->n_vocab * sizeof *dst->count);
}
