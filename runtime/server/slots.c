/* Slots: one session of the model and one worker thread each; jobs beyond the
 * idle slots wait in a bounded FIFO queue. A slot keeps its session's tokens
 * between requests: a prompt that extends exactly what the slot holds (the
 * next turn of a conversation, when the template renders the earlier turns as
 * they were generated) evaluates only its new tokens, the rest is reported as
 * cached_tokens. Any other prompt resets the session (Gated DeltaNet state does
 * not rewind; partial-prefix reuse needs state snapshots, a later addition
 * that fits here: the slot picks the snapshot, then continues as below). */
#include "runtime/server/srv.h"

#include "runtime/engine/model.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Tokens of the slot's session that prefix the prompt (0 when they do not, or
 * when nothing would be left to evaluate). */
static size_t reusable(const srv_slot *sl, const srv_job *j) {
    int held = fp4rt_session_n_past(sl->s);
    if (held <= 0 || (size_t)held >= j->n_prompt) return 0;
    return memcmp(fp4rt_session_tokens(sl->s), j->prompt, (size_t)held * sizeof(int32_t)) ? 0 : (size_t)held;
}

static int on_token(const fp4rt_token_event *ev, void *user) {
    srv_job *j = user;
    srv_out_piece(j, ev);
    return atomic_load(&j->cancel);
}

static void run(srv *S, srv_slot *sl, srv_job *j) {
    size_t skip = reusable(sl, j);
    if (!skip) fp4rt_session_reset(sl->s);
    j->n_cached = (int)skip;
    fp4rt_status st = FP4RT_OK;
    /* Long prompts: whole prefill chunks first, one call each, so that a cancel
     * (disconnect, shutdown) waits for one chunk at most. The split points are
     * the session's own chunk boundaries, so the result is the same bits as one
     * call; the slot then simply holds a prefix of the prompt. */
    const int32_t *p = j->prompt + skip;
    size_t rest = j->n_prompt - skip, chunk = (size_t)sl->s->sb.chunk, pre = 0;
    double t0 = now_s();
    while (!st && rest > chunk && !atomic_load(&j->cancel)) {
        st = fp4rt_session_eval(sl->s, p, (int)chunk, NULL, 0);
        p += chunk, rest -= chunk, pre += chunk;
    }
    double t_pre = now_s() - t0;
    if (!st && !atomic_load(&j->cancel)) {
        st = fp4rt_generate(sl->s, p, rest, &j->req.gp, on_token, j, &j->res);
        j->res.n_prompt += (int)pre;
        j->res.prefill_seconds += t_pre;
    } else if (!st) {
        j->res.stop_reason = FP4RT_STOP_CALLBACK;
        j->res.n_prompt = (int)pre;
        j->res.prefill_seconds = t_pre;
    }
    if (st) {
        srv_fail(&j->err, st == FP4RT_INVALID_ARGUMENT ? 400 : 500, NULL, "%s", fp4rt_last_error());
        j->failed = 1;
        fp4rt_session_reset(sl->s); /* its state after a failed step is unknown */
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
    S->slots = calloc((size_t)S->n_slots, sizeof *S->slots);
    S->q_cap = S->p.queue > 0 ? S->p.queue : 1;
    S->queue = calloc((size_t)S->q_cap, sizeof *S->queue);
    if (!S->slots || !S->queue) return -1;
    for (int i = 0; i < S->n_slots; i++) {
        srv_slot *sl = &S->slots[i];
        sl->index = i;
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
        size_t k = reusable(sl, j);
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
        fp4rt_session_free(sl->s);
        pthread_cond_destroy(&sl->cv);
    }
    free(S->slots);
    free(S->queue);
    S->slots = NULL;
    S->queue = NULL;
}
