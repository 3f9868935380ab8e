/* Token sampling: penalties, greedy / temperature, top-k, top-p, min-p, with a
 * seeded PRNG (xoshiro256**). Deterministic: ties order by token id, and the
 * same seed and logits give the same token on every machine. */
#ifndef FP4RT_SAMPLER_H
#define FP4RT_SAMPLER_H

#include "fp4rt.h"

#include "loader/gen_config.h"
#include "runtime/backend/backend.h"

/* Parameters with every default resolved. */
typedef struct fp4rt_sampling_resolved {
    int greedy;
    float temperature;
    int top_k;       /* 0 = off */
    float top_p;     /* 1 = off */
    float min_p;     /* 0 = off */
    float repetition_penalty; /* 1 = off */
    float presence_penalty, frequency_penalty;
    uint64_t seed;
} fp4rt_sampling_resolved;

/* INVALID_ARGUMENT naming the field when a value is outside what fp4rt.h documents
 * (NaN included): temperature < 0 or infinite, top_p outside [0, 1], min_p outside
 * [0, 1] and not -1, repetition_penalty < 0, top_k < -1, greedy not -1 / 0 / 1,
 * penalties not finite. Zero (default) is always accepted. */
fp4rt_status fp4rt_sampling_check(const fp4rt_sampling_params *p);
void fp4rt_sampling_resolve(const fp4rt_sampling_params *p, const fp4rt_gen_config *g,
                            fp4rt_sampling_resolved *out);

typedef struct fp4rt_sampler {
    fp4rt_sampling_resolved p;
    int n_vocab;      /* logits length */
    const uint8_t *valid; /* [n_vocab] 0: id has no token (padding rows, holes): never sampled; NULL: all valid */
    uint64_t rng[4];
    uint8_t *seen;    /* [n_vocab] in prompt or output (repetition penalty) */
    int *count;       /* [n_vocab] occurrences in the output (presence / frequency) */
    int *idx;         /* [n_vocab] candidate ids */
    float *prob;      /* [n_vocab] candidate probabilities */
    fp4rt_topk_penalty *pen; /* [n_vocab] the penalty list of a device top-k request */
} fp4rt_sampler;

fp4rt_status fp4rt_sampler_init(fp4rt_sampler *s, const fp4rt_sampling_resolved *p, int n_vocab,
                                const uint8_t *valid);
void fp4rt_sampler_free(fp4rt_sampler *s);
/* Records a token of the prompt (output = 0) or of the output (output = 1). */
void fp4rt_sampler_accept(fp4rt_sampler *s, int32_t id, int output);
/* Picks the next token; logits [n_vocab] are modified in place. */
int32_t fp4rt_sampler_sample(fp4rt_sampler *s, float *logits);

/* Device sampling (backend.h top_k): fills *req for the next pick (the penalty
 * list points into s, valid until the next accept) and returns 1, or returns 0
 * when the device cannot give the candidates fp4rt_sampler_sample would use
 * (top_k off or above FP4RT_TOPK_MAX or >= n_vocab, temperature or repetition
 * penalty not a positive normal float). Greedy picks ask for k = 1 at
 * temperature 1 (the same pick as the greedy scan). */
int fp4rt_sampler_topk_request(fp4rt_sampler *s, fp4rt_topk_request *req);
/* The reference for device top-k: the top_k candidates fp4rt_sampler_sample
 * would draw from (values after penalties and temperature, best first) into
 * vals, ids [top_k]; returns top_k, or 0 (nothing written) when greedy or
 * top_k is off or >= n_vocab. logits are modified in place; no RNG use. */
int fp4rt_sampler_top_k(fp4rt_sampler *s, float *logits, float *vals, int32_t *ids);
/* Picks the next token from the k candidates a backend's top_k returned for
 * that request (ids[0] >= 0): the same token, with the same RNG use, as
 * fp4rt_sampler_sample on the full logits. */
int32_t fp4rt_sampler_sample_topk(fp4rt_sampler *s, const float *vals, const int32_t *ids, int k);

/* ---- Speculative sampling (runtime/engine/speculate.c) ---- */
/* The distribution fp4rt_sampler_sample would draw from, without drawing:
 * probs [n_vocab] gets each id's probability after masking, penalties,
 * temperature, top-k, top-p and min-p (0 for ids outside the candidates;
 * the candidates' values sum to 1 up to float rounding); greedy: 1 at the id
 * fp4rt_sampler_sample picks, 0 elsewhere. logits are modified in place; no
 * RNG use. */
void fp4rt_sampler_probs(fp4rt_sampler *s, float *logits, float *probs);
/* One uniform draw in [0, 1) of the sampler's RNG stream. */
double fp4rt_sampler_uniform(fp4rt_sampler *s);
/* Draws an id with probability proportional to w [n_vocab] (entries <= 0 or
 * NaN are never drawn), one RNG draw; -1 (and no RNG use) when no entry is
 * positive. */
int32_t fp4rt_sampler_draw_weights(fp4rt_sampler *s, const float *w);
/* dst's penalty history (tokens seen, output counts) := src's (same n_vocab). */
void fp4rt_sampler_copy_history(fp4rt_sampler *dst, const fp4rt_sampler *src);

#endif
