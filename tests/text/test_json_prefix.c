/* The incremental JSON syntax checker (runtime/text/json_prefix.h): real
 * documents are accepted byte by byte and end complete; every prefix of them
 * (and of randomly mutated copies, up to the first refused byte) closes into
 * text that cJSON parses and that is well-formed UTF-8; invalid documents are
 * refused at the right byte; refusing leaves the state unchanged. */
#include "tests/test_util.h"

#include "runtime/text/json_prefix.h"
#include "runtime/text/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>

static const char *const k_docs[] = {
    "{}",
    "{\"location\": \"Paris, France\", \"unit\": \"celsius\"}",
    "{\"a\":[1,-2.5e+10,0,0.125,3E-2,-0,true,false,null,[],{}],\"b\":{\"c\":{\"d\":[[\"x\"]]}}}",
    "{ \"s\" : \"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9\\u4E2D \" ,\n\t\"n\":\r\n 12345678901234567890 }",
    "{\"utf8\": \"caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf\", \"e\": \"\"}",
    "{\"query\":\"SELECT * FROM t WHERE x > 1\",\"limit\":10,\"filters\":[{\"k\":\"a\",\"v\":[1,2,3]},{\"k\":\"b\",\"v\":null}]}",
    "{\"deep\":[[[[[[[[[[{\"x\":[[[[1]]]]}]]]]]]]]]]}",
};

/* Parses text (cJSON) and checks it is well-formed UTF-8. */
static int parses(const char *text, size_t n) {
    cJSON *j = cJSON_ParseWithLength(text, n);
    int ok = j != NULL && fp4rt_utf8_valid(text, n);
    cJSON_Delete(j);
    return ok;
}

/* Length of an incomplete UTF-8 character at the end of s[0, n). */
static size_t partial_utf8(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = s[n - k];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* The prefix s[0, n) (accepted) closed: what a server would send, with an
 * incomplete character ended as U+FFFD by the detokenizer. */
static int closes(const fp4rt_json_prefix *j, const char *s, size_t n) {
    char buf[4096], tail[200];
    size_t cut = partial_utf8((const unsigned char *)s, n), k = n - cut;
    memcpy(buf, s, k);
    if (cut) memcpy(buf + k, "\xef\xbf\xbd", 3), k += 3;
    size_t t = fp4rt_json_prefix_close(j, tail, sizeof tail);
    memcpy(buf + k, tail, t);
    k += t;
    int ok = parses(buf, k);
    if (!ok) fprintf(stderr, "  prefix %.*s closed as %.*s does not parse\n", (int)n, s, (int)t, tail);
    return ok;
}

static void test_documents(void) {
    for (size_t d = 0; d < sizeof k_docs / sizeof *k_docs; d++) {
        const char *s = k_docs[d];
        size_t n = strlen(s);
        CHECK_MSG(parses(s, n), "doc %zu is valid JSON", d);
        fp4rt_json_prefix j;
        fp4rt_json_prefix_init(&j, 1);
        int all = 1;
        for (size_t i = 0; i < n; i++) {
            CHECK_MSG(!fp4rt_json_prefix_done(&j), "doc %zu done early at %zu", d, i);
            if (!fp4rt_json_prefix_byte(&j, (uint8_t)s[i])) {
                CHECK_MSG(0, "doc %zu: byte %zu (0x%02x) refused", d, i, (unsigned char)s[i]);
                all = 0;
                break;
            }
            CHECK_MSG(closes(&j, s, i + 1), "doc %zu prefix %zu closes", d, i + 1);
        }
        if (!all) continue;
        CHECK_MSG(fp4rt_json_prefix_done(&j), "doc %zu complete", d);
        char tail[8];
        CHECK_EQ_INT(fp4rt_json_prefix_close(&j, tail, sizeof tail), 0);
        CHECK(!fp4rt_json_prefix_byte(&j, ' ') && !fp4rt_json_prefix_byte(&j, '}'));
        /* the empty document closes too */
        fp4rt_json_prefix_init(&j, 1);
        CHECK(closes(&j, "", 0));
    }
}

/* doc (a prefix of valid JSON up to the last byte) must be refused exactly at
 * its last byte, and the refusal must leave the state as it was. */
static void refused_last(const char *doc, int object_only) {
    size_t n = strlen(doc);
    fp4rt_json_prefix j;
    fp4rt_json_prefix_init(&j, object_only);
    for (size_t i = 0; i + 1 < n; i++)
        if (!fp4rt_json_prefix_byte(&j, (uint8_t)doc[i])) {
            CHECK_MSG(0, "%s: byte %zu refused early", doc, i);
            return;
        }
    fp4rt_json_prefix before = j;
    CHECK_MSG(!fp4rt_json_prefix_byte(&j, (uint8_t)doc[n - 1]), "%s: last byte accepted", doc);
    CHECK_MSG(!memcmp(&before, &j, sizeof j), "%s: a refusal changed the state", doc);
    CHECK_MSG(closes(&j, doc, n - 1), "%s: the accepted prefix closes", doc);
}

static void test_invalid(void) {
    static const char *const bad[] = {
        "[",         "\"",        "1",          "{\"a\":01",   "{\"a\":[1,]", "{\"a\" 1",      "{,",
        "{\"a\":tru ", "{\"a\":\"\\x", "{\"a\":\"\\ud8", "{\"a\":\"\\uDC", "{\"a\":\"\\u00g", "{\"a\":1.e", "{\"a\":-a",
        "{\"a\":1}}", "{\"a\":1} ", "{\"a\":\"\x01", "{\"a\":\"\xc0", "{\"a\":\"\xed\xa0", "{\"a\":\"\xe0\x80",
        "{\"a\":\"\xf5", "{\"a\":1]", "{\"a\":[}", "{'",          "{\"a\":+",   "{\"a\":.",    
        "{\"a\":1e+}", "{\"a\":\"\xe4\xb8\"", "{\"a\":nul}", "{\"a\":[1 2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) refused_last(bad[i], 1);
    /* any root value when not object_only; still nothing after it */
    fp4rt_json_prefix j;
    fp4rt_json_prefix_init(&j, 0);
    CHECK(fp4rt_json_prefix_feed(&j, "[1, \"x\"]", 8) && fp4rt_json_prefix_done(&j));
    fp4rt_json_prefix_init(&j, 0);
    CHECK(fp4rt_json_prefix_feed(&j, "12", 2) && !fp4rt_json_prefix_done(&j));
    char tail[8];
    CHECK_EQ_INT(fp4rt_json_prefix_close(&j, tail, sizeof tail), 0);
    /* depth is bounded */
    char deep[FP4RT_JSON_MAX_DEPTH + 8];
    deep[0] = '{';
    memcpy(deep + 1, "\"a\":", 4);
    memset(deep + 5, '[', FP4RT_JSON_MAX_DEPTH - 1);
    deep[FP4RT_JSON_MAX_DEPTH + 4] = '[';
    deep[FP4RT_JSON_MAX_DEPTH + 5] = 0;
    refused_last(deep, 1);
    /* strings: the plain state */
    fp4rt_json_prefix_init(&j, 1);
    CHECK(fp4rt_json_prefix_feed(&j, "{\"a\":\"x", 7) && fp4rt_json_prefix_in_plain_string(&j));
    CHECK(fp4rt_json_prefix_feed(&j, "\xe4", 1) && !fp4rt_json_prefix_in_plain_string(&j));
}

/* xorshift64 */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* Mutated documents: up to the first refused byte every prefix closes into
 * parseable JSON; a fully accepted, complete one parses as it is. */
static void test_fuzz(void) {
    static const char alphabet[] = "{}[]\":,\\ \n0123456789-+.eEtrufalsn\xc3\xa9\xe4\xb8\xadxu";
    int complete = 0, refused = 0;
    for (int iter = 0; iter < 3000; iter++) {
        const char *src = k_docs[rnd() % (sizeof k_docs / sizeof *k_docs)];
        char s[512];
        size_t n = strlen(src);
        memcpy(s, src, n);
        int muts = 1 + (int)(rnd() % 3);
        for (int m = 0; m < muts; m++) {
            size_t at = rnd() % n;
            int op = (int)(rnd() % 3);
            char c = alphabet[rnd() % (sizeof alphabet - 1)];
            if (op == 0) s[at] = c;
            else if (op == 1 && n + 1 < sizeof s) memmove(s + at + 1, s + at, n - at), s[at] = c, n++;
            else if (n > 1) memmove(s + at, s + at + 1, n - at - 1), n--;
        }
        fp4rt_json_prefix j;
        fp4rt_json_prefix_init(&j, 1);
        size_t i = 0;
        for (; i < n; i++) {
            if (!fp4rt_json_prefix_byte(&j, (uint8_t)s[i])) break;
            if (!closes(&j, s, i + 1)) {
                CHECK_MSG(0, "fuzz %d: prefix %zu", iter, i + 1);
                break;
            }
        }
        if (i == n && fp4rt_json_prefix_done(&j)) {
            complete++;
            CHECK_MSG(parses(s, n), "fuzz %d: a complete accepted document parses", iter);
        } else if (i < n) refused++;
    }
    CHECK(complete > 0 && refused > 0); /* both paths were exercised */
}

int main(void) {
    test_documents();
    test_invalid();
    test_fuzz();
    return test_summary("json_prefix");
}
