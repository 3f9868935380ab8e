/* Generation: sampling loop, stop conditions, UTF-8-safe streaming with stop
 * strings held back, and the reasoning split (<think> ... </think>), as a
 * reasoning parser does: text between the think tokens is reported with
 * reasoning = 1, the answer with reasoning = 0, the think tokens themselves are
 * not reported, and the newlines the template puts after </think> are dropped. */
#include "runtime/engine/model.h"
#include "runtime/engine/speculate.h"

#include "runtime/base/common.h"
#include "runtime/text/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

fp4rt_sampling_params fp4rt_sampling_default_params(void) {
    fp4rt_sampling_params p;
    memset(&p, 0, sizeof p);
    return p;
}

fp4rt_generate_params fp4rt_generate_default_params(void) {
    fp4rt_generate_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Text not yet given to the callback, held because it may start a stop string. */
typedef struct streamer {
    const fp4rt_generate_params *p;
    fp4rt_token_fn cb;
    void *user;
    char *held;
    size_t n_held, cap;
    int reasoning;
    int strip_newlines; /* right after </think>: drop leading newlines of the answer */
    int stopped;        /* the callback asked to stop */
} streamer;

static int emit(streamer *st, const char *text, size_t len, int32_t id) {
    if (!st->cb || st->stopped) return st->stopped;
    char buf[4096];
    while (len > 0 || id >= 0) {
        size_t k = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, text, k);
        buf[k] = 0;
        fp4rt_token_event ev = {buf, k, id, st->reasoning};
        if (st->cb(&ev, st->user)) return st->stopped = 1;
        text += k;
        len -= k;
        id = -1;
        if (len == 0) break;
    }
    return 0;
}

/* Longest suffix of s[0, n) that is a proper prefix of some stop string. */
static size_t stop_prefix_suffix(const streamer *st, const char *s, size_t n) {
    size_t best = 0;
    for (size_t i = 0; i < st->p->n_stop; i++) {
        size_t m = strlen(st->p->stop[i]);
        for (size_t k = m > n ? n : m - 1; k > best; k--)
            if (!memcmp(s + n - k, st->p->stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Adds a decoded piece; returns 1 if a stop string completed (text before it is
 * emitted), 0 otherwise. */
static int add_text(streamer *st, const char *piece, size_t len, int32_t id, fp4rt_status *err) {
    if (st->strip_newlines && !st->reasoning) {
        while (len && *piece == '\n') piece++, len--;
        if (len) st->strip_newlines = 0;
    }
    if (st->n_held + len + 1 > st->cap) {
        size_t cap = (st->n_held + len + 1) * 2;
        char *h = realloc(st->held, cap);
        if (!h) {
            *err = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory in generation");
            return 1;
        }
        st->held = h;
        st->cap = cap;
    }
    memcpy(st->held + st->n_held, piece, len);
    st->n_held += len;
    st->held[st->n_held] = 0;
    for (size_t i = 0; i < st->p->n_stop; i++) {
        const char *hit = st->p->stop[i][0] ? strstr(st->held, st->p->stop[i]) : NULL;
        if (hit) {
            emit(st, st->held, (size_t)(hit - st->held), id);
            st->n_held = 0;
            return 1;
        }
    }
    size_t keep = stop_prefix_suffix(st, st->held, st->n_held);
    emit(st, st->held, st->n_held - keep, id);
    memmove(st->held, st->held + st->n_held - keep, keep);
    st->n_held = keep;
    return 0;
}

/* Emits held text (end of a segment). */
static void flush_held(streamer *st) {
    if (st->n_held) emit(st, st->held, st->n_held, -1);
    st->n_held = 0;
}

/* 1 if a logit the sampler may pick is NaN (bad weights). */
static int logits_nan(const fp4rt_model *m, const float *l) {
    for (int i = 0; i < m->weights->cfg.vocab; i++)
        if (isnan(l[i]) && (!m->valid_ids || m->valid_ids[i])) return 1;
    return 0;
}

/* Everything fp4rt.h asks of fp4rt_generate_params, before anything runs. */
static fp4rt_status check_params(const fp4rt_generate_params *p) {
    if (p->max_tokens < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.max_tokens = %d is negative", p->max_tokens);
    if (p->n_stop && !p->stop)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.stop is NULL with n_stop = %zu", p->n_stop);
    for (size_t i = 0; i < p->n_stop; i++) {
        if (!p->stop[i]) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.stop[%zu] is NULL", i);
        if (!p->stop[i][0])
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.stop[%zu] is an empty string", i);
    }
    if (p->output_cap && !p->output_ids)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.output_ids is NULL with output_cap = %zu",
                          p->output_cap);
    if (p->spec_drafts < 0 || p->spec_drafts > FP4RT_SPEC_MAX_DRAFTS)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.spec_drafts = %d: expected 0 (off) or 1 .. %d",
                          p->spec_drafts, FP4RT_SPEC_MAX_DRAFTS);
    if (p->constraint && (!p->constraint->next || !p->constraint->accept))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.constraint has a NULL next or accept");
    return fp4rt_sampling_check(&p->sampling);
}

static int is_eos(const fp4rt_model *m, int32_t id) {
    for (int i = 0; i < m->n_eos; i++)
        if (m->eos[i] == id) return 1;
    return 0;
}

fp4rt_status fp4rt_generate(fp4rt_session *s, const int32_t *prompt, size_t n,
                            const fp4rt_generate_params *params, fp4rt_token_fn cb, void *user,
                            fp4rt_generate_result *result) {
    fp4rt_generate_params defaults = fp4rt_generate_default_params();
    if (!params) params = &defaults;
    fp4rt_generate_result res = {0};
    if (result) *result = res;
    if (!s) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate: session is NULL");
    if (!prompt && n) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate: prompt is NULL with n = %zu", n);
    const fp4rt_prompt *pi = params->prompt_images;
    if (pi && n)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate: both prompt tokens (n = %zu) and prompt_images", n);
    if (pi) { /* its tokens are the prompt (the sampler sees them); it is evaluated below */
        prompt = fp4rt_prompt_tokens(pi);
        n = fp4rt_prompt_n_tokens(pi);
    }
    fp4rt_status st = check_params(params);
    if (st) return st;
    fp4rt_model *m = s->model;
    if (!m->tokenizer && cb) return fp4rt_fail(FP4RT_UNSUPPORTED, "the model has no tokenizer.json: cannot stream text");
    if (n == 0 && !s->have_logits && !s->pending)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate: empty prompt and nothing to continue from");
    if (n > (size_t)s->sb.n_ctx && !pi) /* a prompt with images says which image does not fit */
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate: a prompt of %zu tokens exceeds the context (n_ctx %d)", n,
                          s->sb.n_ctx);

    fp4rt_sampling_resolved sp;
    fp4rt_sampling_resolve(&params->sampling, &m->gen, &sp);
    fp4rt_sampler smp;
    st = fp4rt_sampler_init(&smp, &sp, m->weights->cfg.vocab, m->valid_ids);
    if (st) return st;
    /* speculative decoding (speculate.h): drafts by the MTP head, verify steps */
    const fp4rt_constraint *con = params->constraint;
    int spec = params->spec_drafts > 0 && !con;
    fp4rt_spec sx = {0};
    if (spec && (st = fp4rt_spec_init(&sx, s, params->spec_drafts, &smp, &sp, &res))) {
        fp4rt_sampler_free(&smp);
        return st;
    }
    for (int i = 0; i < s->n_past + s->pending; i++) fp4rt_sampler_accept(&smp, s->history[i], 0);
    for (size_t i = 0; i < n; i++) fp4rt_sampler_accept(&smp, prompt[i], 0);

    double t0 = now();
    if (n) { /* runs a pending token first */
        st = pi ? fp4rt_session_eval_prompt(s, pi, s->last_logits) : fp4rt_session_eval(s, prompt, (int)n, s->last_logits, 0);
        if (st) goto done;
        s->have_logits = 1;
    } else if (s->pending) {
        st = fp4rt_session_eval_pending(s, s->last_logits);
        if (st) goto done;
    }
    res.n_prompt = (int)n;
    res.prefill_seconds = now() - t0;

    streamer str = {.p = params, .cb = cb, .user = user, .reasoning = params->reasoning_open};
    fp4rt_detok_stream ds;
    if (m->tokenizer) fp4rt_detok_stream_init(&ds, m->tokenizer, 1);
    int max = params->max_tokens > 0 ? params->max_tokens : m->gen.max_new_tokens;
    char piece[2048];
    /* greedy without penalties on a backend that picks on the device: a decode
     * step downloads one id (the same the sampler would pick), not the logits */
    int device_pick = !spec && !con && sp.greedy && sp.repetition_penalty == 1.0f && sp.presence_penalty == 0 &&
                      sp.frequency_penalty == 0 && m->backend->argmax;
    /* otherwise sampling (or greedy with penalties) with top-k within the
     * device's reach: a decode step downloads k candidates, from which the
     * sampler draws the token it would draw from the full logits */
    fp4rt_topk_request req;
    int device_topk = !spec && !con && !device_pick && m->backend->top_k && fp4rt_sampler_topk_request(&smp, &req);
    float cand_vals[FP4RT_TOPK_MAX];
    int32_t cand_ids[FP4RT_TOPK_MAX];
    int32_t next = -1; /* the device's pick for the next token, -1: sample the logits */
    int cands = 0;     /* the device's candidates for the next token are in cand_* */
    int32_t id = -1;   /* the last token sampled, -1 once it has been evaluated */
    t0 = now();
    for (;;) {
        if (max > 0 && res.n_generated >= max) {
            res.stop_reason = FP4RT_STOP_MAX_TOKENS;
            break;
        }
        if ((spec ? fp4rt_spec_n_past(&sx) : s->n_past) >= s->sb.n_ctx) { /* no room for another token */
            res.stop_reason = FP4RT_STOP_CONTEXT;
            break;
        }
        int32_t pick = FP4RT_PICK_FREE;
        const uint8_t *mask = NULL;
        if (con) {
            pick = con->next(con->user, &mask);
            if (pick == FP4RT_PICK_STOP) {
                res.stop_reason = FP4RT_STOP_CALLBACK;
                break;
            }
            if (pick >= m->weights->cfg.vocab || (pick < 0 && pick != FP4RT_PICK_FREE && pick != FP4RT_PICK_MASK) ||
                (pick == FP4RT_PICK_MASK && !mask)) {
                st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "generation step %d: the constraint answered %d%s",
                                res.n_generated, pick, pick == FP4RT_PICK_MASK ? " without a mask" : "");
                break;
            }
        }
        if (pick < 0 && next < 0 && !cands && !(spec && fp4rt_spec_picked(&sx)) &&
            logits_nan(m, spec ? fp4rt_spec_logits(&sx) : s->last_logits)) {
            st = fp4rt_fail(FP4RT_NUMERIC,
                            "generation step %d (position %d): logits are NaN (bad weights? run fp4rt inspect --check)",
                            res.n_generated, spec ? fp4rt_spec_n_past(&sx) : s->n_past);
            break;
        }
        if (pick == FP4RT_PICK_MASK) { /* the sampler's own mask, for this pick only */
            const uint8_t *valid = smp.valid;
            smp.valid = mask;
            id = fp4rt_sampler_sample(&smp, s->last_logits);
            smp.valid = valid;
        } else {
            id = pick >= 0    ? pick
                 : spec      ? fp4rt_spec_sample(&sx)
                 : next >= 0 ? next
                 : cands     ? fp4rt_sampler_sample_topk(&smp, cand_vals, cand_ids, req.k)
                             : fp4rt_sampler_sample(&smp, s->last_logits);
        }
        next = -1;
        cands = 0;
        s->have_logits = 0;
        if (params->output_ids && (size_t)res.n_generated < params->output_cap)
            params->output_ids[res.n_generated] = id;
        res.n_generated++;
        fp4rt_sampler_accept(&smp, id, 1);
        if (con) con->accept(con->user, id);
        if (!params->ignore_eos && is_eos(m, id)) {
            res.stop_reason = FP4RT_STOP_EOS;
            break;
        }
        if (m->tokenizer) {
            if (id == m->think_open || id == m->think_close) {
                flush_held(&str);
                str.reasoning = id == m->think_open;
                str.strip_newlines = id == m->think_close;
            } else {
                int k = fp4rt_detok_stream_push(&ds, id, piece, sizeof piece);
                if (k < 0) {
                    st = fp4rt_fail(FP4RT_INTERNAL, "sampled id %d has no text", id);
                    break;
                }
                if (add_text(&str, piece, (size_t)k, id, &st)) {
                    if (!st) res.stop_reason = FP4RT_STOP_STRING;
                    break;
                }
            }
            if (str.stopped) {
                res.stop_reason = FP4RT_STOP_CALLBACK;
                break;
            }
        }
        if (max > 0 && res.n_generated >= max) { /* no need to run the last token now */
            res.stop_reason = FP4RT_STOP_MAX_TOKENS;
            break;
        }
        int32_t tok = id;
        id = -1; /* evaluated below (on failure the session needs a reset anyway) */
        if (spec) {
            st = fp4rt_spec_advance(&sx, tok);
            if (st) break;
            continue;
        }
        if (device_pick) {
            st = fp4rt_session_eval_pick(s, tok, &next);
            if (st) break;
            continue;
        }
        if (device_topk) {
            fp4rt_sampler_topk_request(&smp, &req); /* the penalty list after this token */
            st = fp4rt_session_eval_topk(s, tok, &req, cand_vals, cand_ids);
            if (st) break;
            cands = cand_ids[0] >= 0; /* else a NaN: the logits were downloaded */
            continue;
        }
        st = fp4rt_session_eval(s, &tok, 1, s->last_logits, 0);
        if (st) break;
        s->have_logits = 1;
    }
    if (spec) { /* the session keeps the verified rows plain decoding would have evaluated */
        fp4rt_status fst = fp4rt_spec_finish(&sx, id >= 0);
        if (!st) st = fst;
    }
    if (id >= 0) { /* the last token sampled is held, not evaluated (fp4rt.h) */
        s->history[s->n_past] = id;
        s->pending = 1;
        s->have_logits = 0;
    } else if (!st && (next >= 0 || cands)) {
        /* a pick not used (the session is full): its logits are still on the device */
        st = fp4rt_session_fetch_logits(s);
    }
    if (!st && m->tokenizer && res.stop_reason != FP4RT_STOP_STRING && res.stop_reason != FP4RT_STOP_CALLBACK) {
        int k = fp4rt_detok_stream_flush(&ds, piece, sizeof piece);
        if (k > 0) add_text(&str, piece, (size_t)k, -1, &st);
        flush_held(&str);
    }
    free(str.held);
    res.decode_seconds = now() - t0;
done:
    if (spec) fp4rt_spec_free(&sx);
    fp4rt_sampler_free(&smp);
    if (result) *result = res;
    return st;
}
