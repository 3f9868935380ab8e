/* JSON reader and Python-compatible writer for the chat template; see chat_json.h. */
#include "runtime/text/chat_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { JSON_MAX_DEPTH = 256 };

/* ---- growing buffer --------------------------------------------------- */

int fp4rt_strbuf_append(fp4rt_strbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fp4rt_strbuf_puts(fp4rt_strbuf *b, const char *s) {
    return fp4rt_strbuf_append(b, s, strlen(s));
}

/* ---- reader ----------------------------------------------------------- */

typedef struct parser {
    const char *p;
    const char *start;
    char *err;
    size_t err_size;
    int failed;
} parser;

static void fail(parser *ps, const char *what) {
    if (!ps->failed && ps->err && ps->err_size)
        snprintf(ps->err, ps->err_size, "%s at offset %zu", what, (size_t)(ps->p - ps->start));
    ps->failed = 1;
}

static void skip_ws(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

void fp4rt_json_free(fp4rt_json *v) {
    while (v) {
        fp4rt_json *next = v->next;
        fp4rt_json_free(v->child);
        free(v->text);
        free(v->key);
        free(v);
        v = next;
    }
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The character a one-letter escape (the letter after the backslash) stands
 * for, or 0. */
static char simple_escape(char c) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *p = c ? strchr(from, c) : NULL;
    return p ? to[p - from] : 0;
}

/* Decodes the \uXXXX escape at *s (its 'u'), with the low surrogate that must
 * follow a high one, into *cp; *s moves past what was read. NULL, or what is
 * wrong (then *s is where). */
static const char *u_escape(const char **s, unsigned *cp) {
    unsigned lo;
    if (hex4(*s + 1, cp)) return "bad \\u escape";
    *s += 5;
    const char *t = *s;
    if (*cp >= 0xD800 && *cp < 0xDC00) {
        if (t[0] != '\\' || t[1] != 'u' || hex4(t + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return "unpaired surrogate in \\u escape";
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
        *s += 6;
    } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
        return "unpaired surrogate in \\u escape";
    } else if (*cp == 0) {
        return "\\u0000 is not supported";
    }
    return NULL;
}

/* Parses a string literal at ps->p (the opening quote); returns the decoded text
 * (malloc'ed; the decoded form is never longer than the literal) or NULL. */
static char *parse_string(parser *ps, size_t *len_out) {
    const char *s = ps->p + 1, *q = s;
    while (*q && *q != '"') {
        if (*q == '\\' && q[1]) q++;
        q++;
    }
    if (*q != '"') {
        fail(ps, "unterminated string");
        return NULL;
    }
    char *out = malloc((size_t)(q - s) + 1);
    if (!out) {
        fail(ps, "out of memory");
        return NULL;
    }
    size_t n = 0;
    const char *err = NULL;
    while (!err && *s != '"') {
        unsigned char c = (unsigned char)*s;
        char e = c == '\\' ? simple_escape(s[1]) : 0;
        unsigned cp;
        if (c < 0x20) {
            err = "control character in string";
        } else if (c != '\\') {
            out[n++] = (char)c;
            s++;
        } else if (e) {
            out[n++] = e;
            s += 2;
        } else if (s[1] == 'u') {
            s++;
            err = u_escape(&s, &cp);
            if (!err) n += put_utf8(out + n, cp);
        } else {
            s++;
            err = "bad escape";
        }
    }
    if (err) {
        ps->p = s;
        fail(ps, err);
        free(out);
        return NULL;
    }
    out[n] = '\0';
    ps->p = q + 1;
    *len_out = n;
    return out;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static fp4rt_json *parse_value(parser *ps, int depth);

static fp4rt_json *new_value(parser *ps, fp4rt_json_kind kind) {
    fp4rt_json *v = calloc(1, sizeof(*v));
    if (!v)
        fail(ps, "out of memory");
    else
        v->kind = kind;
    return v;
}

static fp4rt_json *parse_number(parser *ps) {
    const char *s = ps->p, *q = s;
    int is_float = 0;
    if (*q == '-') q++;
    if (*q == '0')
        q++;
    else if (is_digit(*q))
        while (is_digit(*q))
            q++;
    else {
        fail(ps, "bad number");
        return NULL;
    }
    if (*q == '.') {
        q++;
        if (!is_digit(*q)) {
            ps->p = q;
            fail(ps, "bad number");
            return NULL;
        }
        while (is_digit(*q))
            q++;
        is_float = 1;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!is_digit(*q)) {
            ps->p = q;
            fail(ps, "bad number");
            return NULL;
        }
        while (is_digit(*q))
            q++;
        is_float = 1;
    }
    fp4rt_json *v = new_value(ps, is_float ? FP4RT_JSON_FLOAT : FP4RT_JSON_INT);
    if (!v) return NULL;
    v->text_len = (size_t)(q - s);
    v->text = malloc(v->text_len + 1);
    if (!v->text) {
        free(v);
        fail(ps, "out of memory");
        return NULL;
    }
    memcpy(v->text, s, v->text_len);
    v->text[v->text_len] = '\0';
    ps->p = q;
    return v;
}

/* Parses the members of an object or the elements of an array after the opening bracket. */
static fp4rt_json *parse_container(parser *ps, int depth, int is_object) {
    fp4rt_json *v = new_value(ps, is_object ? FP4RT_JSON_OBJECT : FP4RT_JSON_ARRAY);
    if (!v) return NULL;
    char close = is_object ? '}' : ']';
    fp4rt_json **tail = &v->child;
    ps->p++;
    skip_ws(ps);
    if (*ps->p == close) {
        ps->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        skip_ws(ps);
        if (is_object) {
            if (*ps->p != '"') {
                fail(ps, "expected a string key");
                break;
            }
            key = parse_string(ps, &key_len);
            if (!key) break;
            skip_ws(ps);
            if (*ps->p != ':') {
                free(key);
                fail(ps, "expected ':'");
                break;
            }
            ps->p++;
        }
        fp4rt_json *item = parse_value(ps, depth + 1);
        if (!item) {
            free(key);
            break;
        }
        item->key = key;
        /* Python dicts keep the first position of a repeated key and the last value. */
        fp4rt_json **dup = NULL;
        if (is_object)
            for (fp4rt_json **m = &v->child; *m; m = &(*m)->next)
                if (strcmp((*m)->key, key) == 0) {
                    dup = m;
                    break;
                }
        if (dup) {
            fp4rt_json *old = *dup;
            if (tail == &old->next) tail = &item->next;
            item->next = old->next;
            old->next = NULL;
            fp4rt_json_free(old);
            *dup = item;
        } else {
            *tail = item;
            tail = &item->next;
        }
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            return v;
        }
        fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    fp4rt_json_free(v);
    return NULL;
}

static int match_word(parser *ps, const char *w) {
    size_t n = strlen(w);
    if (strncmp(ps->p, w, n) != 0) return 0;
    ps->p += n;
    return 1;
}

static fp4rt_json *parse_value(parser *ps, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nesting too deep");
        return NULL;
    }
    skip_ws(ps);
    char c = *ps->p;
    if (c == '{' || c == '[') return parse_container(ps, depth, c == '{');
    if (c == '"') {
        size_t n = 0;
        char *s = parse_string(ps, &n);
        if (!s) return NULL;
        fp4rt_json *v = new_value(ps, FP4RT_JSON_STRING);
        if (!v) {
            free(s);
            return NULL;
        }
        v->text = s;
        v->text_len = n;
        return v;
    }
    if (c == '-' || is_digit(c)) return parse_number(ps);
    if (match_word(ps, "null")) return new_value(ps, FP4RT_JSON_NULL);
    if (match_word(ps, "true")) return new_value(ps, FP4RT_JSON_TRUE);
    if (match_word(ps, "false")) return new_value(ps, FP4RT_JSON_FALSE);
    fail(ps, c ? "unexpected character" : "unexpected end of input");
    return NULL;
}

fp4rt_json *fp4rt_json_parse(const char *s, char *err, size_t err_size) {
    parser ps = {.p = s, .start = s, .err = err, .err_size = err_size, .failed = 0};
    if (err && err_size) err[0] = '\0';
    fp4rt_json *v = parse_value(&ps, 0);
    if (!v) return NULL;
    skip_ws(&ps);
    if (*ps.p) {
        fail(&ps, "trailing characters");
        fp4rt_json_free(v);
        return NULL;
    }
    return v;
}

/* ---- writer ----------------------------------------------------------- */

/* json.dumps escapes '"', '\\' and the C0 controls (\n \r \t \b \f by name, the rest as
 * \u00XX with lower-case hex); with ensure_ascii=False everything else is written raw. */
static int dump_string(fp4rt_strbuf *b, const char *s, size_t n) {
    int rc = fp4rt_strbuf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                esc = tmp;
            }
        }
        if (!esc) continue;
        rc = fp4rt_strbuf_append(b, s + run, i - run);
        if (rc == 0) rc = fp4rt_strbuf_puts(b, esc);
        run = i + 1;
    }
    if (rc == 0) rc = fp4rt_strbuf_append(b, s + run, n - run);
    if (rc == 0) rc = fp4rt_strbuf_append(b, "\"", 1);
    return rc;
}

/* Python's repr(float): the shortest digit string that reads back to the same double,
 * written positionally when the decimal exponent is in [-4, 16), else as d.ddde+XX.
 * Note: strtod reads '.' only in the C locale (LC_NUMERIC), as does the rest of fp4rt. */
static int dump_float(fp4rt_strbuf *b, const char *text) {
    double v = strtod(text, NULL);
    if (isinf(v)) return fp4rt_strbuf_puts(b, v < 0 ? "-Infinity" : "Infinity");
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e is "[-]d[.ddd]e[+-]XX": collect the digits and the decimal exponent. */
    const char *p = e;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int exp10 = atoi(p + 1);
    int decpt = exp10 + 1; /* value = 0.DIGITS * 10^decpt */
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -decpt; i++)
                out[o++] = '0';
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
        } else {
            for (int i = 0; i < decpt; i++)
                out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (decpt >= nd) out[o++] = '0';
            for (int i = decpt; i < nd; i++)
                out[o++] = digits[i];
        }
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%02d", exp10 < 0 ? '-' : '+',
                              exp10 < 0 ? -exp10 : exp10);
    }
    return fp4rt_strbuf_append(b, out, o);
}

int fp4rt_json_dump(fp4rt_strbuf *b, const fp4rt_json *v) {
    switch (v->kind) {
    case FP4RT_JSON_NULL:
        return fp4rt_strbuf_puts(b, "null");
    case FP4RT_JSON_FALSE:
        return fp4rt_strbuf_puts(b, "false");
    case FP4RT_JSON_TRUE:
        return fp4rt_strbuf_puts(b, "true");
    case FP4RT_JSON_INT: /* Python's int() normalises only "-0" (JSON has no leading zeros). */
        return fp4rt_strbuf_puts(b, strcmp(v->text, "-0") == 0 ? "0" : v->text);
    case FP4RT_JSON_FLOAT:
        return dump_float(b, v->text);
    case FP4RT_JSON_STRING:
        return dump_string(b, v->text, v->text_len);
    case FP4RT_JSON_ARRAY:
    case FP4RT_JSON_OBJECT: {
        int is_object = v->kind == FP4RT_JSON_OBJECT;
        int rc = fp4rt_strbuf_puts(b, is_object ? "{" : "[");
        for (const fp4rt_json *c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child) rc = fp4rt_strbuf_puts(b, ", ");
            if (rc == 0 && is_object) {
                rc = dump_string(b, c->key, strlen(c->key));
                if (rc == 0) rc = fp4rt_strbuf_puts(b, ": ");
            }
            if (rc == 0) rc = fp4rt_json_dump(b, c);
        }
        if (rc == 0) rc = fp4rt_strbuf_puts(b, is_object ? "}" : "]");
        return rc;
    }
    }
    return 0;
}
