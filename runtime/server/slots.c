/* Slots: one session of the model and one worker thread each; jobs beyond the
 * idle slots wait in a bounded FIFO queue. A slot keeps its session's tokens
 * between requests, and reuses them for a new prompt two ways:
 *   - a prompt that extends exactly what the slot holds (the next turn of a
 *     conversation whose template renders the earlier turns as they were
 *     generated) evaluates only its new tokens;
 *   - otherwise the longest of the slot's state snapshots (Gated DeltaNet
 *     state does not rewind; the KV cache simply truncates) whose tokens
 *     prefix the prompt is restored, and the prompt continues from there.
 *     Qwen3.6's template drops earlier turns' reasoning, so turn 2 shares
 *     turn 1's prompt only up to its last "<|im_start|>assistant": a
 *     snapshot is taken there, at the end of the prompt, and every
 *     snapshot_every tokens of a long prompt.
 * Snapshot positions are multiples of FP4RT_GDN_CHUNK (64), and the prompt is
 * split there and at the session's chunk boundaries only, never leaving a
 * one-token piece: a prefill split at such positions computes the same bits
 * as one call, so a reply after a restore is bit-identical to a cold one.
 * Either way the reused tokens are reported as cached_tokens. Images: two
 * prompts with the same ids may carry different images, so no state past a
 * prompt's first image token is reused (a prompt with images evaluates from
 * there in one call, without snapshots), and after one the slot reuses only
 * what lies before its first image token. Snapshots live
 * in host memory, snapshot_bytes over all slots, least recently used first
 * out; a restore or reset drops those past the slot's new position. */
#include "runtime/server/srv.h"

#include "runtime/backend/backend.h"
#include "runtime/base/common.h"
#include "runtime/engine/model.h"
#include "runtime/text/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Snapshots are usable when the session splits prompts only at multiples of
 * FP4RT_GDN_CHUNK (its chunk is one). */
static int snaps_on(const srv *S, const srv_slot *sl) {
    return !S->p.no_snapshots && sl->s->sb.chunk % FP4RT_GDN_CHUNK == 0;
}

/* The slot's snapshot to restore for prompt j: the longest whose tokens
 * prefix the prompt with at least two prompt tokens left (a one-token rest
 * would run as a decode step); -1: none. */
static int best_snap(const srv_slot *sl, const srv_job *j) {
    int best = -1, best_n = 0;
    for (int i = 0; i < sl->n_snaps; i++) {
        fp4rt_session_snapshot *sn = sl->snaps[i].snap;
        int n = fp4rt_session_snapshot_n_past(sn);
        if (n <= best_n || (size_t)n + 2 > j->n_prompt || (size_t)n > j->image_at) continue;
        if (!memcmp(fp4rt_session_snapshot_tokens(sn), j->prompt, (size_t)n * sizeof(int32_t))) best = i, best_n = n;
    }
    return best;
}

/* Tokens of the prompt the slot can skip: what it holds when that prefixes the
 * prompt, else its best snapshot's (0: none). *snap: the snapshot, or -1. */
static size_t reusable(const srv_slot *sl, const srv_job *j, int *snap) {
    *snap = -1;
    int held = fp4rt_session_n_past(sl->s);
    if (held > 0 && (size_t)held < j->n_prompt && (size_t)held <= j->image_at &&
        (sl->image_at < 0 || held <= sl->image_at) &&
        !memcmp(fp4rt_session_tokens(sl->s), j->prompt, (size_t)held * sizeof(int32_t)))
        return (size_t)held;
    *snap = best_snap(sl, j);
    return *snap < 0 ? 0 : (size_t)fp4rt_session_snapshot_n_past(sl->snaps[*snap].snap);
}

static void snap_drop(srv_slot *sl, int i) {
    fp4rt_session_snapshot_free(sl->snaps[i].snap);
    sl->snaps[i] = sl->snaps[--sl->n_snaps];
}

/* Drops the snapshots past position n (the session no longer holds their tokens). */
static void snaps_truncate(srv_slot *sl, int n) {
    for (int i = sl->n_snaps - 1; i >= 0; i--)
        if (fp4rt_session_snapshot_n_past(sl->snaps[i].snap) > n) snap_drop(sl, i);
}

/* A snapshot of the session now (at a multiple of FP4RT_GDN_CHUNK), kept within
 * the slot's share of snapshot_bytes, least recently used out first. */
static void snap_take(srv *S, srv_slot *sl) {
    int n = fp4rt_session_n_past(sl->s);
    for (int i = 0; i < sl->n_snaps; i++)
        if (fp4rt_session_snapshot_n_past(sl->snaps[i].snap) == n) { /* same tokens: the session holds them */
            sl->snaps[i].used = atomic_fetch_add(&S->seq, 1);
            return;
        }
    fp4rt_session_snapshot *sn = fp4rt_session_snapshot_take(sl->s);
    if (!sn) { /* not fatal: the request goes on without it */
        fp4rt_log(FP4RT_LOG_WARN, "serve: slot %d: no snapshot at %d tokens: %s", sl->index, n, fp4rt_last_error());
        return;
    }
    size_t budget = S->p.snapshot_bytes / (size_t)S->n_slots, bytes = fp4rt_session_snapshot_bytes(sn);
    for (;;) {
        size_t used = bytes;
        int lru = -1;
        for (int i = 0; i < sl->n_snaps; i++) {
            used += fp4rt_session_snapshot_bytes(sl->snaps[i].snap);
            if (lru < 0 || sl->snaps[i].used < sl->snaps[lru].used) lru = i;
        }
        if ((used <= budget && sl->n_snaps < SRV_SNAPS) || lru < 0) break;
        snap_drop(sl, lru);
    }
    if (bytes > budget) {
        fp4rt_session_snapshot_free(sn);
        return;
    }
    sl->snaps[sl->n_snaps++] = (srv_snap){sn, atomic_fetch_add(&S->seq, 1)};
    pthread_mutex_lock(&S->metrics.mu);
    S->metrics.snapshots++;
    pthread_mutex_unlock(&S->metrics.mu);
}

/* Where the prompt gets snapshots: every snapshot_every tokens, at the last
 * "<|im_start|>" (the start of the reply's header, which the next turn
 * shares) and at the end, each rounded down to a multiple of FP4RT_GDN_CHUNK,
 * past `from` and leaving at least two tokens. Ascending, at most cap. */
static int snap_points(const srv *S, const srv_slot *sl, const srv_job *j, size_t from, size_t *pts, int cap) {
    int n = 0;
    size_t g = FP4RT_GDN_CHUNK, np = j->n_prompt;
    if (!snaps_on(S, sl) || np < 2) return 0;
    size_t cand[3];
    int nc = 0;
    size_t every = S->p.snapshot_every > 0 ? ((size_t)S->p.snapshot_every + g - 1) / g * g : 0;
    int32_t im = S->model->tokenizer ? fp4rt_tokenizer_find(S->model->tokenizer, "<|im_start|>") : -1;
    size_t last_im = 0;
    for (size_t i = np; im >= 0 && i-- > 0;)
        if (j->prompt[i] == im) {
            last_im = i;
            break;
        }
    cand[nc++] = last_im / g * g;
    cand[nc++] = (np - 2) / g * g;
    for (size_t p = every; every && p + 2 <= np && n < cap; p += every)
        if (p > from) pts[n++] = p;
    for (int c = 0; c < nc; c++) {
        size_t p = cand[c];
        if (p <= from || p + 2 > np) continue;
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= pts[i] == p;
        if (dup || n >= cap) continue;
        int k = n++;
        while (k > 0 && pts[k - 1] > p) pts[k] = pts[k - 1], k--;
        pts[k] = p;
    }
    return n;
}

static int on_token(const fp4rt_token_event *ev, void *user) {
    srv_job *j = user;
    srv_out_piece(j, ev);
    return atomic_load(&j->cancel);
}

static void run(srv *S, srv_slot *sl, srv_job *j) {
    int snap;
    size_t skip = reusable(sl, j, &snap);
    fp4rt_status st = FP4RT_OK;
    if (snap >= 0) {
        st = fp4rt_session_snapshot_restore(sl->s, sl->snaps[snap].snap);
        if (st) { /* not fatal: a cold start */
            fp4rt_log(FP4RT_LOG_WARN, "serve: slot %d: restoring a snapshot failed: %s", sl->index,
                      fp4rt_last_error());
            skip = 0;
            st = FP4RT_OK;
        } else {
            sl->image_at = -1; /* it holds text only now (snapshots are not taken past an image) */
            sl->snaps[snap].used = atomic_fetch_add(&S->seq, 1);
            pthread_mutex_lock(&S->metrics.mu);
            S->metrics.snapshot_hits++;
            pthread_mutex_unlock(&S->metrics.mu);
        }
    }
    if (!skip) {
        fp4rt_session_reset(sl->s);
        sl->image_at = -1;
    }
    snaps_truncate(sl, (int)skip);
    j->n_cached = (int)skip;
    /* The prompt in pieces: up to each snapshot point (a snapshot there) and
     * the session's chunk boundaries, one call each, so that a cancel
     * (disconnect, shutdown) waits for one chunk at most; the rest with the
     * last token's logits, then generation continues from them. */
    size_t pts[64];
    int npts = j->mm ? 0 : snap_points(S, sl, j, skip, pts, 64), ip = 0;
    const int32_t *p = j->prompt + skip;
    size_t at = skip, chunk = (size_t)sl->s->sb.chunk;
    double t0 = now_s();
    if (j->mm && !atomic_load(&j->cancel)) { /* with images: the rest in one call */
        sl->image_at = (int)j->image_at;
        st = fp4rt_session_eval_prompt_from(sl->s, j->mm, skip, sl->s->last_logits);
        if (!st) {
            at = j->n_prompt;
            sl->s->have_logits = 1;
        }
    }
    while (!j->mm && !st && !atomic_load(&j->cancel)) {
        size_t end = j->n_prompt;
        if (ip < npts) end = pts[ip];
        if (end - at > chunk) end = at + chunk;
        int last = end == j->n_prompt;
        st = fp4rt_session_eval(sl->s, p, (int)(end - at), last ? sl->s->last_logits : NULL, 0);
        if (st) break;
        p += end - at;
        at = end;
        if (ip < npts && at == pts[ip]) {
            snap_take(S, sl);
            ip++;
        }
        if (last) {
            sl->s->have_logits = 1;
            break;
        }
    }
    double t_pre = now_s() - t0;
    size_t pre = at - skip;
    srv_force force;
    int forcing = 0;
    if (!st && j->req.tool_force) { /* tool_choice required / named: toolforce.h */
        if (!S->force_tab || srv_force_init(&force, S->force_tab, (srv_force_mode)j->req.tool_force, j->req.tools,
                                            j->req.tool_name, j->req.gp.reasoning_open ? S->model->think_close : -1))
            st = FP4RT_UNSUPPORTED;
        else {
            forcing = 1;
            j->req.gp.constraint = &force.con;
            j->req.gp.n_stop = 0; /* stop strings do not cut a forced call */
            j->req.gp.stop = NULL;
        }
    }
    if (!st && at == j->n_prompt && !atomic_load(&j->cancel)) {
        st = fp4rt_generate(sl->s, NULL, 0, &j->req.gp, on_token, j, &j->res);
        j->res.n_prompt += (int)pre;
        j->res.prefill_seconds += t_pre;
        char *close = !st && forcing ? srv_force_close(&force) : NULL;
        if (close) { /* the call's closing text, as if generated */
            fp4rt_token_event ev = {close, strlen(close), -1, 0};
            srv_out_piece(j, &ev);
            free(close);
        }
        if (forcing && force.n_masks)
            fp4rt_log(FP4RT_LOG_INFO, "serve: slot %d: forced tool call: %d masked picks, %.3f ms per mask", sl->index,
                      force.n_masks, 1e3 * force.mask_seconds / force.n_masks);
    } else if (!st) {
        j->res.stop_reason = FP4RT_STOP_CALLBACK;
        j->res.n_prompt = (int)pre;
        j->res.prefill_seconds = t_pre;
    }
    if (forcing) srv_force_free(&force);
    if (st) {
        srv_fail(&j->err, st == FP4RT_INVALID_ARGUMENT ? 400 : 500, NULL, "%s", fp4rt_last_error());
        j->failed = 1;
        fp4rt_session_reset(sl->s); /* its state after a failed step is unknown */
        sl->image_at = -1;
        snaps_truncate(sl, 0);
    }
    srv_out_finish(j);
    if (!st) srv_metrics_generation(&S->metrics, j);
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

typedef struct worker_arg {
    srv *S;
    srv_slot *sl;
} worker_arg;

static void *worker(void *arg) {
    srv *S = ((worker_arg *)arg)->S;
    srv_slot *sl = ((worker_arg *)arg)->sl;
    free(arg);
    pthread_mutex_lock(&S->mu);
    for (;;) {
        while (!sl->job && !S->quit) pthread_cond_wait(&sl->cv, &S->mu);
        if (!sl->job) break;
        srv_job *j = sl->job;
        pthread_mutex_unlock(&S->mu);
        run(S, sl, j);
        srv_job_release(j);
        pthread_mutex_lock(&S->mu);
        sl->job = NULL;
        S->n_running--;
        sl->last_used = atomic_fetch_add(&S->seq, 1);
        if (S->q_len > 0 && !S->stopping) { /* the oldest waiting job */
            sl->job = S->queue[S->q_head];
            S->q_head = (S->q_head + 1) % S->q_cap;
            S->q_len--;
            S->n_running++;
        }
    }
    pthread_mutex_unlock(&S->mu);
    return NULL;
}

int srv_slots_start(srv *S) {
    if (S->model->tokenizer && !(S->force_tab = srv_force_table_new(S->model))) return -1;
    S->slots = calloc((size_t)S->n_slots, sizeof *S->slots);
    S->q_cap = S->p.queue > 0 ? S->p.queue : 1;
    S->queue = calloc((size_t)S->q_cap, sizeof *S->queue);
    if (!S->slots || !S->queue) return -1;
    for (int i = 0; i < S->n_slots; i++) {
        srv_slot *sl = &S->slots[i];
        sl->index = i;
        sl->image_at = -1;
        pthread_cond_init(&sl->cv, NULL);
        sl->s = fp4rt_session_create(S->model, &S->p.session);
        if (!sl->s) return -1;
        worker_arg *a = malloc(sizeof *a);
        if (!a) return -1;
        *a = (worker_arg){S, sl};
        if (pthread_create(&sl->thread, NULL, worker, a)) {
            free(a);
            return -1;
        }
        sl->started = 1;
    }
    return 0;
}

int srv_submit(srv *S, srv_job *j, srv_error *e) {
    pthread_mutex_lock(&S->mu);
    if (S->stopping) {
        pthread_mutex_unlock(&S->mu);
        return srv_fail(e, 503, NULL, "the server is shutting down");
    }
    srv_slot *best = NULL;
    size_t best_len = 0;
    for (int i = 0; i < S->n_slots; i++) {
        srv_slot *sl = &S->slots[i];
        if (sl->job) continue;
        int snap;
        size_t k = reusable(sl, j, &snap);
        if (!best || k > best_len || (k == best_len && sl->last_used < best->last_used)) best = sl, best_len = k;
    }
    if (best) {
        best->job = j;
        S->n_running++;
        pthread_cond_signal(&best->cv);
    } else if (S->p.queue >= 0 && S->q_len < S->p.queue) {
        S->queue[(S->q_head + S->q_len) % S->q_cap] = j;
        S->q_len++;
    } else {
        pthread_mutex_unlock(&S->mu);
        return srv_fail(e, 503, NULL, "all %d slots are busy and %d requests are waiting; retry later", S->n_slots,
                        S->q_len);
    }
    pthread_mutex_unlock(&S->mu);
    return 0;
}

/* Ends a job that never ran (shutdown). */
static void fail_unrun(srv_job *j) {
    srv_fail(&j->err, 503, NULL, "the server is shutting down");
    j->failed = 1;
    srv_out_finish(j);
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
}

int srv_slots_drain(srv *S) {
    pthread_mutex_lock(&S->mu);
    S->stopping = 1;
    while (S->q_len > 0) {
        srv_job *j = S->queue[S->q_head];
        S->q_head = (S->q_head + 1) % S->q_cap;
        S->q_len--;
        pthread_mutex_unlock(&S->mu);
        fail_unrun(j);
        pthread_mutex_lock(&S->mu);
    }
    int n = S->n_running;
    pthread_mutex_unlock(&S->mu);
    return n;
}

int srv_slots_running(srv *S) {
    pthread_mutex_lock(&S->mu);
    int n = S->n_running;
    pthread_mutex_unlock(&S->mu);
    return n;
}

int srv_queue_length(srv *S) {
    pthread_mutex_lock(&S->mu);
    int n = S->q_len;
    pthread_mutex_unlock(&S->mu);
    return n;
}

/* Cancels what runs, joins the workers, frees the sessions. */
void srv_slots_stop(srv *S) {
    pthread_mutex_lock(&S->mu);
    S->stopping = S->quit = 1;
    for (int i = 0; i < S->n_slots; i++) {
        if (S->slots && S->slots[i].job) atomic_store(&S->slots[i].job->cancel, 1);
        if (S->slots) pthread_cond_signal(&S->slots[i].cv);
    }
    pthread_mutex_unlock(&S->mu);
    for (int i = 0; S->slots && i < S->n_slots; i++) {
        srv_slot *sl = &S->slots[i];
        if (sl->started) pthread_join(sl->thread, NULL);
        while (sl->n_snaps > 0) snap_drop(sl, sl->n_snaps - 1);
        fp4rt_session_free(sl->s);
        pthread_cond_destroy(&sl->cv);
    }
    free(S->slots);
    free(S->queue);
    srv_force_table_free(S->force_tab);
    S->force_tab = NULL;
    S->slots = NULL;
    S->queue = NULL;
}
