/* Incremental JSON syntax (json_prefix.h): a pushdown automaton over bytes. */
#include "runtime/text/json_prefix.h"

#include <string.h>

enum {
    S_VALUE,     /* a value is expected */
    S_ROOT_OBJ,  /* the root, which must be an object */
    S_ARR_FIRST, /* after '[': a value or ']' */
    S_OBJ_FIRST, /* after '{': a key or '}' */
    S_OBJ_KEY,   /* after ',' in an object: a key */
    S_COLON,     /* after a key */
    S_AFTER,     /* after a value inside a container: ',' or its closer */
    S_STR,       /* inside a string (key says which kind) */
    S_ESC,       /* after a backslash */
    S_HEX,       /* in \uXXXX, aux digits read */
    S_LIT,       /* in true / false / null, aux bytes read */
    S_N_MINUS,   /* after '-' */
    S_N_ZERO,    /* after a leading 0 */
    S_N_INT,     /* integer digits */
    S_N_DOT,     /* after '.' */
    S_N_FRAC,    /* fraction digits */
    S_N_E,       /* after 'e' */
    S_N_ESIGN,   /* after the exponent's sign */
    S_N_EXP,     /* exponent digits */
    S_DONE       /* the root value is complete */
};

static const char *const k_lits[3] = {"true", "false", "null"};

void fp4rt_json_prefix_init(fp4rt_json_prefix *j, int object_only) {
    memset(j, 0, sizeof *j);
    j->st = object_only ? S_ROOT_OBJ : S_VALUE;
}

static int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* A value just ended. */
static void value_end(fp4rt_json_prefix *j) { j->st = j->depth ? S_AFTER : S_DONE; }

static int open_container(fp4rt_json_prefix *j, uint8_t c) {
    if (j->depth >= FP4RT_JSON_MAX_DEPTH) return 0;
    j->stack[j->depth++] = c;
    j->st = c == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
    return 1;
}

static int close_container(fp4rt_json_prefix *j, uint8_t c) {
    if (!j->depth || j->stack[j->depth - 1] != (c == '}' ? '{' : '[')) return 0;
    j->depth--;
    value_end(j);
    return 1;
}

static int start_string(fp4rt_json_prefix *j, int key) {
    j->st = S_STR;
    j->key = (uint8_t)key;
    j->u8need = 0;
    return 1;
}

/* The first byte of a value. */
static int value_start(fp4rt_json_prefix *j, uint8_t c) {
    switch (c) {
    case '{':
    case '[': return open_container(j, c);
    case '"': return start_string(j, 0);
    case '-': j->st = S_N_MINUS; return 1;
    case '0': j->st = S_N_ZERO; return 1;
    case 't':
    case 'f':
    case 'n':
        j->st = S_LIT;
        j->lit = c == 't' ? 0 : c == 'f' ? 1 : 2;
        j->aux = 1;
        return 1;
    default:
        if (c >= '1' && c <= '9') {
            j->st = S_N_INT;
            return 1;
        }
        return 0;
    }
}

/* A byte inside a string (not after a backslash). */
static int string_byte(fp4rt_json_prefix *j, uint8_t c) {
    if (j->u8need) {
        if (c < j->u8lo || c > j->u8hi) return 0;
        j->u8need--;
        j->u8lo = 0x80, j->u8hi = 0xBF;
        return 1;
    }
    if (c == '"') {
        if (j->key) j->st = S_COLON;
        else value_end(j);
        return 1;
    }
    if (c == '\\') {
        j->st = S_ESC;
        return 1;
    }
    if (c < 0x20) return 0;
    if (c < 0x80) return 1;
    j->u8lo = 0x80, j->u8hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) j->u8need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        j->u8need = 2;
        if (c == 0xE0) j->u8lo = 0xA0; /* no overlong forms */
        if (c == 0xED) j->u8hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        j->u8need = 3;
        if (c == 0xF0) j->u8lo = 0x90;
        if (c == 0xF4) j->u8hi = 0x8F; /* up to U+10FFFF */
    } else return 0;
    return 1;
}

/* A byte after a number's last byte that may end it: the number ends and the
 * byte is read in the state after the value. */
static int number_end(fp4rt_json_prefix *j, uint8_t c);

/* One byte; may leave j modified when it returns 0 (the callers copy). */
static int step(fp4rt_json_prefix *j, uint8_t c) {
    switch (j->st) {
    case S_ROOT_OBJ:
        if (is_ws(c)) return 1;
        return c == '{' && open_container(j, c);
    case S_VALUE:
        if (is_ws(c)) return 1;
        return value_start(j, c);
    case S_ARR_FIRST:
        if (is_ws(c)) return 1;
        if (c == ']') return close_container(j, c);
        return value_start(j, c);
    case S_OBJ_FIRST:
        if (is_ws(c)) return 1;
        if (c == '}') return close_container(j, c);
        return c == '"' && start_string(j, 1);
    case S_OBJ_KEY:
        if (is_ws(c)) return 1;
        return c == '"' && start_string(j, 1);
    case S_COLON:
        if (is_ws(c)) return 1;
        if (c != ':') return 0;
        j->st = S_VALUE;
        return 1;
    case S_AFTER:
        if (is_ws(c)) return 1;
        if (c == ',') {
            j->st = j->stack[j->depth - 1] == '{' ? S_OBJ_KEY : S_VALUE;
            return 1;
        }
        return (c == '}' || c == ']') && close_container(j, c);
    case S_STR: return string_byte(j, c);
    case S_ESC:
        if (c == 'u') {
            j->st = S_HEX;
            j->aux = 0;
            j->lit = 0;
            return 1;
        }
        if (!strchr("\"\\/bfnrt", c) || !c) return 0;
        j->st = S_STR;
        return 1;
    case S_HEX:
        if (!is_hex(c)) return 0;
        if (j->aux == 0) j->lit = c == 'd' || c == 'D'; /* D800-DFFF: surrogates, refused */
        else if (j->aux == 1 && j->lit && !(c >= '0' && c <= '7')) return 0;
        if (++j->aux == 4) j->st = S_STR;
        return 1;
    case S_LIT: {
        const char *w = k_lits[j->lit];
        if (c != (uint8_t)w[j->aux]) return 0;
        if (!w[++j->aux]) value_end(j);
        return 1;
    }
    case S_N_MINUS:
        if (c == '0') j->st = S_N_ZERO;
        else if (c >= '1' && c <= '9') j->st = S_N_INT;
        else return 0;
        return 1;
    case S_N_ZERO:
    case S_N_INT:
        if (is_digit(c) && j->st == S_N_INT) return 1;
        if (c == '.') {
            j->st = S_N_DOT;
            return 1;
        }
        if (c == 'e' || c == 'E') {
            j->st = S_N_E;
            return 1;
        }
        return number_end(j, c);
    case S_N_DOT:
        if (!is_digit(c)) return 0;
        j->st = S_N_FRAC;
        return 1;
    case S_N_FRAC:
        if (is_digit(c)) return 1;
        if (c == 'e' || c == 'E') {
            j->st = S_N_E;
            return 1;
        }
        return number_end(j, c);
    case S_N_E:
        if (c == '+' || c == '-') {
            j->st = S_N_ESIGN;
            return 1;
        }
        /* fall through */
    case S_N_ESIGN:
        if (!is_digit(c)) return 0;
        j->st = S_N_EXP;
        return 1;
    case S_N_EXP:
        if (is_digit(c)) return 1;
        return number_end(j, c);
    default: return 0; /* S_DONE */
    }
}

static int number_end(fp4rt_json_prefix *j, uint8_t c) {
    value_end(j);
    return j->st != S_DONE && step(j, c);
}

int fp4rt_json_prefix_byte(fp4rt_json_prefix *j, uint8_t c) {
    fp4rt_json_prefix t = *j;
    if (!step(&t, c)) return 0;
    *j = t;
    return 1;
}

int fp4rt_json_prefix_feed(fp4rt_json_prefix *j, const void *s, size_t n) {
    const uint8_t *p = s;
    for (size_t i = 0; i < n; i++)
        if (!step(j, p[i])) return 0;
    return 1;
}

int fp4rt_json_prefix_done(const fp4rt_json_prefix *j) { return j->st == S_DONE; }

int fp4rt_json_prefix_in_string(const fp4rt_json_prefix *j) { return j->st == S_STR || j->st == S_ESC || j->st == S_HEX; }

int fp4rt_json_prefix_in_plain_string(const fp4rt_json_prefix *j) { return j->st == S_STR && !j->u8need; }

size_t fp4rt_json_prefix_close(const fp4rt_json_prefix *j, char *out, size_t cap) {
    char buf[3 * FP4RT_JSON_MAX_DEPTH + 16];
    size_t n = 0;
#define PUT(s) (memcpy(buf + n, s, strlen(s)), n += strlen(s))
    int key = 0; /* a key string is closed: its value follows */
    switch (j->st) {
    case S_ROOT_OBJ: PUT("{}"); break;
    case S_VALUE: PUT("null"); break;
    case S_OBJ_KEY: PUT("\"\":null"); break;
    case S_COLON: PUT(":null"); break;
    case S_ESC: PUT("n\""); key = j->key; break;
    case S_HEX:
        for (int i = j->aux; i < 4; i++) PUT("0");
        PUT("\"");
        key = j->key;
        break;
    case S_STR: PUT("\""); key = j->key; break;
    case S_LIT: PUT(k_lits[j->lit] + j->aux); break;
    case S_N_MINUS:
    case S_N_DOT:
    case S_N_E:
    case S_N_ESIGN: PUT("0"); break;
    default: break; /* complete as it stands */
    }
    if (key) PUT(":null");
    for (int d = j->depth; d-- > 0;) buf[n++] = j->stack[d] == '{' ? '}' : ']';
#undef PUT
    size_t k = n < cap ? n : cap ? cap - 1 : 0;
    if (cap) {
        memcpy(out, buf, k);
        out[k] = 0;
    }
    return k;
}
