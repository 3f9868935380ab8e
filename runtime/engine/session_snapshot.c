/* Public API: session state snapshots (fp4rt.h), for prefix reuse. */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

struct fp4rt_session_snapshot {
    const fp4rt_model *model; /* restores only onto sessions of this model */
    int n_past;
    int32_t *tokens;          /* [n_past] */
    void *conv, *ssm;         /* the GDN state, as the session's buffers hold it */
    size_t conv_bytes, ssm_bytes;
    float *logits;            /* [vocab] the last token's logits, or NULL */
    int rope_delta;           /* the session's M-RoPE state (model.h): the delta, and */
    int32_t *mrope;           /* [n_past * 3] the positions when an image was evaluated, else NULL */
};

void fp4rt_session_snapshot_free(fp4rt_session_snapshot *snap) {
    if (!snap) return;
    free(snap->tokens);
    free(snap->conv);
    free(snap->ssm);
    free(snap->logits);
    free(snap->mrope);
    free(snap);
}

fp4rt_session_snapshot *fp4rt_session_snapshot_take(fp4rt_session *s) {
    if (!s) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_snapshot_take: session is NULL");
        return NULL;
    }
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    if (s->pending && fp4rt_session_eval_pending(s, s->last_logits)) return NULL;
    fp4rt_session_snapshot *snap = fp4rt_calloc(1, sizeof *snap, "session snapshot");
    if (!snap) return NULL;
    snap->model = m;
    snap->n_past = s->n_past;
    snap->conv_bytes = (size_t)s->allocated.conv;
    snap->ssm_bytes = (size_t)s->allocated.ssm;
    snap->tokens = fp4rt_malloc((size_t)(s->n_past ? s->n_past : 1) * sizeof(int32_t), "snapshot tokens");
    snap->conv = snap->conv_bytes ? fp4rt_malloc(snap->conv_bytes, "snapshot GDN conv state") : NULL;
    snap->ssm = snap->ssm_bytes ? fp4rt_malloc(snap->ssm_bytes, "snapshot GDN recurrent state") : NULL;
    snap->logits = s->have_logits ? fp4rt_malloc((size_t)vocab * sizeof(float), "snapshot logits") : NULL;
    snap->rope_delta = s->rope_delta;
    if (s->mrope) {
        snap->mrope = fp4rt_malloc((size_t)(s->n_past ? s->n_past : 1) * 3 * sizeof(int32_t), "snapshot positions");
        if (snap->mrope)
            for (int i = 0; i < s->n_past; i++) fp4rt_session_position(s, i, snap->mrope + (size_t)i * 3);
    }
    if (!snap->tokens || (snap->conv_bytes && !snap->conv) || (snap->ssm_bytes && !snap->ssm) ||
        (s->have_logits && !snap->logits) || (s->mrope && !snap->mrope)) {
        fp4rt_session_snapshot_free(snap);
        return NULL;
    }
    memcpy(snap->tokens, s->history, (size_t)s->n_past * sizeof(int32_t));
    if (snap->logits) memcpy(snap->logits, s->last_logits, (size_t)vocab * sizeof(float));
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.conv, 0, snap->conv, snap->conv_bytes);
    if (!st) st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.ssm, 0, snap->ssm, snap->ssm_bytes);
    pthread_mutex_unlock(&m->run_lock);
    if (st) {
        fp4rt_fail_context(st, "taking a session snapshot");
        fp4rt_session_snapshot_free(snap);
        return NULL;
    }
    return snap;
}

fp4rt_status fp4rt_session_snapshot_restore(fp4rt_session *s, const fp4rt_session_snapshot *snap) {
    if (!s || !snap)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_snapshot_restore: %s is NULL",
                          s ? "snapshot" : "session");
    fp4rt_model *m = s->model;
    if (snap->model != m || snap->conv_bytes != (size_t)s->allocated.conv ||
        snap->ssm_bytes != (size_t)s->allocated.ssm)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_snapshot_restore: the snapshot is of another model");
    int p = snap->n_past;
    if (s->n_past < p)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "fp4rt_session_snapshot_restore: the session has evaluated %d tokens; the snapshot needs "
                          "its %d first ones in the KV cache",
                          s->n_past, p);
    for (int i = 0; i < p; i++)
        if (s->history[i] != snap->tokens[i])
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "fp4rt_session_snapshot_restore: the session's token %d at position %d differs from "
                              "the snapshot's %d",
                              s->history[i], i, snap->tokens[i]);
    /* the KV cache rows were rotated at the session's positions: they must be the snapshot's */
    for (int i = 0; i < p; i++) {
        int32_t have[3], want[3];
        fp4rt_session_position(s, i, have);
        for (int c = 0; c < 3; c++) want[c] = snap->mrope ? snap->mrope[(size_t)i * 3 + c] : i + snap->rope_delta;
        if (memcmp(have, want, sizeof have))
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "fp4rt_session_snapshot_restore: the session's rotary position (%d, %d, %d) at "
                              "position %d differs from the snapshot's (%d, %d, %d)",
                              have[0], have[1], have[2], i, want[0], want[1], want[2]);
    }
    int32_t *mrope = NULL;
    if (snap->mrope) {
        mrope = s->mrope ? s->mrope : fp4rt_malloc((size_t)s->sb.n_ctx * 3 * sizeof(int32_t), "session M-RoPE positions");
        if (!mrope) return FP4RT_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_upload(m->backend, m->backend_ctx, s->sb.conv, 0, snap->conv, snap->conv_bytes);
    if (!st) st = fp4rt_backend_upload(m->backend, m->backend_ctx, s->sb.ssm, 0, snap->ssm, snap->ssm_bytes);
    if (!st) st = fp4rt_backend_synchronize(m->backend, m->backend_ctx);
    pthread_mutex_unlock(&m->run_lock);
    /* a failed upload leaves the state partly written: the session must be reset */
    if (st) {
        if (mrope != s->mrope) free(mrope);
        return fp4rt_fail_context(st, "restoring a session snapshot");
    }
    if (mrope != s->mrope) free(s->mrope);
    s->mrope = mrope;
    if (mrope) memcpy(mrope, snap->mrope, (size_t)p * 3 * sizeof(int32_t));
    s->mrope_n = mrope ? p : 0;
    s->rope_delta = snap->rope_delta;
    s->n_past = p;
    s->pending = 0;
    s->verify_n = 0;
    s->have_logits = snap->logits != NULL;
    if (snap->logits) memcpy(s->last_logits, snap->logits, (size_t)m->weights->cfg.vocab * sizeof(float));
    return FP4RT_OK;
}

int fp4rt_session_snapshot_n_past(const fp4rt_session_snapshot *snap) { return snap ? snap->n_past : 0; }

const int32_t *fp4rt_session_snapshot_tokens(const fp4rt_session_snapshot *snap) {
    return snap ? snap->tokens : NULL;
}

size_t fp4rt_session_snapshot_bytes(const fp4rt_session_snapshot *snap) {
    if (!snap) return 0;
    return sizeof *snap + (size_t)snap->n_past * sizeof(int32_t) * (snap->mrope ? 4 : 1) + snap->conv_bytes +
           snap->ssm_bytes +
           (snap->logits ? (size_t)snap->model->weights->cfg.vocab * sizeof(float) : 0);
}
