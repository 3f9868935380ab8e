/* OpenAI request bodies: JSON checks (size, nesting) and the fields of
 * /v1/chat/completions and /v1/completions turned into fp4rt parameters.
 * Errors come back as an srv_error in OpenAI's shape (status, type, param). */
#ifndef FP4RT_SERVER_OAI_REQUEST_H
#define FP4RT_SERVER_OAI_REQUEST_H

#include "fp4rt.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* An error for the client: {"error": {"message", "type", "param", "code"}}. */
typedef struct srv_error {
    int http;          /* HTTP status */
    const char *type;  /* "invalid_request_error", "authentication_error", ... (static) */
    const char *code;  /* NULL = null (static) */
    char param[64];    /* "" = null */
    char message[512];
} srv_error;

/* Fills e (type from the status) and returns -1. param may be NULL. */
int srv_fail(srv_error *e, int http, const char *param, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parses a JSON body: 400 when it is not JSON, nests deeper than max_depth or
 * (object_only) is not an object. *root is the caller's (cJSON_Delete). */
int srv_json_parse(const char *body, size_t n, int max_depth, cJSON **root, srv_error *e);

typedef enum srv_kind { SRV_CHAT = 0, SRV_COMPLETION = 1 } srv_kind;

#define SRV_MAX_STOP 16
/* Images one request may carry (image_url content parts). */
#define SRV_MAX_IMAGES 16

/* A parsed generation request. Strings are borrowed from root unless listed
 * in owned. */
typedef struct srv_request {
    srv_kind kind;
    int stream, include_usage;
    fp4rt_generate_params gp; /* gp.stop points at stop */
    const char *stop[SRV_MAX_STOP];
    /* chat */
    fp4rt_chat_message *msgs;
    size_t n_msgs;
    fp4rt_tool_call *calls; /* every message's tool calls, in order */
    fp4rt_chat_params cp;
    char *tools_json;       /* the request's tools (compact JSON), NULL when none or tool_choice none */
    const cJSON *tools;     /* the same array (for the tool-call parser), or NULL */
    int tool_force;         /* tool_choice: 0 none / auto, 1 "required", 2 a named function (tool_name) */
    const char *tool_name;
    /* completion: text or ids */
    const char *prompt_text;
    int32_t *prompt_ids;
    size_t n_prompt_ids;
    char **owned;
    size_t n_owned;
    cJSON *root;
    /* chat: the image_url parts' decoded bytes (in owned), in the order of the
     * <|image_pad|> each put in its message's content where the part was */
    fp4rt_image_input images[SRV_MAX_IMAGES];
    size_t n_images;
} srv_request;

/* Takes over root (freed by srv_request_free, also on failure). n_vocab bounds
 * token ids. Returns 0, or -1 with e filled (the request is then freed). */
int srv_request_parse(srv_request *r, srv_kind kind, cJSON *root, int n_vocab, srv_error *e);
void srv_request_free(srv_request *r);

/* The prompt as token ids (chat: the template, then the tokenizer). *ids is
 * malloc'ed. Returns 0, or -1 with e filled. */
int srv_request_prompt(const srv_request *r, const fp4rt_model *m, int32_t **ids, size_t *n, srv_error *e);

/* An image_url part (oai_image.c): {"image_url": {"url": "data:image/...;base64,..."}}
 * (or "image_url": "data:..."), decoded into r->images. 400 naming
 * messages[i].content[j]: a remote http(s) URL (never fetched), another scheme, not
 * base64, not an image media type, malformed base64, more than SRV_MAX_IMAGES. */
int srv_image_part(srv_request *r, const cJSON *part, size_t i, size_t j, srv_error *e);

/* Reads a token id array (JSON integers in [0, n_vocab)) named `param`. */
int srv_parse_ids(const cJSON *a, const char *param, int n_vocab, int32_t **ids, size_t *n, srv_error *e);

#endif
