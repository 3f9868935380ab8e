/* The endpoints: GET / (chat page), /health, /v1/models, /metrics; POST
 * /v1/chat/completions, /v1/completions, /tokenize, /detokenize. Generation
 * requests become jobs for the slots; a streaming one is answered with an SSE
 * response whose reader waits for the job's chunks, a plain one waits here.
 * Either way a client that disconnects cancels its job (checked every 50 ms
 * while waiting, and on every failed write). */
#include "runtime/server/srv.h"

#include "runtime/engine/model.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const int k_poll_ms = 50;

static void deadline(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    srv_job *j = cls;
    static const char k_keepalive[] = ": keep-alive\n\n";
    if (srv_client_gone(j->fd)) { /* a reset seen after the last write: stop now, not a token later */
        atomic_store(&j->cancel, 1);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_lock(&j->mu);
    for (int waited = 0; !j->sse.n && !j->done; waited += k_poll_ms) {
        struct timespec ts;
        deadline(&ts, k_poll_ms);
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (!j->sse.n && srv_client_gone(j->fd)) {
            atomic_store(&j->cancel, 1);
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!j->sse.n && !j->done && waited >= j->keepalive_ms && max >= sizeof k_keepalive) {
            pthread_mutex_unlock(&j->mu);
            memcpy(buf, k_keepalive, sizeof k_keepalive - 1);
            return (ssize_t)(sizeof k_keepalive - 1);
        }
    }
    size_t k = j->sse.n < max ? j->sse.n : max;
    if (k) {
        memcpy(buf, j->sse.s, k);
        fp4rt_sbuf_consume(&j->sse, k);
    }
    pthread_mutex_unlock(&j->mu);
    return k ? (ssize_t)k : MHD_CONTENT_READER_END_OF_STREAM;
}

/* The connection is done with the stream (sent, or the client went away). */
static void sse_free(void *cls) {
    srv_job *j = cls;
    atomic_store(&j->cancel, 1);
    atomic_fetch_sub(j->n_streams, 1);
    srv_job_release(j);
}

static int reply_json(srv *S, struct MHD_Connection *c, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return srv_reply(S, c, 200, "application/json", s, 0);
}

/* The prompt ids (one <|image_pad|> per image) and the request's images as a prompt
 * with images; *ids becomes its expanded ids. NULL and e filled on failure (400 for
 * what the client sent: a model without a vision tower, images vs pads, an image
 * that does not decode; 500 for the server's own failures). */
static fp4rt_prompt *images_prompt(srv *S, const srv_request *r, int32_t **ids, size_t *n, srv_error *e) {
    fp4rt_prompt *p;
    fp4rt_status st = fp4rt_prompt_make(S->model, *ids, *n, r->images, r->n_images, S->p.session.exact, &p);
    if (st) {
        srv_fail(e, st == FP4RT_OUT_OF_MEMORY || st == FP4RT_DEVICE || st == FP4RT_INTERNAL ? 500 : 400, "messages",
                 "%s", fp4rt_last_error());
        return NULL;
    }
    size_t k = fp4rt_prompt_n_tokens(p);
    int32_t *x = malloc(k * sizeof *x);
    if (!x) {
        fp4rt_prompt_free(p);
        srv_fail(e, 500, NULL, "out of memory");
        return NULL;
    }
    memcpy(x, fp4rt_prompt_tokens(p), k * sizeof *x);
    free(*ids);
    *ids = x;
    *n = k;
    return p;
}

static int generate(srv *S, struct MHD_Connection *c, srv_kind kind, const char *body, size_t n) {
    srv_error e;
    cJSON *root;
    srv_request r;
    if (srv_json_parse(body, n, S->p.max_json_depth, &root, &e) || srv_request_parse(&r, kind, root, S->n_vocab, &e))
        return srv_reply_error(S, c, &e);
    int32_t *ids;
    size_t n_ids;
    if (srv_request_prompt(&r, S->model, &ids, &n_ids, &e)) {
        srv_request_free(&r);
        return srv_reply_error(S, c, &e);
    }
    /* images: decoded and encoded now (a bad one is the client's 400), their pads expanded */
    fp4rt_prompt *mm = NULL;
    if (r.n_images && !(mm = images_prompt(S, &r, &ids, &n_ids, &e))) {
        srv_request_free(&r);
        free(ids);
        return srv_reply_error(S, c, &e);
    }
    if (n_ids >= (size_t)S->n_ctx) {
        srv_fail(&e, 400, kind == SRV_CHAT ? "messages" : "prompt",
                 "the prompt is %zu tokens%s; the context holds %d (--ctx), with room for at least one more", n_ids,
                 mm ? " with its images" : "", S->n_ctx);
        srv_request_free(&r);
        free(ids);
        fp4rt_prompt_free(mm);
        return srv_reply_error(S, c, &e);
    }
    int stream = r.stream;
    srv_job *j = srv_job_new(&r, ids, n_ids, S->p.model_name, atomic_fetch_add(&S->seq, 1));
    if (!j) {
        fp4rt_prompt_free(mm);
        srv_fail(&e, 500, NULL, "out of memory");
        return srv_reply_error(S, c, &e);
    }
    j->mm = mm;
    j->image_at = n_ids;
    for (size_t i = 0; mm && i < n_ids; i++)
        if (ids[i] == S->model->image_pad) {
            j->image_at = i;
            break;
        }
    j->fd = srv_conn_fd(c);
    j->keepalive_ms = S->p.timeout_s * 1000 / 2;
    if (srv_submit(S, j, &e)) {
        srv_job_release(j);
        srv_job_release(j);
        return srv_reply_error(S, c, &e);
    }
    if (stream) {
        j->n_streams = &S->n_streams;
        atomic_fetch_add(&S->n_streams, 1);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, j, sse_free);
        if (!resp) {
            sse_free(j);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        srv_metrics_request(&S->metrics, 200);
        enum MHD_Result ok = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ok;
    }
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        struct timespec ts;
        deadline(&ts, k_poll_ms);
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (!j->done && srv_client_gone(j->fd)) {
            atomic_store(&j->cancel, 1);
            pthread_mutex_unlock(&j->mu);
            srv_job_release(j);
            return MHD_NO; /* closes the connection */
        }
    }
    pthread_mutex_unlock(&j->mu);
    int ok = j->failed ? srv_reply_error(S, c, &j->err) : srv_reply(S, c, 200, "application/json", srv_response_json(j), 0);
    srv_job_release(j);
    return ok;
}

static int models(srv *S, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", S->p.model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "fp4rt");
    cJSON_AddNumberToObject(m, "max_model_len", S->n_ctx);
    /* the numerics mode every slot runs in (docs/NUMERICS.md, "Modes") */
    cJSON_AddStringToObject(m, "numerics", S->slots[0].s->relaxed ? "default" : "exact");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), m);
    return reply_json(S, c, o);
}

/* {"prompt" | "content": TEXT} or {"messages": [...], "add_generation_prompt": bool}
 * -> {"tokens": [...], "count", "max_model_len"} (vLLM's and llama-server's shapes). */
static int tokenize(srv *S, struct MHD_Connection *c, const char *body, size_t n) {
    srv_error e;
    cJSON *root;
    if (srv_json_parse(body, n, S->p.max_json_depth, &root, &e)) return srv_reply_error(S, c, &e);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (cJSON_GetObjectItemCaseSensitive(root, "messages")) {
        const cJSON *agp = cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt");
        int no_gen = cJSON_IsFalse(agp);
        if (agp && !cJSON_IsBool(agp)) {
            cJSON_Delete(root);
            srv_fail(&e, 400, "add_generation_prompt", "'add_generation_prompt' must be a boolean");
            return srv_reply_error(S, c, &e);
        }
        srv_request r;
        if (srv_request_parse(&r, SRV_CHAT, root, S->n_vocab, &e)) return srv_reply_error(S, c, &e);
        r.cp.no_generation_prompt = no_gen;
        int rc = srv_request_prompt(&r, S->model, &ids, &n_ids, &e);
        srv_request_free(&r);
        if (rc) return srv_reply_error(S, c, &e);
    } else if (cJSON_IsString(t)) {
        fp4rt_status st = fp4rt_tokenize(S->model, t->valuestring, &ids, &n_ids);
        cJSON_Delete(root);
        if (st) {
            srv_fail(&e, 500, NULL, "%s", fp4rt_last_error());
            return srv_reply_error(S, c, &e);
        }
    } else {
        cJSON_Delete(root);
        srv_fail(&e, 400, "prompt", "give 'prompt' (a string) or 'messages'");
        return srv_reply_error(S, c, &e);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < n_ids; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    cJSON_AddNumberToObject(o, "count", (double)n_ids);
    cJSON_AddNumberToObject(o, "max_model_len", S->n_ctx);
    free(ids);
    return reply_json(S, c, o);
}

/* {"tokens": [ids]} -> {"prompt": TEXT, "content": TEXT} */
static int detokenize(srv *S, struct MHD_Connection *c, const char *body, size_t n) {
    srv_error e;
    cJSON *root;
    if (srv_json_parse(body, n, S->p.max_json_depth, &root, &e)) return srv_reply_error(S, c, &e);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = !cJSON_IsArray(t) ? srv_fail(&e, 400, "tokens", "'tokens' must be an array of token ids")
                               : srv_parse_ids(t, "tokens", S->n_vocab, &ids, &n_ids, &e);
    cJSON_Delete(root);
    if (rc) return srv_reply_error(S, c, &e);
    char *text = NULL;
    fp4rt_status st = fp4rt_detokenize(S->model, ids, n_ids, &text);
    free(ids);
    if (st) {
        srv_fail(&e, st == FP4RT_INVALID_ARGUMENT ? 400 : 500, "tokens", "%s", fp4rt_last_error());
        return srv_reply_error(S, c, &e);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", text);
    cJSON_AddStringToObject(o, "content", text);
    fp4rt_free(text);
    return reply_json(S, c, o);
}

typedef enum route_id { R_PAGE, R_HEALTH, R_MODELS, R_METRICS, R_CHAT, R_COMPLETIONS, R_TOKENIZE, R_DETOKENIZE } route_id;

static const struct {
    const char *path;
    int post;
    route_id id;
} k_routes[] = {
    {"/", 0, R_PAGE},
    {"/health", 0, R_HEALTH},
    {"/v1/models", 0, R_MODELS},
    {"/metrics", 0, R_METRICS},
    {"/v1/chat/completions", 1, R_CHAT},
    {"/v1/completions", 1, R_COMPLETIONS},
    {"/tokenize", 1, R_TOKENIZE},
    {"/detokenize", 1, R_DETOKENIZE},
};

int srv_route(srv *S, struct MHD_Connection *c, const char *url, const char *method, const char *body, size_t n,
              int too_big) {
    srv_error e;
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), is_post = !strcmp(method, "POST");
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++) {
        if (strcmp(url, k_routes[i].path)) continue;
        if (k_routes[i].post ? !is_post : !is_get) {
            srv_fail(&e, 405, NULL, "%s %s: the method must be %s", method, url, k_routes[i].post ? "POST" : "GET");
            return srv_reply_error(S, c, &e);
        }
        if (too_big) {
            srv_fail(&e, 413, NULL, "the request body is over the limit of %zu bytes (--max-body)", S->p.max_body);
            return srv_reply_error(S, c, &e);
        }
        switch (k_routes[i].id) {
        case R_PAGE: {
            char *page = malloc(fp4rt_chat_page_len + 1);
            if (page) memcpy(page, fp4rt_chat_page, fp4rt_chat_page_len), page[fp4rt_chat_page_len] = 0;
            return srv_reply(S, c, 200, "text/html; charset=utf-8", page, 0);
        }
        case R_HEALTH: return srv_reply(S, c, 200, "application/json", strdup("{\"status\":\"ok\"}"), 0);
        case R_MODELS: return models(S, c);
        case R_METRICS: return srv_reply(S, c, 200, "text/plain; version=0.0.4", srv_metrics_text(S), 0);
        case R_CHAT: return generate(S, c, SRV_CHAT, body, n);
        case R_COMPLETIONS: return generate(S, c, SRV_COMPLETION, body, n);
        case R_TOKENIZE: return tokenize(S, c, body, n);
        case R_DETOKENIZE: return detokenize(S, c, body, n);
        }
    }
    srv_fail(&e, 404, NULL, "%s %s: no such endpoint", method, url);
    return srv_reply_error(S, c, &e);
}
