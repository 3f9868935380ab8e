/* Forced tool calls (tool_choice "required" or a named function), as vLLM and
 * OpenAI define them: the reply carries a parsable call. A generation
 * constraint (fp4rt.h fp4rt_constraint) that, after the reasoning block (at
 * once when thinking is off):
 *   - forces the tokens of `<tool_call>\n{"name": "` and lets the model pick
 *     only tokens that keep the name a prefix of one tool's name + '"'
 *     (required), or forces `<tool_call>\n{"name": "X", "arguments": `
 *     (named X); required then forces `, "arguments": `;
 *   - masks the arguments to text that stays a prefix of a JSON object
 *     (runtime/text/json_prefix.h), never containing "</tool_call>", with
 *     no token of white space only outside strings (each token makes
 *     progress);
 *   - stops when the object is complete or after SRV_FORCE_MAX_ARGS argument
 *     tokens.
 * During the reasoning the end-of-generation ids are masked out. The server
 * then appends the closing text (srv_force_close): whatever the forced part or
 * the name still lacks, the JSON closed from the checker's stack, and
 * "}\n</tool_call>". A generation that ends before the first forced token
 * (max_tokens spent on reasoning) has no call. */
#ifndef FP4RT_SERVER_TOOLFORCE_H
#define FP4RT_SERVER_TOOLFORCE_H

#include "fp4rt.h"
#include "runtime/text/json_prefix.h"
#include "runtime/text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define SRV_FORCE_MAX_ARGS 512
#define SRV_FORCE_MAX_NAME 256

/* Per-model token tables, built once: which ids a call may contain and their
 * bytes' classes. */
typedef struct srv_force_table srv_force_table;

/* NULL (and the last error set) when the model has no tokenizer or out of memory. */
srv_force_table *srv_force_table_new(const fp4rt_model *m);
/* The same from a tokenizer: ids [0, n_vocab) with valid[id] != 0 (NULL: the
 * tokenizer's ids); eos: the end-of-generation ids; think_open / think_close:
 * the think tokens' ids (-1: none). */
srv_force_table *srv_force_table_build(const fp4rt_tokenizer *tok, int n_vocab, const uint8_t *valid,
                                       const int32_t *eos, int n_eos, int32_t think_open, int32_t think_close);
void srv_force_table_free(srv_force_table *t);

typedef enum srv_force_mode { SRV_FORCE_NONE = 0, SRV_FORCE_REQUIRED = 1, SRV_FORCE_NAMED = 2 } srv_force_mode;

/* One generation's constraint state. */
typedef struct srv_force {
    const srv_force_table *t;
    int32_t think_close; /* -1: no reasoning first */
    srv_force_mode mode;
    const cJSON *tools; /* the request's tools (names for required) */
    int phase;          /* toolforce.c */
    int32_t *forced;    /* the tokens being forced, n_forced of them, at the next */
    size_t n_forced, at;
    char name[SRV_FORCE_MAX_NAME + 2]; /* required: the name's bytes so far (with the closing '"' once complete) */
    size_t name_n;
    fp4rt_json_prefix js; /* the arguments so far */
    char tail[16];        /* the arguments' last bytes (the "</tool_call>" check) */
    size_t tail_n;
    int n_args;
    int started;          /* a forced token was picked: the call must be closed */
    uint8_t *mask;        /* [n_vocab] */
    int n_masks;          /* masks computed, and their time */
    double mask_seconds;
    fp4rt_constraint con;
} srv_force;

/* Sets f up (f->con is the constraint to pass in fp4rt_generate_params).
 * name: the function for SRV_FORCE_NAMED. think_close: when the output starts
 * inside <think>, the id of </think> (the call follows it), else -1. Returns 0,
 * or -1 with the last error set (out of memory, a forced text that does not
 * tokenize). */
int srv_force_init(srv_force *f, const srv_force_table *t, srv_force_mode mode, const cJSON *tools, const char *name,
                   int32_t think_close);
void srv_force_free(srv_force *f);
/* The text that closes the call after the generation ended, NUL-terminated
 * (malloc'ed); NULL when the call never started (or out of memory). */
char *srv_force_close(const srv_force *f);

/* Tests and benchmarks: f in the arguments phase with text (accepted JSON
 * prefix) written so far; -1 when text is not one. Then the mask of the
 * tokens that may follow (NULL: none), timed into n_masks / mask_seconds. */
int srv_force_args_at(srv_force *f, const char *text);
const uint8_t *srv_force_args_mask(srv_force *f);

#endif
