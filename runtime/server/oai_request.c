/* OpenAI request bodies into fp4rt parameters (oai_request.h). Fields set to
 * null count as absent, as in OpenAI's API. Unknown fields are ignored (as
 * OpenAI and vLLM do); known fields this server cannot honour (n != 1,
 * logprobs, logit_bias, response_format other than text, echo, suffix) are a
 * 400 naming the field rather than being silently dropped. */
#include "runtime/server/oai_request.h"

#include "runtime/text/chat_images.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_fail(srv_error *e, int http, const char *param, const char *fmt, ...) {
    e->http = http;
    e->type = http == 401   ? "authentication_error"
              : http == 404 ? "not_found_error"
              : http >= 500 ? "server_error"
                            : "invalid_request_error";
    e->code = http == 401 ? "invalid_api_key" : http == 413 ? "request_too_large" : http == 503 ? "overloaded" : NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_json_parse(const char *body, size_t n, int max_depth, cJSON **root, srv_error *e) {
    *root = NULL;
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = body[i];
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
        } else if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return srv_fail(e, 400, NULL, "the request body nests JSON deeper than %d levels (at byte %zu)",
                                max_depth, i);
        } else if (c == '}' || c == ']') depth--;
    }
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    if (!*root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return srv_fail(e, 400, NULL, "the request body is not valid JSON (near byte %zu)", at);
    }
    const char *p = end;
    while (p && p < body + n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    if (p && p < body + n && *p) {
        cJSON_Delete(*root);
        *root = NULL;
        return srv_fail(e, 400, NULL, "the request body has text after its JSON value (at byte %zu)",
                        (size_t)(p - body));
    }
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return srv_fail(e, 400, NULL, "the request body must be a JSON object");
    }
    return 0;
}

/* The member `name`, or NULL when absent or null. */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    return j && !cJSON_IsNull(j) ? j : NULL;
}

/* A number in [lo, hi]; returns 1 when present, 0 when absent, -1 on error. */
static int number(const cJSON *o, const char *name, double lo, double hi, double *out, srv_error *e) {
    const cJSON *j = field(o, name);
    if (!j) return 0;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return srv_fail(e, 400, name, "'%s' must be a number", name);
    if (j->valuedouble < lo || j->valuedouble > hi)
        return srv_fail(e, 400, name, "'%s' is %g; it must be in [%g, %g]", name, j->valuedouble, lo, hi);
    *out = j->valuedouble;
    return 1;
}

static int integer(const cJSON *o, const char *name, double lo, double hi, double *out, srv_error *e) {
    int k = number(o, name, lo, hi, out, e);
    if (k == 1 && *out != floor(*out)) return srv_fail(e, 400, name, "'%s' must be an integer", name);
    return k;
}

static int boolean(const cJSON *o, const char *name, int *out, srv_error *e) {
    const cJSON *j = field(o, name);
    if (!j) return 0;
    if (!cJSON_IsBool(j)) return srv_fail(e, 400, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(j);
    return 1;
}

static char *own(srv_request *r, char *s) {
    if (!s) return NULL;
    char **o = realloc(r->owned, (r->n_owned + 1) * sizeof *o);
    if (!o) {
        free(s);
        return NULL;
    }
    r->owned = o;
    r->owned[r->n_owned++] = s;
    return s;
}

/* Sampling, limits and stop strings: fields both endpoints share. */
static int common_fields(srv_request *r, const cJSON *o, srv_error *e) {
    fp4rt_sampling_params *sp = &r->gp.sampling;
    double v;
    int k, b = 0;
    if ((k = boolean(o, "stream", &r->stream, e)) < 0) return -1;
    const cJSON *so = field(o, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return srv_fail(e, 400, "stream_options", "'stream_options' must be an object");
        if (boolean(so, "include_usage", &r->include_usage, e) < 0) return -1;
    }
    if ((k = integer(o, "n", 1, 1e9, &v, e)) < 0) return -1;
    if (k && v != 1) return srv_fail(e, 400, "n", "'n' is %g; this server makes one choice per request (n = 1)", v);
    if ((k = integer(o, "max_tokens", 1, 1e9, &v, e)) < 0) return -1;
    if (k) r->gp.max_tokens = (int)v;
    if ((k = integer(o, "max_completion_tokens", 1, 1e9, &v, e)) < 0) return -1;
    if (k) r->gp.max_tokens = (int)v;
    if ((k = number(o, "temperature", 0, 2, &v, e)) < 0) return -1;
    if (k) {
        if (v == 0) sp->greedy = 1;
        else sp->temperature = (float)v, sp->greedy = -1;
    }
    if ((k = number(o, "top_p", 0, 1, &v, e)) < 0) return -1;
    if (k) {
        if (v == 0) return srv_fail(e, 400, "top_p", "'top_p' must be in (0, 1]");
        sp->top_p = (float)v;
    }
    if ((k = integer(o, "top_k", -1, 1e9, &v, e)) < 0) return -1;
    if (k) sp->top_k = v <= 0 ? -1 : (int)v; /* 0 and -1: off (vLLM) */
    if ((k = number(o, "min_p", 0, 1, &v, e)) < 0) return -1;
    if (k) sp->min_p = v == 0 ? -1.0f : (float)v; /* the API's 0 is "default"; the client's 0 is off */
    if ((k = number(o, "presence_penalty", -2, 2, &v, e)) < 0) return -1;
    if (k) sp->presence_penalty = (float)v;
    if ((k = number(o, "frequency_penalty", -2, 2, &v, e)) < 0) return -1;
    if (k) sp->frequency_penalty = (float)v;
    if ((k = number(o, "repetition_penalty", 0, 1e6, &v, e)) < 0) return -1;
    if (k) {
        if (v == 0) return srv_fail(e, 400, "repetition_penalty", "'repetition_penalty' must be > 0");
        sp->repetition_penalty = (float)v;
    }
    if ((k = integer(o, "seed", -9.2e18, 9.2e18, &v, e)) < 0) return -1;
    if (k) sp->seed = (uint64_t)(int64_t)v;
    if ((k = boolean(o, "ignore_eos", &b, e)) < 0) return -1;
    r->gp.ignore_eos = b;
    const cJSON *st = field(o, "stop");
    if (st) {
        if (cJSON_IsString(st)) {
            if (!st->valuestring[0]) return srv_fail(e, 400, "stop", "'stop' is an empty string");
            r->stop[r->gp.n_stop++] = st->valuestring;
        } else if (cJSON_IsArray(st)) {
            const cJSON *s;
            cJSON_ArrayForEach(s, st) {
                if (!cJSON_IsString(s) || !s->valuestring[0])
                    return srv_fail(e, 400, "stop", "'stop' entries must be non-empty strings");
                if (r->gp.n_stop == SRV_MAX_STOP)
                    return srv_fail(e, 400, "stop", "'stop' has more than %d strings", SRV_MAX_STOP);
                r->stop[r->gp.n_stop++] = s->valuestring;
            }
        } else return srv_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
    }
    r->gp.stop = r->gp.n_stop ? r->stop : NULL;
    const cJSON *lp = field(o, "logprobs");
    if ((lp && !cJSON_IsFalse(lp) && !(cJSON_IsNumber(lp) && lp->valuedouble == 0)) || field(o, "top_logprobs"))
        return srv_fail(e, 400, "logprobs", "logprobs are not supported by this server");
    const cJSON *lb = field(o, "logit_bias");
    if (lb && (!cJSON_IsObject(lb) || lb->child))
        return srv_fail(e, 400, "logit_bias", "'logit_bias' is not supported by this server");
    const cJSON *rf = field(o, "response_format");
    if (rf) {
        const cJSON *t = field(rf, "type");
        if (!cJSON_IsObject(rf) || !cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return srv_fail(e, 400, "response_format", "'response_format' must be {\"type\": \"text\"} on this server");
    }
    const cJSON *model = field(o, "model");
    if (model && !cJSON_IsString(model)) return srv_fail(e, 400, "model", "'model' must be a string");
    return 0;
}

/* Message content: a string, or an array of parts: {"type": "text", "text": ...} and
 * {"type": "image_url", ...} (chat only; srv_image_part), joined in order, each image
 * as the template writes it (FP4RT_CHAT_IMAGE_MARK). NULL for absent. */
static int content_of(srv_request *r, const cJSON *c, size_t i, int images_ok, const char **out, srv_error *e) {
    *out = NULL;
    if (!c) return 0;
    if (cJSON_IsString(c)) {
        *out = c->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(c))
        return srv_fail(e, 400, "messages", "messages[%zu].content must be a string or an array of parts", i);
    size_t len = 0, j = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = field(p, "type"), *x = field(p, "text");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, "image_url")) {
            if (!images_ok)
                return srv_fail(e, 400, "messages", "messages[%zu].content[%zu]: a system message cannot contain images",
                                i, j);
            if (srv_image_part(r, p, i, j, e)) return -1;
            len += strlen(FP4RT_CHAT_IMAGE_MARK);
        } else if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x)) {
            return srv_fail(e, 400, "messages",
                            "messages[%zu].content[%zu]: only text and image_url parts ({\"type\": \"text\", \"text\": "
                            "...}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"data:...\"}}) are supported",
                            i, j);
        } else {
            len += strlen(x->valuestring);
        }
        j++;
    }
    char *s = own(r, malloc(len + 1));
    if (!s) return srv_fail(e, 500, NULL, "out of memory");
    s[0] = 0;
    cJSON_ArrayForEach(p, c) {
        const cJSON *x = field(p, "text");
        strcat(s, cJSON_IsString(x) && strcmp(field(p, "type")->valuestring, "image_url") ? x->valuestring
                                                                                          : FP4RT_CHAT_IMAGE_MARK);
    }
    *out = s;
    return 0;
}

static int chat_fields(srv_request *r, const cJSON *o, srv_error *e) {
    const cJSON *ms = field(o, "messages");
    if (!ms) return srv_fail(e, 400, "messages", "'messages' is required");
    if (!cJSON_IsArray(ms) || !ms->child) return srv_fail(e, 400, "messages", "'messages' must be a non-empty array");
    size_t n = (size_t)cJSON_GetArraySize(ms), n_calls = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        const cJSON *tc = field(m, "tool_calls");
        if (cJSON_IsArray(tc)) n_calls += (size_t)cJSON_GetArraySize(tc);
    }
    r->msgs = calloc(n, sizeof *r->msgs);
    r->calls = calloc(n_calls + 1, sizeof *r->calls);
    if (!r->msgs || !r->calls) return srv_fail(e, 500, NULL, "out of memory");
    size_t i = 0, k = 0;
    cJSON_ArrayForEach(m, ms) {
        if (!cJSON_IsObject(m)) return srv_fail(e, 400, "messages", "messages[%zu] must be an object", i);
        const cJSON *role = field(m, "role");
        if (!cJSON_IsString(role)) return srv_fail(e, 400, "messages", "messages[%zu].role must be a string", i);
        const char *rl = role->valuestring;
        if (!strcmp(rl, "developer")) rl = "system"; /* OpenAI's newer name for the system role */
        if (strcmp(rl, "system") && strcmp(rl, "user") && strcmp(rl, "assistant") && strcmp(rl, "tool"))
            return srv_fail(e, 400, "messages", "messages[%zu].role '%s' is not system, user, assistant or tool", i,
                            role->valuestring);
        fp4rt_chat_message *msg = &r->msgs[i];
        msg->role = rl;
        if (content_of(r, field(m, "content"), i, strcmp(rl, "system") != 0, &msg->content, e)) return -1;
        const cJSON *rc = field(m, "reasoning_content");
        if (!rc) rc = field(m, "reasoning");
        if (rc && !cJSON_IsString(rc))
            return srv_fail(e, 400, "messages", "messages[%zu].reasoning_content must be a string", i);
        msg->reasoning_content = rc ? rc->valuestring : NULL;
        const cJSON *tcs = field(m, "tool_calls");
        if (tcs) {
            if (!cJSON_IsArray(tcs)) return srv_fail(e, 400, "messages", "messages[%zu].tool_calls must be an array", i);
            msg->tool_calls = &r->calls[k];
            const cJSON *tc;
            cJSON_ArrayForEach(tc, tcs) {
                const cJSON *fn = field(tc, "function");
                const cJSON *name = field(fn, "name"), *args = field(fn, "arguments");
                if (!cJSON_IsObject(fn) || !cJSON_IsString(name))
                    return srv_fail(e, 400, "messages", "messages[%zu].tool_calls[%zu].function.name must be a string",
                                    i, msg->n_tool_calls);
                const char *a = NULL;
                if (cJSON_IsString(args)) a = args->valuestring; /* OpenAI: JSON text */
                else if (cJSON_IsObject(args)) a = own(r, cJSON_PrintUnformatted(args));
                else if (args)
                    return srv_fail(e, 400, "messages",
                                    "messages[%zu].tool_calls[%zu].function.arguments must be a JSON string", i,
                                    msg->n_tool_calls);
                r->calls[k++] = (fp4rt_tool_call){name->valuestring, a && a[0] ? a : NULL};
                msg->n_tool_calls++;
            }
        }
        i++;
    }
    r->n_msgs = n;
    const cJSON *tools = field(o, "tools");
    if (tools && !cJSON_IsArray(tools)) return srv_fail(e, 400, "tools", "'tools' must be an array");
    const cJSON *tch = field(o, "tool_choice");
    int use_tools = tools && tools->child;
    if (tch) {
        const cJSON *fn = field(tch, "function");
        if (cJSON_IsString(tch) && !strcmp(tch->valuestring, "none")) use_tools = 0;
        else if (cJSON_IsString(tch) && !strcmp(tch->valuestring, "required")) r->tool_force = 1;
        else if (cJSON_IsObject(tch) && cJSON_IsString(field(tch, "type")) &&
                 !strcmp(field(tch, "type")->valuestring, "function") && cJSON_IsString(field(fn, "name"))) {
            r->tool_force = 2;
            r->tool_name = field(fn, "name")->valuestring;
        } else if (!cJSON_IsString(tch) || strcmp(tch->valuestring, "auto"))
            return srv_fail(e, 400, "tool_choice",
                            "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                            "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        if (r->tool_force && !use_tools)
            return srv_fail(e, 400, "tool_choice", "'tool_choice' forces a tool call but 'tools' is empty or missing");
    }
    if (use_tools) {
        const cJSON *t;
        int found = 0;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *fn = field(t, "function");
            if (!cJSON_IsObject(t) || !cJSON_IsObject(fn) || !cJSON_IsString(field(fn, "name")) ||
                !field(fn, "name")->valuestring[0])
                return srv_fail(e, 400, "tools", "each tool must be {\"type\": \"function\", \"function\": {\"name\", ...}}");
            if (strlen(field(fn, "name")->valuestring) > 64)
                return srv_fail(e, 400, "tools", "tool name '%.64s...' is longer than 64 characters",
                                field(fn, "name")->valuestring);
            found |= r->tool_name && !strcmp(field(fn, "name")->valuestring, r->tool_name);
        }
        if (r->tool_force == 2 && !found)
            return srv_fail(e, 400, "tool_choice", "tool_choice names function '%.200s', which is not in 'tools'",
                            r->tool_name);
        r->tools_json = cJSON_PrintUnformatted(tools);
        if (!r->tools_json) return srv_fail(e, 500, NULL, "out of memory");
        r->tools = tools;
    }
    r->cp = fp4rt_chat_default_params();
    r->cp.tools_json = r->tools_json;
    const cJSON *kw = field(o, "chat_template_kwargs");
    if (kw) {
        if (!cJSON_IsObject(kw)) return srv_fail(e, 400, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
        int on = 1, pres = 0, has;
        if ((has = boolean(kw, "enable_thinking", &on, e)) < 0) return -1;
        if (has) r->cp.thinking = on ? FP4RT_THINKING_ON : FP4RT_THINKING_OFF;
        if (boolean(kw, "preserve_thinking", &pres, e) < 0) return -1;
        r->cp.preserve_thinking = pres;
    }
    r->gp.reasoning_open = r->cp.thinking != FP4RT_THINKING_OFF;
    return 0;
}

int srv_parse_ids(const cJSON *a, const char *param, int n_vocab, int32_t **ids, size_t *n, srv_error *e) {
    size_t k = (size_t)cJSON_GetArraySize(a), i = 0;
    *ids = malloc((k ? k : 1) * sizeof **ids);
    *n = 0;
    if (!*ids) return srv_fail(e, 500, NULL, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 ||
            t->valuedouble >= n_vocab) {
            free(*ids);
            *ids = NULL;
            return srv_fail(e, 400, param, "'%s'[%zu] is not a token id in [0, %d)", param, i, n_vocab);
        }
        (*ids)[i++] = (int32_t)t->valuedouble;
    }
    *n = i;
    return 0;
}

static int completion_fields(srv_request *r, const cJSON *o, int n_vocab, srv_error *e) {
    const cJSON *p = field(o, "prompt");
    if (!p) return srv_fail(e, 400, "prompt", "'prompt' is required");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && (cJSON_IsString(p->child) || cJSON_IsArray(p->child)))
        p = p->child; /* a batch of one */
    if (cJSON_IsString(p)) r->prompt_text = p->valuestring;
    else if (cJSON_IsArray(p) && p->child && cJSON_IsNumber(p->child)) {
        if (srv_parse_ids(p, "prompt", n_vocab, &r->prompt_ids, &r->n_prompt_ids, e)) return -1;
    } else
        return srv_fail(e, 400, "prompt", "'prompt' must be a string or an array of token ids (one prompt per request)");
    if ((cJSON_IsString(p) && !p->valuestring[0]))
        return srv_fail(e, 400, "prompt", "'prompt' is empty");
    int echo = 0;
    double best = 1;
    if (boolean(o, "echo", &echo, e) < 0) return -1;
    if (echo) return srv_fail(e, 400, "echo", "'echo' is not supported by this server");
    if (field(o, "suffix")) return srv_fail(e, 400, "suffix", "'suffix' is not supported by this server");
    if (integer(o, "best_of", 1, 1, &best, e) < 0) return -1;
    return 0;
}

int srv_request_parse(srv_request *r, srv_kind kind, cJSON *root, int n_vocab, srv_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->root = root;
    r->gp = fp4rt_generate_default_params();
    int rc = common_fields(r, root, e);
    if (!rc) rc = kind == SRV_CHAT ? chat_fields(r, root, e) : completion_fields(r, root, n_vocab, e);
    if (rc) srv_request_free(r);
    return rc;
}

void srv_request_free(srv_request *r) {
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    free(r->msgs);
    free(r->calls);
    free(r->tools_json);
    free(r->prompt_ids);
    cJSON_Delete(r->root);
    memset(r, 0, sizeof *r);
}

int srv_request_prompt(const srv_request *r, const fp4rt_model *m, int32_t **ids, size_t *n, srv_error *e) {
    *ids = NULL;
    *n = 0;
    if (r->kind == SRV_COMPLETION && r->prompt_ids) {
        *ids = malloc(r->n_prompt_ids * sizeof **ids);
        if (!*ids) return srv_fail(e, 500, NULL, "out of memory");
        memcpy(*ids, r->prompt_ids, r->n_prompt_ids * sizeof **ids);
        *n = r->n_prompt_ids;
        return 0;
    }
    char *text = NULL;
    const char *src = r->prompt_text;
    if (r->kind == SRV_CHAT) {
        if (fp4rt_chat_format(r->msgs, r->n_msgs, &r->cp, &text))
            return srv_fail(e, 400, "messages", "%s", fp4rt_last_error());
        src = text;
    }
    fp4rt_status st = fp4rt_tokenize(m, src, ids, n);
    fp4rt_free(text);
    if (st) return srv_fail(e, st == FP4RT_INVALID_ARGUMENT ? 400 : 500, NULL, "%s", fp4rt_last_error());
    if (*n == 0) {
        fp4rt_free(*ids);
        *ids = NULL;
        return srv_fail(e, 400, "prompt", "the prompt has no tokens");
    }
    return 0;
}
