/* fp4rt — portable runtime for NVFP4-quantized Qwen3.5 / Qwen3.6 hybrid models.
 *
 * The one public header. C11, usable from C++.
 *
 * Conventions
 * - Every fallible function returns an fp4rt_status; on failure a one-line
 *   message naming what failed and where is available from fp4rt_last_error()
 *   (thread-local: each thread sees the message of its own last failure).
 * - Constructors return NULL on failure (and set the last error).
 * - Handles are opaque. A model may be shared by several sessions; a session is
 *   used by one thread at a time. Functions taking a model only read it.
 * - Parameter structs: zero-initialised fields mean "default"; fields are only
 *   ever appended. Use the *_default_params() functions.
 */
#ifndef FP4RT_H
#define FP4RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FP4RT_VERSION_MAJOR 0
#define FP4RT_VERSION_MINOR 1
#define FP4RT_VERSION_PATCH 0
#define FP4RT_VERSION_STRING "0.1.0"

/* Status codes: name, message. One table so names and messages cannot drift. */
#define FP4RT_STATUS_LIST(X)                                                                       \
    X(OK, "success")                                                                               \
    X(INVALID_ARGUMENT, "invalid argument")                                                        \
    X(IO, "input/output error")                                                                    \
    X(FORMAT, "malformed file")                                                                    \
    X(UNSUPPORTED, "unsupported model or format")                                                  \
    X(OUT_OF_MEMORY, "out of memory")                                                              \
    X(DEVICE, "device error")                                                                      \
    X(CANCELLED, "cancelled")                                                                      \
    X(INTERNAL, "internal error")

typedef enum fp4rt_status {
#define FP4RT_STATUS_ENUM_(name, msg) FP4RT_##name,
    FP4RT_STATUS_LIST(FP4RT_STATUS_ENUM_)
#undef FP4RT_STATUS_ENUM_
        FP4RT_STATUS_COUNT
} fp4rt_status;

/* "OK", "FORMAT", ... ; "UNKNOWN" for values outside the enum. */
const char *fp4rt_status_name(fp4rt_status s);
/* Generic message for the code ("malformed file"). */
const char *fp4rt_status_message(fp4rt_status s);
/* The detailed one-line message of this thread's last failure ("" if none). */
const char *fp4rt_last_error(void);

/* ---- logging ---------------------------------------------------------- */

typedef enum fp4rt_log_level {
    FP4RT_LOG_ERROR = 0,
    FP4RT_LOG_WARN = 1,
    FP4RT_LOG_INFO = 2,
    FP4RT_LOG_DEBUG = 3
} fp4rt_log_level;

/* Called from any thread; msg has no trailing newline. */
typedef void (*fp4rt_log_fn)(fp4rt_log_level level, const char *msg, void *user);
/* NULL restores the default sink (stderr, levels <= INFO... set by fp4rt_log_set_level). */
void fp4rt_log_set(fp4rt_log_fn fn, void *user);
void fp4rt_log_set_level(fp4rt_log_level max_level);

/* ---- model and session ------------------------------------------------ */

typedef struct fp4rt_model fp4rt_model;
typedef struct fp4rt_session fp4rt_session;

/* KV-cache precision. DEFAULT: FP8 when the checkpoint declares
 * kv_cache_quant_algo FP8 (as vLLM does), else BF16. FP8: E4M3 of K / k_scale and
 * V / v_scale, saturating, with the checkpoint's k_proj.k_scale / v_proj.v_scale
 * (1.0 where absent). */
typedef enum fp4rt_kv_type {
    FP4RT_KV_DEFAULT = 0,
    FP4RT_KV_BF16 = 1,
    FP4RT_KV_F32 = 2,
    FP4RT_KV_FP8 = 3
} fp4rt_kv_type;

typedef struct fp4rt_model_params {
    const char *device;  /* "auto" (NULL), "cpu"; more with the GPU backends */
    int n_threads;       /* CPU worker threads; 0 = number of online cores */
    int fp4_activations; /* reserved: quantize W4A16 activations to NVFP4 (opt-in) */
} fp4rt_model_params;

typedef struct fp4rt_session_params {
    int n_ctx;           /* maximum tokens held; 0 = 4096 (capped at the model's maximum) */
    int prefill_chunk;   /* tokens per prefill chunk; 0 = 512 */
    fp4rt_kv_type kv_type;
} fp4rt_session_params;

fp4rt_model_params fp4rt_model_default_params(void);
fp4rt_session_params fp4rt_session_default_params(void);

/* Loads a checkpoint directory (config.json + safetensors [+ hf_quant_config.json]).
 * Returns NULL and sets the last error on failure. */
fp4rt_model *fp4rt_model_load(const char *dir, const fp4rt_model_params *params);
void fp4rt_model_free(fp4rt_model *model);
/* Rows of the logits vector (the padded vocabulary size of the checkpoint). */
int fp4rt_model_n_vocab(const fp4rt_model *model);

fp4rt_session *fp4rt_session_create(fp4rt_model *model, const fp4rt_session_params *params);
void fp4rt_session_free(fp4rt_session *s);
/* Forget all tokens; the session can be reused. */
void fp4rt_session_reset(fp4rt_session *s);
/* Tokens currently held. */
int fp4rt_session_n_past(const fp4rt_session *s);

/* Appends n tokens to the session and runs them through the model (prefill in
 * chunks when n > 1). logits: NULL, or [n, n_vocab] floats (all_logits != 0) or
 * [n_vocab] for the last token only (all_logits == 0). */
fp4rt_status fp4rt_session_eval(fp4rt_session *s, const int32_t *tokens, int n, float *logits,
                                int all_logits);

/* ---- chat template ----------------------------------------------------- */

/* One tool call of an assistant message. */
typedef struct fp4rt_tool_call {
    const char *name;           /* function name */
    const char *arguments_json; /* JSON object of the arguments, e.g. {"city": "Paris"} */
} fp4rt_tool_call;

/* One message. Strings are UTF-8 and borrowed (not copied, not freed). */
typedef struct fp4rt_chat_message {
    const char *role;                  /* "system", "user", "assistant" or "tool" */
    const char *content;               /* NULL = empty */
    const char *reasoning_content;     /* assistant: NULL = split from <think>...</think> in content */
    const fp4rt_tool_call *tool_calls; /* assistant: n_tool_calls entries, or NULL */
    size_t n_tool_calls;
} fp4rt_chat_message;

typedef enum fp4rt_thinking {
    FP4RT_THINKING_DEFAULT = 0, /* as the template: on */
    FP4RT_THINKING_ON = 1,
    FP4RT_THINKING_OFF = 2
} fp4rt_thinking;

/* Zero value = defaults. */
typedef struct fp4rt_chat_params {
    int no_generation_prompt;   /* 1: do not append "<|im_start|>assistant\n..." */
    fp4rt_thinking thinking;    /* generation prompt with "<think>\n" (on) or an empty think block (off) */
    int preserve_thinking;      /* keep reasoning of every assistant turn (Qwen3.6), not only after the last user query */
    const char *tools_json;     /* JSON array of tool definitions (OpenAI style), or NULL */
} fp4rt_chat_params;

fp4rt_chat_params fp4rt_chat_default_params(void);

/* Renders messages with the Qwen3.5 / Qwen3.6 chat template (ChatML with
 * reasoning, XML tool calls, merged tool responses). *out is malloc'ed
 * (free with fp4rt_free). Bad input (unknown role, malformed tools_json or
 * arguments_json, a tool message with no preceding assistant turn...) is an
 * INVALID_ARGUMENT error naming the message index. */
fp4rt_status fp4rt_chat_format(const fp4rt_chat_message *messages, size_t n,
                               const fp4rt_chat_params *params, char **out);

/* Frees memory the library returned (strings, id arrays). NULL is fine. */
void fp4rt_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* FP4RT_H */
