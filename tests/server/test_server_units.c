/* The server's pure parts: Qwen3.6 tool-call XML -> OpenAI tool calls (the
 * inverse of the chat template's rendering), the streaming splitter of answer
 * text and <tool_call> blocks (fed one byte at a time too), request bodies
 * (JSON checks, sampling fields, errors in OpenAI's shape). */
#include "runtime/server/oai_request.h"
#include "runtime/server/srv.h"
#include "runtime/server/toolcall.h"

#include "tests/test_util.h"

#include <cjson/cJSON.h>

/* Parses block; checks the name and the arguments (compared as JSON). */
static void check_call(const char *block, const cJSON *tools, const char *name, const char *args_json) {
    char *nm = NULL, *args = NULL;
    int rc = fp4rt_toolcall_parse(block, strlen(block), tools, &nm, &args);
    CHECK_MSG(rc == 0, "parse failed: %s", block);
    if (rc) return;
    CHECK_MSG(!strcmp(nm, name), "name %s != %s", nm, name);
    cJSON *got = cJSON_Parse(args), *want = cJSON_Parse(args_json);
    CHECK_MSG(got && want && cJSON_Compare(got, want, 1), "arguments %s != %s", args, args_json);
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(nm);
    free(args);
}

static void test_parse(void) {
    check_call("\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
               "</function>\n",
               NULL, "get_weather", "{\"city\": \"Paris\", \"days\": 3}");
    /* values: JSON where they parse (objects, booleans, null), text otherwise, multi-line text kept */
    check_call("<function=f>\n<parameter=o>\n{\"a\": [1, 2]}\n</parameter>\n<parameter=b>\ntrue\n</parameter>\n"
               "<parameter=n>\nnull\n</parameter>\n<parameter=t>\nline 1\nline 2\n</parameter>\n</function>",
               NULL, "f", "{\"o\": {\"a\": [1, 2]}, \"b\": true, \"n\": null, \"t\": \"line 1\\nline 2\"}");
    /* the schema's string type keeps digits a string */
    cJSON *tools = cJSON_Parse("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                               "\"properties\":{\"zip\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}}}}}]");
    check_call("<function=f>\n<parameter=zip>\n75001\n</parameter>\n<parameter=n>\n7\n</parameter>\n</function>", tools,
               "f", "{\"zip\": \"75001\", \"n\": 7}");
    /* a quoted value without a schema stays text as written */
    check_call("<function=f>\n<parameter=q>\n\"x\"\n</parameter>\n</function>", NULL, "f", "{\"q\": \"\\\"x\\\"\"}");
    /* no parameters; a repeated key keeps the last value; a cut-off block */
    check_call("<function=noargs>\n</function>", NULL, "noargs", "{}");
    check_call("<function=f>\n<parameter=a>\n1\n</parameter>\n<parameter=a>\n2\n</parameter>\n</function>", NULL, "f",
               "{\"a\": 2}");
    check_call("<function=f>\n<parameter=a>\nhal", NULL, "f", "{\"a\": \"hal\"}");
    char *nm = (char *)1, *args = (char *)1;
    CHECK(fp4rt_toolcall_parse("no function here", 16, NULL, &nm, &args) == -1 && !nm && !args);
    CHECK(fp4rt_toolcall_parse("<function=>", 11, NULL, &nm, &args) == -1);
    cJSON_Delete(tools);
}

/* Feeds text in pieces of `step` bytes; returns content and the blocks joined by '|'. */
static void split(const char *text, size_t step, fp4rt_sbuf *content, fp4rt_sbuf *blocks) {
    fp4rt_tc_split sp = {0};
    fp4rt_tc_piece p;
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i += step) {
        int final = i + step > n;
        if (i < n) fp4rt_tc_split_feed(&sp, text + i, i + step > n ? n - i : step);
        while (fp4rt_tc_split_next(&sp, final, &p)) {
            if (p.block) {
                fp4rt_sbuf_add(blocks, p.block, p.block_n);
                fp4rt_sbuf_puts(blocks, "|");
            } else fp4rt_sbuf_add(content, p.content, p.content_n);
        }
        if (final) break;
    }
    fp4rt_tc_split_free(&sp);
}

static void test_split(void) {
    const char *text = "Let me look.\n\n<tool_call>\nA\n</tool_call>\n<tool_call>\nB\n</tool_call> done <tool_ca";
    for (size_t step = 1; step <= 40; step += 13) {
        fp4rt_sbuf c = {0}, b = {0};
        split(text, step, &c, &b);
        CHECK_MSG(!strcmp(fp4rt_sbuf_str(&c), "Let me look.\n\n\n done <tool_ca"), "step %zu: content [%s]", step,
                  fp4rt_sbuf_str(&c));
        CHECK_MSG(!strcmp(fp4rt_sbuf_str(&b), "\nA\n|\nB\n|"), "step %zu: blocks [%s]", step, fp4rt_sbuf_str(&b));
        fp4rt_sbuf_free(&c);
        fp4rt_sbuf_free(&b);
    }
    /* an unterminated block is returned at the end; "<" alone is content */
    fp4rt_sbuf c = {0}, b = {0};
    split("a < b <tool_call>\n<function=f>\n", 3, &c, &b);
    CHECK(!strcmp(fp4rt_sbuf_str(&c), "a < b "));
    CHECK(!strcmp(fp4rt_sbuf_str(&b), "\n<function=f>\n|"));
    fp4rt_sbuf_free(&c);
    fp4rt_sbuf_free(&b);
}

/* Parses body as a chat (kind 0) or completion request; returns the rc. */
static int parse(const char *body, srv_kind kind, srv_request *r, srv_error *e) {
    cJSON *root;
    if (srv_json_parse(body, strlen(body), 8, &root, e)) return -1;
    return srv_request_parse(r, kind, root, 100, e);
}

static void expect_error(const char *body, srv_kind kind, int http, const char *param) {
    srv_request r;
    srv_error e;
    memset(&e, 0, sizeof e);
    int rc = parse(body, kind, &r, &e);
    CHECK_MSG(rc == -1 && e.http == http && !strcmp(e.param, param) && e.message[0], "%s: rc %d http %d param '%s'",
              body, rc, e.http, e.param);
    if (!rc) srv_request_free(&r);
}

static void test_requests(void) {
    srv_request r;
    srv_error e;
    int rc = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\",\"text\":\"there\"}]},"
                   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                   "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}],"
                   "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"temperature\":0.5,\"top_p\":0.9,"
                   "\"top_k\":0,\"min_p\":0,\"seed\":7,\"max_completion_tokens\":12,\"stop\":[\"x\",\"y\"],"
                   "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                   "\"chat_template_kwargs\":{\"enable_thinking\":false},\"unknown_field\":1}",
                   SRV_CHAT, &r, &e);
    CHECK_MSG(rc == 0, "%s", e.message);
    if (!rc) {
        CHECK(r.n_msgs == 4 && !strcmp(r.msgs[0].role, "system") && !strcmp(r.msgs[1].content, "Hi there"));
        CHECK(r.msgs[2].n_tool_calls == 1 && !strcmp(r.msgs[2].tool_calls[0].name, "f") &&
              !strcmp(r.msgs[2].tool_calls[0].arguments_json, "{\"a\":1}"));
        CHECK(r.tools && r.tools_json && r.cp.tools_json == r.tools_json);
        CHECK(r.gp.sampling.temperature == 0.5f && r.gp.sampling.greedy == -1 && r.gp.sampling.top_p == 0.9f);
        CHECK(r.gp.sampling.top_k == -1 && r.gp.sampling.min_p == -1.0f && r.gp.sampling.seed == 7);
        CHECK(r.gp.max_tokens == 12 && r.gp.n_stop == 2 && !strcmp(r.gp.stop[1], "y"));
        CHECK(r.stream && r.include_usage && r.cp.thinking == FP4RT_THINKING_OFF && !r.gp.reasoning_open);
        srv_request_free(&r);
    }
    rc = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":0,\"tool_choice\":\"none\","
               "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
               SRV_CHAT, &r, &e);
    CHECK(rc == 0 && r.gp.sampling.greedy == 1 && !r.tools && !r.tools_json && r.gp.reasoning_open);
    if (!rc) srv_request_free(&r);
    rc = parse("{\"prompt\":[1,2,3],\"max_tokens\":4}", SRV_COMPLETION, &r, &e);
    CHECK(rc == 0 && r.n_prompt_ids == 3 && r.prompt_ids[2] == 3 && r.gp.max_tokens == 4);
    if (!rc) srv_request_free(&r);
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", SRV_CHAT, 400, "n");
    expect_error("{\"messages\":[]}", SRV_CHAT, 400, "messages");
    expect_error("{}", SRV_CHAT, 400, "messages");
    expect_error("{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}", SRV_CHAT, 400, "messages");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", SRV_CHAT, 400,
                 "temperature");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", SRV_CHAT, 400,
                 "temperature");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", SRV_CHAT, 400,
                 "max_tokens");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"\"]}", SRV_CHAT, 400, "stop");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", SRV_CHAT, 400, "logprobs");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", SRV_CHAT, 400,
                 "tool_choice");
    expect_error("{\"prompt\":[1,200]}", SRV_COMPLETION, 400, "prompt");
    expect_error("{\"prompt\":\"x\",\"echo\":true}", SRV_COMPLETION, 400, "echo");
    expect_error("[1]", SRV_CHAT, 400, "");
    expect_error("{\"a\":", SRV_CHAT, 400, "");
    expect_error("{\"a\":1} x", SRV_CHAT, 400, "");
    expect_error("{\"a\":[[[[[[[[[[]]]]]]]]]]}", SRV_CHAT, 400, ""); /* deeper than 8 */
    expect_error("{\"a\":\"[[[[[[[[[[[[[\"}", SRV_COMPLETION, 400, "prompt"); /* brackets in a string do not count */
}

/* A job of the given request body whose generation "produced" the pieces. */
static srv_job *job_with_output(const char *body, const char *const *pieces, const int *reasoning, size_t n) {
    srv_request r;
    srv_error e;
    if (parse(body, SRV_CHAT, &r, &e)) return NULL;
    int32_t *ids = malloc(4 * sizeof *ids);
    for (int i = 0; i < 4; i++) ids[i] = i;
    srv_job *j = srv_job_new(&r, ids, 4, "m", 1);
    for (size_t i = 0; i < n; i++) {
        fp4rt_token_event ev = {pieces[i], strlen(pieces[i]), (int32_t)i, reasoning[i]};
        srv_out_piece(j, &ev);
    }
    j->res.n_generated = (int)n;
    j->res.stop_reason = FP4RT_STOP_EOS;
    srv_out_finish(j);
    return j;
}

/* A reply with reasoning, text and a tool call, streamed and not: OpenAI's shapes. */
static void test_tool_call_output(void) {
    const char *pieces[] = {"Hmm", ", weather.", "Let me ", "check.\n\n<tool", "_call>\n<function=get_weather>\n",
                            "<parameter=city>\nPar", "is\n</parameter>\n<parameter=days>\n2\n</parameter>\n",
                            "</function>\n</tool_call>"};
    const int reasoning[] = {1, 1, 0, 0, 0, 0, 0, 0};
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
                        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
    char body[512];
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"stream\":true,"
             "\"stream_options\":{\"include_usage\":true}}", tools);
    srv_job *j = job_with_output(body, pieces, reasoning, 8);
    CHECK(j != NULL);
    if (!j) return;
    /* the SSE events: role, reasoning deltas, content deltas, the call (id + name, then
     * arguments), finish_reason tool_calls, usage, [DONE] */
    const char *sse = fp4rt_sbuf_str(&j->sse);
    CHECK(strstr(sse, "data: [DONE]\n\n") && !strcmp(sse + strlen(sse) - 14, "data: [DONE]\n\n"));
    fp4rt_sbuf content = {0}, reason = {0}, args = {0};
    int n_role = 0, n_name = 0, n_finish = 0, n_usage = 0, n_events = 0;
    for (const char *p = sse; (p = strstr(p, "data: {")); n_events++) {
        const char *end = strstr(p, "\n\n");
        cJSON *c = cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6));
        p = end;
        CHECK(c && !strcmp(cJSON_GetObjectItem(c, "object")->valuestring, "chat.completion.chunk"));
        cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0);
        if (!ch) {
            cJSON *u = cJSON_GetObjectItem(c, "usage");
            n_usage += u && cJSON_GetObjectItem(u, "completion_tokens")->valueint == 8;
            cJSON_Delete(c);
            continue;
        }
        cJSON *d = cJSON_GetObjectItem(ch, "delta"), *f = cJSON_GetObjectItem(ch, "finish_reason"), *x;
        if (cJSON_IsString(f)) n_finish += !strcmp(f->valuestring, "tool_calls");
        if ((x = cJSON_GetObjectItem(d, "role"))) n_role++;
        if ((x = cJSON_GetObjectItem(d, "content"))) fp4rt_sbuf_puts(&content, x->valuestring);
        if ((x = cJSON_GetObjectItem(d, "reasoning_content"))) fp4rt_sbuf_puts(&reason, x->valuestring);
        cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "tool_calls"), 0);
        if (tc) {
            CHECK(cJSON_GetObjectItem(tc, "index")->valueint == 0);
            cJSON *fn = cJSON_GetObjectItem(tc, "function");
            if ((x = cJSON_GetObjectItem(fn, "name"))) {
                n_name++;
                CHECK(!strcmp(x->valuestring, "get_weather"));
                CHECK(!strncmp(cJSON_GetObjectItem(tc, "id")->valuestring, "call_", 5));
                CHECK(!strcmp(cJSON_GetObjectItem(tc, "type")->valuestring, "function"));
            }
            fp4rt_sbuf_puts(&args, cJSON_GetObjectItem(fn, "arguments")->valuestring);
        }
        cJSON_Delete(c);
    }
    CHECK(n_role == 1 && n_name == 1 && n_finish == 1 && n_usage == 1 && n_events >= 8);
    CHECK_MSG(!strcmp(fp4rt_sbuf_str(&reason), "Hmm, weather."), "reasoning [%s]", fp4rt_sbuf_str(&reason));
    CHECK_MSG(!strcmp(fp4rt_sbuf_str(&content), "Let me check.\n\n"), "content [%s]", fp4rt_sbuf_str(&content));
    CHECK_MSG(!strcmp(fp4rt_sbuf_str(&args), "{\"city\":\"Paris\",\"days\":2}"), "arguments [%s]", fp4rt_sbuf_str(&args));
    fp4rt_sbuf_free(&content);
    fp4rt_sbuf_free(&reason);
    fp4rt_sbuf_free(&args);
    srv_job_release(j);
    srv_job_release(j);

    /* not streamed: one message with content (trimmed), reasoning_content and tool_calls */
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}", tools);
    j = job_with_output(body, pieces, reasoning, 8);
    CHECK(j && j->sse.n == 0);
    if (!j) return;
    char *json = srv_response_json(j);
    cJSON *o = cJSON_Parse(json);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
    cJSON *m = cJSON_GetObjectItem(ch, "message");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "object")->valuestring, "chat.completion"));
    CHECK(!strcmp(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls"));
    CHECK(!strcmp(cJSON_GetObjectItem(m, "content")->valuestring, "Let me check."));
    CHECK(!strcmp(cJSON_GetObjectItem(m, "reasoning_content")->valuestring, "Hmm, weather."));
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "tool_calls"), 0);
    cJSON *fn = cJSON_GetObjectItem(tc, "function");
    CHECK(tc && !strcmp(cJSON_GetObjectItem(fn, "name")->valuestring, "get_weather") &&
          !strcmp(cJSON_GetObjectItem(fn, "arguments")->valuestring, "{\"city\":\"Paris\",\"days\":2}"));
    cJSON *u = cJSON_GetObjectItem(o, "usage");
    CHECK(cJSON_GetObjectItem(u, "prompt_tokens")->valueint == 4 && cJSON_GetObjectItem(u, "total_tokens")->valueint == 12);
    cJSON_Delete(o);
    free(json);
    srv_job_release(j);
    srv_job_release(j);
}

int main(void) {
    test_parse();
    test_tool_call_output();
    test_split();
    test_requests();
    return test_summary("test_server_units");
}
