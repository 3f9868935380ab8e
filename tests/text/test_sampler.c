/* Sampler unit tests on fixed logits: greedy, determinism per seed, the
 * empirical distribution at temperature 1 against softmax, top-k / top-p /
 * min-p never picking excluded tokens, penalties, padding rows never sampled;
 * fp4rt_sampler_probs (speculative sampling) against the draws'
 * frequencies under every filter and penalty, and fp4rt_sampler_draw_weights. */
#include "tests/test_util.h"

#include "runtime/text/sampler.h"

#include <stdint.h>

#define V 8

static fp4rt_sampling_resolved params(void) {
    fp4rt_sampling_resolved p = {0};
    p.temperature = 1;
    p.top_p = 1;
    p.repetition_penalty = 1;
    return p;
}

static const float k_logits[V] = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 3.0f, 2.9f, -2.0f};

static int draw(fp4rt_sampler *s) {
    float l[V];
    memcpy(l, k_logits, sizeof l);
    return fp4rt_sampler_sample(s, l);
}

static void test_greedy_and_seed(void) {
    fp4rt_sampling_resolved p = params();
    p.greedy = 1;
    fp4rt_sampler s;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    CHECK_EQ_INT(draw(&s), 5);
    fp4rt_sampler_free(&s);
    /* same seed -> same sequence; another seed -> another sequence */
    int a[64], b[64], c[64], same = 1, differ = 0;
    p = params();
    for (int run = 0; run < 3; run++) {
        p.seed = run == 2 ? 8 : 7;
        CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
        for (int i = 0; i < 64; i++) (run == 0 ? a : run == 1 ? b : c)[i] = draw(&s);
        fp4rt_sampler_free(&s);
    }
    for (int i = 0; i < 64; i++) same &= a[i] == b[i], differ |= a[i] != c[i];
    CHECK(same && differ);
}

static void test_distribution(void) {
    fp4rt_sampling_resolved p = params();
    p.seed = 1;
    fp4rt_sampler s;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    int count[V] = {0}, N = 200000;
    for (int i = 0; i < N; i++) count[draw(&s)]++;
    fp4rt_sampler_free(&s);
    double z = 0, worst = 0;
    for (int i = 0; i < V; i++) z += exp(k_logits[i]);
    for (int i = 0; i < V; i++) {
        double pi = exp(k_logits[i]) / z, sd = sqrt(N * pi * (1 - pi));
        double dev = fabs(count[i] - N * pi) / sd;
        if (dev > worst) worst = dev;
    }
    CHECK_MSG(worst < 5, "empirical frequencies off by %.1f standard deviations", worst);
}

static void test_filters(void) {
    fp4rt_sampling_resolved p = params();
    fp4rt_sampler s;
    int seen[V] = {0};
    /* top-k 2: only ids 5 and 6 */
    p.top_k = 2;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    for (int i = 0; i < 2000; i++) seen[draw(&s)]++;
    fp4rt_sampler_free(&s);
    CHECK(seen[5] && seen[6] && seen[5] + seen[6] == 2000);
    /* top-p 0.5: probabilities are 5: .41, 6: .37, 0: .15 ... -> {5, 6} */
    memset(seen, 0, sizeof seen);
    p = params();
    p.top_p = 0.5f;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    for (int i = 0; i < 2000; i++) seen[draw(&s)]++;
    fp4rt_sampler_free(&s);
    CHECK_MSG(seen[5] + seen[6] == 2000 && seen[6] > 0, "top-p kept %d + %d", seen[5], seen[6]);
    /* min-p 0.3: p >= 0.3 * p_max -> exp(l - 3) >= .3 -> l >= 1.8: ids 5, 6, 0 */
    memset(seen, 0, sizeof seen);
    p = params();
    p.min_p = 0.3f;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    for (int i = 0; i < 4000; i++) seen[draw(&s)]++;
    fp4rt_sampler_free(&s);
    CHECK(seen[0] && seen[5] && seen[6] && seen[0] + seen[5] + seen[6] == 4000);
    /* ids without a token (padding rows, holes) are never chosen, even as the argmax */
    static const uint8_t valid[V] = {1, 1, 1, 1, 1, 0, 0, 1};
    p = params();
    p.greedy = 1;
    CHECK(!fp4rt_sampler_init(&s, &p, V, valid));
    CHECK_EQ_INT(draw(&s), 0);
    fp4rt_sampler_free(&s);
    memset(seen, 0, sizeof seen);
    p = params();
    CHECK(!fp4rt_sampler_init(&s, &p, V, valid));
    for (int i = 0; i < 2000; i++) seen[draw(&s)]++;
    fp4rt_sampler_free(&s);
    CHECK(seen[5] == 0 && seen[6] == 0 && seen[0] > 0);
}

static void test_penalties(void) {
    fp4rt_sampling_resolved p = params();
    p.greedy = 1;
    p.repetition_penalty = 2.0f; /* 3.0 -> 1.5 for a seen positive logit */
    fp4rt_sampler s;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    fp4rt_sampler_accept(&s, 5, 0);
    CHECK_EQ_INT(draw(&s), 6);
    fp4rt_sampler_free(&s);
    /* presence alone: 3 - .05 = 2.95 stays above 2.9 */
    p = params();
    p.greedy = 1;
    p.presence_penalty = 0.05f;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    fp4rt_sampler_accept(&s, 5, 1);
    CHECK_EQ_INT(draw(&s), 5);
    fp4rt_sampler_free(&s);
    /* with frequency .1 per occurrence: 3 - .05 - .1 = 2.85 < 2.9 */
    p.frequency_penalty = 0.1f;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    fp4rt_sampler_accept(&s, 5, 1);
    CHECK_EQ_INT(draw(&s), 6);
    /* prompt tokens do not count for presence / frequency */
    fp4rt_sampler_free(&s);
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    fp4rt_sampler_accept(&s, 5, 0);
    CHECK_EQ_INT(draw(&s), 5);
    fp4rt_sampler_free(&s);
}

/* fp4rt_sampler_probs is the distribution fp4rt_sampler_sample draws from:
 * sums to 1, 0 outside the filters, the draws' frequencies within 5 standard
 * deviations; greedy: one-hot at the pick. */
static void test_probs(void) {
    fp4rt_sampling_resolved p = params();
    p.temperature = 0.8f;
    p.top_k = 6;
    p.top_p = 0.9f;
    p.min_p = 0.05f;
    p.repetition_penalty = 1.3f;
    p.presence_penalty = 0.2f;
    p.frequency_penalty = 0.1f;
    p.seed = 3;
    uint8_t valid[V] = {1, 1, 1, 1, 1, 1, 0, 1}; /* id 6 (the second best) is padding */
    fp4rt_sampler s;
    CHECK(!fp4rt_sampler_init(&s, &p, V, valid));
    fp4rt_sampler_accept(&s, 5, 1);
    fp4rt_sampler_accept(&s, 0, 0);
    float l[V], pr[V];
    memcpy(l, k_logits, sizeof l);
    fp4rt_sampler_probs(&s, l, pr);
    double sum = 0;
    for (int i = 0; i < V; i++) sum += pr[i];
    CHECK(fabs(sum - 1) < 1e-6);
    CHECK(pr[6] == 0 && pr[7] == 0 && pr[4] == 0); /* padding; below min-p / outside top-p */
    int count[V] = {0}, N = 100000, nz = 0;
    for (int i = 0; i < N; i++) count[draw(&s)]++;
    double worst = 0;
    for (int i = 0; i < V; i++) {
        nz += pr[i] > 0;
        if (pr[i] == 0) {
            CHECK_EQ_INT(count[i], 0);
            continue;
        }
        double dev = fabs(count[i] - N * pr[i]) / sqrt(N * pr[i] * (1 - pr[i]) + 1e-9);
        if (dev > worst) worst = dev;
    }
    CHECK_MSG(nz >= 2 && worst < 5, "%d candidates; probs vs draws off by %.1f standard deviations", nz, worst);
    /* draw_weights: proportional, never a zero weight; -1 without any */
    float w[V] = {0, 1, 0, 3, 0, 0, 0, 0};
    int c1 = 0, c3 = 0, other = 0;
    for (int i = 0; i < 40000; i++) {
        int32_t id = fp4rt_sampler_draw_weights(&s, w);
        c1 += id == 1, c3 += id == 3, other += id != 1 && id != 3;
    }
    CHECK(other == 0 && c1 + c3 == 40000 && fabs(c3 / 40000.0 - 0.75) < 0.02);
    memset(w, 0, sizeof w);
    CHECK_EQ_INT(fp4rt_sampler_draw_weights(&s, w), -1);
    fp4rt_sampler_free(&s);
    p.greedy = 1;
    CHECK(!fp4rt_sampler_init(&s, &p, V, NULL));
    memcpy(l, k_logits, sizeof l);
    fp4rt_sampler_probs(&s, l, pr);
    CHECK(pr[5] == 1 && pr[6] == 0 && pr[0] == 0);
    fp4rt_sampler_free(&s);
}

int main(void) {
    test_greedy_and_seed();
    test_distribution();
    test_filters();
    test_penalties();
    test_probs();
    return test_summary("sampler");
}
