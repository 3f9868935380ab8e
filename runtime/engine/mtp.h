/* Drafting with the checkpoint's own MTP head (docs/MODEL.md §3), engine
 * internal: the speculative loop (draft, verify, keep) is built on these.
 *
 * State: a session created with fp4rt_session_params.mtp keeps the MTP head's
 * KV cache (n_ctx positions, its own buffers) and the main model's final-normed
 * hidden states of the rows of its last step. MTP position i holds the pair
 * (h_i, x_{i+1}): the main model's hidden state at position i and the token
 * after it, which predicts x_{i+2} (vLLM: the MTP layer gets the positions of
 * the target hidden states). After every main step of tokens x_p0 .. x_{p0+n-1}
 * the session runs the head over the pairs that step completed, positions
 * p0 - 1 .. p0 + n - 2, so the MTP cache always holds every position < n_past - 1
 * from real tokens. Entries at n_past - 1 and beyond (what drafting or a rejected
 * verify row wrote) are never read: the next main step rewrites them first
 * (attention is causal over positions < the step's end). */
#ifndef FP4RT_MTP_H
#define FP4RT_MTP_H

#include "runtime/engine/model.h"
#include "runtime/text/sampler.h"

/* Starts the model's MTP head (its program, a backend context on the model's
 * device) once; INVALID_ARGUMENT (one line) when the model has no MTP head. */
fp4rt_status fp4rt_model_mtp_start(fp4rt_model *m);

/* Session side (session.c calls these): allocates the head's buffers (after the
 * model's MTP start), frees them, forgets the kept hidden states (reset). */
fp4rt_status fp4rt_session_mtp_init(fp4rt_session *s);
void fp4rt_session_mtp_free(fp4rt_session *s);
void fp4rt_session_mtp_reset(fp4rt_session *s);
/* A cancelled evaluation restored the main state but not the kept hidden
 * states: drafting fails (one line) until the session is reset. */
void fp4rt_session_mtp_lost(fp4rt_session *s);
/* After a main step of n tokens at pos0 succeeded: keeps its rows' hidden states
 * and runs the head over the pairs it completed (above). OK without MTP state. */
fp4rt_status fp4rt_session_mtp_after_step(fp4rt_session *s, const int32_t *tokens, int n, int pos0);

/* K drafts after the evaluated tokens: next_token is x_{n_past} (the token the
 * main model's last logits chose, not yet evaluated); draft j (0-based) is the
 * head's pick at MTP position n_past - 1 + j from (j = 0) the main model's
 * hidden state h_{n_past-1} and next_token, then from its own previous output
 * (mtp.norm's, as vLLM chains a single MTP layer) and draft j - 1.
 * sampler NULL: greedy (the lowest id of the largest logit among the model's
 * valid ids); else fp4rt_sampler_sample on the draft logits (the sampler is
 * not told of the drafts: fp4rt_sampler_accept is the caller's). drafts [k];
 * draft_logits NULL or [k, vocab] (the raw logits of each draft). 1 <= k <= 16,
 * n_past >= 1 and n_past + 1 + k <= n_ctx (the verify step's positions), else
 * INVALID_ARGUMENT. The main model's state is untouched; the MTP cache gets
 * entries at n_past - 1 .. n_past + k - 2 that the next main step rewrites.
 * Draft vocabulary: with FP4RT_MTP_DRAFT_VOCAB = N (0 < N < vocab, read when
 * the session is created) the head's lm_head computes only the logits of ids
 * 0 .. N - 1 and the logits of the other ids are -inf (never drafted; the
 * sampler's q is then normalized over the N ids). The verify step decides every
 * token, so the output stays that of plain decoding; only acceptance changes. */
#define FP4RT_MTP_MAX_DRAFTS 16
fp4rt_status fp4rt_session_mtp_draft(fp4rt_session *s, int32_t next_token, int k, fp4rt_sampler *sampler,
                                     int32_t *drafts, float *draft_logits);

/* The same with the picks the caller's: pick(user, j, logits, device) gets
 * draft j's raw logits [vocab] (scratch it may modify, valid during the call)
 * and device = -1, or, with `device` set, logits NULL and device = the draft's
 * greedy pick made on the device (the lowest id of the largest logit among the
 * model's valid ids of the draft vocabulary: the host's greedy pick; the logits
 * are not downloaded; a NaN logit brings them to the host as without it); it
 * returns the draft (an id in [0, vocab), else INTERNAL). device needs a
 * backend with the argmax slot (else INTERNAL). Called under the model's run
 * lock: pick must not run the model. fp4rt_session_mtp_draft picks on the
 * device when greedy without draft_logits on such a backend. */
typedef int32_t (*fp4rt_mtp_pick_fn)(void *user, int j, float *logits, int32_t device);
fp4rt_status fp4rt_session_mtp_draft_pick(fp4rt_session *s, int32_t next_token, int k, fp4rt_mtp_pick_fn pick,
                                          void *user, int device, int32_t *drafts);
/* 1 when fp4rt_session_mtp_draft can start now: the session has MTP state,
 * not lost, and the hidden state of position n_past - 1 from its last step (a
 * restored snapshot or a cancelled evaluation leave it not ready). */
int fp4rt_session_mtp_ready(const fp4rt_session *s);

/* After a verify step whose first n_keep - (n_past_before) rows were accepted and
 * the session truncated to n_keep tokens: the head continues from the hidden
 * state of position n_keep - 1, which must be a row of the last main step
 * (else INVALID_ARGUMENT). */
fp4rt_status fp4rt_session_mtp_keep(fp4rt_session *s, int n_keep);

#endif
