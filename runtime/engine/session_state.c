/* The verify step and its rollback (model.h), for speculative decoding. */
#include "runtime/engine/model.h"
#include "runtime/engine/mtp.h"

#include "runtime/base/common.h"

#include <string.h>

uint64_t fp4rt_session_ckpt_bytes(const fp4rt_session *s) {
    return (uint64_t)FP4RT_VERIFY_MAX * (s->allocated.conv + s->allocated.ssm);
}

/* Device copies between the live GDN state and checkpoint slot `slot`
 * (to_ckpt: live -> slot, else slot -> live), under the model's run lock. */
static fp4rt_status ckpt_copy(fp4rt_session *s, int slot, int to_ckpt) {
    fp4rt_model *m = s->model;
    size_t conv = (size_t)s->allocated.conv, ssm = (size_t)s->allocated.ssm;
    size_t base = (size_t)slot * (conv + ssm);
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = FP4RT_OK;
    if (conv)
        st = to_ckpt ? fp4rt_backend_copy(m->backend, m->backend_ctx, s->sb.ckpt, base, s->sb.conv, 0, conv)
                     : fp4rt_backend_copy(m->backend, m->backend_ctx, s->sb.conv, 0, s->sb.ckpt, base, conv);
    if (!st && ssm)
        st = to_ckpt ? fp4rt_backend_copy(m->backend, m->backend_ctx, s->sb.ckpt, base + conv, s->sb.ssm, 0, ssm)
                     : fp4rt_backend_copy(m->backend, m->backend_ctx, s->sb.ssm, 0, s->sb.ckpt, base + conv, ssm);
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

/* The rows' device picks of the verify step just run (argmax_all where the
 * backend has it, else the argmax slot row by row); a row picked -1 (NaN) is
 * downloaded. Under the model's run lock. */
static fp4rt_status pick_rows(fp4rt_session *s, int n, int in_step, float *logits, int32_t *picks) {
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    size_t row = (size_t)vocab * sizeof(float);
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && !in_step && i < n; i++)
        st = fp4rt_backend_argmax(m->backend, m->backend_ctx, s->sb.logits, (size_t)i * vocab, vocab, m->valid_ids,
                                  &picks[i]);
    for (int i = 0; !st && i < n; i++)
        if (picks[i] < 0) {
            st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, i * row, logits + (size_t)i * vocab,
                                        row);
            if (!st) s->logits_down += row;
        }
    return st;
}

fp4rt_status fp4rt_session_verify(fp4rt_session *s, const int32_t *tokens, int n, float *logits) {
    return fp4rt_session_verify_pick(s, tokens, n, logits, NULL);
}

fp4rt_status fp4rt_session_verify_pick(fp4rt_session *s, const int32_t *tokens, int n, float *logits,
                                       int32_t *picks) {
    if (!s || !tokens || !logits)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_verify: session, tokens or logits is NULL");
    if (picks && !s->model->backend->argmax)
        return fp4rt_fail(FP4RT_INTERNAL, "fp4rt_session_verify: the %s backend has no device pick",
                          s->model->backend->name);
    if (n < 1 || n > FP4RT_VERIFY_MAX)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_verify: n = %d rows, expected 1 .. %d", n,
                          FP4RT_VERIFY_MAX);
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "fp4rt_session_verify: token %d at row %d is outside the vocabulary [0, %d)", tokens[i],
                              i, vocab);
    if (s->n_past + s->pending + n > s->sb.n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d tokens held + %d verified exceed n_ctx %d",
                          s->n_past + s->pending, n, s->sb.n_ctx);
    s->verify_n = 0;
    uint64_t bytes = fp4rt_session_ckpt_bytes(s);
    if (!s->sb.ckpt && bytes) {
        if (bytes > SIZE_MAX)
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "verify checkpoints of %llu bytes do not fit in memory",
                              (unsigned long long)bytes);
        fp4rt_status st = fp4rt_backend_alloc(m->backend, m->backend_ctx, (size_t)bytes, "GDN state checkpoints",
                                              &s->sb.ckpt);
        if (st) return st;
    }
    fp4rt_status st = fp4rt_session_eval_pending(s, NULL);
    int pos0 = s->n_past;
    int one_step = m->backend->decode_rows && n <= s->sb.chunk;
    if (!st && one_step) { /* one step; the backend keeps the checkpoints */
        /* the picks in the step where the backend can (argmax_all) */
        int in_step = picks && m->backend->argmax_rows;
        fp4rt_step step = {.relaxed = s->relaxed,
                           .tokens = tokens,
                           .n_tokens = n,
                           .pos0 = pos0,
                           .all_logits = 1,
                           .decode_rows = 1,
                           .argmax_valid = in_step ? m->valid_ids : NULL,
                           .argmax_out = in_step ? picks : NULL,
                           .argmax_all = in_step};
        fp4rt_session_rope_text(s, &step);
        pthread_mutex_lock(&m->run_lock);
        st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
        if (!st) {
            memcpy(s->history + pos0, tokens, (size_t)n * sizeof(int32_t));
            s->n_past += n;
            size_t rows_bytes = (size_t)n * vocab * sizeof(float);
            if (picks) {
                st = pick_rows(s, n, in_step, logits, picks);
            } else {
                st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, 0, logits, rows_bytes);
                if (!st) s->logits_down += rows_bytes;
            }
        }
        pthread_mutex_unlock(&m->run_lock);
        /* the MTP head sees the rows as any step's (1-token steps below feed it themselves) */
        if (!st) st = fp4rt_session_mtp_after_step(s, tokens, n, pos0);
    } else { /* rows as 1-token decode steps: exactly plain decoding's bits */
        for (int i = 0; !st && i < n; i++) {
            if (bytes) st = ckpt_copy(s, i, 1);
            if (!st) st = fp4rt_session_step1(s, tokens[i], logits + (size_t)i * vocab);
            if (picks) picks[i] = -1; /* the rows are on the host */
        }
    }
    if (!st) st = fp4rt_backend_synchronize(m->backend, m->backend_ctx);
    if (st) return st;
    s->have_logits = !picks || picks[n - 1] < 0;
    if (s->have_logits) memcpy(s->last_logits, logits + (size_t)(n - 1) * vocab, (size_t)vocab * sizeof(float));
    s->verify_pos0 = pos0;
    s->verify_n = n;
    return FP4RT_OK;
}

fp4rt_status fp4rt_session_keep(fp4rt_session *s, int n_keep) {
    if (!s) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_keep: session is NULL");
    if (!s->verify_n || s->pending || s->n_past != s->verify_pos0 + s->verify_n)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "fp4rt_session_keep: no verify step just before (the session evaluated since)");
    if (n_keep < 0 || n_keep > s->verify_n)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_keep: keeping %d of %d verified rows", n_keep,
                          s->verify_n);
    int n = s->verify_n;
    s->verify_n = 0;
    if (n_keep == n) return FP4RT_OK;
    fp4rt_status st = ckpt_copy(s, n_keep, 0);
    if (!st) st = fp4rt_backend_synchronize(s->model->backend, s->model->backend_ctx);
    if (st) return st;
    s->n_past = s->verify_pos0 + n_keep;
    s->have_logits = 0;
    return FP4RT_OK;
}
