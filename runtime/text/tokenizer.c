/* tokenizer.json loader: validates the supported subset of the HF tokenizers
 * format (see runtime/text/tokenizer.h) and builds the tables of fp4rt_tokenizer.
 * Anything outside that subset is an UNSUPPORTED error naming the key and its
 * value, so a tokenizer is never silently run with the wrong pipeline. */
#include "runtime/base/common.h"
#include "runtime/text/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_FILE ((size_t)1 << 30)

/* GPT-2 pattern used by ByteLevel with use_regex: true. */
static const char k_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- small JSON helpers ------------------------------------------------- */

static const char *json_type_name(const cJSON *j) {
    if (!j) return "absent";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    return "an object";
}

/* Optional boolean: absent or null gives def. */
static fp4rt_status get_bool(const fp4rt_tokenizer *t, const cJSON *obj, const char *where,
                             const char *key, int def, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return FP4RT_OK;
    }
    if (!cJSON_IsBool(j))
        return fp4rt_fail(FP4RT_FORMAT, "%s: %s.%s: expected a boolean, found %s", t->path, where,
                          key, json_type_name(j));
    *out = cJSON_IsTrue(j);
    return FP4RT_OK;
}

/* Type string of a component object ("type" key). */
static const char *type_of(const cJSON *obj) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

/* Optional string that must be absent, null or "" (e.g. continuing_subword_prefix). */
static fp4rt_status want_empty(const fp4rt_tokenizer *t, const cJSON *obj, const char *where,
                               const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j) || (cJSON_IsString(j) && !j->valuestring[0])) return FP4RT_OK;
    if (cJSON_IsString(j))
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s.%s: \"%s\" is not supported (expected null)",
                          t->path, where, key, j->valuestring);
    return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s.%s: %s is not supported (expected null)", t->path,
                      where, key, json_type_name(j));
}

/* ---- token strings ------------------------------------------------------ */

/* Appends the byte form of a tokenizer.json token string to the blob; *raw = 1
 * when it has characters outside the ByteLevel table (then its UTF-8 is kept). */
static fp4rt_status blob_add(fp4rt_tokenizer *t, const char *s, uint32_t *off, uint32_t *len,
                             int *raw) {
    size_t n = strlen(s);
    if (t->blob_len + n + 1 > t->blob_cap) {
        size_t c = t->blob_cap ? t->blob_cap : 1 << 20;
        while (c < t->blob_len + n + 1) c *= 2;
        if (c > UINT32_MAX) return fp4rt_fail(FP4RT_FORMAT, "%s: token strings too large", t->path);
        char *b = realloc(t->blob, c);
        if (!b) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory for tokens", t->path);
        t->blob = b, t->blob_cap = c;
    }
    char *dst = t->blob + t->blob_len;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    *raw = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next(p + i, n - i, &cp, &bad, &inc);
        int b = l ? fp4rt_bytelevel_byte(cp) : -1;
        if (b < 0) {
            *raw = 1;
            break;
        }
        dst[o++] = (char)b;
        i += l;
    }
    if (*raw) {
        memcpy(dst, s, n);
        o = n;
    }
    dst[o] = 0;
    *off = (uint32_t)t->blob_len;
    *len = (uint32_t)o;
    t->blob_len += o + 1;
    return FP4RT_OK;
}

/* Id of a regular (model.vocab) token given as its tokenizer.json string, or -1. */
static int32_t vocab_find_json(const fp4rt_tokenizer *t, const char *s, size_t n) {
    char stack[256];
    char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return -1;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    int raw = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next(p + i, n - i, &cp, &bad, &inc);
        int b = l ? fp4rt_bytelevel_byte(cp) : -1;
        if (b < 0) {
            raw = 1;
            break;
        }
        buf[o++] = (char)b;
        i += l;
    }
    int32_t id = -1;
    if (!raw) {
        id = fp4rt_tok_vocab_get(t, buf, o);
    } else { /* rare: tokens outside the byte table are searched linearly */
        for (uint32_t k = 0; k < t->n_ids; k++)
            if ((t->flags[k] & (FP4RT_TOKF_RAW | FP4RT_TOKF_ADDED)) == FP4RT_TOKF_RAW &&
                t->len[k] == n && memcmp(t->blob + t->off[k], s, n) == 0) {
                id = (int32_t)k;
                break;
            }
    }
    if (buf != stack) free(buf);
    return id;
}

/* ---- model -------------------------------------------------------------- */

static fp4rt_status check_id(const fp4rt_tokenizer *t, const cJSON *j, const char *where,
                             const char *name, int32_t *id) {
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > INT32_MAX - 1 ||
        j->valuedouble != (double)(int32_t)j->valuedouble)
        return fp4rt_fail(FP4RT_FORMAT, "%s: %s: id of \"%s\" must be an integer in [0, 2^31)",
                          t->path, where, name);
    *id = (int32_t)j->valuedouble;
    return FP4RT_OK;
}

static fp4rt_status parse_vocab(fp4rt_tokenizer *t, const cJSON *vocab, const cJSON *added) {
    if (!cJSON_IsObject(vocab))
        return fp4rt_fail(FP4RT_FORMAT, "%s: model.vocab: expected an object, found %s", t->path,
                          json_type_name(vocab));
    /* ids: regular and added share one table */
    int64_t max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = -1;
        fp4rt_status st = check_id(t, it, "model.vocab", it->string, &id);
        if (st != FP4RT_OK) return st;
        max_id = FP4RT_MAX(max_id, id);
        if (!fp4rt_utf8_valid(it->string, strlen(it->string)))
            return fp4rt_fail(FP4RT_FORMAT, "%s: model.vocab: the string of id %d is not valid UTF-8", t->path, id);
    }
    if (max_id < 0) return fp4rt_fail(FP4RT_FORMAT, "%s: model.vocab is empty", t->path);
    cJSON_ArrayForEach(it, added) {
        const cJSON *jid = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsNumber(jid) && jid->valuedouble >= 0 && jid->valuedouble < INT32_MAX)
            max_id = FP4RT_MAX(max_id, (int64_t)jid->valuedouble);
    }
    t->n_ids = (uint32_t)(max_id + 1);
    t->off = fp4rt_calloc(t->n_ids + 1, sizeof *t->off, "token offsets");
    t->len = fp4rt_calloc(t->n_ids + 1, sizeof *t->len, "token lengths");
    t->flags = fp4rt_calloc(t->n_ids + 1, 1, "token flags");
    if (!t->off || !t->len || !t->flags) return FP4RT_OUT_OF_MEMORY;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        if (t->flags[id])
            return fp4rt_fail(FP4RT_FORMAT, "%s: model.vocab: id %d is used twice (again by \"%s\")",
                              t->path, id, it->string);
        int raw;
        fp4rt_status st = blob_add(t, it->string, &t->off[id], &t->len[id], &raw);
        if (st != FP4RT_OK) return st;
        t->flags[id] = (uint8_t)(FP4RT_TOKF_PRESENT | (raw ? FP4RT_TOKF_RAW : 0));
    }
    return fp4rt_tok_build_vmap(t);
}

static fp4rt_status parse_merges(fp4rt_tokenizer *t, const cJSON *merges) {
    if (!cJSON_IsArray(merges))
        return fp4rt_fail(FP4RT_FORMAT, "%s: model.merges: expected an array, found %s", t->path,
                          json_type_name(merges));
    size_t n = (size_t)cJSON_GetArraySize(merges);
    fp4rt_status st = fp4rt_tok_merges_init(t, n);
    if (st != FP4RT_OK) return st;
    size_t rank = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) {
            const char *sp = strchr(it->valuestring, ' ');
            if (!sp)
                return fp4rt_fail(FP4RT_FORMAT, "%s: model.merges[%zu]: \"%s\" is not \"a b\"",
                                  t->path, rank, it->valuestring);
            a = it->valuestring, la = (size_t)(sp - a);
            b = sp + 1, lb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring, la = strlen(a);
            b = it->child->next->valuestring, lb = strlen(b);
        } else {
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"], found %s",
                              t->path, rank, json_type_name(it));
        }
        int32_t ia = vocab_find_json(t, a, la), ib = vocab_find_json(t, b, lb);
        char *ab = malloc(la + lb + 1);
        if (!ab) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory", t->path);
        memcpy(ab, a, la);
        memcpy(ab + la, b, lb);
        ab[la + lb] = 0;
        int32_t iab = ia >= 0 && ib >= 0 ? vocab_find_json(t, ab, la + lb) : -1;
        if (ia < 0 || ib < 0 || iab < 0) {
            st = fp4rt_fail(FP4RT_FORMAT, "%s: model.merges[%zu]: token \"%.*s\" is not in model.vocab",
                            t->path, rank, ia < 0 ? (int)la : ib < 0 ? (int)lb : (int)(la + lb),
                            ia < 0 ? a : ib < 0 ? b : ab);
            free(ab);
            return st;
        }
        free(ab);
        fp4rt_tok_merge_put(t, ia, ib, (uint32_t)rank, iab);
        rank++;
    }
    return FP4RT_OK;
}

static fp4rt_status parse_model(fp4rt_tokenizer *t, const cJSON *model, const cJSON *added) {
    if (!cJSON_IsObject(model))
        return fp4rt_fail(FP4RT_FORMAT, "%s: model: expected an object, found %s", t->path,
                          json_type_name(model));
    const char *ty = type_of(model);
    if (ty && strcmp(ty, "BPE") != 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: model.type: \"%s\" is not supported (expected \"BPE\")",
                          t->path, ty);
    int byte_fallback;
    fp4rt_status st = get_bool(t, model, "model", "byte_fallback", 0, &byte_fallback);
    if (st != FP4RT_OK) return st;
    if (byte_fallback)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: model.byte_fallback: true is not supported",
                          t->path);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: model.dropout: only null is supported", t->path);
    if ((st = want_empty(t, model, "model", "continuing_subword_prefix")) != FP4RT_OK ||
        (st = want_empty(t, model, "model", "end_of_word_suffix")) != FP4RT_OK ||
        (st = get_bool(t, model, "model", "ignore_merges", 0, &t->ignore_merges)) != FP4RT_OK ||
        (st = get_bool(t, model, "model", "fuse_unk", 0, &t->fuse_unk)) != FP4RT_OK)
        return st;
    if ((st = parse_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), added)) != FP4RT_OK)
        return st;
    t->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) t->unk_id = vocab_find_json(t, unk->valuestring, strlen(unk->valuestring));
    return parse_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"));
}

/* ---- normalizer, pre-tokenizer, decoder ---------------------------------- */

static fp4rt_status parse_normalizer(fp4rt_tokenizer *t, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return FP4RT_OK;
    const char *ty = type_of(n);
    if (ty && strcmp(ty, "NFC") == 0) {
        t->nfc = 1;
        return FP4RT_OK;
    }
    if (ty && strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            return fp4rt_fail(FP4RT_FORMAT, "%s: normalizer.normalizers: expected an array",
                              t->path);
        int k = 0;
        cJSON_ArrayForEach(it, list) {
            const char *ity = type_of(it);
            if (!ity || strcmp(ity, "NFC") != 0)
                return fp4rt_fail(FP4RT_UNSUPPORTED,
                                  "%s: normalizer.normalizers[%d].type: \"%s\" is not supported "
                                  "(expected \"NFC\")", t->path, k, ity ? ity : "(none)");
            t->nfc = 1;
            k++;
        }
        return FP4RT_OK;
    }
    return fp4rt_fail(FP4RT_UNSUPPORTED,
                      "%s: normalizer.type: \"%s\" is not supported (expected \"NFC\" or null)",
                      t->path, ty ? ty : "(none)");
}

/* Rewrites an Oniguruma pattern (what HF tokenizers compiles) for PCRE2:
 * \s, \S, \w, \W and \h get Oniguruma's Unicode meanings (White_Space; letters,
 * marks, decimal digits and connector punctuation; hex digits), which differ
 * from PCRE2's PCRE2_UCP ones at a few code points (e.g. U+180E, U+0085).
 * \S and \W inside a character class are left to PCRE2. malloc'ed. */
static char *onig_to_pcre2(const char *pat) {
    static const char sp[] = "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}"
                             "\\x{2029}\\x{202f}\\x{205f}\\x{3000}";
    static const char wd[] = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
    static const char hx[] = "0-9a-fA-F";
    size_t n = strlen(pat), o = 0;
    char *out = malloc(n * 64 + 1); /* each escape expands by well under 64x */
    if (!out) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char e = pat[i + 1];
            const char *set = e == 's' || e == 'S' ? sp : e == 'w' || e == 'W' ? wd
                            : e == 'h' || e == 'H' ? hx : NULL;
            int neg = e == 'S' || e == 'W' || e == 'H';
            if (set && !(in_class && neg)) {
                o += (size_t)sprintf(out + o, in_class ? "%s" : neg ? "[^%s]" : "[%s]", set);
            } else {
                out[o++] = c;
                out[o++] = e;
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            out[o++] = c;
            if (i + 1 < n && pat[i + 1] == '^') out[o++] = pat[++i];
            if (i + 1 < n && pat[i + 1] == ']') out[o++] = pat[++i]; /* literal ] first */
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && pat[i + 1] == ':') { /* [:alpha:] */
            const char *end = strstr(pat + i, ":]");
            if (end) {
                size_t l = (size_t)(end - (pat + i)) + 2;
                memcpy(out + o, pat + i, l);
                o += l, i += l - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        out[o++] = c;
    }
    out[o] = 0;
    return out;
}

static fp4rt_status add_split(fp4rt_tokenizer *t, const char *pattern, int literal,
                              const char *where) {
    if (t->n_split >= FP4RT_TOK_MAX_SPLITS)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s: more than %d regex splits", t->path, where,
                          FP4RT_TOK_MAX_SPLITS);
    char *pat = literal ? fp4rt_strdup(pattern) : onig_to_pcre2(pattern);
    if (!pat) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory", t->path);
    int err;
    PCRE2_SIZE eoff;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &err, &eoff, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s: regex not supported by PCRE2 (%s, near offset %zu)",
                          t->path, where, (const char *)msg, (size_t)eoff);
    }
    t->split[t->n_split] = re;
    t->split_jit[t->n_split] = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    t->n_split++;
    return FP4RT_OK;
}

static fp4rt_status parse_pretok_one(fp4rt_tokenizer *t, const cJSON *p, const char *where,
                                     int last, int *saw_bytelevel) {
    const char *ty = type_of(p);
    fp4rt_status st;
    if (ty && strcmp(ty, "Split") == 0) {
        if (*saw_bytelevel)
            return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s: Split after ByteLevel is not supported",
                              t->path, where);
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: %s.behavior: \"%s\" is not supported (expected \"Isolated\")",
                              t->path, where, cJSON_IsString(beh) ? beh->valuestring : "(none)");
        int invert;
        if ((st = get_bool(t, p, where, "invert", 0, &invert)) != FP4RT_OK) return st;
        if (invert)
            return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s.invert: true is not supported", t->path,
                              where);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        char w[160];
        if (cJSON_IsString(re)) {
            snprintf(w, sizeof w, "%s.pattern.Regex", where);
            return add_split(t, re->valuestring, 0, w);
        }
        if (cJSON_IsString(lit)) {
            snprintf(w, sizeof w, "%s.pattern.String", where);
            return add_split(t, lit->valuestring, 1, w);
        }
        return fp4rt_fail(FP4RT_FORMAT, "%s: %s.pattern: expected {\"Regex\": ...} or {\"String\": ...}",
                          t->path, where);
    }
    if (ty && strcmp(ty, "ByteLevel") == 0) {
        if (!last || *saw_bytelevel)
            return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s: ByteLevel must come last, once", t->path,
                              where);
        *saw_bytelevel = 1;
        int aps, use_regex;
        if ((st = get_bool(t, p, where, "add_prefix_space", 1, &aps)) != FP4RT_OK ||
            (st = get_bool(t, p, where, "use_regex", 1, &use_regex)) != FP4RT_OK)
            return st;
        if (aps)
            return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %s.add_prefix_space: true (or absent) is not "
                              "supported", t->path, where);
        if (use_regex) {
            char w[160];
            snprintf(w, sizeof w, "%s (GPT-2 regex of use_regex)", where);
            return add_split(t, k_gpt2_pattern, 0, w);
        }
        return FP4RT_OK;
    }
    return fp4rt_fail(FP4RT_UNSUPPORTED,
                      "%s: %s.type: \"%s\" is not supported (expected \"Split\" or \"ByteLevel\")",
                      t->path, where, ty ? ty : "(none)");
}

static fp4rt_status parse_pretok(fp4rt_tokenizer *t, const cJSON *p) {
    int saw = 0;
    fp4rt_status st;
    const char *ty = p && !cJSON_IsNull(p) ? type_of(p) : "null";
    if (ty && strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *it;
        if (!cJSON_IsArray(list))
            return fp4rt_fail(FP4RT_FORMAT, "%s: pre_tokenizer.pretokenizers: expected an array",
                              t->path);
        int k = 0, n = cJSON_GetArraySize(list);
        cJSON_ArrayForEach(it, list) {
            char w[64];
            snprintf(w, sizeof w, "pre_tokenizer.pretokenizers[%d]", k);
            if ((st = parse_pretok_one(t, it, w, k == n - 1, &saw)) != FP4RT_OK) return st;
            k++;
        }
    } else if (ty && (strcmp(ty, "ByteLevel") == 0 || strcmp(ty, "Split") == 0)) {
        if ((st = parse_pretok_one(t, p, "pre_tokenizer", 1, &saw)) != FP4RT_OK) return st;
    } else {
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: pre_tokenizer.type: \"%s\" is not supported (expected \"Sequence\", "
                          "\"Split\" or \"ByteLevel\")", t->path, ty ? ty : "(none)");
    }
    if (!saw)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: pre_tokenizer: no ByteLevel step (only byte-level "
                          "BPE is supported)", t->path);
    return FP4RT_OK;
}

static fp4rt_status parse_decoder_post(fp4rt_tokenizer *t, const cJSON *root) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *ty = d && !cJSON_IsNull(d) ? type_of(d) : "null";
    if (!ty || strcmp(ty, "ByteLevel") != 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: decoder.type: \"%s\" is not supported (expected \"ByteLevel\")",
                          t->path, ty ? ty : "(none)");
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    ty = pp && !cJSON_IsNull(pp) ? type_of(pp) : NULL;
    if (ty && strcmp(ty, "ByteLevel") != 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: post_processor.type: \"%s\" is not supported (expected \"ByteLevel\" "
                          "or null)", t->path, ty);
    return FP4RT_OK;
}

/* ---- added tokens ------------------------------------------------------- */

static fp4rt_status build_addset(fp4rt_tokenizer *t, fp4rt_tok_addset *set, int normalized) {
    int n = 0;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized && t->added[i].match_len) n++;
    set->n = n;
    set->idx = fp4rt_calloc((size_t)n + 1, sizeof *set->idx, "added token set");
    if (!set->idx) return FP4RT_OUT_OF_MEMORY;
    /* counting sort by first byte, then longest first within a byte */
    int count[257] = {0};
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized && t->added[i].match_len)
            count[(unsigned char)t->added[i].match[0] + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    memcpy(set->first_off, count, sizeof count);
    int fill[256];
    memcpy(fill, count, sizeof fill);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized && t->added[i].match_len)
            set->idx[fill[(unsigned char)t->added[i].match[0]]++] = i;
    for (int b = 0; b < 256; b++) /* insertion sort: few tokens share a first byte */
        for (int i = set->first_off[b] + 1; i < set->first_off[b + 1]; i++)
            for (int j = i; j > set->first_off[b] &&
                            t->added[set->idx[j]].match_len > t->added[set->idx[j - 1]].match_len;
                 j--) {
                int tmp = set->idx[j];
                set->idx[j] = set->idx[j - 1];
                set->idx[j - 1] = tmp;
            }
    return FP4RT_OK;
}

static fp4rt_status parse_added(fp4rt_tokenizer *t, const cJSON *list) {
    fp4rt_status st;
    if (!list || cJSON_IsNull(list)) {
        if ((st = build_addset(t, &t->raw_set, 0)) != FP4RT_OK) return st;
        return build_addset(t, &t->norm_set, 1);
    }
    if (!cJSON_IsArray(list))
        return fp4rt_fail(FP4RT_FORMAT, "%s: added_tokens: expected an array, found %s", t->path,
                          json_type_name(list));
    int n = cJSON_GetArraySize(list), k = 0;
    t->added = fp4rt_calloc((size_t)n + 1, sizeof *t->added, "added tokens");
    if (!t->added) return FP4RT_OUT_OF_MEMORY;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        char w[48];
        snprintf(w, sizeof w, "added_tokens[%d]", k);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(content))
            return fp4rt_fail(FP4RT_FORMAT, "%s: %s.content: expected a string, found %s", t->path,
                              w, json_type_name(content));
        int32_t id = -1;
        if ((st = check_id(t, cJSON_GetObjectItemCaseSensitive(it, "id"), w, content->valuestring,
                           &id)) != FP4RT_OK)
            return st;
        fp4rt_tok_added *a = &t->added[t->n_added];
        int special, lstrip, rstrip, single_word, normalized;
        if ((st = get_bool(t, it, w, "special", 0, &special)) != FP4RT_OK ||
            (st = get_bool(t, it, w, "lstrip", 0, &lstrip)) != FP4RT_OK ||
            (st = get_bool(t, it, w, "rstrip", 0, &rstrip)) != FP4RT_OK ||
            (st = get_bool(t, it, w, "single_word", 0, &single_word)) != FP4RT_OK ||
            (st = get_bool(t, it, w, "normalized", !special, &normalized)) != FP4RT_OK)
            return st;
        a->content = fp4rt_strdup(content->valuestring);
        if (!a->content) return FP4RT_OUT_OF_MEMORY;
        t->n_added++;
        a->id = id;
        a->special = (unsigned char)special, a->lstrip = (unsigned char)lstrip;
        a->rstrip = (unsigned char)rstrip, a->single_word = (unsigned char)single_word;
        a->normalized = (unsigned char)normalized;
        size_t clen = strlen(a->content);
        if (normalized && t->nfc) {
            char *norm;
            size_t nl;
            if ((st = fp4rt_nfc(a->content, clen, &norm, &nl)) != FP4RT_OK) return st;
            a->match = norm ? norm : fp4rt_strdup(a->content);
            a->match_len = nl;
        } else {
            a->match = fp4rt_strdup(a->content);
            a->match_len = clen;
        }
        if (!a->match) return FP4RT_OUT_OF_MEMORY;
        /* the id: new, or the same string as the model.vocab token it names */
        uint8_t fl = t->flags[id];
        if (fl & FP4RT_TOKF_ADDED)
            return fp4rt_fail(FP4RT_FORMAT, "%s: %s: id %d of \"%s\" is already used by another "
                              "added token", t->path, w, id, a->content);
        if (fl & FP4RT_TOKF_PRESENT) {
            int32_t vid = vocab_find_json(t, a->content, clen);
            if (vid != id)
                return fp4rt_fail(FP4RT_FORMAT,
                                  "%s: %s: id %d of \"%s\" is already used by another "
                                  "model.vocab token", t->path, w, id, a->content);
        } else {
            int raw;
            if ((st = blob_add(t, a->content, &t->off[id], &t->len[id], &raw)) != FP4RT_OK)
                return st;
            fl = (uint8_t)(FP4RT_TOKF_PRESENT | (raw ? FP4RT_TOKF_RAW : 0));
        }
        t->flags[id] = (uint8_t)(fl | FP4RT_TOKF_ADDED | (special ? FP4RT_TOKF_SPECIAL : 0));
        k++;
    }
    if ((st = build_addset(t, &t->raw_set, 0)) != FP4RT_OK) return st;
    return build_addset(t, &t->norm_set, 1);
}

/* ---- public ------------------------------------------------------------- */

static fp4rt_status load_json(fp4rt_tokenizer *t, const cJSON *root) {
    if (!cJSON_IsObject(root))
        return fp4rt_fail(FP4RT_FORMAT, "%s: expected a JSON object at the top level", t->path);
    fp4rt_status st;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if ((st = parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) != FP4RT_OK ||
        (st = parse_pretok(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"))) != FP4RT_OK ||
        (st = parse_decoder_post(t, root)) != FP4RT_OK)
        return st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) return fp4rt_fail(FP4RT_FORMAT, "%s: model: missing", t->path);
    if ((st = parse_model(t, model, cJSON_IsArray(added) ? added : NULL)) != FP4RT_OK) return st;
    if ((st = parse_added(t, added)) != FP4RT_OK) return st;
    return fp4rt_tok_cache_init(t);
}

fp4rt_status fp4rt_tokenizer_load(const char *path, fp4rt_tokenizer **out) {
    if (!path || !out) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "tokenizer_load: NULL argument");
    *out = NULL;
    char *text;
    size_t len;
    fp4rt_status st = fp4rt_read_file(path, TOK_MAX_FILE, &text, &len);
    if (st != FP4RT_OK) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= text && e <= text + len) at = (size_t)(e - text);
        free(text);
        return fp4rt_fail(FP4RT_FORMAT, "%s: not valid JSON (error near byte %zu of %zu)", path,
                          at, len);
    }
    free(text);
    fp4rt_tokenizer *t = fp4rt_calloc(1, sizeof *t, "tokenizer");
    if (!t) {
        cJSON_Delete(root);
        return FP4RT_OUT_OF_MEMORY;
    }
    t->unk_id = -1;
    t->bpe_linear_max = 48;
    t->path = fp4rt_strdup(path);
    st = t->path ? load_json(t, root) : FP4RT_OUT_OF_MEMORY;
    cJSON_Delete(root);
    if (st != FP4RT_OK) {
        fp4rt_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FP4RT_OK;
}

fp4rt_status fp4rt_tokenizer_load_dir(const char *dir, fp4rt_tokenizer **out) {
    if (!dir || !out) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "tokenizer_load_dir: NULL argument");
    *out = NULL;
    char *p = fp4rt_path_join(dir, "tokenizer.json");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st = fp4rt_tokenizer_load(p, out);
    free(p);
    return st;
}

void fp4rt_tokenizer_free(fp4rt_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_split; i++) pcre2_code_free(t->split[i]);
    for (int i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].match);
    }
    free(t->added);
    free(t->raw_set.idx);
    free(t->norm_set.idx);
    fp4rt_tok_cache_free(t);
    free(t->vmap);
    free(t->mmap);
    free(t->off);
    free(t->len);
    free(t->flags);
    free(t->blob);
    free(t->path);
    free(t);
}

size_t fp4rt_tokenizer_n_vocab(const fp4rt_tokenizer *t) { return t ? t->n_ids : 0; }

int32_t fp4rt_tokenizer_find(const fp4rt_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    for (int i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, token) == 0) return t->added[i].id;
    return vocab_find_json(t, token, strlen(token));
}

int fp4rt_tokenizer_is_special(const fp4rt_tokenizer *t, int32_t id) {
    return t && id >= 0 && (uint32_t)id < t->n_ids && (t->flags[id] & FP4RT_TOKF_SPECIAL);
}
