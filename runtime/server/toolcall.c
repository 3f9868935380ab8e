/* Qwen3.6 tool-call XML read back into OpenAI tool calls (toolcall.h). */
#include "runtime/server/toolcall.h"

#include <stdlib.h>
#include <string.h>

static const char k_open[] = "<tool_call>", k_close[] = "</tool_call>";

/* First occurrence of needle in [s, s + n), or NULL. */
static const char *find(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return s + i;
    return NULL;
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* The declared JSON-schema type of parameter `key` of tool `name`, or NULL. */
static const char *schema_type(const cJSON *tools, const char *name, const char *key) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (!cJSON_IsString(nm) || strcmp(nm->valuestring, name)) continue;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(params, "properties");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(props, key), "type");
        return cJSON_IsString(ty) ? ty->valuestring : NULL;
    }
    return NULL;
}

/* A parameter's value as JSON (see fp4rt_toolcall_parse). */
static cJSON *param_value(const char *v, size_t n, const char *type) {
    char *text = dup_n(v, n);
    if (!text) return NULL;
    cJSON *j = NULL;
    if (!type || strcmp(type, "string")) {
        const char *end = NULL;
        j = cJSON_ParseWithOpts(text, &end, 1);
        if (j && cJSON_IsString(j) && type == NULL) { /* a quoted string stays as written */
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) j = cJSON_CreateString(text);
    free(text);
    return j;
}

/* The JSON form {"name": NAME, "arguments": OBJECT-or-JSON-text}. */
static int parse_json_call(const char *block, size_t n, char **name, char **arguments) {
    cJSON *j = cJSON_ParseWithLength(block, n);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
    if (!cJSON_IsObject(j) || !cJSON_IsString(nm) || !nm->valuestring[0]) {
        cJSON_Delete(j);
        return -1;
    }
    *name = dup_n(nm->valuestring, strlen(nm->valuestring));
    if (cJSON_IsString(args)) *arguments = dup_n(args->valuestring, strlen(args->valuestring));
    else if (args && !cJSON_IsNull(args)) *arguments = cJSON_PrintUnformatted(args);
    else *arguments = dup_n("{}", 2);
    cJSON_Delete(j);
    if (*name && *arguments) return 0;
    free(*name), free(*arguments);
    *name = *arguments = NULL;
    return -1;
}

int fp4rt_toolcall_parse(const char *block, size_t n, const cJSON *tools, char **name, char **arguments) {
    *name = *arguments = NULL;
    const char *end = block + n;
    const char *f = find(block, n, "<function=");
    if (!f) return parse_json_call(block, n, name, arguments);
    f += strlen("<function=");
    const char *gt = memchr(f, '>', (size_t)(end - f));
    if (!gt || gt == f) return -1;
    char *nm = dup_n(f, (size_t)(gt - f));
    cJSON *args = cJSON_CreateObject();
    if (!nm || !args) goto fail;
    const char *p = gt + 1;
    for (;;) {
        const char *q = find(p, (size_t)(end - p), "<parameter=");
        if (!q) break;
        q += strlen("<parameter=");
        const char *kg = memchr(q, '>', (size_t)(end - q));
        if (!kg) break;
        const char *v = kg + 1;
        const char *ve = find(v, (size_t)(end - v), "</parameter>");
        const char *next = ve ? ve + strlen("</parameter>") : end;
        if (!ve) { /* unterminated (the output was cut): up to </function> or the end */
            ve = find(v, (size_t)(end - v), "</function>");
            if (!ve) ve = end;
        }
        if (v < ve && *v == '\n') v++;
        if (ve > v && ve[-1] == '\n') ve--;
        char *key = dup_n(q, (size_t)(kg - q));
        if (!key) goto fail;
        cJSON *val = param_value(v, (size_t)(ve - v), schema_type(tools, nm, key));
        if (!val) {
            free(key);
            goto fail;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(args, key); /* a repeated key: the last value */
        cJSON_AddItemToObject(args, key, val);
        free(key);
        p = next;
    }
    *arguments = cJSON_PrintUnformatted(args);
    cJSON_Delete(args);
    if (!*arguments) {
        free(nm);
        return -1;
    }
    *name = nm;
    return 0;
fail:
    free(nm);
    cJSON_Delete(args);
    return -1;
}

void fp4rt_tc_split_feed(fp4rt_tc_split *sp, const char *text, size_t n) { fp4rt_sbuf_add(&sp->pending, text, n); }

/* Length of the longest suffix of s[0, n) that is a proper prefix of tag. */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t m = strlen(tag);
    for (size_t k = m - 1 < n ? m - 1 : n; k > 0; k--)
        if (!memcmp(s + n - k, tag, k)) return k;
    return 0;
}

/* Moves the first n pending bytes to out. */
static void take(fp4rt_tc_split *sp, size_t n) {
    sp->out.n = 0;
    fp4rt_sbuf_add(&sp->out, sp->pending.s, n);
    fp4rt_sbuf_consume(&sp->pending, n);
}

int fp4rt_tc_split_next(fp4rt_tc_split *sp, int final, fp4rt_tc_piece *out) {
    memset(out, 0, sizeof *out);
    for (;;) {
        const char *s = fp4rt_sbuf_str(&sp->pending);
        size_t n = sp->pending.n;
        if (!sp->in_call) {
            const char *t = find(s, n, k_open);
            size_t ready = t ? (size_t)(t - s) : n - (final ? 0 : partial_tag(s, n, k_open));
            if (ready > 0) {
                take(sp, ready);
                out->content = fp4rt_sbuf_str(&sp->out);
                out->content_n = sp->out.n;
                return 1;
            }
            if (!t) return 0;
            fp4rt_sbuf_consume(&sp->pending, strlen(k_open));
            sp->in_call = 1;
            continue;
        }
        const char *t = find(s, n, k_close);
        if (!t && !final) return 0;
        if (!t && n == 0) { /* final, an empty unterminated block: nothing to report */
            sp->in_call = 0;
            return 0;
        }
        size_t len = t ? (size_t)(t - s) : n;
        take(sp, len);
        if (t) fp4rt_sbuf_consume(&sp->pending, strlen(k_close));
        sp->in_call = 0;
        out->block = fp4rt_sbuf_str(&sp->out);
        out->block_n = sp->out.n;
        return 1;
    }
}

void fp4rt_tc_split_free(fp4rt_tc_split *sp) {
    fp4rt_sbuf_free(&sp->pending);
    fp4rt_sbuf_free(&sp->out);
    sp->in_call = 0;
}
