/* Tokenizer tests.
 *  - Conformance: ../shared/tokenizers/qwen3/golden.jsonl (348 cases, the real
 *    Qwen3 tokenizer), encode ids and decode, one-shot and streaming; the heap
 *    BPE path is run over the same cases.
 *  - The Qwen3.5/3.6 split regex (\p{M}) on the Qwen3 vocabulary:
 *    tests/fixtures/tokenizer/pm_golden.jsonl (ids from HF tokenizers).
 *  - The Qwen3.6 vocabulary when models/tokenizers/qwen3.6/tokenizer.json was
 *    made by tools/make_tokenizer_golden.py --qwen36 (skipped otherwise).
 *  - Units on the synthetic tokenizer: added tokens (lstrip / rstrip /
 *    single_word / normalized), invalid UTF-8, empty text, streaming decode,
 *    malformed tokenizer.json files, allocation failures, threads.
 * Runs from the repository root; ../shared may be moved with $FP4RT_SHARED. */
#include "runtime/text/tokenizer.h"
#include "runtime/text/tokenizer_internal.h"
#include "runtime/tools/synth_tokenizer.h"
#include "runtime/base/common.h"
#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <utf8proc.h>

static const char *shared_dir(void) {
    const char *e = getenv("FP4RT_SHARED");
    return e && *e ? e : "../shared";
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---- golden files ----------------------------------------------------------- */

typedef struct gcase {
    char *text;
    int32_t *ids;
    int n_ids;
    int decoded_equals_text;
} gcase;

/* Reads a golden jsonl: {"text" | "shared_line", "ids", "decoded_equals_text"}.
 * shared_text (may be NULL) resolves "shared_line". Returns the count, -1 on error. */
static int read_golden(const char *path, gcase **out, const gcase *shared_text, int n_shared) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, alloc = 0;
    gcase *c = NULL;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids");
        const cJSON *sl = cJSON_GetObjectItem(j, "shared_line");
        const cJSON *de = cJSON_GetObjectItem(j, "decoded_equals_text");
        const char *s = cJSON_IsString(text) ? text->valuestring : NULL;
        if (!s && cJSON_IsNumber(sl) && sl->valueint >= 0 && sl->valueint < n_shared)
            s = shared_text[sl->valueint].text;
        if (!s && cJSON_IsNumber(sl) && n_shared == 0) { /* ../shared absent */
            cJSON_Delete(j);
            continue;
        }
        if (!s || !cJSON_IsArray(ids)) {
            fprintf(stderr, "%s: line %d malformed\n", path, n + 1);
            cJSON_Delete(j);
            continue;
        }
        if (n == alloc) {
            alloc = alloc ? 2 * alloc : 256;
            c = realloc(c, (size_t)alloc * sizeof *c);
        }
        c[n].text = strdup(s);
        c[n].n_ids = cJSON_GetArraySize(ids);
        c[n].ids = malloc(((size_t)c[n].n_ids + 1) * sizeof(int32_t));
        for (int i = 0; i < c[n].n_ids; i++) c[n].ids[i] = cJSON_GetArrayItem(ids, i)->valueint;
        c[n].decoded_equals_text = !de || cJSON_IsTrue(de);
        n++;
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    *out = c;
    return n;
}

static void free_golden(gcase *c, int n) {
    for (int i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].ids);
    }
    free(c);
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* Streams ids through the detokenizer; checks every piece is valid UTF-8 and
 * that the concatenation equals the one-shot decode. */
static int stream_matches(const fp4rt_tokenizer *t, const int32_t *ids, size_t n, int skip,
                          const char *full) {
    fp4rt_detok_stream s;
    fp4rt_detok_stream_init(&s, t, skip);
    size_t cap = strlen(full) + 4096, o = 0;
    char *acc = malloc(cap), piece[2048];
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int k = fp4rt_detok_stream_push(&s, ids[i], piece, sizeof piece);
        if (k < 0 || !fp4rt_utf8_valid(piece, (size_t)k) || o + (size_t)k >= cap) ok = 0;
        else memcpy(acc + o, piece, (size_t)k), o += (size_t)k;
    }
    int k = fp4rt_detok_stream_flush(&s, piece, sizeof piece);
    if (ok && o + (size_t)k < cap) memcpy(acc + o, piece, (size_t)k), o += (size_t)k;
    ok = ok && o == strlen(full) && memcmp(acc, full, o) == 0;
    free(acc);
    return ok;
}

/* Encode / decode / stream every case; returns the number of encode failures. */
static int run_golden(fp4rt_tokenizer *t, const gcase *c, int n, const char *name, int decode) {
    int enc_bad = 0, dec_bad = 0, stream_bad = 0;
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        size_t k;
        fp4rt_status st = fp4rt_tokenizer_encode(t, c[i].text, strlen(c[i].text), &ids, &k);
        int ok = st == FP4RT_OK && same_ids(ids, k, c[i].ids, (size_t)c[i].n_ids);
        CHECK_MSG(ok, "%s case %d (%.40s...): ids differ", name, i + 1, c[i].text);
        enc_bad += !ok;
        if (st == FP4RT_OK) free(ids);
        if (!decode) continue;
        char *out;
        size_t len;
        st = fp4rt_tokenizer_decode(t, c[i].ids, (size_t)c[i].n_ids, 0, &out, &len);
        if (st != FP4RT_OK) {
            CHECK_MSG(0, "%s case %d: decode failed: %s", name, i + 1, fp4rt_last_error());
            continue;
        }
        if (c[i].decoded_equals_text) {
            char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)c[i].text);
            int good = nfc && strcmp(nfc, out) == 0;
            dec_bad += !good;
            CHECK_MSG(good, "%s case %d: decode differs from the NFC text", name, i + 1);
            free(nfc);
        }
        int sgood = stream_matches(t, c[i].ids, (size_t)c[i].n_ids, 0, out);
        stream_bad += !sgood;
        CHECK_MSG(sgood, "%s case %d: streaming decode differs", name, i + 1);
        free(out);
    }
    printf("%s: %d cases, %d encode, %d decode, %d stream mismatches\n", name, n, enc_bad, dec_bad,
           stream_bad);
    return enc_bad;
}

static void test_qwen3(gcase **shared_out, int *n_shared) {
    char path[512], gpath[512];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", shared_dir());
    snprintf(gpath, sizeof gpath, "%s/tokenizers/qwen3/golden.jsonl", shared_dir());
    *shared_out = NULL;
    *n_shared = 0;
    if (!file_exists(path)) {
        printf("qwen3 golden: skipped: %s not found (set FP4RT_SHARED)\n", path);
        return;
    }
    fp4rt_tokenizer *t;
    fp4rt_status st = fp4rt_tokenizer_load(path, &t);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (st) return;
    CHECK_EQ_INT(fp4rt_tokenizer_n_vocab(t), 151669);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|endoftext|>"), 151643);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|im_end|>"), 151645);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "Ġthe"), 279);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "no such token at all"), -1);
    CHECK(fp4rt_tokenizer_is_special(t, 151645));
    CHECK(!fp4rt_tokenizer_is_special(t, 151667)); /* <think> is not special in Qwen3 */
    gcase *c;
    int n = read_golden(gpath, &c, NULL, 0);
    CHECK_MSG(n == 348, "%s: %d cases", gpath, n);
    if (n > 0) {
        run_golden(t, c, n, "qwen3 golden", 1);
        /* the same cases through the heap BPE (cache emptied so it is not bypassed) */
        t->bpe_linear_max = 0;
        memset(t->cache, 0, FP4RT_TOK_CACHE_SLOTS * sizeof *t->cache);
        run_golden(t, c, n, "qwen3 golden, heap BPE", 0);
        t->bpe_linear_max = 48;
        memset(t->cache, 0, FP4RT_TOK_CACHE_SLOTS * sizeof *t->cache);
    }
    /* added tokens and invalid UTF-8 on the real vocabulary */
    int32_t *ids;
    size_t k;
    const char txt[] = "a<|im_end|>b \xff\xfe end \xe2\x82";
    st = fp4rt_tokenizer_encode(t, txt, sizeof txt - 1, &ids, &k);
    const char rep[] = "a<|im_end|>b \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd";
    int32_t *ids2;
    size_t k2;
    fp4rt_status st2 = fp4rt_tokenizer_encode(t, rep, sizeof rep - 1, &ids2, &k2);
    CHECK(st == FP4RT_OK && st2 == FP4RT_OK && same_ids(ids, k, ids2, k2) && k > 3 &&
          ids[1] == 151645);
    if (!st) free(ids);
    if (!st2) free(ids2);
    fp4rt_tokenizer_free(t);
    *shared_out = c;
    *n_shared = n > 0 ? n : 0;
}

/* The Qwen3 tokenizer.json with the Qwen3.5/3.6 regex, by string replacement. */
static const char k_old_re[] =
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"";
static const char k_new_re[] =
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{L}\\\\p{M}]+|\\\\p{N}| "
    "?[^\\\\s\\\\p{L}\\\\p{M}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"";

static void test_pm_regex(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", shared_dir());
    char *text;
    size_t len;
    if (!file_exists(path) || fp4rt_read_file(path, 1u << 30, &text, &len)) {
        printf("\\p{M} golden: skipped: %s not found\n", path);
        return;
    }
    char *at = strstr(text, k_old_re);
    CHECK_MSG(at != NULL, "Qwen3 regex not found verbatim in %s", path);
    if (!at) {
        free(text);
        return;
    }
    size_t lo = strlen(k_old_re), ln = strlen(k_new_re), pre = (size_t)(at - text);
    char *mod = malloc(len + ln + 1);
    memcpy(mod, text, pre);
    memcpy(mod + pre, k_new_re, ln);
    memcpy(mod + pre + ln, at + lo, len - pre - lo + 1);
    free(text);
    const char *mpath = test_tmp_path("pm_tokenizer.json");
    FILE *f = fopen(mpath, "w");
    fputs(mod, f);
    fclose(f);
    free(mod);
    fp4rt_tokenizer *t;
    fp4rt_status st = fp4rt_tokenizer_load(mpath, &t);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (st) return;
    gcase *c;
    int n = read_golden("tests/fixtures/tokenizer/pm_golden.jsonl", &c, NULL, 0);
    CHECK_MSG(n > 200, "pm_golden.jsonl: %d cases", n);
    if (n > 0) {
        run_golden(t, c, n, "\\p{M} regex golden", 1);
        free_golden(c, n);
    }
    fp4rt_tokenizer_free(t);
}

static void test_qwen36(const gcase *shared, int n_shared) {
    const char *path = getenv("FP4RT_QWEN36_TOKENIZER");
    if (!path || !*path) path = "models/tokenizers/qwen3.6/tokenizer.json";
    if (!file_exists(path)) {
        printf("qwen3.6 golden: skipped: %s not found (make it with "
               "tools/make_tokenizer_golden.py --qwen36)\n", path);
        return;
    }
    fp4rt_tokenizer *t;
    fp4rt_status st = fp4rt_tokenizer_load(path, &t);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (st) return;
    CHECK_EQ_INT(fp4rt_tokenizer_n_vocab(t), 248077);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|endoftext|>"), 248044);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|im_start|>"), 248045);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|im_end|>"), 248046);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<think>"), 248068);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "</think>"), 248069);
    gcase *c;
    int n = read_golden("tests/fixtures/tokenizer/qwen36_golden.jsonl", &c, shared, n_shared);
    CHECK_MSG(n > 0, "qwen36_golden.jsonl: %d cases", n);
    if (n > 0) {
        run_golden(t, c, n, "qwen3.6 golden", 1);
        free_golden(c, n);
    }
    fp4rt_tokenizer_free(t);
}

/* ---- units on the synthetic tokenizer ---------------------------------------- */

static int32_t *enc(const fp4rt_tokenizer *t, const char *s, size_t *n) {
    int32_t *ids = NULL;
    *n = 0;
    if (fp4rt_tokenizer_encode(t, s, strlen(s), &ids, n) != FP4RT_OK) {
        fprintf(stderr, "encode failed: %s\n", fp4rt_last_error());
        return NULL;
    }
    return ids;
}

/* ids(a) + [id] + ids(b) == ids(text)? */
static int splits_as(const fp4rt_tokenizer *t, const char *text, const char *a, int32_t id,
                     const char *b) {
    size_t n, na, nb;
    int32_t *x = enc(t, text, &n), *ya = enc(t, a, &na), *yb = enc(t, b, &nb);
    int ok = x && ya && yb && n == na + 1 + nb && same_ids(x, na, ya, na) && x[na] == id &&
             same_ids(x + na + 1, nb, yb, nb);
    free(x), free(ya), free(yb);
    return ok;
}

static int contains_id(const fp4rt_tokenizer *t, const char *text, int32_t id) {
    size_t n;
    int32_t *x = enc(t, text, &n);
    int found = 0;
    for (size_t i = 0; x && i < n; i++) found |= x[i] == id;
    free(x);
    return found;
}

/* Loads dir/tokenizer.json after `edit` changed its JSON; returns the status. */
typedef void (*json_edit)(cJSON *root);

static fp4rt_status load_edited(const char *src, json_edit edit, const char *name,
                                fp4rt_tokenizer **out) {
    char *text;
    size_t len;
    *out = NULL;
    if (fp4rt_read_file(src, 1u << 26, &text, &len)) return FP4RT_IO;
    cJSON *root = cJSON_Parse(text);
    free(text);
    edit(root);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    const char *p = test_tmp_path(name);
    FILE *f = fopen(p, "w");
    fputs(s, f);
    fclose(f);
    free(s);
    return fp4rt_tokenizer_load(p, out);
}

static cJSON *added_named(cJSON *root, const char *content) {
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "added_tokens"))
        if (!strcmp(cJSON_GetObjectItem(it, "content")->valuestring, content)) return it;
    return NULL;
}

static void set_bool(cJSON *o, const char *key, int v) {
    cJSON_ReplaceItemInObject(o, key, cJSON_CreateBool(v));
}

static void edit_strip(cJSON *root) {
    set_bool(added_named(root, "<think>"), "lstrip", 1);
    set_bool(added_named(root, "</think>"), "rstrip", 1);
    cJSON *sw = added_named(root, "<tool_call>");
    cJSON_ReplaceItemInObject(sw, "content", cJSON_CreateString("mask"));
    set_bool(sw, "single_word", 1);
    cJSON *nm = added_named(root, "<tool_response>");
    cJSON_ReplaceItemInObject(nm, "content", cJSON_CreateString("caf\xc3\xa9")); /* precomposed */
    set_bool(nm, "normalized", 1);
}

static void edit_truncate(cJSON *root) { (void)root; }
static void edit_unigram(cJSON *root) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "model"), "type", cJSON_CreateString("Unigram"));
}
static void edit_pretok(cJSON *root) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "Whitespace");
    cJSON_ReplaceItemInObject(root, "pre_tokenizer", p);
}
static void edit_merge_unknown(cJSON *root) {
    cJSON *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, cJSON_CreateString("\xc4\xa0notatoken")); /* "Ġnotatoken" */
    cJSON_AddItemToArray(pair, cJSON_CreateString("x"));
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges"), pair);
}
static void edit_dup_id(cJSON *root) {
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab");
    cJSON_ReplaceItemInObject(v, "a", cJSON_CreateNumber(cJSON_GetObjectItem(v, "b")->valuedouble));
}
static void edit_empty_vocab(cJSON *root) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "model"), "vocab", cJSON_CreateObject());
}
static void edit_missing_byte(cJSON *root) { /* "!" is byte 0x21 in the ByteLevel table */
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab"), "!");
}
static void edit_bad_utf8_token(cJSON *root) {
    cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab"), "x\xff", 900000);
}
static void edit_nfkc(cJSON *root) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "normalizer"), "type", cJSON_CreateString("NFKC"));
}
static void edit_decoder(cJSON *root) { cJSON_ReplaceItemInObject(root, "decoder", cJSON_CreateNull()); }
static void edit_byte_fallback(cJSON *root) {
    set_bool(cJSON_GetObjectItem(root, "model"), "byte_fallback", 1);
}
/* an added token on the id of the regular token "b" */
static void edit_added_clash(cJSON *root) {
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "added_tokens"), 0), "id",
                              cJSON_CreateNumber(65));
}
static void edit_behavior(cJSON *root) {
    cJSON *split = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "pre_tokenizer"), "pretokenizers"), 0);
    cJSON_ReplaceItemInObject(split, "behavior", cJSON_CreateString("Removed"));
}
static void edit_bad_regex(cJSON *root) {
    cJSON *split = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "pre_tokenizer"), "pretokenizers"), 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(split, "pattern"), "Regex", cJSON_CreateString("(\\p{L}+"));
}
static void edit_gpt2(cJSON *root) { /* ByteLevel alone with use_regex: the GPT-2 regex */
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "ByteLevel");
    cJSON_AddBoolToObject(p, "add_prefix_space", 0);
    cJSON_AddBoolToObject(p, "use_regex", 1);
    cJSON_ReplaceItemInObject(root, "pre_tokenizer", p);
}
static void edit_string_merges(cJSON *root) { /* merges as "a b" strings */
    cJSON *model = cJSON_GetObjectItem(root, "model"), *m = cJSON_CreateArray(), *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(model, "merges")) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s %s", cJSON_GetArrayItem(it, 0)->valuestring,
                 cJSON_GetArrayItem(it, 1)->valuestring);
        cJSON_AddItemToArray(m, cJSON_CreateString(buf));
    }
    cJSON_ReplaceItemInObject(model, "merges", m);
}

typedef struct bad_case {
    json_edit edit;
    fp4rt_status want;
    const char *key; /* must appear in the message */
} bad_case;

static void test_malformed(const char *good) {
    static const bad_case cases[] = {
        {edit_unigram, FP4RT_UNSUPPORTED, "model.type: \"Unigram\""},
        {edit_pretok, FP4RT_UNSUPPORTED, "pre_tokenizer.type: \"Whitespace\""},
        {edit_merge_unknown, FP4RT_FORMAT, "model.merges["},
        {edit_dup_id, FP4RT_FORMAT, "model.vocab: id"},
        {edit_empty_vocab, FP4RT_FORMAT, "model.vocab is empty"},
        {edit_missing_byte, FP4RT_FORMAT, "no token for byte 0x21"},
        {edit_bad_utf8_token, FP4RT_FORMAT, "id 900000 is not valid UTF-8"},
        {edit_nfkc, FP4RT_UNSUPPORTED, "normalizer.type: \"NFKC\""},
        {edit_decoder, FP4RT_UNSUPPORTED, "decoder.type"},
        {edit_byte_fallback, FP4RT_UNSUPPORTED, "model.byte_fallback"},
        {edit_added_clash, FP4RT_FORMAT, "added_tokens[0]"},
        {edit_behavior, FP4RT_UNSUPPORTED, "pretokenizers[0].behavior: \"Removed\""},
        {edit_bad_regex, FP4RT_UNSUPPORTED, "pretokenizers[0].pattern.Regex"},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(cases); i++) {
        fp4rt_tokenizer *t;
        char name[32];
        snprintf(name, sizeof name, "bad%zu.json", i);
        fp4rt_status st = load_edited(good, cases[i].edit, name, &t);
        const char *msg = fp4rt_last_error();
        CHECK_MSG(st == cases[i].want && t == NULL, "case %zu: status %s (%s)", i, fp4rt_status_name(st), msg);
        CHECK_MSG(strstr(msg, name) && strstr(msg, cases[i].key), "case %zu: message \"%s\"", i, msg);
        fp4rt_tokenizer_free(t);
    }
    /* truncated JSON */
    char *text;
    size_t len;
    fp4rt_tokenizer *t;
    if (fp4rt_read_file(good, 1u << 26, &text, &len) == FP4RT_OK) {
        const char *p = test_tmp_path("truncated.json");
        FILE *f = fopen(p, "w");
        fwrite(text, 1, len / 2, f);
        fclose(f);
        free(text);
        fp4rt_status st = fp4rt_tokenizer_load(p, &t);
        CHECK_MSG(st == FP4RT_FORMAT && strstr(fp4rt_last_error(), "truncated.json") &&
                      strstr(fp4rt_last_error(), "not valid JSON"), "truncated: %s", fp4rt_last_error());
    }
    fp4rt_status st = fp4rt_tokenizer_load_dir(test_tmp_path("nowhere"), &t);
    CHECK(st == FP4RT_IO && strstr(fp4rt_last_error(), "nowhere/tokenizer.json"));
    (void)edit_truncate;
}

static void test_streaming(const fp4rt_tokenizer *t) {
    /* multi-byte characters whose bytes span several tokens (few merges) */
    const char *texts[] = {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd caf\xc3\xa9",
                           "<|im_start|>\xe4\xbd\xa0\xe5\xa5\xbd<|im_end|>", "plain ascii"};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(texts); i++) {
        size_t n;
        int32_t *ids = enc(t, texts[i], &n);
        char *full;
        size_t len;
        for (int skip = 0; skip <= 1; skip++) {
            if (!ids || fp4rt_tokenizer_decode(t, ids, n, skip, &full, &len)) {
                CHECK(0);
                continue;
            }
            if (!skip) CHECK_MSG(!strcmp(full, texts[i]), "round trip of text %zu: \"%s\"", i, full);
            CHECK_MSG(stream_matches(t, ids, n, skip, full), "stream of text %zu (skip %d)", i, skip);
            free(full);
        }
        free(ids);
    }
    /* the first two bytes of a 3-byte character then 'a': one U+FFFD then 'a',
     * in one-shot and streaming decode; a trailing incomplete character is
     * flushed as one U+FFFD */
    int32_t ids[] = {t->byte_id[0xE6], t->byte_id[0x97], t->byte_id['a'], t->byte_id[0xE6], t->byte_id[0x97]};
    char *full;
    size_t len;
    CHECK(fp4rt_tokenizer_decode(t, ids, 5, 0, &full, &len) == FP4RT_OK &&
          !strcmp(full, "\xef\xbf\xbd" "a" "\xef\xbf\xbd"));
    CHECK(stream_matches(t, ids, 5, 0, full));
    fp4rt_detok_stream s;
    char piece[1024];
    fp4rt_detok_stream_init(&s, t, 0);
    CHECK_EQ_INT(fp4rt_detok_stream_push(&s, ids[0], piece, sizeof piece), 0);
    CHECK_EQ_INT(fp4rt_detok_stream_push(&s, ids[1], piece, sizeof piece), 0);
    CHECK_EQ_INT(fp4rt_detok_stream_push(&s, t->byte_id[0xA5], piece, sizeof piece), 3);
    CHECK(!strcmp(piece, "\xe6\x97\xa5"));
    CHECK_EQ_INT(fp4rt_detok_stream_push(&s, -5, piece, sizeof piece), -1);
    free(full);
}

static void test_added(const char *good) {
    fp4rt_tokenizer *t;
    fp4rt_status st = load_edited(good, edit_strip, "strip.json", &t);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (st) return;
    int32_t think = fp4rt_tokenizer_find(t, "<think>"), ethink = fp4rt_tokenizer_find(t, "</think>");
    int32_t mask = fp4rt_tokenizer_find(t, "mask"), cafe = fp4rt_tokenizer_find(t, "caf\xc3\xa9");
    int32_t end = fp4rt_tokenizer_find(t, "<|im_end|>");
    CHECK(think > 0 && ethink > 0 && mask > 0 && cafe > 0 && end > 0);
    /* lstrip takes the spaces before, rstrip the spaces and newlines after */
    CHECK(splits_as(t, "hello  \t<think>world", "hello", think, "world"));
    CHECK(splits_as(t, "hello</think> \n  world", "hello", ethink, "world"));
    /* without strip the spaces stay with the text */
    CHECK(splits_as(t, "hello <|im_end|> world", "hello ", end, " world"));
    CHECK(splits_as(t, "x<|im_end|>y", "x", end, "y"));
    /* single_word: only between non-word characters */
    CHECK(splits_as(t, "a mask b", "a ", mask, " b"));
    CHECK(splits_as(t, "mask", "", mask, ""));
    CHECK(!contains_id(t, "unmasked", mask));
    CHECK(!contains_id(t, "masks", mask));
    /* normalized: matches the NFC form of the text */
    CHECK(splits_as(t, "a cafe\xcc\x81 b", "a ", cafe, " b"));
    CHECK(splits_as(t, "a caf\xc3\xa9 b", "a ", cafe, " b"));
    /* leftmost-longest and adjacent tokens */
    CHECK(splits_as(t, "<think><|im_end|>", "", think, "<|im_end|>"));
    fp4rt_tokenizer_free(t);
}

typedef struct thread_arg {
    const fp4rt_tokenizer *t;
    const char *text;
    const int32_t *want;
    size_t n_want;
    int ok;
} thread_arg;

static void *thread_main(void *p) {
    thread_arg *a = p;
    a->ok = 1;
    for (int r = 0; r < 20; r++) {
        size_t n;
        int32_t *ids = enc(a->t, a->text, &n);
        a->ok &= ids && same_ids(ids, n, a->want, a->n_want);
        free(ids);
    }
    return NULL;
}

static void test_units(void) {
    const char *dir = test_tmp_path("synth");
    mkdir(dir, 0755);
    fp4rt_status st = fp4rt_synth_tokenizer(dir, 512);
    CHECK_MSG(st == FP4RT_OK, "synth: %s", fp4rt_last_error());
    CHECK(fp4rt_synth_tokenizer(dir, 100) == FP4RT_INVALID_ARGUMENT);
    fp4rt_tokenizer *t;
    st = fp4rt_tokenizer_load_dir(dir, &t);
    CHECK_MSG(st == FP4RT_OK, "load synth: %s", fp4rt_last_error());
    if (st) return;
    char good[600];
    snprintf(good, sizeof good, "%s/tokenizer.json", dir);
    /* contiguous ids: 256 bytes, the merges, then the 13 added tokens (the vision ones last) */
    int32_t first = (int32_t)fp4rt_tokenizer_n_vocab(t) - 13;
    CHECK(first > 256 + 100 && first + 13 <= 512);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|endoftext|>"), first);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|im_end|>"), first + 2);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "</think>"), first + 8);
    CHECK_EQ_INT(fp4rt_tokenizer_find(t, "<|image_pad|>"), first + 11);
    CHECK(fp4rt_tokenizer_is_special(t, first + 2) && !fp4rt_tokenizer_is_special(t, first + 7));
    CHECK(fp4rt_tokenizer_is_special(t, first + 9) && fp4rt_tokenizer_is_special(t, first + 11));
    CHECK(fp4rt_tokenizer_find(t, "\xc4\xa0the") > 255); /* "Ġthe" was learnt */

    /* empty text: zero ids; round trips */
    size_t n;
    int32_t *ids = enc(t, "", &n);
    CHECK(ids != NULL && n == 0);
    free(ids);
    const char *rt[] = {"The quick brown fox.", "int main(void) { return 0; }\n",
                        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "  spaces   and\ttabs\n\n",
                        "<|im_start|>user\nhi<|im_end|>\n"};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(rt); i++) {
        ids = enc(t, rt[i], &n);
        char *out;
        size_t len;
        CHECK(ids && fp4rt_tokenizer_decode(t, ids, n, 0, &out, &len) == FP4RT_OK &&
              len == strlen(rt[i]) && !strcmp(out, rt[i]));
        if (ids) free(out);
        free(ids);
    }
    /* skip_special drops <|im_start|> / <|im_end|> only */
    ids = enc(t, "<|im_start|>a<think>b<|im_end|>", &n);
    char *out;
    size_t len;
    CHECK(ids && fp4rt_tokenizer_decode(t, ids, n, 1, &out, &len) == FP4RT_OK &&
          !strcmp(out, "a<think>b"));
    if (ids) free(out);
    free(ids);
    /* invalid UTF-8 is replaced by U+FFFD, one per maximal ill-formed subpart */
    size_t n1, n2;
    int32_t *a = enc(t, "ok \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90 \xff!", &n1);
    int32_t *b = enc(t, "ok \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                        "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd!", &n2);
    CHECK(a && b && same_ids(a, n1, b, n2));
    free(a), free(b);
    /* ids outside the vocabulary */
    int32_t bad[] = {1, 600};
    CHECK(fp4rt_tokenizer_decode(t, bad, 2, 0, &out, &len) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "600"));
    int32_t neg[] = {-1};
    CHECK(fp4rt_tokenizer_decode(t, neg, 1, 0, &out, &len) == FP4RT_INVALID_ARGUMENT);

    test_streaming(t);
    test_added(good);
    test_malformed(good);

    /* other accepted forms: ByteLevel alone with use_regex, merges as "a b" */
    fp4rt_tokenizer *t2;
    CHECK_MSG(load_edited(good, edit_gpt2, "gpt2.json", &t2) == FP4RT_OK, "%s", fp4rt_last_error());
    if (t2) CHECK(splits_as(t2, "it's<|im_end|>ok", "it's", first + 2, "ok"));
    fp4rt_tokenizer_free(t2);
    CHECK_MSG(load_edited(good, edit_string_merges, "strmerges.json", &t2) == FP4RT_OK, "%s",
              fp4rt_last_error());
    if (t2) {
        size_t k1, k2;
        int32_t *x1 = enc(t, rt[0], &k1), *x2 = enc(t2, rt[0], &k2);
        CHECK(x1 && x2 && same_ids(x1, k1, x2, k2));
        free(x1), free(x2);
    }
    fp4rt_tokenizer_free(t2);

    /* allocation failures while loading: a clean error, never a crash or leak */
    int failures = 0;
    for (long k = 1; k <= 40; k++) {
        fp4rt_debug_fail_alloc_after(k);
        fp4rt_tokenizer *t3;
        if (fp4rt_tokenizer_load(good, &t3) != FP4RT_OK) failures++;
        fp4rt_debug_fail_alloc_after(0);
        fp4rt_tokenizer_free(t3);
    }
    CHECK(failures > 0);

    /* several threads encode with one tokenizer */
    const char *txt = "The tokenizer turns the text into tokens, and the model turns them "
                      "into the next token. \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";
    size_t nw;
    int32_t *want = enc(t, txt, &nw);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){t, txt, want, nw, 0};
        pthread_create(&th[i], NULL, thread_main, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ok);
    }
    free(want);
    fp4rt_tokenizer_free(t);
}

int main(void) {
    test_tmpdir("tokenizer");
    gcase *shared;
    int n_shared;
    test_qwen3(&shared, &n_shared);
    test_pm_regex();
    test_qwen36(shared, n_shared);
    if (shared) free_golden(shared, n_shared);
    test_units();
    test_tmpdir_remove();
    return test_summary("test_tokenizer");
}
