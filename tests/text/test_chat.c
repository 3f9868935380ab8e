/* Chat template: every tests/fixtures/chat/NN-name.json conversation is rendered with
 * fp4rt_chat_format and compared byte for byte with NN-name.txt, which transformers
 * rendered from the real Qwen3.6 template (tools/make_chat_golden.py). Then bad inputs,
 * which must be INVALID_ARGUMENT errors naming the message.
 * Runs from the repository root (ctest sets the working directory). */
#include "runtime/base/common.h" /* fp4rt_debug_fail_alloc_after */
#include "fp4rt.h"
#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>

/* FP4RT_CHAT_FIXTURES overrides the directory (tools/make_chat_golden.py --fuzz uses it). */
static const char *fixture_dir(void) {
    const char *d = getenv("FP4RT_CHAT_FIXTURES");
    return d && d[0] ? d : "tests/fixtures/chat";
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static const char *str_or_null(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define FP4RT_MIN_(a, b) ((a) < (b) ? (a) : (b))

/* On mismatch: the first differing offset with some context from both sides. */
static void report_diff(const char *name, const char *got, const char *want, size_t want_len) {
    size_t got_len = strlen(got), i = 0;
    while (i < got_len && i < want_len && got[i] == want[i])
        i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "%s: first difference at byte %zu (got %zu bytes, golden %zu)\n", name, i,
            got_len, want_len);
    fprintf(stderr, "  golden: \"%.*s\"\n", (int)(FP4RT_MIN_(want_len, i + 60) - from),
            want + from);
    fprintf(stderr, "  got:    \"%.*s\"\n", (int)(FP4RT_MIN_(got_len, i + 60) - from), got + from);
}

/* Skips one JSON value (already known to be well-formed) starting at p. */
static const char *skip_json_value(const char *p) {
    int depth = 0;
    do {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == ':')
            p++;
        if (*p == '"') {
            for (p++; *p != '"'; p++)
                if (*p == '\\') p++;
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else {
            while (*p && !strchr(" \t\n\r,:]}", *p))
                p++;
        }
    } while (depth > 0 && *p);
    return p;
}

/* The text of the top-level "tools" value, copied as written: re-printing it with cJSON
 * would turn integers beyond 2^53 into floats. NULL if absent. */
static char *raw_tools(const char *text) {
    const char *p = strchr(text, '{');
    while (p && *p && *p != '}') {
        p++;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
            p++;
        if (*p != '"') break;
        const char *key = p, *value = skip_json_value(p);
        while (*value == ' ' || *value == '\t' || *value == '\n' || *value == '\r' || *value == ':')
            value++;
        const char *end = skip_json_value(value);
        if (strncmp(key, "\"tools\"", 7) == 0) return strndup(value, (size_t)(end - value));
        p = end;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != ',') break;
    }
    return NULL;
}

/* cJSON's compact text of v in a malloc'ed copy (so that every owned string is free()d). */
static char *print_json(const cJSON *v) {
    char *p = cJSON_PrintUnformatted(v), *copy = p ? strdup(p) : NULL;
    cJSON_free(p);
    return copy;
}

/* Renders one fixture; returns 1 if it matched its golden. */
static int run_fixture(const char *name) {
    char path[512];
    size_t len = 0, want_len = 0;
    snprintf(path, sizeof path, "%s/%s.json", fixture_dir(), name);
    char *text = read_all(path, &len);
    snprintf(path, sizeof path, "%s/%s.txt", fixture_dir(), name);
    char *want = read_all(path, &want_len);
    /* NAME.err instead of NAME.txt: transformers refused the input, so must we. */
    snprintf(path, sizeof path, "%s/%s.err", fixture_dir(), name);
    const int want_error = !want && access(path, R_OK) == 0;
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if ((!want && !want_error) || !cJSON_IsArray(msgs)) {
        fprintf(stderr, "%s: cannot read the fixture or its golden\n", name);
        cJSON_Delete(root);
        free(text);
        free(want);
        return 0;
    }

    size_t n = (size_t)cJSON_GetArraySize(msgs), n_calls = 0;
    const cJSON *jm;
    cJSON_ArrayForEach(jm, msgs) n_calls +=
        (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(jm, "tool_calls"));
    fp4rt_chat_message *m = calloc(n + 1, sizeof(*m));
    fp4rt_tool_call *calls = calloc(n_calls + 1, sizeof(*calls));
    char **owned = calloc(n_calls + 2, sizeof(*owned)); /* printed JSON we must free */
    size_t n_owned = 0, k = 0, i = 0;
    cJSON_ArrayForEach(jm, msgs) {
        m[i].role = str_or_null(jm, "role");
        m[i].content = str_or_null(jm, "content");
        m[i].reasoning_content = str_or_null(jm, "reasoning_content");
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(jm, "tool_calls");
        m[i].tool_calls = calls + k;
        m[i].n_tool_calls = (size_t)cJSON_GetArraySize(tcs);
        const cJSON *tc;
        cJSON_ArrayForEach(tc, tcs) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            if (!fn) fn = tc;
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            calls[k].name = str_or_null(fn, "name");
            if (cJSON_IsString(args))
                calls[k].arguments_json = args->valuestring;
            else if (args)
                calls[k].arguments_json = owned[n_owned++] = print_json(args);
            k++;
        }
        i++;
    }
    fp4rt_chat_params prm = fp4rt_chat_default_params();
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (cJSON_IsArray(tools)) prm.tools_json = owned[n_owned++] = raw_tools(text);
    prm.no_generation_prompt =
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt"));
    const cJSON *think = cJSON_GetObjectItemCaseSensitive(root, "enable_thinking");
    prm.thinking = cJSON_IsTrue(think)    ? FP4RT_THINKING_ON
                   : cJSON_IsFalse(think) ? FP4RT_THINKING_OFF
                                          : FP4RT_THINKING_DEFAULT;
    prm.preserve_thinking =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "preserve_thinking"));
    prm.continue_final_message =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "continue_final_message"));

    char *got = NULL;
    fp4rt_status s = fp4rt_chat_format(m, n, &prm, &got);
    int ok;
    if (want_error) {
        ok = s == FP4RT_INVALID_ARGUMENT && !got;
        if (!ok) fprintf(stderr, "%s: expected INVALID_ARGUMENT, got status %d\n", name, (int)s);
    } else {
        ok = s == FP4RT_OK && got && strlen(got) == want_len && memcmp(got, want, want_len) == 0;
        if (s != FP4RT_OK)
            fprintf(stderr, "%s: fp4rt_chat_format failed: %s\n", name, fp4rt_last_error());
        else if (!ok)
            report_diff(name, got, want, want_len);
    }

    fp4rt_free(got);
    for (size_t j = 0; j < n_owned; j++)
        free(owned[j]);
    free(owned);
    free(calls);
    free(m);
    cJSON_Delete(root);
    free(text);
    free(want);
    return ok;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_goldens(void) {
    DIR *d = opendir(fixture_dir());
    CHECK_MSG(d != NULL, "cannot open %s (run from the repository root)", fixture_dir());
    if (!d) return;
    enum { MAX_FIXTURES = 4096 };
    char **names = calloc(MAX_FIXTURES, sizeof(*names));
    int n = 0;
    struct dirent *e;
    while (names && (e = readdir(d)) && n < MAX_FIXTURES) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
            names[n] = strdup(e->d_name);
            names[n][l - 5] = '\0';
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp_names);
    int matched = 0;
    for (int i = 0; i < n; i++) {
        int ok = run_fixture(names[i]);
        CHECK_MSG(ok, "golden %s", names[i]);
        matched += ok;
        free(names[i]);
    }
    free(names);
    printf("chat goldens: %d of %d match\n", matched, n);
    CHECK_MSG(n >= 20, "expected at least 20 fixtures, found %d", n);
}

/* Expects INVALID_ARGUMENT, NULL output, and an error message containing `needle`. */
static void count_warn(fp4rt_log_level level, const char *msg, void *user) {
    (void)msg;
    if (level == FP4RT_LOG_WARN) ++*(int *)user;
}

static void expect_invalid(const char *what, const fp4rt_chat_message *m, size_t n,
                           const fp4rt_chat_params *prm, const char *needle) {
    char *out = (char *)"untouched";
    fp4rt_status s = fp4rt_chat_format(m, n, prm, &out);
    const char *msg = fp4rt_last_error();
    CHECK_MSG(s == FP4RT_INVALID_ARGUMENT, "%s: status %d", what, (int)s);
    CHECK_MSG(out == NULL, "%s: *out not cleared", what);
    CHECK_MSG(msg && strstr(msg, needle), "%s: error \"%s\" lacks \"%s\"", what,
              msg ? msg : "(null)", needle);
}

/* A tool call whose arguments_json is refused with `needle` in the error. */
static void expect_bad_arguments(const char *json, const char *needle) {
    const fp4rt_tool_call call = {.name = "f", .arguments_json = json};
    const fp4rt_chat_message m[] = {{.role = "user", .content = "hi"},
                                    {.role = "assistant", .tool_calls = &call, .n_tool_calls = 1}};
    expect_invalid(json, m, 2, NULL, needle);
}

static void test_bad_input(void) {
    fp4rt_chat_params prm = fp4rt_chat_default_params();
    const fp4rt_chat_message user = {.role = "user", .content = "hi"};

    expect_invalid("no messages", &user, 0, NULL, "no messages");
    const fp4rt_chat_message bad_role[] = {user, {.role = "developer", .content = "x"}};
    expect_invalid("unknown role", bad_role, 2, NULL, "message 1: unknown role \"developer\"");
    const fp4rt_chat_message null_role[] = {{.role = NULL}};
    expect_invalid("NULL role", null_role, 1, NULL, "message 0: role is NULL");
    const fp4rt_chat_message late_system[] = {user, {.role = "system", .content = "s"}};
    expect_invalid("system not first", late_system, 2, NULL,
                   "message 1: a system message must be the first");
    const fp4rt_chat_message tool_first[] = {{.role = "tool", .content = "r"}, user};
    expect_invalid("tool first", tool_first, 2, NULL,
                   "message 0: a tool message cannot be the first");
    const fp4rt_chat_message no_query[] = {
        {.role = "system", .content = "s"},
        {.role = "user", .content = "<tool_response>x</tool_response>"}};
    expect_invalid("no user query", no_query, 2, NULL, "no user query");
    const fp4rt_chat_message only_assistant[] = {{.role = "assistant", .content = "a"}};
    expect_invalid("no user at all", only_assistant, 1, NULL, "no user query");

    const fp4rt_tool_call bad_json = {.name = "f", .arguments_json = "{\"a\": 1,}"};
    const fp4rt_chat_message m_bad_json[] = {
        user, {.role = "assistant", .tool_calls = &bad_json, .n_tool_calls = 1}};
    expect_invalid("malformed arguments_json", m_bad_json, 2, NULL,
                   "message 1: tool call 0 (f): arguments_json");
    const fp4rt_tool_call not_object = {.name = "f", .arguments_json = "[1, 2]"};
    const fp4rt_chat_message m_not_obj[] = {
        user, {.role = "assistant", .tool_calls = &not_object, .n_tool_calls = 1}};
    expect_invalid("arguments not an object", m_not_obj, 2, NULL, "is not a JSON object");
    const fp4rt_tool_call nan_arg = {.name = "f", .arguments_json = "{\"x\": NaN}"};
    const fp4rt_chat_message m_nan[] = {
        user, {.role = "assistant", .tool_calls = &nan_arg, .n_tool_calls = 1}};
    expect_invalid("NaN argument", m_nan, 2, NULL, "message 1: tool call 0 (f)");
    const fp4rt_tool_call lone = {.name = "f", .arguments_json = "{\"x\": \"\\ud800\"}"};
    const fp4rt_chat_message m_lone[] = {
        user, {.role = "assistant", .tool_calls = &lone, .n_tool_calls = 1}};
    expect_invalid("unpaired surrogate", m_lone, 2, NULL, "surrogate");
    /* each way a string escape in arguments_json can be wrong */
    expect_bad_arguments("{\"x\": \"\\q\"}", "bad escape");
    expect_bad_arguments("{\"x\": \"\\u12G4\"}", "bad \\u escape");
    expect_bad_arguments("{\"x\": \"\\udc00\"}", "unpaired surrogate");
    expect_bad_arguments("{\"x\": \"\\ud800\\u0041\"}", "unpaired surrogate");
    expect_bad_arguments("{\"x\": \"\\u0000\"}", "\\u0000 is not supported");
    expect_bad_arguments("{\"x\": \"a\tb\"}", "control character");
    /* every valid escape decodes (the call is re-serialized from the decoded text) */
    const fp4rt_tool_call escapes = {.name = "f",
                                     .arguments_json = "{\"x\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}"};
    const fp4rt_chat_message m_escapes[] = {
        user, {.role = "assistant", .tool_calls = &escapes, .n_tool_calls = 1}};
    char *esc_out = NULL;
    CHECK_EQ_INT(fp4rt_chat_format(m_escapes, 2, NULL, &esc_out), FP4RT_OK);
    CHECK_MSG(esc_out && strstr(esc_out, "<parameter=x>\n\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\n</parameter>"),
              "escapes decoded: %s", esc_out ? esc_out : "(null)");
    free(esc_out);
    const fp4rt_tool_call unnamed = {.name = NULL, .arguments_json = "{}"};
    const fp4rt_chat_message m_unnamed[] = {
        user, {.role = "assistant", .tool_calls = &unnamed, .n_tool_calls = 1}};
    expect_invalid("tool call without name", m_unnamed, 2, NULL,
                   "message 1: tool call 0 has no name");
    const fp4rt_chat_message m_null_calls[] = {
        user, {.role = "assistant", .tool_calls = NULL, .n_tool_calls = 2}};
    expect_invalid("NULL tool_calls", m_null_calls, 2, NULL, "message 1: tool_calls is NULL");
    /* invalid UTF-8 in message text is replaced by U+FFFD (as the tokenizer does), with
       one warning per call; the caller's strings are not changed */
    const fp4rt_chat_message bad_utf8[] = {{.role = "user", .content = "a\xC3("},
                                           {.role = "assistant", .content = "ok", .reasoning_content = "\xff"},
                                           {.role = "user", .content = "\xC0\xAFz"}};
    int warns = 0;
    fp4rt_log_set(count_warn, &warns);
    char *fixed = NULL;
    fp4rt_status fst = fp4rt_chat_format(bad_utf8, 3, NULL, &fixed);
    fp4rt_log_set(NULL, NULL);
    CHECK_MSG(fst == FP4RT_OK, "invalid UTF-8: %s", fp4rt_last_error());
    CHECK(warns == 1);
    CHECK(fixed && strstr(fixed, "<|im_start|>user\na\xEF\xBF\xBD(<|im_end|>"));
    CHECK(fixed && strstr(fixed, "<|im_start|>user\n\xEF\xBF\xBD\xEF\xBF\xBDz<|im_end|>"));
    CHECK(!strcmp(bad_utf8[0].content, "a\xC3("));
    fp4rt_free(fixed);

    prm.tools_json = "{\"type\": \"function\"}";
    expect_invalid("tools not an array", &user, 1, &prm, "tools_json is not a JSON array");
    prm.tools_json = "[{\"a\": 1}, 3]";
    expect_invalid("tool not an object", &user, 1, &prm, "tool 1 is not a JSON object");
    prm.tools_json = "[{\"a\": }]";
    expect_invalid("malformed tools_json", &user, 1, &prm, "tools_json:");
    prm.tools_json = NULL;
    prm.thinking = (fp4rt_thinking)7;
    expect_invalid("bad thinking value", &user, 1, &prm, "thinking = 7");

    prm.thinking = FP4RT_THINKING_DEFAULT;
    prm.continue_final_message = 1;
    const fp4rt_chat_message cont_think[] = {user,
                                             {.role = "assistant", .content = "<think>r</think>a"}};
    expect_invalid("continuation split by </think>", cont_think, 2, &prm,
                   "message 1: continue_final_message");
    prm.continue_final_message = 0;

    fp4rt_status s = fp4rt_chat_format(&user, 1, NULL, NULL);
    CHECK(s == FP4RT_INVALID_ARGUMENT);
}

/* Checks the JSON writer on values the goldens do not cover. */
static void test_json_numbers(void) {
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"v\": 1e16}", "1e+16"},
        {"{\"v\": 1e15}", "1000000000000000.0"},
        {"{\"v\": 0.0001}", "0.0001"},
        {"{\"v\": 1e-5}", "1e-05"},
        {"{\"v\": -0.0}", "-0.0"},
        {"{\"v\": 0.1}", "0.1"},
        {"{\"v\": 123.456e1}", "1234.56"},
        {"{\"v\": 1e400}", "Infinity"},
        {"{\"v\": 5e-324}", "5e-324"},
        {"{\"v\": 1.7976931348623157e308}", "1.7976931348623157e+308"},
        {"{\"v\": 2.5E+3}", "2500.0"},
        {"{\"v\": [1.10, {}, []]}", "[1.1, {}, []]"},
        {"{\"v\": \"\\u00e9\\/\\b\\f\\u001f\\u007f\"}", "\xC3\xA9/\b\f\x1F\x7F"},
        {"{\"v\": {\"\\\"k\\n\": \"\\u001f\"}}", "{\"\\\"k\\n\": \"\\u001f\"}"},
    };
    const fp4rt_chat_message user = {.role = "user", .content = "q"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const fp4rt_tool_call tc = {.name = "f", .arguments_json = cases[i].in};
        const fp4rt_chat_message m[] = {
            user, {.role = "assistant", .tool_calls = &tc, .n_tool_calls = 1}};
        fp4rt_chat_params prm = fp4rt_chat_default_params();
        prm.no_generation_prompt = 1;
        char *out = NULL;
        fp4rt_status s = fp4rt_chat_format(m, 2, &prm, &out);
        char want[256];
        snprintf(want, sizeof want, "<parameter=v>\n%s\n</parameter>\n", cases[i].want);
        CHECK_MSG(s == FP4RT_OK && out && strstr(out, want), "%s -> %s (got %s)", cases[i].in,
                  cases[i].want, out ? out : fp4rt_last_error());
        fp4rt_free(out);
    }
}

/* Allocation failures inside fp4rt_chat_format: OUT_OF_MEMORY, no output, no leak. */
static void test_alloc_failure(void) {
    const fp4rt_tool_call tc = {.name = "f", .arguments_json = "{\"a\": [1, 2]}"};
    const fp4rt_chat_message m[] = {
        {.role = "user", .content = "q"},
        {.role = "assistant", .content = "a", .tool_calls = &tc, .n_tool_calls = 1}};
    for (long k = 1; k <= 2; k++) {
        char *out = NULL;
        fp4rt_debug_fail_alloc_after(k);
        fp4rt_status s = fp4rt_chat_format(m, 2, NULL, &out);
        fp4rt_debug_fail_alloc_after(0);
        CHECK_MSG(s == FP4RT_OUT_OF_MEMORY && out == NULL, "failing allocation %ld: status %d", k,
                  (int)s);
    }
}

/* Images: the marks before the content, as transformers renders the Qwen3.6 template for
 * content lists [image, ..., text] (goldens rendered with render_jinja_template from the
 * real template); a system message with images and images NULL are refused. */
static void test_images(void) {
    fp4rt_image_input im[2] = {{"a.png", NULL, 0}, {NULL, "x", 1}};
    fp4rt_chat_message m[4] = {
        {.role = "system", .content = "S"},
        {.role = "user", .content = " Describe both.  ", .images = im, .n_images = 2},
        {.role = "assistant", .content = "A cat and a dog."},
        {.role = "user", .content = "And this?", .images = im, .n_images = 1},
    };
    char *out = NULL;
    CHECK_MSG(fp4rt_chat_format(m, 4, NULL, &out) == FP4RT_OK, "%s", fp4rt_last_error());
    const char *want =
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|> Describe both.<|im_end|>\n<|im_start|>assistant\nA cat and a "
        "dog.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>And this?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n";
    CHECK_MSG(out && !strcmp(out, want), "images: got %s", out ? out : "(null)");
    fp4rt_free(out);
    fp4rt_chat_message only = {.role = "user", .images = im, .n_images = 1};
    fp4rt_chat_params cp = fp4rt_chat_default_params();
    cp.thinking = FP4RT_THINKING_OFF;
    out = NULL;
    CHECK(fp4rt_chat_format(&only, 1, &cp, &out) == FP4RT_OK);
    CHECK_MSG(out && !strcmp(out, "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
                                  "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
              "image only: got %s", out ? out : "(null)");
    fp4rt_free(out);
    fp4rt_chat_message sys[2] = {{.role = "system", .content = "S", .images = im, .n_images = 1},
                                 {.role = "user", .content = "hi"}};
    CHECK(fp4rt_chat_format(sys, 2, NULL, &out) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "chat message 0: a system message cannot contain images"));
    fp4rt_chat_message nul = {.role = "user", .content = "hi", .n_images = 1};
    CHECK(fp4rt_chat_format(&nul, 1, NULL, &out) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "chat message 0: images is NULL"));
}

int main(void) {
    test_goldens();
    test_images();
    test_bad_input();
    test_json_numbers();
    test_alloc_failure();
    return test_summary("test_chat");
}
