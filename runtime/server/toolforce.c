/* Forced tool calls: the generation constraint and the closing text (toolforce.h). */
#include "runtime/server/toolforce.h"

#include "runtime/base/common.h"
#include "runtime/engine/model.h"
#include "runtime/text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { C_USE = 1, C_PLAIN = 2 };
enum { P_REASON, P_PREFIX, P_NAME, P_PREFIX2, P_ARGS, P_END };

static const char k_close_tag[] = "</tool_call>";

struct srv_force_table {
    int n_vocab;
    const fp4rt_tokenizer *tok;
    uint8_t *cls;        /* [n_vocab] C_USE: may appear in a call (has bytes; not special, end-of-generation or a
                            think token); C_PLAIN: also plain string content (complete UTF-8, no '"', '\\' or
                            control bytes, no way to end "</tool_call>": may_close_tag): accepted inside a
                            string, leaving it as it was */
    uint8_t *reason;     /* [n_vocab] the reasoning's mask: ids with a token, no end-of-generation id */
    int32_t *by_first;   /* C_USE ids ordered by key (first_key); those with key k at [first[k], first[k + 1]) */
    int first[513];
    int32_t *slow;       /* C_USE ids that are not C_PLAIN */
    int n_slow;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A token's bucket: its first byte b (0 .. 255), or 256 + c for white space
 * then the byte c. Outside strings every white-space byte acts as ' ', and
 * inside a string (after a backslash, within a UTF-8 character: the states
 * the buckets serve) none is accepted, so a state accepts a token of bucket
 * 256 + c only if it accepts ' ' then c. */
static int first_key(const char *b, size_t n) {
    size_t i = 0;
    while (i < n && is_ws(b[i])) i++;
    return i == 0 || i == n ? (uint8_t)b[0] : 256 + (uint8_t)b[i];
}

/* 1 when text ending in b[0, n) could contain "</tool_call>" ending within
 * b: b contains it, or a prefix of b that ends at a '>' is a suffix of it. */
static int may_close_tag(const char *b, size_t n) {
    size_t c = sizeof k_close_tag - 1;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != '>') continue;
        size_t k = i + 1; /* b[0, k) against the tag's last k bytes, or the tag inside b */
        if (k <= c ? !memcmp(b, k_close_tag + c - k, k) : !memcmp(b + k - c, k_close_tag, c)) return 1;
    }
    return 0;
}

static const char *tok_bytes(const srv_force_table *t, int32_t id, size_t *n) {
    return fp4rt_tokenizer_bytes(t->tok, id, n);
}

srv_force_table *srv_force_table_new(const fp4rt_model *m) {
    if (!m->tokenizer || !m->valid_ids) {
        fp4rt_fail(FP4RT_UNSUPPORTED, "the model has no tokenizer.json: no forced tool calls");
        return NULL;
    }
    int32_t skip[FP4RT_MAX_STOP_IDS + 2];
    int n_skip = 0;
    for (int i = 0; i < m->n_eos; i++) skip[n_skip++] = m->eos[i];
    return srv_force_table_build(m->tokenizer, fp4rt_model_n_vocab(m), m->valid_ids, skip, n_skip, m->think_open,
                                 m->think_close);
}

static int listed(const int32_t *ids, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

srv_force_table *srv_force_table_build(const fp4rt_tokenizer *tok, int n, const uint8_t *valid, const int32_t *eos,
                                       int n_eos, int32_t think_open, int32_t think_close) {
    srv_force_table *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->n_vocab = n;
    t->tok = tok;
    t->cls = calloc((size_t)n, 1);
    t->reason = calloc((size_t)n, 1);
    t->by_first = malloc((size_t)n * sizeof *t->by_first);
    t->slow = malloc((size_t)n * sizeof *t->slow);
    if (!t->cls || !t->reason || !t->by_first || !t->slow) goto oom;
    int count[512] = {0};
    for (int32_t id = 0; id < n; id++) {
        if (valid ? !valid[id] : !fp4rt_tokenizer_has_id(tok, id)) continue;
        t->reason[id] = !listed(eos, n_eos, id);
        size_t len;
        const char *b = tok_bytes(t, id, &len);
        if (!b || !len || !t->reason[id] || fp4rt_tokenizer_is_special(tok, id) || id == think_open ||
            id == think_close)
            continue;
        t->cls[id] = C_USE;
        fp4rt_json_prefix js;
        fp4rt_json_prefix_init(&js, 0);
        if (fp4rt_json_prefix_byte(&js, '"') && fp4rt_json_prefix_feed(&js, b, len) &&
            fp4rt_json_prefix_in_plain_string(&js) && !may_close_tag(b, len))
            t->cls[id] |= C_PLAIN;
        else t->slow[t->n_slow++] = id;
        count[first_key(b, len)]++;
    }
    t->first[0] = 0;
    for (int k = 0; k < 512; k++) t->first[k + 1] = t->first[k] + count[k];
    int at[512];
    memcpy(at, t->first, sizeof at);
    for (int32_t id = 0; id < n; id++)
        if (t->cls[id] & C_USE) {
            size_t len;
            const char *b = tok_bytes(t, id, &len);
            t->by_first[at[first_key(b, len)]++] = id;
        }
    return t;
oom:
    srv_force_table_free(t);
    fp4rt_fail(FP4RT_OUT_OF_MEMORY, "forced tool calls: out of memory for the token tables");
    return NULL;
}

void srv_force_table_free(srv_force_table *t) {
    if (!t) return;
    free(t->cls);
    free(t->reason);
    free(t->by_first);
    free(t->slow);
    free(t);
}

/* The JSON string form of s without its quotes (malloc'ed). */
static char *json_escaped(const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *p = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!p) return NULL;
    size_t n = strlen(p);
    memmove(p, p + 1, n - 2);
    p[n - 2] = 0;
    return p;
}

/* Tool i's name as the call writes it: JSON-escaped, then '"' (malloc'ed);
 * NULL past the last tool. */
static char *name_target(const cJSON *tools, int i) {
    const cJSON *t = cJSON_GetArrayItem(tools, i);
    if (!t) return NULL;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
    char *e = cJSON_IsString(nm) ? json_escaped(nm->valuestring) : NULL;
    if (!e) return calloc(1, 1); /* checked by the request parser; an empty target matches nothing */
    size_t n = strlen(e);
    char *r = realloc(e, n + 2);
    if (!r) {
        free(e);
        return calloc(1, 1);
    }
    r[n] = '"', r[n + 1] = 0;
    return r;
}

static int set_forced(srv_force *f, const char *text) {
    free(f->forced);
    f->forced = NULL;
    f->n_forced = f->at = 0;
    fp4rt_status st = fp4rt_tokenizer_encode(f->t->tok, text, strlen(text), &f->forced, &f->n_forced);
    if (st || !f->n_forced) return -1;
    return 0;
}

/* ---- masks ---- */

/* 1 when the arguments may continue with id's bytes. */
static int args_ok(const srv_force *f, int32_t id) {
    size_t n;
    const char *b = tok_bytes(f->t, id, &n);
    fp4rt_json_prefix js = f->js;
    if (!fp4rt_json_prefix_feed(&js, b, n)) return 0;
    size_t ws = 0;
    while (ws < n && is_ws(b[ws])) ws++;
    if (ws == n && !fp4rt_json_prefix_in_string(&f->js)) return 0; /* white space only: no progress, refused */
    if (may_close_tag(b, n)) { /* may complete "</tool_call>", which would end the block early */
        char buf[16 + 256];
        size_t k = n < 256 ? n : 256;
        memcpy(buf, f->tail, f->tail_n);
        memcpy(buf + f->tail_n, b, k);
        size_t m = f->tail_n + k, c = sizeof k_close_tag - 1;
        for (size_t i = 0; i + c <= m; i++)
            if (!memcmp(buf + i, k_close_tag, c)) return 0;
    }
    return 1;
}

static int mask_args(srv_force *f) {
    const srv_force_table *t = f->t;
    int any = 0;
    memset(f->mask, 0, (size_t)t->n_vocab);
    if (fp4rt_json_prefix_in_plain_string(&f->js)) {
        for (int i = 0; i < t->n_vocab; i++) any |= f->mask[i] = (t->cls[i] & C_PLAIN) != 0;
        for (int i = 0; i < t->n_slow; i++) any |= f->mask[t->slow[i]] = (uint8_t)args_ok(f, t->slow[i]);
        return any;
    }
    fp4rt_json_prefix after_ws = f->js;
    int ws_ok = fp4rt_json_prefix_byte(&after_ws, ' ');
    for (int k = 0; k < 512; k++) {
        if (t->first[k] == t->first[k + 1]) continue;
        fp4rt_json_prefix js = k < 256 ? f->js : after_ws;
        if ((k >= 256 && !ws_ok) || !fp4rt_json_prefix_byte(&js, (uint8_t)k)) continue; /* no token of k fits */
        for (int i = t->first[k]; i < t->first[k + 1]; i++) any |= f->mask[t->by_first[i]] = (uint8_t)args_ok(f, t->by_first[i]);
    }
    return any;
}

static int mask_name(srv_force *f) {
    const srv_force_table *t = f->t;
    int any = 0;
    memset(f->mask, 0, (size_t)t->n_vocab);
    char *targets[64];
    int nt = 0;
    for (int i = 0; nt < 64; i++) {
        char *g = name_target(f->tools, i);
        if (!g) break;
        size_t gn = strlen(g);
        if (gn > f->name_n && gn <= SRV_FORCE_MAX_NAME + 1 && !memcmp(g, f->name, f->name_n)) targets[nt++] = g;
        else free(g);
    }
    uint8_t firsts[256] = {0};
    for (int k = 0; k < nt; k++) firsts[(uint8_t)targets[k][f->name_n]] = 1;
    int ws = firsts[' '] || firsts['\t'] || firsts['\n'] || firsts['\r'];
    for (int k = 0; k < 512; k++) { /* buckets 256 + c start with white space */
        if (k < 256 ? !firsts[k] : !ws) continue;
        for (int i = t->first[k]; i < t->first[k + 1]; i++) {
            int32_t id = t->by_first[i];
            size_t n;
            const char *s = tok_bytes(t, id, &n);
            for (int g = 0; g < nt; g++)
                if (f->name_n + n <= strlen(targets[g]) && !memcmp(targets[g] + f->name_n, s, n)) {
                    any = f->mask[id] = 1;
                    break;
                }
        }
    }
    for (int k = 0; k < nt; k++) free(targets[k]);
    return any;
}

/* ---- the constraint ---- */

static int32_t next(void *user, const uint8_t **mask) {
    srv_force *f = user;
    double t0 = now_s();
    int32_t r = FP4RT_PICK_STOP;
    switch (f->phase) {
    case P_REASON:
        *mask = f->t->reason;
        return FP4RT_PICK_MASK;
    case P_PREFIX:
    case P_PREFIX2: return f->forced[f->at];
    case P_NAME:
        r = mask_name(f) ? FP4RT_PICK_MASK : FP4RT_PICK_STOP;
        break;
    case P_ARGS:
        if (fp4rt_json_prefix_done(&f->js) || f->n_args >= SRV_FORCE_MAX_ARGS) break;
        r = mask_args(f) ? FP4RT_PICK_MASK : FP4RT_PICK_STOP;
        break;
    default: break;
    }
    if (r == FP4RT_PICK_STOP) f->phase = P_END;
    else {
        *mask = f->mask;
        f->n_masks++;
        f->mask_seconds += now_s() - t0;
    }
    return r;
}

static void accept(void *user, int32_t id) {
    srv_force *f = user;
    size_t n;
    const char *b;
    switch (f->phase) {
    case P_REASON:
        if (id == f->think_close) f->phase = P_PREFIX;
        break;
    case P_PREFIX:
    case P_PREFIX2:
        f->started = 1;
        if (++f->at < f->n_forced) break;
        if (f->phase == P_PREFIX && f->mode == SRV_FORCE_REQUIRED) f->phase = P_NAME;
        else f->phase = P_ARGS;
        break;
    case P_NAME:
        b = tok_bytes(f->t, id, &n);
        if (f->name_n + n > SRV_FORCE_MAX_NAME + 1) break; /* the mask rules it out */
        memcpy(f->name + f->name_n, b, n);
        f->name_n += n;
        f->name[f->name_n] = 0;
        if (f->name_n && f->name[f->name_n - 1] == '"' && !set_forced(f, ", \"arguments\": ")) f->phase = P_PREFIX2;
        break;
    case P_ARGS:
        b = tok_bytes(f->t, id, &n);
        fp4rt_json_prefix_feed(&f->js, b, n); /* the mask let only fitting tokens through */
        for (size_t i = 0; i < n; i++) { /* keep the last 11 bytes */
            if (f->tail_n == sizeof k_close_tag - 2) memmove(f->tail, f->tail + 1, --f->tail_n);
            f->tail[f->tail_n++] = b[i];
        }
        f->n_args++;
        break;
    default: break;
    }
}

int srv_force_init(srv_force *f, const srv_force_table *t, srv_force_mode mode, const cJSON *tools, const char *name,
                   int32_t think_close) {
    memset(f, 0, sizeof *f);
    f->t = t;
    f->think_close = think_close;
    f->mode = mode;
    f->tools = tools;
    f->phase = think_close >= 0 ? P_REASON : P_PREFIX;
    fp4rt_json_prefix_init(&f->js, 1);
    f->con = (fp4rt_constraint){next, accept, f};
    f->mask = malloc((size_t)t->n_vocab);
    if (!f->mask) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "forced tool call: out of memory"), -1;
    char *text = NULL;
    if (mode == SRV_FORCE_NAMED) {
        char *e = json_escaped(name);
        size_t n = e ? strlen(e) + 64 : 0;
        text = e ? malloc(n) : NULL;
        if (text) snprintf(text, n, "<tool_call>\n{\"name\": \"%s\", \"arguments\": ", e);
        free(e);
    } else {
        text = malloc(32);
        if (text) strcpy(text, "<tool_call>\n{\"name\": \"");
    }
    int r = text ? set_forced(f, text) : -1;
    free(text);
    if (r) {
        srv_force_free(f);
        return fp4rt_fail(FP4RT_INTERNAL, "forced tool call: the call's text does not tokenize: %s", fp4rt_last_error()),
               -1;
    }
    return 0;
}

void srv_force_free(srv_force *f) {
    free(f->forced);
    free(f->mask);
    f->forced = NULL;
    f->mask = NULL;
}

char *srv_force_close(const srv_force *f) {
    if (!f->started) return NULL;
    size_t cap = 1024 + (size_t)f->n_forced * 256;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    int phase = f->phase;
    if (phase == P_PREFIX || phase == P_PREFIX2) { /* the rest of the forced text */
        for (size_t i = f->at; i < f->n_forced; i++) {
            size_t n;
            const char *b = tok_bytes(f->t, f->forced[i], &n);
            if (o + n + 512 > cap) break;
            memcpy(out + o, b, n);
            o += n;
        }
        if (phase == P_PREFIX2 || f->mode == SRV_FORCE_NAMED) phase = P_END + 1; /* then {} */
        else phase = P_NAME;                                                      /* then the whole name */
    }
    if (phase == P_NAME) { /* the first tool whose name starts as written */
        for (int i = 0;; i++) {
            char *g = name_target(f->tools, i);
            if (!g) break;
            size_t gn = strlen(g), pn = f->phase == P_NAME ? f->name_n : 0;
            int fits = gn > pn && gn <= 256 && !memcmp(g, f->name, pn);
            if (fits) memcpy(out + o, g + pn, gn - pn), o += gn - pn;
            free(g);
            if (fits) break;
        }
        memcpy(out + o, ", \"arguments\": ", 15), o += 15;
        phase = P_END + 1;
    }
    if (phase == P_END + 1) memcpy(out + o, "{}", 2), o += 2;
    else o += fp4rt_json_prefix_close(&f->js, out + o, cap - o);
    memcpy(out + o, "}\n</tool_call>", 14), o += 14;
    out[o] = 0;
    return out;
}

int srv_force_args_at(srv_force *f, const char *text) {
    f->phase = P_ARGS;
    f->started = 1;
    f->n_args = 0;
    f->tail_n = 0;
    fp4rt_json_prefix_init(&f->js, 1);
    size_t n = strlen(text);
    if (!fp4rt_json_prefix_feed(&f->js, text, n)) return -1;
    size_t k = n < sizeof k_close_tag - 2 ? n : sizeof k_close_tag - 2;
    memcpy(f->tail, text + n - k, k);
    f->tail_n = k;
    return 0;
}

const uint8_t *srv_force_args_mask(srv_force *f) {
    double t0 = now_s();
    int any = mask_args(f);
    f->n_masks++;
    f->mask_seconds += now_s() - t0;
    return any ? f->mask : NULL;
}
