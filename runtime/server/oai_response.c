/* Responses in OpenAI's shapes: chat.completion / text_completion objects,
 * their streamed chunks (SSE "data: {...}\n\n", ending "data: [DONE]\n\n"),
 * tool calls parsed from the answer, usage and errors. */
#include "runtime/server/srv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

srv_job *srv_job_new(srv_request *req, int32_t *prompt, size_t n_prompt, const char *model_name, uint64_t seq) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_request_free(req);
        free(prompt);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2;
    j->req = *req;
    j->req.gp.stop = j->req.gp.n_stop ? j->req.stop : NULL; /* the array moved with the request */
    memset(req, 0, sizeof *req);
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->image_at = n_prompt;
    j->created = (long)time(NULL);
    j->model_name = model_name;
    j->fd = -1;
    snprintf(j->id, sizeof j->id, "%s-%08lx%016llx", j->req.kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long)j->created, (unsigned long long)((seq + 1) * 0x9E3779B97F4A7C15ull));
    return j;
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    srv_request_free(&j->req);
    free(j->prompt);
    fp4rt_prompt_free(j->mm);
    fp4rt_sbuf_free(&j->sse);
    fp4rt_sbuf_free(&j->content);
    fp4rt_sbuf_free(&j->reasoning);
    fp4rt_tc_split_free(&j->split);
    for (int i = 0; i < j->n_calls; i++) free(j->calls[i].name), free(j->calls[i].arguments);
    free(j->calls);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* {"id", "object", "created", "model", "choices": [choice]} */
static cJSON *envelope(const srv_job *j, const char *object, cJSON *choice) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->model_name);
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    if (choice) cJSON_AddItemToArray(ch, choice);
    return o;
}

static cJSON *usage(const srv_job *j) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->res.n_generated);
    cJSON_AddNumberToObject(u, "total_tokens", (double)j->n_prompt + j->res.n_generated);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", j->n_cached);
    return u;
}

/* Appends "data: <json>\n\n" for the client (frees o). */
static void send_event(srv_job *j, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    pthread_mutex_lock(&j->mu);
    if (s) fp4rt_sbuf_printf(&j->sse, "data: %s\n\n", s);
    pthread_mutex_unlock(&j->mu);
    /* after the unlock: a reader woken under the lock would only block on it
     * (a context switch more per token on a machine whose cores compute) */
    pthread_cond_broadcast(&j->cv);
    free(s);
}

/* A streamed chunk: chat (delta) or completion (text). Takes delta. */
static void send_chunk(srv_job *j, cJSON *delta, const char *text, const char *finish) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (j->req.kind == SRV_CHAT) cJSON_AddItemToObject(c, "delta", delta ? delta : cJSON_CreateObject());
    else cJSON_AddStringToObject(c, "text", text ? text : "");
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    send_event(j, envelope(j, j->req.kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion", c));
}

static void ensure_role(srv_job *j) {
    if (j->sent_role || !j->req.stream || j->req.kind != SRV_CHAT) return;
    j->sent_role = 1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "role", "assistant");
    cJSON_AddStringToObject(d, "content", "");
    send_chunk(j, d, NULL, NULL);
}

/* Answer text (not reasoning, not a tool call). */
static void content(srv_job *j, const char *s, size_t n) {
    if (!n) return;
    fp4rt_sbuf_add(&j->content, s, n);
    if (!j->req.stream) return;
    char *t = malloc(n + 1);
    if (!t) return;
    memcpy(t, s, n);
    t[n] = 0;
    if (j->req.kind == SRV_CHAT) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "content", t);
        send_chunk(j, d, NULL, NULL);
    } else send_chunk(j, NULL, t, NULL);
    free(t);
}

/* A closed <tool_call> block: a tool call, or (unparseable) content as written. */
static void tool_block(srv_job *j, const char *b, size_t n) {
    char *name = NULL, *args = NULL;
    srv_tool_call *calls = NULL;
    if (fp4rt_toolcall_parse(b, n, j->req.tools, &name, &args) ||
        !(calls = realloc(j->calls, (size_t)(j->n_calls + 1) * sizeof *calls))) {
        free(name), free(args);
        content(j, "<tool_call>", strlen("<tool_call>"));
        content(j, b, n);
        content(j, "</tool_call>", strlen("</tool_call>"));
        return;
    }
    j->calls = calls;
    int k = j->n_calls++;
    srv_tool_call *tc = &calls[k];
    tc->name = name;
    tc->arguments = args;
    snprintf(tc->id, sizeof tc->id, "call_%.20s%d", j->id + strcspn(j->id, "-") + 1, k);
    if (!j->req.stream) return;
    /* as vLLM streams them: the id and name first, then the arguments */
    for (int part = 0; part < 2; part++) {
        cJSON *d = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(d, "tool_calls");
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "index", k);
        if (part == 0) {
            cJSON_AddStringToObject(t, "id", tc->id);
            cJSON_AddStringToObject(t, "type", "function");
        }
        cJSON *f = cJSON_AddObjectToObject(t, "function");
        if (part == 0) cJSON_AddStringToObject(f, "name", tc->name);
        cJSON_AddStringToObject(f, "arguments", part == 0 ? "" : tc->arguments);
        cJSON_AddItemToArray(a, t);
        send_chunk(j, d, NULL, NULL);
    }
}

static void drain_split(srv_job *j, int final) {
    fp4rt_tc_piece p;
    while (fp4rt_tc_split_next(&j->split, final, &p)) {
        if (p.block) tool_block(j, p.block, p.block_n);
        else content(j, p.content, p.content_n);
    }
}

void srv_out_piece(srv_job *j, const fp4rt_token_event *ev) {
    if (!ev->len) return;
    ensure_role(j);
    if (ev->reasoning && j->req.kind == SRV_CHAT) {
        fp4rt_sbuf_add(&j->reasoning, ev->text, ev->len);
        if (j->req.stream) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "reasoning_content", ev->text);
            send_chunk(j, d, NULL, NULL);
        }
    } else if (j->req.tools) {
        fp4rt_tc_split_feed(&j->split, ev->text, ev->len);
        drain_split(j, 0);
    } else content(j, ev->text, ev->len);
}

const char *srv_finish_reason(const srv_job *j) {
    if (j->n_calls) return "tool_calls";
    return j->res.stop_reason == FP4RT_STOP_MAX_TOKENS || j->res.stop_reason == FP4RT_STOP_CONTEXT ? "length" : "stop";
}

char *srv_error_json(const srv_error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON *er = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(er, "message", e->message);
    cJSON_AddStringToObject(er, "type", e->type ? e->type : "server_error");
    if (e->param[0]) cJSON_AddStringToObject(er, "param", e->param);
    else cJSON_AddNullToObject(er, "param");
    if (e->code) cJSON_AddStringToObject(er, "code", e->code);
    else cJSON_AddNullToObject(er, "code");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void srv_out_finish(srv_job *j) {
    if (j->req.tools) drain_split(j, 1);
    if (!j->req.stream) return;
    if (j->failed) {
        char *s = srv_error_json(&j->err);
        pthread_mutex_lock(&j->mu);
        if (s) fp4rt_sbuf_printf(&j->sse, "data: %s\n\n", s);
        pthread_mutex_unlock(&j->mu);
        free(s);
    } else {
        ensure_role(j);
        send_chunk(j, NULL, NULL, srv_finish_reason(j));
        if (j->req.include_usage) {
            cJSON *o = envelope(j, j->req.kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion", NULL);
            cJSON_AddItemToObject(o, "usage", usage(j));
            send_event(j, o);
        }
    }
    pthread_mutex_lock(&j->mu);
    fp4rt_sbuf_puts(&j->sse, "data: [DONE]\n\n");
    pthread_mutex_unlock(&j->mu);
}

/* The answer without the white space around tool calls; NULL when empty. */
static char *answer_text(const srv_job *j) {
    const char *s = fp4rt_sbuf_str(&j->content);
    size_t a = 0, b = j->content.n;
    if (j->n_calls) {
        while (a < b && isspace((unsigned char)s[a])) a++;
        while (b > a && isspace((unsigned char)s[b - 1])) b--;
        if (a == b) return NULL;
    }
    char *t = malloc(b - a + 1);
    if (t) memcpy(t, s + a, b - a), t[b - a] = 0;
    return t;
}

char *srv_response_json(srv_job *j) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    char *text = answer_text(j);
    if (j->req.kind == SRV_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        if (text) cJSON_AddStringToObject(m, "content", text);
        else cJSON_AddNullToObject(m, "content");
        if (j->reasoning.n) cJSON_AddStringToObject(m, "reasoning_content", j->reasoning.s);
        else cJSON_AddNullToObject(m, "reasoning_content");
        if (j->n_calls) {
            cJSON *a = cJSON_AddArrayToObject(m, "tool_calls");
            for (int i = 0; i < j->n_calls; i++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddStringToObject(t, "id", j->calls[i].id);
                cJSON_AddStringToObject(t, "type", "function");
                cJSON *f = cJSON_AddObjectToObject(t, "function");
                cJSON_AddStringToObject(f, "name", j->calls[i].name);
                cJSON_AddStringToObject(f, "arguments", j->calls[i].arguments);
                cJSON_AddItemToArray(a, t);
            }
        }
    } else cJSON_AddStringToObject(c, "text", text ? text : "");
    free(text);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", srv_finish_reason(j));
    cJSON *o = envelope(j, j->req.kind == SRV_CHAT ? "chat.completion" : "text_completion", c);
    cJSON_AddItemToObject(o, "usage", usage(j));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
