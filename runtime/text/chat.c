/* The Qwen3.6 chat template (chat_template.jinja of Qwen/Qwen3.6-27B) in C.
 *
 * This follows the Jinja template statement by statement, as transformers renders it
 * (trim_blocks, lstrip_blocks, tojson = json.dumps(ensure_ascii=False)). The goldens in
 * tests/fixtures/chat/ were rendered by transformers from the real template; where this
 * file says "as the template", it means "the goldens pin it". Python string semantics
 * that matter here: `trim` is str.strip() (Unicode whitespace, not just ASCII), and
 * `split`, `rstrip('\n')`, `lstrip('\n')` work on substrings and newlines only.
 *
 * Thread safety: fp4rt_chat_format only reads its arguments; calls may run concurrently. */
#include "runtime/text/tokenizer_internal.h"
#include "runtime/text/chat_images.h"
#include "runtime/text/chat_json.h"
#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

/* A borrowed byte range of a UTF-8 string. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static span span_of(const char *s) {
    return (span){s ? s : "", s ? strlen(s) : 0};
}

/* ---- Python string semantics ------------------------------------------ */

/* Decodes the code point at s[0..n) (n >= 1, valid UTF-8 already checked); *len gets its
 * length in bytes. */
static unsigned decode_utf8(const unsigned char *s, size_t n, size_t *len) {
    if (s[0] < 0x80 || n < 2) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *len = 2;
        return ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    }
    if (s[0] < 0xF0 || n < 4) {
        *len = 3;
        return ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    }
    *len = 4;
    return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

/* Python's str.isspace(): bidirectional class WS, B or S, or category Zs. */
static int py_isspace(unsigned cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return 1;
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680) return 1;
    if (cp >= 0x2000 && cp <= 0x200A) return 1;
    return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static span py_lstrip(span s) {
    while (s.n) {
        size_t len;
        if (!py_isspace(decode_utf8((const unsigned char *)s.p, s.n, &len))) break;
        s.p += len;
        s.n -= len;
    }
    return s;
}

static span py_rstrip(span s) {
    while (s.n) {
        size_t start = s.n - 1, len;
        while (start > 0 && ((unsigned char)s.p[start] & 0xC0) == 0x80)
            start--;
        if (!py_isspace(decode_utf8((const unsigned char *)s.p + start, s.n - start, &len))) break;
        s.n = start;
    }
    return s;
}

/* Jinja's `trim` filter: str.strip(). */
static span py_trim(span s) {
    return py_rstrip(py_lstrip(s));
}

static span lstrip_nl(span s) {
    while (s.n && s.p[0] == '\n') {
        s.p++;
        s.n--;
    }
    return s;
}

static span rstrip_nl(span s) {
    while (s.n && s.p[s.n - 1] == '\n')
        s.n--;
    return s;
}

/* Offset of the first / last occurrence of the NUL-terminated needle, or -1. */
static long find_first(span s, const char *needle) {
    const char *hit = memmem(s.p, s.n, needle, strlen(needle));
    return hit ? (long)(hit - s.p) : -1;
}

static long find_last(span s, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = s.n >= k ? s.n - k + 1 : 0; i-- > 0;)
        if (memcmp(s.p + i, needle, k) == 0) return (long)i;
    return -1;
}

static int starts_with(span s, const char *w) {
    size_t k = strlen(w);
    return s.n >= k && memcmp(s.p, w, k) == 0;
}

static int ends_with(span s, const char *w) {
    size_t k = strlen(w);
    return s.n >= k && memcmp(s.p + s.n - k, w, k) == 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): what a Python
 * str can hold. */
static int valid_utf8(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s, cp, need;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else
            return 0;
        for (unsigned i = 1; i <= need; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        s += need + 1;
    }
    return 1;
}

/* ---- output ----------------------------------------------------------- */

typedef struct out_buf {
    fp4rt_strbuf b;
    int oom;
} out_buf;

static void put_n(out_buf *o, const char *s, size_t n) {
    if (!o->oom && fp4rt_strbuf_append(&o->b, s, n)) o->oom = 1;
}
static void put(out_buf *o, const char *s) {
    put_n(o, s, strlen(s));
}
static void put_span(out_buf *o, span s) {
    put_n(o, s.p, s.n);
}
static void put_json(out_buf *o, const fp4rt_json *v) {
    if (!o->oom && fp4rt_json_dump(&o->b, v)) o->oom = 1;
}

/* The fixed part of the tools section (after the tool list). */
static const char TOOLS_HEADER[] = "<|im_start|>system\n# Tools\n\n"
                                   "You have access to the following functions:\n\n<tools>";
static const char TOOLS_FOOTER[] =
    "\n</tools>"
    "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n"
    "</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\n"
    "that can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\n"
    "Reminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block "
    "must be nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the "
    "function call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current "
    "knowledge and do not tell the user about function calls\n"
    "</IMPORTANT>";

/* ---- checking --------------------------------------------------------- */

typedef enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL } role;

static int parse_role(const char *s, role *r) {
    static const char *const names[] = {"system", "user", "assistant", "tool"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *r = (role)i;
            return 1;
        }
    return 0;
}

/* Parsed inputs: the role of each message and the arguments of each tool call, in
 * message order (args[k] for the k-th tool call overall; NULL = no arguments). */
typedef struct parsed {
    role *roles;
    fp4rt_json **args;
    size_t n_args;
    fp4rt_json *tools;
} parsed;

static void parsed_free(parsed *p) {
    for (size_t i = 0; i < p->n_args; i++)
        fp4rt_json_free(p->args[i]);
    free(p->args);
    free(p->roles);
    fp4rt_json_free(p->tools);
}

static fp4rt_status check_text(size_t i, const char *what, const char *s) {
    if (s && !valid_utf8(s))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat message %zu: %s is not valid UTF-8", i,
                          what);
    return FP4RT_OK;
}

/* Validates everything the template would refuse (or render badly) and parses the JSON. */
static fp4rt_status check_input(const fp4rt_chat_message *m, size_t n, const fp4rt_chat_params *prm,
                                parsed *p) {
    char err[96];
    size_t total_calls = 0;
    if (n == 0) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: no messages");
    if (!m) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: messages is NULL with n = %zu", n);
    if (prm->thinking != FP4RT_THINKING_DEFAULT && prm->thinking != FP4RT_THINKING_ON &&
        prm->thinking != FP4RT_THINKING_OFF)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "chat: thinking = %d is not an fp4rt_thinking value", (int)prm->thinking);
    for (size_t i = 0; i < n; i++) {
        if (m[i].n_tool_calls && !m[i].tool_calls)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "chat message %zu: tool_calls is NULL with n_tool_calls = %zu", i,
                              m[i].n_tool_calls);
        total_calls += m[i].n_tool_calls;
    }
    p->roles = fp4rt_calloc(n, sizeof(*p->roles), "chat roles");
    p->args =
        fp4rt_calloc(total_calls ? total_calls : 1, sizeof(*p->args), "chat tool-call arguments");
    if (!p->roles || !p->args) return FP4RT_OUT_OF_MEMORY;
    p->n_args = total_calls; /* entries stay NULL until parsed; parsed_free frees what is there */

    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const fp4rt_chat_message *msg = &m[i];
        fp4rt_status s;
        if (!msg->role)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat message %zu: role is NULL", i);
        if (!parse_role(msg->role, &p->roles[i]))
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "chat message %zu: unknown role \"%.40s\" (expected system, user, "
                              "assistant or tool)",
                              i, msg->role);
        if (p->roles[i] == ROLE_SYSTEM && i != 0)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "chat message %zu: a system message must be the first", i);
        /* With no message before it, the template would not open the user turn that holds
         * the tool response. */
        if (p->roles[i] == ROLE_TOOL && i == 0)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "chat message 0: a tool message cannot be the first");
        if ((s = check_text(i, "content", msg->content)) != FP4RT_OK) return s;
        if (p->roles[i] != ROLE_ASSISTANT) {
            k += msg->n_tool_calls; /* ignored, as the template ignores them */
            continue;
        }
        if ((s = check_text(i, "reasoning_content", msg->reasoning_content)) != FP4RT_OK) return s;
        for (size_t j = 0; j < msg->n_tool_calls; j++, k++) {
            const fp4rt_tool_call *tc = &msg->tool_calls[j];
            if (!tc->name || !tc->name[0])
                return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                                  "chat message %zu: tool call %zu has no name", i, j);
            if (!valid_utf8(tc->name))
                return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                                  "chat message %zu: tool call %zu: name is not valid UTF-8", i, j);
            if (!tc->arguments_json) continue;
            if (!valid_utf8(tc->arguments_json))
                return fp4rt_fail(
                    FP4RT_INVALID_ARGUMENT,
                    "chat message %zu: tool call %zu (%s): arguments_json is not valid UTF-8", i, j,
                    tc->name);
            p->args[k] = fp4rt_json_parse(tc->arguments_json, err, sizeof(err));
            if (!p->args[k])
                return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                                  "chat message %zu: tool call %zu (%s): arguments_json: %s", i, j,
                                  tc->name, err);
            if (p->args[k]->kind != FP4RT_JSON_OBJECT)
                return fp4rt_fail(
                    FP4RT_INVALID_ARGUMENT,
                    "chat message %zu: tool call %zu (%s): arguments_json is not a JSON object", i,
                    j, tc->name);
        }
    }
    if (prm->tools_json) {
        if (!valid_utf8(prm->tools_json))
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: tools_json is not valid UTF-8");
        p->tools = fp4rt_json_parse(prm->tools_json, err, sizeof(err));
        if (!p->tools) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: tools_json: %s", err);
        if (p->tools->kind != FP4RT_JSON_ARRAY)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: tools_json is not a JSON array");
        size_t t = 0;
        for (const fp4rt_json *tool = p->tools->child; tool; tool = tool->next, t++)
            if (tool->kind != FP4RT_JSON_OBJECT)
                return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                                  "chat: tools_json: tool %zu is not a JSON object", t);
    }
    return FP4RT_OK;
}

/* ---- rendering -------------------------------------------------------- */

/* Index of the last "real" user query: the last user message whose trimmed content is not
 * just a <tool_response>...</tool_response> block; -1 if there is none. In continuation
 * mode transformers appends a marker to the final message, so a final user message always
 * counts as a query. */
static long last_query_index(const fp4rt_chat_message *m, const role *roles, size_t n, int cont) {
    for (size_t i = n; i-- > 0;) {
        if (roles[i] != ROLE_USER) continue;
        span c = py_trim(span_of(m[i].content));
        if ((cont && i == n - 1) ||
            !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>")))
            return (long)i;
    }
    return -1;
}

/* One tool call: "<tool_call>\n<function=NAME>\n", a parameter block per argument (strings
 * raw, other values as JSON), "</function>\n</tool_call>". */
static void render_tool_call(out_buf *o, const fp4rt_tool_call *tc, const fp4rt_json *args,
                             int first, span content) {
    if (!first)
        put(o, "\n");
    else if (py_trim(content).n)
        put(o, "\n\n");
    put(o, "<tool_call>\n<function=");
    put(o, tc->name);
    put(o, ">\n");
    for (const fp4rt_json *a = args ? args->child : NULL; a; a = a->next) {
        put(o, "<parameter=");
        put(o, a->key);
        put(o, ">\n");
        if (a->kind == FP4RT_JSON_STRING)
            put_n(o, a->text, a->text_len);
        else
            put_json(o, a);
        put(o, "\n</parameter>\n");
    }
    put(o, "</function>\n</tool_call>");
}

/* An assistant turn: reasoning (from reasoning_content, or split out of the content at
 * </think>), shown in a think block only if show_think; then the content and tool calls.
 * With stop_after_content the turn ends right after the content (continuation). */
static void render_assistant(out_buf *o, const fp4rt_chat_message *msg, fp4rt_json *const *args,
                             int show_think, int stop_after_content) {
    span content = py_trim(span_of(msg->content));
    span reasoning = {"", 0};
    if (msg->reasoning_content) {
        reasoning = span_of(msg->reasoning_content);
    } else if (find_first(content, "</think>") >= 0) {
        /* content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
        span before = rstrip_nl((span){content.p, (size_t)find_first(content, "</think>")});
        long open = find_last(before, "<think>");
        if (open >= 0) before = (span){before.p + open + 7, before.n - (size_t)open - 7};
        reasoning = lstrip_nl(before);
        /* content.split('</think>')[-1].lstrip('\n') */
        size_t after = (size_t)find_last(content, "</think>") + 8;
        content = lstrip_nl((span){content.p + after, content.n - after});
    }
    reasoning = py_trim(reasoning);

    put(o, "<|im_start|>assistant\n");
    if (show_think) {
        put(o, "<think>\n");
        put_span(o, reasoning);
        put(o, "\n</think>\n\n");
    }
    put_span(o, content);
    if (stop_after_content) return;
    for (size_t j = 0; j < msg->n_tool_calls; j++)
        render_tool_call(o, &msg->tool_calls[j], args[j], j == 0, content);
    put(o, "<|im_end|>\n");
}

fp4rt_chat_params fp4rt_chat_default_params(void) {
    fp4rt_chat_params p;
    memset(&p, 0, sizeof(p));
    return p;
}

/* Invalid UTF-8 in the text of a message (content, reasoning_content) is replaced by
 * U+FFFD, as the tokenizer does: when there is any, *copy gets a copy of the messages
 * whose bad strings are malloc'ed clean copies (listed in *owned, n_owned of them), and
 * one warning is logged. The JSON fields stay checked (an error). */
static fp4rt_status sanitize_messages(const fp4rt_chat_message *m, size_t n, fp4rt_chat_message **copy,
                                      char ***owned, size_t *n_owned) {
    *copy = NULL;
    *owned = NULL;
    *n_owned = 0;
    size_t bad = 0;
    for (size_t i = 0; m && i < n; i++)
        bad += (m[i].content && !valid_utf8(m[i].content)) +
               (m[i].reasoning_content && !valid_utf8(m[i].reasoning_content));
    if (!bad) return FP4RT_OK;
    *copy = fp4rt_malloc(n * sizeof **copy, "chat messages");
    *owned = fp4rt_calloc(bad, sizeof **owned, "chat messages");
    if (!*copy || !*owned) return FP4RT_OUT_OF_MEMORY;
    memcpy(*copy, m, n * sizeof **copy);
    for (size_t i = 0; i < n; i++) {
        const char **f[2] = {&(*copy)[i].content, &(*copy)[i].reasoning_content};
        for (int k = 0; k < 2; k++) {
            if (!*f[k] || valid_utf8(*f[k])) continue;
            size_t len;
            char *c = fp4rt_utf8_sanitize(*f[k], strlen(*f[k]), &len);
            if (!c) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "chat: out of memory");
            (*owned)[(*n_owned)++] = c;
            *f[k] = c;
        }
    }
    fp4rt_log(FP4RT_LOG_WARN, "chat: invalid UTF-8 in %zu message text(s) was replaced by U+FFFD", bad);
    return FP4RT_OK;
}

static fp4rt_status chat_format_valid(const fp4rt_chat_message *messages, size_t n,
                                      const fp4rt_chat_params *params, char **out);

fp4rt_status fp4rt_chat_format(const fp4rt_chat_message *messages, size_t n,
                               const fp4rt_chat_params *params, char **out) {
    if (!out) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: out is NULL");
    *out = NULL;
    fp4rt_chat_message *copy;
    char **owned;
    size_t n_owned;
    fp4rt_status s = sanitize_messages(messages, n, &copy, &owned, &n_owned);
    /* then the image marks before the contents of messages with images */
    fp4rt_chat_message *icopy = NULL;
    char **iowned = NULL;
    size_t n_iowned = 0;
    if (!s) s = fp4rt_chat_add_images(copy ? copy : messages, n, &icopy, &iowned, &n_iowned);
    if (!s) s = chat_format_valid(icopy ? icopy : copy ? copy : messages, n, params, out);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    for (size_t i = 0; i < n_iowned; i++) free(iowned[i]);
    free(owned);
    free(copy);
    free(iowned);
    free(icopy);
    return s;
}

/* fp4rt_chat_format once the message texts are valid UTF-8. */
static fp4rt_status chat_format_valid(const fp4rt_chat_message *messages, size_t n,
                                      const fp4rt_chat_params *params, char **out) {
    fp4rt_chat_params prm = params ? *params : fp4rt_chat_default_params();
    const int cont = prm.continue_final_message != 0;

    parsed p = {0};
    fp4rt_status s = check_input(messages, n, &prm, &p);
    long last_query = s == FP4RT_OK ? last_query_index(messages, p.roles, n, cont) : 0;
    if (s == FP4RT_OK && last_query < 0)
        s = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat: no user query (every user message is a bare "
                                               "<tool_response> block, or there is none)");
    if (s != FP4RT_OK) {
        parsed_free(&p);
        return s;
    }

    out_buf o = {{NULL, 0, 0}, 0};
    /* The system turn: the tools section (when tools are given) with the system text after it. */
    span system = p.roles[0] == ROLE_SYSTEM ? py_trim(span_of(messages[0].content)) : (span){"", 0};
    if (p.tools && p.tools->child) {
        put(&o, TOOLS_HEADER);
        for (const fp4rt_json *tool = p.tools->child; tool; tool = tool->next) {
            put(&o, "\n");
            put_json(&o, tool);
        }
        put(&o, TOOLS_FOOTER);
        if (system.n) {
            put(&o, "\n\n");
            put_span(&o, system);
        }
        put(&o, "<|im_end|>\n");
    } else if (p.roles[0] == ROLE_SYSTEM) {
        put(&o, "<|im_start|>system\n");
        put_span(&o, system);
        put(&o, "<|im_end|>\n");
    }

    size_t first_call = 0; /* index into p.args of this message's first tool call */
    for (size_t i = 0; i < n; i++) {
        const fp4rt_chat_message *msg = &messages[i];
        const int stop = cont && i == n - 1;
        span content = py_trim(span_of(msg->content));
        switch (p.roles[i]) {
        case ROLE_SYSTEM:
            break; /* rendered above */
        case ROLE_USER:
            put(&o, "<|im_start|>user\n");
            put_span(&o, content);
            if (!stop) put(&o, "<|im_end|>\n");
            break;
        case ROLE_ASSISTANT:
            render_assistant(&o, msg, p.args + first_call,
                             prm.preserve_thinking || (long)i > last_query, stop);
            break;
        case ROLE_TOOL:
            /* Consecutive tool messages share one user turn. */
            if (p.roles[i - 1] != ROLE_TOOL) put(&o, "<|im_start|>user");
            put(&o, "\n<tool_response>\n");
            put_span(&o, content);
            if (stop) break;
            put(&o, "\n</tool_response>");
            if (i == n - 1 || p.roles[i + 1] != ROLE_TOOL) put(&o, "<|im_end|>\n");
            break;
        }
        first_call += msg->n_tool_calls;
    }

    if (cont && o.oom) {
        /* reported below */
    } else if (cont) {
        /* transformers refuses a continuation whose (stripped) content does not appear as
         * such in the prompt, e.g. one holding a </think> block that the template splits. */
        span final = py_trim(span_of(messages[n - 1].content));
        if (final.n && !memmem(o.b.data, o.b.len, final.p, final.n)) {
            free(o.b.data);
            parsed_free(&p);
            return fp4rt_fail(
                FP4RT_INVALID_ARGUMENT,
                "chat message %zu: continue_final_message: the content does not appear verbatim "
                "in the prompt (a <think> block in it is rendered apart)",
                n - 1);
        }
        /* transformers cuts the text at the end of the final message's content and strips
         * the whitespace before the cut. */
        o.b.len = py_rstrip((span){o.b.data, o.b.len}).n;
    } else if (!prm.no_generation_prompt) {
        put(&o, "<|im_start|>assistant\n");
        put(&o, prm.thinking == FP4RT_THINKING_OFF ? "<think>\n\n</think>\n\n" : "<think>\n");
    }
    parsed_free(&p);

    if (!o.oom && !o.b.data)
        put(&o, ""); /* cannot happen (there is a user turn); keeps *out non-NULL */
    if (o.oom) {
        free(o.b.data);
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "chat: out of memory building the prompt");
    }
    o.b.data[o.b.len] = '\0';
    *out = o.b.data;
    return FP4RT_OK;
}
