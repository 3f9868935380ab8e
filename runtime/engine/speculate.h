/* Speculative decoding with the checkpoint's MTP head (issue 16): the
 * draft-and-verify loop under fp4rt_generate (generate.c), engine internal.
 *
 * fp4rt_generate's loop stays the plain one: sample the next token from "the
 * logits of the last evaluated token", emit it, check the stops, evaluate it.
 * With speculation those logits may be a row of the last verify step and
 * "evaluating" a token is fp4rt_spec_advance:
 * - when the token equals the next draft of the outstanding verify step, the
 *   draft is accepted: nothing runs, the next row is the logits;
 * - otherwise the verify step is settled (fp4rt_session_keep of the rows up
 *   to the current one, fp4rt_session_mtp_keep) and a new round starts from
 *   the token: the MTP head drafts K tokens d1..dK after it, and one
 *   fp4rt_session_verify runs [token, d1..dK] (K + 1 rows, each row's logits
 *   bit-identical to a 1-token decode step's). K shrinks near the end of the
 *   context (a verify never runs past n_ctx); with no room for a draft, or
 *   when the head cannot draft (its state lost by a cancel, a restored
 *   snapshot), the token runs as a plain 1-token step.
 * Greedy: the next token is the sampler's greedy pick from the row, so the
 *   draft is accepted exactly when the model's pick equals it and the tokens
 *   are those of plain greedy decoding.
 * Sampling: where the row has a draft d after it, the token is d with
 *   probability min(1, p(d) / q(d)), else drawn from max(0, p - q) normalized
 *   (p: fp4rt_sampler_probs of the row with the generation's sampler; q: the
 *   distribution d was drawn from, the same settings and penalty history on
 *   the head's logits, drawn with a second RNG stream seeded from the seed);
 *   after the last draft (or without one) the token is sampled from p as
 *   plain decoding does. Both streams are seeded: deterministic. */
#ifndef FP4RT_SPECULATE_H
#define FP4RT_SPECULATE_H

#include "runtime/engine/model.h"
#include "runtime/text/sampler.h"

typedef struct fp4rt_spec {
    fp4rt_session *s;
    fp4rt_sampler *smp;   /* the generation's sampler: p, acceptance draws */
    fp4rt_sampler dsmp;   /* the drafts' sampler: q, its own RNG stream */
    int k, vocab, greedy, penalties;
    /* Greedy without penalties on a backend with the argmax slot: the drafts,
     * the verify rows and plain steps are picked on the device (their logits
     * stay there; a NaN brings a row to the host, where the sampler decides). */
    int device;
    int32_t picks[FP4RT_SPEC_MAX_DRAFTS + 1]; /* device: the verify rows' picks, -1: the row is in rows */
    int32_t plain_pick;   /* device: the pick of the last plain step (no verify outstanding), -1: none */
    float *rows;          /* [k + 1, vocab] the outstanding verify step's logits */
    float *q;             /* [k, vocab] the drafts' distributions (sampling) */
    float *p, *r;         /* [vocab] scratch: p, the residual max(0, p - q) */
    int32_t toks[FP4RT_SPEC_MAX_DRAFTS + 1]; /* the verified tokens: [token, d1 .. dk] */
    int n;                /* rows of the outstanding verify step; 0: none (the logits are the session's) */
    int cur;              /* its row the next token is sampled from (drafts 1 .. cur were accepted) */
    fp4rt_generate_result *res; /* statistics (spec_*) */
} fp4rt_spec;

/* Prepares speculation with k drafts (1 .. FP4RT_SPEC_MAX_DRAFTS) on s, which
 * must have MTP state (else INVALID_ARGUMENT naming fp4rt_session_params.mtp).
 * smp: the generation's sampler, settings p (which decide `device` above);
 * statistics go to res. */
fp4rt_status fp4rt_spec_init(fp4rt_spec *sp, fp4rt_session *s, int k, fp4rt_sampler *smp,
                             const fp4rt_sampling_resolved *p, fp4rt_generate_result *res);
void fp4rt_spec_free(fp4rt_spec *sp);
/* Tokens evaluated as plain decoding counts them: an outstanding verify
 * step's rows up to the current one. */
int fp4rt_spec_n_past(const fp4rt_spec *sp);
/* The logits the next token is drawn from (the current row, else the session's);
 * not on the host when fp4rt_spec_picked. */
float *fp4rt_spec_logits(fp4rt_spec *sp);
/* 1 when the next token was picked on the device (its logits are not on the host). */
int fp4rt_spec_picked(const fp4rt_spec *sp);
/* The next token by the rule above; modifies those logits in place. */
int32_t fp4rt_spec_sample(fp4rt_spec *sp);
/* "Evaluates" the token just sampled (above). Any failure: one line; the session then needs a reset. */
fp4rt_status fp4rt_spec_advance(fp4rt_spec *sp, int32_t token);
/* At the end of generation: settles the outstanding verify step, so that the
 * session holds exactly what plain decoding's would (pending: the caller then
 * holds the last sampled token as pending; else the current row's logits
 * become the session's last logits). */
fp4rt_status fp4rt_spec_finish(fp4rt_spec *sp, int pending);

#endif
