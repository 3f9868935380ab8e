/* Tool calls in Qwen3.6's output: the XML the chat template renders for an
 * assistant's tool_calls (runtime/text/chat.c), read back into OpenAI's
 * {name, arguments-as-JSON-text}:
 *     <tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n...</function>\n</tool_call>
 * and a streaming splitter that separates the answer text from such blocks. */
#ifndef FP4RT_SERVER_TOOLCALL_H
#define FP4RT_SERVER_TOOLCALL_H

#include "runtime/server/sbuf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses the inside of one <tool_call> block (text between the tags): the XML
 * above, or the JSON form {"name": NAME, "arguments": {...}} (Qwen3's, and
 * what a forced call writes: toolforce.h; arguments given as a JSON string
 * are taken as that text, absent ones are {}). *name and
 * *arguments (a JSON object, compact) are malloc'ed. A parameter's value is
 * its text without the one newline the template puts on each side; it becomes a
 * JSON string when the tool's schema (tools: the request's OpenAI tool array, or
 * NULL) declares the parameter a string, else the JSON value the text parses as
 * (number, boolean, null, object, array), else a string. Returns 0, or -1 when
 * the block has neither form (or out of memory); nothing is allocated then. */
int fp4rt_toolcall_parse(const char *block, size_t n, const cJSON *tools, char **name, char **arguments);

/* Streaming separation of answer text and <tool_call> blocks. Text that may be
 * the start of "<tool_call>" is held back until it is known. */
typedef struct fp4rt_tc_split {
    fp4rt_sbuf pending; /* text not yet classified */
    fp4rt_sbuf out;     /* the last piece returned */
    int in_call;        /* inside a <tool_call> block */
} fp4rt_tc_split;

/* What feeding produced: content to pass on (content_n bytes from content) and,
 * when a block closed, its inside (block, block_n). Call fp4rt_tc_split_next
 * repeatedly until it returns 0. */
typedef struct fp4rt_tc_piece {
    const char *content;
    size_t content_n;
    const char *block; /* NULL: no block closed */
    size_t block_n;
} fp4rt_tc_piece;

void fp4rt_tc_split_feed(fp4rt_tc_split *sp, const char *text, size_t n);
/* The next piece; returns 1 with *out filled, 0 when nothing more is ready.
 * The pointers stay valid until the next feed / next / finish call. At the end
 * of the output (final = 1) held text is released and an unterminated block is
 * returned as a block. */
int fp4rt_tc_split_next(fp4rt_tc_split *sp, int final, fp4rt_tc_piece *out);
void fp4rt_tc_split_free(fp4rt_tc_split *sp);

#endif
