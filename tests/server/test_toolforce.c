/* Forced tool calls (runtime/server/toolforce.h) on a real tokenizer (the
 * reference model's, and the Qwen3 one of /work/shared when present, 151k
 * ids) without a model:
 *   - the arguments mask equals a brute-force check of every id (its bytes
 *     keep the text a JSON-object prefix, not white space only outside a
 *     string, no "</tool_call>"), in states inside and outside strings;
 *   - whole generations with random picks among the allowed ids, stopped at
 *     random lengths, closed by srv_force_close: the text is one <tool_call>
 *     block that parses as a call of a listed tool (the named one when
 *     named) with object arguments;
 *   - the mask's cost per pick is printed (the figure README quotes). */
#include "tests/test_util.h"

#include "runtime/server/toolcall.h"
#include "runtime/server/toolforce.h"
#include "runtime/text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static const char k_tools[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
                              "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},"
                              "{\"type\":\"function\",\"function\":{\"name\":\"search\"}}]";

static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static int contains(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return 1;
    return 0;
}

/* The brute-force rule for one id after text (an accepted JSON-object prefix). */
static int oracle(const fp4rt_tokenizer *tok, int32_t id, const char *text) {
    size_t n;
    const char *b = fp4rt_tokenizer_bytes(tok, id, &n);
    if (!b || !n || fp4rt_tokenizer_is_special(tok, id) || id == fp4rt_tokenizer_find(tok, "<think>") ||
        id == fp4rt_tokenizer_find(tok, "</think>"))
        return 0;
    fp4rt_json_prefix j;
    fp4rt_json_prefix_init(&j, 1);
    fp4rt_json_prefix_feed(&j, text, strlen(text));
    int in_str = fp4rt_json_prefix_in_string(&j);
    if (!fp4rt_json_prefix_feed(&j, b, n)) return 0;
    size_t ws = 0;
    while (ws < n && strchr(" \t\n\r", b[ws])) ws++;
    if (ws == n && !in_str) return 0;
    char buf[4096];
    size_t tn = strlen(text);
    memcpy(buf, text, tn);
    memcpy(buf + tn, b, n);
    return !contains(buf, tn + n, "</tool_call>");
}

static void test_mask(const fp4rt_tokenizer *tok, int n_vocab, srv_force_table *t, const cJSON *tools) {
    static const char *const states[] = {
        "", "{", "{\"", "{\"city\": \"Par", "{\"city\": \"a</tool_call", "{\"a\"", "{\"a\":", "{\"a\": 12", "{\"a\": [1, ",
        "{\"a\": tr", "{\"a\": \"\\", "{\"a\": \"\\u00", "{\"a\": {\"b\": null}", "{\"a\": \"\xe4\xb8",
    };
    srv_force f;
    CHECK(!srv_force_init(&f, t, SRV_FORCE_NAMED, tools, "search", -1));
    for (size_t s = 0; s < sizeof states / sizeof *states; s++) {
        CHECK_MSG(!srv_force_args_at(&f, states[s]), "state %s", states[s]);
        const uint8_t *m = srv_force_args_mask(&f);
        CHECK_MSG(m != NULL, "state %s: nothing allowed", states[s]);
        if (!m) continue;
        int bad = 0, allowed = 0;
        for (int32_t id = 0; id < n_vocab; id++) {
            int want = fp4rt_tokenizer_has_id(tok, id) && oracle(tok, id, states[s]);
            allowed += want;
            if (!!m[id] != want && bad++ < 3) CHECK_MSG(0, "state [%s]: id %d mask %d, brute force %d", states[s], id, m[id], want);
        }
        CHECK_MSG(!bad && allowed > 0, "state [%s]: %d disagreements, %d allowed", states[s], bad, allowed);
    }
    srv_force_free(&f);
}

/* One generation with random picks, stopped after `steps` picks. Returns the
 * output text (malloc'ed) with the closing text appended. */
static char *generate(srv_force *f, const fp4rt_tokenizer *tok, int n_vocab, int steps) {
    fp4rt_constraint *c = &f->con;
    size_t cap = 1 << 16, o = 0;
    char *out = malloc(cap);
    int32_t *cand = malloc(sizeof(int32_t) * (size_t)n_vocab);
    for (int k = 0; k < steps; k++) {
        const uint8_t *mask = NULL;
        int32_t id = c->next(c->user, &mask);
        if (id == FP4RT_PICK_STOP) break;
        if (id == FP4RT_PICK_MASK) { /* uniform among the allowed ids */
            int nc = 0;
            for (int32_t i = 0; i < n_vocab; i++)
                if (mask[i]) cand[nc++] = i;
            CHECK(nc > 0);
            if (!nc) break;
            id = cand[rnd() % (uint64_t)nc];
        }
        CHECK_MSG(id >= 0 && id < n_vocab, "pick %d", id);
        c->accept(c->user, id);
        size_t n;
        const char *b = fp4rt_tokenizer_bytes(tok, id, &n);
        if (o + n + 1024 > cap) break;
        memcpy(out + o, b, n);
        o += n;
    }
    free(cand);
    char *tail = srv_force_close(f);
    if (tail) {
        memcpy(out + o, tail, strlen(tail));
        o += strlen(tail);
        free(tail);
    }
    out[o] = 0;
    return out;
}

static void test_generations(const fp4rt_tokenizer *tok, int n_vocab, srv_force_table *t, const cJSON *tools) {
    for (int it = 0; it < 60; it++) {
        int named = it % 3 == 0;
        const char *want = named ? (it % 2 ? "get_time" : "search") : NULL;
        srv_force f;
        CHECK(!srv_force_init(&f, t, named ? SRV_FORCE_NAMED : SRV_FORCE_REQUIRED, tools, want, -1));
        int steps = it < 6 ? it : 1 + (int)(rnd() % 80);
        char *text = generate(&f, tok, n_vocab, steps);
        const char *open = strstr(text, "<tool_call>"), *close = strstr(text, "</tool_call>");
        if (steps == 0) {
            CHECK_MSG(!text[0], "nothing picked, yet [%s]", text);
        } else {
            CHECK_MSG(open == text && close && !strcmp(close, "</tool_call>"), "[%s]", text);
            char *name = NULL, *args = NULL;
            const char *in = open ? open + strlen("<tool_call>") : NULL;
            int r = open && close ? fp4rt_toolcall_parse(in, (size_t)(close - in), tools, &name, &args) : -1;
            cJSON *a = r ? NULL : cJSON_Parse(args);
            CHECK_MSG(!r && cJSON_IsObject(a), "[%s] does not parse as a call", text);
            if (!r)
                CHECK_MSG(want ? !strcmp(name, want)
                               : !strcmp(name, "get_weather") || !strcmp(name, "get_time") || !strcmp(name, "search"),
                          "name %s in [%s]", name, text);
            cJSON_Delete(a);
            free(name);
            free(args);
        }
        free(text);
        srv_force_free(&f);
    }
}

static void run(const char *path) {
    fp4rt_tokenizer *tok = NULL;
    if (fp4rt_tokenizer_load(path, &tok)) {
        CHECK_MSG(0, "cannot load %s", path);
        return;
    }
    int n_vocab = (int)fp4rt_tokenizer_n_vocab(tok);
    int32_t eos[2] = {fp4rt_tokenizer_find(tok, "<|im_end|>"), fp4rt_tokenizer_find(tok, "<|endoftext|>")};
    srv_force_table *t = srv_force_table_build(tok, n_vocab, NULL, eos, 2, fp4rt_tokenizer_find(tok, "<think>"),
                                               fp4rt_tokenizer_find(tok, "</think>"));
    cJSON *tools = cJSON_Parse(k_tools);
    CHECK(t && tools);
    if (t && tools) {
        test_mask(tok, n_vocab, t, tools);
        test_generations(tok, n_vocab, t, tools);
        /* the cost per mask: outside and inside a string */
        srv_force f;
        CHECK(!srv_force_init(&f, t, SRV_FORCE_NAMED, tools, "search", -1));
        const char *at[2] = {"{\"q\": 1, ", "{\"q\": \"In the beginning"};
        for (int k = 0; k < 2; k++) {
            srv_force_args_at(&f, at[k]);
            f.n_masks = 0;
            f.mask_seconds = 0;
            for (int i = 0; i < 50; i++) srv_force_args_mask(&f);
            printf("%s: %d ids: %.3f ms per mask %s\n", path, n_vocab, 1e3 * f.mask_seconds / f.n_masks,
                   k ? "inside a string" : "outside strings");
        }
        srv_force_free(&f);
    }
    cJSON_Delete(tools);
    srv_force_table_free(t);
    fp4rt_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    run("models/qwen35-kjv-10m/tokenizer.json");
    for (int i = 1; i < argc; i++) run(argv[i]);
    if (argc < 2 && !access("/work/shared/tokenizers/qwen3/tokenizer.json", R_OK))
        run("/work/shared/tokenizers/qwen3/tokenizer.json");
    return test_summary("toolforce");
}
