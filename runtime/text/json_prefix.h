/* An incremental JSON syntax checker for constrained decoding: bytes are fed
 * one at a time, each either accepted (the text so far is still a prefix of
 * some RFC 8259 JSON document) or refused (the state is then unchanged), and
 * from any state the shortest closing text that completes the document can be
 * written. The state is a small value type: copy it to try a token's bytes.
 *
 * Deliberately narrower than JSON in three places, so that every accepted
 * prefix closes into text that strict parsers (cJSON, Python's json) accept:
 * no \u escapes of UTF-16 surrogates (raw UTF-8 carries any character),
 * strings must be well-formed UTF-8, and nesting is at most
 * FP4RT_JSON_MAX_DEPTH. Nothing may follow the completed root value. */
#ifndef FP4RT_TEXT_JSON_PREFIX_H
#define FP4RT_TEXT_JSON_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#define FP4RT_JSON_MAX_DEPTH 32

typedef struct fp4rt_json_prefix {
    uint8_t st;       /* the lexer/parser state (json_prefix.c) */
    uint8_t aux;      /* a literal's progress, or hex digits of a \u escape */
    uint8_t lit;      /* which literal (true, false, null) */
    uint8_t u8need;   /* continuation bytes a UTF-8 character still needs */
    uint8_t u8lo, u8hi; /* the next continuation byte's range */
    uint8_t key;      /* the string being read is an object key */
    uint8_t depth;
    uint8_t stack[FP4RT_JSON_MAX_DEPTH]; /* '{' or '[' per open container */
} fp4rt_json_prefix;

/* The empty document. object_only: the root must be an object (tool-call
 * arguments); otherwise any value. */
void fp4rt_json_prefix_init(fp4rt_json_prefix *j, int object_only);
/* Feeds one byte: 1 accepted (state advanced), 0 refused (state unchanged). */
int fp4rt_json_prefix_byte(fp4rt_json_prefix *j, uint8_t c);
/* Feeds n bytes: 1 when all are accepted; on 0 the state is undefined (feed a copy). */
int fp4rt_json_prefix_feed(fp4rt_json_prefix *j, const void *s, size_t n);
/* 1 when the root value is complete (no further byte is accepted). */
int fp4rt_json_prefix_done(const fp4rt_json_prefix *j);
/* 1 when the state is inside a string with no escape or UTF-8 character
 * pending: any UTF-8 text without '"', '\\' or control bytes keeps it so. */
int fp4rt_json_prefix_in_plain_string(const fp4rt_json_prefix *j);
/* 1 when the state is inside a string (key or value, escapes included). */
int fp4rt_json_prefix_in_string(const fp4rt_json_prefix *j);
/* Writes the shortest text that completes the document (a missing value is
 * null, a missing key "", an open escape \n, an unfinished number gets a 0),
 * NUL-terminated, into out[cap]; returns its length (cap >= 3 *
 * FP4RT_JSON_MAX_DEPTH + 16 always suffices). A UTF-8 character left
 * incomplete is not completed: the caller's text ends it (a streaming
 * detokenizer turns it into U+FFFD). */
size_t fp4rt_json_prefix_close(const fp4rt_json_prefix *j, char *out, size_t cap);

#endif
