/* Minimal JSON reader and writer for the chat template (internal).
 *
 * Why not cJSON: the template renders tool definitions and tool-call arguments with
 * transformers' `tojson`, i.e. Python's json.dumps(ensure_ascii=False) of what
 * json.loads produced. Matching that byte for byte needs what cJSON drops: the
 * int/float distinction ("1" vs "1.0"), integers beyond 2^53, and Python's rule for
 * duplicate keys (the last value wins, at the position of the first). */
#ifndef FP4RT_CHAT_JSON_H
#define FP4RT_CHAT_JSON_H

#include <stddef.h>

typedef enum fp4rt_json_kind {
    FP4RT_JSON_NULL,
    FP4RT_JSON_FALSE,
    FP4RT_JSON_TRUE,
    FP4RT_JSON_INT,    /* text: the literal as written (arbitrary size) */
    FP4RT_JSON_FLOAT,  /* text: the literal as written; has a fraction or an exponent */
    FP4RT_JSON_STRING, /* text: decoded UTF-8, NUL-terminated, no NUL inside */
    FP4RT_JSON_ARRAY,  /* child: first element */
    FP4RT_JSON_OBJECT  /* child: first member; members carry key */
} fp4rt_json_kind;

/* One value. Arrays and objects own their children (a singly linked list through next). */
typedef struct fp4rt_json {
    fp4rt_json_kind kind;
    char *text; /* INT / FLOAT / STRING, else NULL */
    size_t text_len;
    char *key; /* object member: decoded UTF-8 key, else NULL */
    struct fp4rt_json *child;
    struct fp4rt_json *next;
} fp4rt_json;

/* Parses the whole of s (RFC 8259; the grammar Python's json.loads accepts minus its
 * NaN / Infinity extensions; nesting at most 256 deep; "\u0000" and unpaired surrogates
 * are refused). Returns NULL on a syntax error, with a short reason in err (which may
 * be NULL), or on out-of-memory (err says so). Free with fp4rt_json_free. */
fp4rt_json *fp4rt_json_parse(const char *s, char *err, size_t err_size);
void fp4rt_json_free(fp4rt_json *v);

/* Appends what Python's json.dumps(v, ensure_ascii=False) writes (separators ", " and
 * ": ", key order kept, floats as repr()) to a growing buffer. Returns 0 on success,
 * -1 on out-of-memory (the buffer is left valid). */
typedef struct fp4rt_strbuf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} fp4rt_strbuf;

int fp4rt_strbuf_append(fp4rt_strbuf *b, const char *s, size_t n);
int fp4rt_strbuf_puts(fp4rt_strbuf *b, const char *s);
int fp4rt_json_dump(fp4rt_strbuf *b, const fp4rt_json *v);

#endif
