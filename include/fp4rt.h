/* fp4rt — portable runtime for NVFP4-quantized Qwen3.5 / Qwen3.6 hybrid models.
 *
 * The one public header. C11, usable from C++.
 *
 * Conventions
 * - Every fallible function returns an fp4rt_status; on failure a one-line
 *   message naming what failed and where is available from fp4rt_last_error()
 *   (thread-local: each thread sees the message of its own last failure).
 * - Constructors return NULL on failure (and set the last error).
 * - Handles are opaque. Ownership: the caller owns what it creates and frees it
 *   with the matching *_free; free sessions before their model. Strings and
 *   arrays the library returns are freed with fp4rt_free.
 * - Thread safety: a model may be shared by several sessions, and those sessions
 *   may be used from different threads (their steps are serialized on the
 *   model's device); one session is used by one thread at a time. Functions that
 *   take a const model only read it. The log sink is global.
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

/* Symbols of the public API; everything else in libfp4rt.so is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define FP4RT_API __attribute__((visibility("default")))
#else
#define FP4RT_API
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
    X(INTERNAL, "internal error")                                                                  \
    X(NUMERIC, "numerical error") /* NaN where a number was needed (e.g. logits: bad weights) */

typedef enum fp4rt_status {
#define FP4RT_STATUS_ENUM_(name, msg) FP4RT_##name,
    FP4RT_STATUS_LIST(FP4RT_STATUS_ENUM_)
#undef FP4RT_STATUS_ENUM_
        FP4RT_STATUS_COUNT
} fp4rt_status;

/* "OK", "FORMAT", ... ; "UNKNOWN" for values outside the enum. */
FP4RT_API const char *fp4rt_status_name(fp4rt_status s);
/* Generic message for the code ("malformed file"). */
FP4RT_API const char *fp4rt_status_message(fp4rt_status s);
/* The detailed one-line message of this thread's last failure ("" if none). */
FP4RT_API const char *fp4rt_last_error(void);

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
FP4RT_API void fp4rt_log_set(fp4rt_log_fn fn, void *user);
FP4RT_API void fp4rt_log_set_level(fp4rt_log_level max_level);

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

/* Load progress: fraction in [0, 1] and what is being done. Return non-zero to
 * cancel the load (fp4rt_model_load then fails with CANCELLED). */
typedef int (*fp4rt_progress_fn)(float fraction, const char *stage, void *user);

typedef struct fp4rt_model_params {
    const char *device;  /* "auto" (NULL), "cpu", "vulkan:N", "cuda:N" */
    int n_threads;       /* CPU worker threads; 0 = number of online cores */
    int fp4_activations; /* 1: run every NVFP4 weight-only (W4A16) linear of the decoder
                            layers as W4A4: its activations are quantized to NVFP4 per 16
                            at run time (E4M3 block scales; tensor scale = the linear's
                            input_scale if the checkpoint has one, else per row
                            amax / (6 * 448)), so Blackwell runs them on FP4 tensor
                            cores. A property of the model: every backend computes the
                            same quantization. The lm_head is left as is. 0 = off */
    fp4rt_progress_fn progress; /* NULL = none; called from the loading thread */
    void *progress_user;
    int profile;         /* time every op (GPU timestamps on Vulkan); the totals per op kind
                            are logged (INFO) when the model is freed. FP4RT_PROFILE=1 in the
                            environment does the same. */
} fp4rt_model_params;

/* Evaluation progress: after each prefill chunk of fp4rt_session_eval (and of the
 * prompt in fp4rt_generate), the tokens of this call done so far and its total.
 * Return non-zero to cancel: the call then returns CANCELLED and the session is
 * exactly as it was before the call (tokens, recurrent state, logits). */
typedef int (*fp4rt_eval_progress_fn)(int done, int total, void *user);

typedef struct fp4rt_session_params {
    int n_ctx;           /* maximum tokens held; 0 = 4096 (capped at the model's maximum); >= 0 */
    int prefill_chunk;   /* tokens per prefill chunk; 0 = 512; >= 0 */
    fp4rt_kv_type kv_type;
    fp4rt_eval_progress_fn eval_progress; /* NULL = none; called on the evaluating thread. While
                                  it is set, each evaluation first copies the GDN state (conv +
                                  recurrent, fp4rt_memory_estimate conv + ssm bytes) to host
                                  memory so that a cancel can restore it */
    void *eval_progress_user;
    int mtp; /* 1: keep the state of the checkpoint's MTP head (its KV cache, the last
                hidden states) so that the session can draft tokens with it
                (fp4rt_generate_params.spec_drafts); every step then also runs the
                head over its rows. The model must have an MTP head (else the session
                is not created). 0: none */
    int exact; /* numerics mode (docs/NUMERICS.md, "Modes"). 1: the exact mode: every op
                  follows the numerics contract to the bit (the CPU gives the same bits on
                  any thread count and instruction set, and Vulkan on lavapipe the CPU's;
                  what the cross-backend parity tests run). 0 (default): the default mode:
                  the CPU's linear kernels fuse each multiply-add of the contract's chains
                  (FMA), still deterministic for any thread count and within NMSE 1e-6 of
                  the exact mode; backends without such kernels compute as in the exact
                  mode. The environment's FP4RT_EXACT=1 forces 1 for every session. */
} fp4rt_session_params;

FP4RT_API fp4rt_model_params fp4rt_model_default_params(void);
FP4RT_API fp4rt_session_params fp4rt_session_default_params(void);

/* Bytes a model + session would need, per part (what `fp4rt plan` prints). */
typedef struct fp4rt_memory_estimate {
    uint64_t weights; /* text-model tensors as stored in the checkpoint */
    uint64_t kv;      /* KV cache of the full-attention layers (n_ctx tokens) */
    uint64_t conv;    /* GDN conv state */
    uint64_t ssm;     /* GDN recurrent state */
    uint64_t scratch; /* activation arena (one prefill chunk) */
    uint64_t logits;  /* logits buffer (one prefill chunk) */
    uint64_t rope;    /* RoPE table (GPU backends only; counted in total all the same) */
    uint64_t total;   /* the sum of the above */
    int n_ctx;        /* the session parameters resolved: context, */
    int prefill_chunk; /* chunk (before a device caps it), */
    fp4rt_kv_type kv_type; /* and KV type */
} fp4rt_memory_estimate;

/* The memory a checkpoint directory needs with these parameters (either may be
 * NULL: defaults), without loading it: reads config.json, hf_quant_config.json
 * and the safetensors headers only (no weights). Checks the checkpoint as
 * fp4rt_model_load does (missing or misshapen tensors are errors).
 * params->fp4_activations is honoured; the device is not opened. */
FP4RT_API fp4rt_status fp4rt_model_plan(const char *dir, const fp4rt_model_params *params,
                                        const fp4rt_session_params *sp, fp4rt_memory_estimate *out);

/* Loads a checkpoint directory (config.json + safetensors [+ hf_quant_config.json]).
 * Returns NULL and sets the last error on failure. */
FP4RT_API fp4rt_model *fp4rt_model_load(const char *dir, const fp4rt_model_params *params);
FP4RT_API void fp4rt_model_free(fp4rt_model *model);
/* Rows of the logits vector (the padded vocabulary size of the checkpoint). */
FP4RT_API int fp4rt_model_n_vocab(const fp4rt_model *model);

FP4RT_API fp4rt_session *fp4rt_session_create(fp4rt_model *model, const fp4rt_session_params *params);
FP4RT_API void fp4rt_session_free(fp4rt_session *s);
/* Forget all tokens; the session can be reused. */
FP4RT_API void fp4rt_session_reset(fp4rt_session *s);
/* Tokens currently held: everything evaluated plus the last token fp4rt_generate
 * sampled. fp4rt_generate does not run its last sampled token through the model
 * (that would cost a decode step that may never be needed); the session holds it
 * as pending and the next fp4rt_session_eval / fp4rt_generate evaluates it first. */
FP4RT_API int fp4rt_session_n_past(const fp4rt_session *s);
/* The tokens held (fp4rt_session_n_past of them); valid until the next call that
 * changes the session. */
FP4RT_API const int32_t *fp4rt_session_tokens(const fp4rt_session *s);

/* Appends n tokens to the session and runs them through the model (prefill in
 * chunks when n > 1). logits: NULL, or [n, n_vocab] floats (all_logits != 0) or
 * [n_vocab] for the last token only (all_logits == 0). A token fp4rt_generate
 * left pending is run first (one decode step, its logits not returned). Arguments
 * are checked first (ids in the vocabulary, room in the context: nothing changes
 * on those errors); the session params' eval_progress is called after each chunk
 * and may cancel (CANCELLED, the session as before the call); a failure while
 * running leaves the session needing fp4rt_session_reset. */
FP4RT_API fp4rt_status fp4rt_session_eval(fp4rt_session *s, const int32_t *tokens, int n, float *logits,
                                int all_logits);

/* ---- session state snapshots (prefix reuse) ----
 * A snapshot is a host copy of what a session needs to resume at its position
 * p (fp4rt_session_n_past when taken): the Gated DeltaNet state (conv +
 * recurrent, fp4rt_memory_estimate conv + ssm bytes), the p tokens and the
 * last token's logits when the session had them. The KV cache is not copied:
 * it truncates. So a snapshot restores onto any session of the same model
 * (any n_ctx >= p) that has evaluated at least p tokens of which the first p
 * are the snapshot's: the session then holds exactly those p tokens, in the
 * state it had when the snapshot was taken, and continues bit-identically.
 * Taking one evaluates a pending token first (one decode step). Restoring onto
 * another model, onto a session that holds fewer tokens or different ones
 * fails with one line (INVALID_ARGUMENT naming the first differing position),
 * the session unchanged. A snapshot is independent of its session (it may
 * outlive it) and is freed with fp4rt_session_snapshot_free.
 * After images (fp4rt_session_eval_prompt) a snapshot also holds the rotary
 * positions of its tokens and restore also requires the session's to be the
 * same (else INVALID_ARGUMENT naming the position); it cannot tell two images
 * of the same size apart (same ids, same positions): do not restore one across
 * prompts whose images may differ. */
typedef struct fp4rt_session_snapshot fp4rt_session_snapshot;
/* NULL and the last error on failure. */
FP4RT_API fp4rt_session_snapshot *fp4rt_session_snapshot_take(fp4rt_session *s);
FP4RT_API fp4rt_status fp4rt_session_snapshot_restore(fp4rt_session *s, const fp4rt_session_snapshot *snap);
FP4RT_API void fp4rt_session_snapshot_free(fp4rt_session_snapshot *snap);
/* p, and its tokens (valid while the snapshot lives); 0 / NULL for NULL. */
FP4RT_API int fp4rt_session_snapshot_n_past(const fp4rt_session_snapshot *snap);
FP4RT_API const int32_t *fp4rt_session_snapshot_tokens(const fp4rt_session_snapshot *snap);
/* Host bytes the snapshot holds (state, tokens, logits), for bounding a cache. */
FP4RT_API size_t fp4rt_session_snapshot_bytes(const fp4rt_session_snapshot *snap);

/* Tokens the model treats as end of generation (generation_config.json's
 * eos_token_id, else the tokenizer's eos); returns the count, fills up to cap
 * (ids may be NULL to ask for the count). */
FP4RT_API int fp4rt_model_eos_ids(const fp4rt_model *model, int32_t *ids, int cap);
/* One line naming the device and kernel path the model runs on. */
FP4RT_API const char *fp4rt_model_device(const fp4rt_model *model);

/* ---- devices ------------------------------------------------------------ */

typedef enum fp4rt_device_kind {
    FP4RT_DEVICE_CPU = 0,
    FP4RT_DEVICE_VULKAN = 1,
    FP4RT_DEVICE_CUDA = 2
} fp4rt_device_kind;

typedef struct fp4rt_device_info {
    fp4rt_device_kind kind;
    char name[128];        /* "cpu", "vulkan:0", ... (what --device accepts) */
    char description[256]; /* one line: hardware, memory, kernel path */
    uint64_t memory_bytes;
    int usable;            /* 0: present but not usable by this build (reason in description) */
} fp4rt_device_info;

/* Number of devices this build knows about (the CPU is always device 0). */
FP4RT_API int fp4rt_device_count(void);
FP4RT_API fp4rt_status fp4rt_device_get(int index, fp4rt_device_info *out);

/* ---- text --------------------------------------------------------------- */

/* Text <-> token ids with the model's tokenizer.json (UNSUPPORTED if the
 * checkpoint has none). Invalid UTF-8 in text is replaced by U+FFFD.
 * *ids / *text are malloc'ed: free with fp4rt_free. */
FP4RT_API fp4rt_status fp4rt_tokenize(const fp4rt_model *model, const char *text, int32_t **ids, size_t *n);
FP4RT_API fp4rt_status fp4rt_detokenize(const fp4rt_model *model, const int32_t *ids, size_t n, char **text);

/* ---- sampling and generation ---------------------------------------------- */

/* Zero value = the model's defaults (generation_config.json), which fall back
 * to plain sampling at temperature 1. To switch a filter off explicitly use the
 * value given in its comment. */
typedef struct fp4rt_sampling_params {
    int greedy;               /* 1: argmax (ignores the rest); -1: sample even if do_sample is false */
    float temperature;        /* 0 = default; > 0. Values outside the ranges given (NaN included)
                                 are INVALID_ARGUMENT */
    int top_k;                /* 0 = default; -1 = off */
    float top_p;              /* 0 = default; in (0, 1]; 1 = off */
    float min_p;              /* 0 = default; in (0, 1]; -1 = off */
    float repetition_penalty; /* 0 = default; > 0; 1 = off (HF: logit / p if > 0, else * p; prompt + output) */
    float presence_penalty;   /* 0 = default; subtracted once per token seen in the output */
    float frequency_penalty;  /* 0 = off; subtracted per occurrence in the output */
    uint64_t seed;            /* same seed, same backend -> same tokens */
} fp4rt_sampling_params;

typedef enum fp4rt_stop_reason {
    FP4RT_STOP_EOS = 0,        /* an end-of-generation id */
    FP4RT_STOP_STRING = 1,     /* a user stop string (not included in the text) */
    FP4RT_STOP_MAX_TOKENS = 2,
    FP4RT_STOP_CONTEXT = 3,    /* the session is full */
    FP4RT_STOP_CALLBACK = 4    /* the callback asked to stop */
} fp4rt_stop_reason;

/* One streamed piece: complete UTF-8 characters only. */
typedef struct fp4rt_token_event {
    const char *text;  /* NUL-terminated piece (may be empty: e.g. a held-back stop-string prefix) */
    size_t len;
    int32_t id;        /* the token that completed this piece */
    int reasoning;     /* 1: part of the reasoning (<think>...</think>), 0: the answer */
} fp4rt_token_event;

/* Return non-zero to stop generating. */
typedef int (*fp4rt_token_fn)(const fp4rt_token_event *ev, void *user);

typedef struct fp4rt_generate_params {
    fp4rt_sampling_params sampling;
    int max_tokens;               /* 0 = generation_config max_new_tokens, else until the context is full; >= 0 */
    const char *const *stop;      /* user stop strings (n_stop of them; each non-empty); NULL when n_stop = 0 */
    size_t n_stop;
    int ignore_eos;               /* 1: do not stop on end-of-generation ids */
    int reasoning_open;           /* 1: the prompt ends inside <think> (thinking on): output starts as reasoning */
    int32_t *output_ids;          /* optional: every sampled id (up to output_cap) is stored here */
    size_t output_cap;
    int spec_drafts;              /* speculative decoding with the checkpoint's MTP head: K drafts
                                     (1 .. FP4RT_SPEC_MAX_DRAFTS) per verify step; the session must
                                     be created with fp4rt_session_params.mtp = 1. The output is the
                                     same: greedy gives exactly the tokens of plain decoding, sampling
                                     the same distribution (speculative sampling: a draft d is kept
                                     with probability min(1, p(d) / q(d)), else the token is drawn
                                     from max(0, p - q), with every sampler setting applied to the
                                     model's p and the head's q), but with another RNG use than plain
                                     sampling for the same seed. 0 = off */
    const struct fp4rt_prompt *prompt_images; /* a prompt with images (fp4rt_prompt_create) to
                                     evaluate as the prompt (then prompt must be NULL with n = 0):
                                     n_prompt and prefill_seconds count it. NULL = none */
    const struct fp4rt_constraint *constraint; /* constrained decoding (below); NULL = none */
} fp4rt_generate_params;

/* Constrained decoding (the server's forced tool calls): before each pick,
 * fp4rt_generate asks next(); its answer decides the token:
 *   FP4RT_PICK_FREE: sample as usual;
 *   FP4RT_PICK_MASK: sample only among the ids whose (*mask)[id] is non-zero
 *     (*mask: n_vocab entries, at least one of them a valid id, owned by the
 *     caller and unchanged until the pick);
 *   FP4RT_PICK_STOP: end the generation now (stop_reason FP4RT_STOP_CALLBACK,
 *     text still held back by the UTF-8 or stop-string logic is dropped);
 *   an id >= 0: that token, as if sampled (no RNG use; ids of the vocabulary).
 * accept() is then told every token picked, sampled or forced. While a
 * constraint is set, device picks, device top-k and speculative decoding are
 * off: every step downloads the logits. */
#define FP4RT_PICK_FREE (-1)
#define FP4RT_PICK_MASK (-2)
#define FP4RT_PICK_STOP (-3)
typedef struct fp4rt_constraint {
    int32_t (*next)(void *user, const uint8_t **mask);
    void (*accept)(void *user, int32_t id);
    void *user;
} fp4rt_constraint;

#define FP4RT_SPEC_MAX_DRAFTS 5

typedef struct fp4rt_generate_result {
    int n_prompt;            /* prompt tokens evaluated by this call */
    int n_generated;         /* tokens sampled */
    double prefill_seconds;
    double decode_seconds;
    fp4rt_stop_reason stop_reason;
    /* Speculative decoding (spec_drafts > 0; all 0 otherwise): */
    int spec_steps;          /* verify steps (draft-and-verify rounds) */
    int spec_drafted;        /* drafts verified */
    int spec_accepted;       /* drafts accepted */
    double spec_accept_len;  /* mean tokens a verify step gave: 1 + spec_accepted / spec_steps */
    int spec_drafted_at[FP4RT_SPEC_MAX_DRAFTS];  /* per draft position j (0: the first draft of a */
    int spec_accepted_at[FP4RT_SPEC_MAX_DRAFTS]; /* step): drafts verified there, accepted there */
} fp4rt_generate_result;

FP4RT_API fp4rt_sampling_params fp4rt_sampling_default_params(void);
FP4RT_API fp4rt_generate_params fp4rt_generate_default_params(void);

/* Appends prompt (n tokens; may be 0 to continue) to the session, then samples
 * until a stop condition, streaming text pieces to cb (may be NULL). result may
 * be NULL. Every sampled token is appended to the session (the last one pending,
 * see fp4rt_session_n_past), whatever the stop reason, so a following call
 * continues: fp4rt_generate(s, NULL, 0, ...) after a call that made N tokens
 * greedily gives the tokens one call making more would have given. The session
 * is never filled past n_ctx: STOP_CONTEXT when it is full before sampling.
 * Parameters are checked first (INVALID_ARGUMENT naming the field; nothing
 * changes): stop strings non-NULL and non-empty, output_ids non-NULL when
 * output_cap > 0, max_tokens >= 0, sampling values (fp4rt_sampling_params).
 * NaN logits stop generation with NUMERIC naming the step (bad weights: see
 * `fp4rt inspect --check`). */
FP4RT_API fp4rt_status fp4rt_generate(fp4rt_session *s, const int32_t *prompt, size_t n,
                            const fp4rt_generate_params *params, fp4rt_token_fn cb, void *user,
                            fp4rt_generate_result *result);

/* ---- chat template ----------------------------------------------------- */

/* One tool call of an assistant message. */
typedef struct fp4rt_tool_call {
    const char *name;           /* function name (required) */
    const char *arguments_json; /* JSON object of the arguments, e.g. {"city": "Paris"}, or NULL
                                   for none. Rendered one <parameter=KEY> block per member, in
                                   order: strings raw, other values as JSON (Python json.dumps
                                   style, so 1.0 stays "1.0"). A repeated key keeps its first
                                   position and its last value, as Python's json.loads does. */
} fp4rt_tool_call;

/* An image for a vision-language model (issue 18): a file (path), or the encoded bytes
 * of one in memory (data, size bytes; path NULL). PNG, JPEG, BMP or a GIF's first frame.
 * Errors name the path, or "image N (in memory)". Borrowed: kept alive by the caller
 * for the call that takes it. */
typedef struct fp4rt_image_input {
    const char *path;
    const void *data;
    size_t size;
} fp4rt_image_input;

/* One message. Strings are UTF-8 and borrowed (not copied, not freed): invalid UTF-8 in
 * content or reasoning_content is replaced by U+FFFD (one warning logged per call), in
 * the other fields it is an error.
 * Images: a message's images (n_images of them) are written before its content, one
 * "<|vision_start|><|image_pad|><|vision_end|>" each, as the template renders a content
 * list [image, ..., image, text]; the images themselves go to fp4rt_prompt_create in the
 * same order. Videos: the template writes "<|vision_start|><|video_pad|><|vision_end|>";
 * fp4rt does not take videos. */
typedef struct fp4rt_chat_message {
    const char *role;                  /* "system" (first message only), "user", "assistant" or
                                          "tool" (not first; consecutive ones share one user turn) */
    const char *content;               /* NULL = empty. Leading and trailing whitespace is
                                          dropped, as the template trims it */
    const char *reasoning_content;     /* assistant: NULL = split from <think>...</think> in
                                          content; "" = no reasoning. Ignored for other roles */
    const fp4rt_tool_call *tool_calls; /* assistant: n_tool_calls entries, or NULL. Ignored for
                                          other roles */
    size_t n_tool_calls;
    const fp4rt_image_input *images;   /* n_images entries (not in a system message), or NULL;
                                          fp4rt_chat_format only counts them */
    size_t n_images;
} fp4rt_chat_message;

typedef enum fp4rt_thinking {
    FP4RT_THINKING_DEFAULT = 0, /* as the template with enable_thinking unset: on */
    FP4RT_THINKING_ON = 1,
    FP4RT_THINKING_OFF = 2
} fp4rt_thinking;

/* Zero value = defaults. */
typedef struct fp4rt_chat_params {
    int no_generation_prompt;   /* 1: do not append "<|im_start|>assistant\n<think>\n..." */
    fp4rt_thinking thinking;    /* generation prompt ends "<think>\n" (on) or with an empty
                                   think block "<think>\n\n</think>\n\n" (off) */
    int preserve_thinking;      /* 1: show the reasoning of every assistant turn (Qwen3.6's
                                   preserve_thinking); 0: only of the turns after the last user
                                   query, older turns render their content alone */
    const char *tools_json;     /* JSON array of tool definitions (OpenAI style objects), or NULL;
                                   "[]" is the same as NULL */
    int continue_final_message; /* 1: the output ends right after the final message's content
                                   (no tool calls, no <|im_end|>, trailing whitespace stripped)
                                   so the model continues it, as transformers'
                                   continue_final_message; implies no generation prompt */
} fp4rt_chat_params;

FP4RT_API fp4rt_chat_params fp4rt_chat_default_params(void);

/* Renders messages with the Qwen3.6 chat template (ChatML with reasoning, XML tool calls,
 * merged tool responses) exactly as transformers renders its chat_template.jinja. Qwen3.5's
 * template is the same with preserve_thinking = 0, except that it writes non-string,
 * non-container tool-call arguments with Python's str() (True / None instead of true / null).
 * On success *out is a malloc'ed NUL-terminated string (free with fp4rt_free). Bad input is
 * an INVALID_ARGUMENT error naming the message index: n == 0, unknown role, a system message
 * after the first, a tool message first, no user query (every user message is a bare
 * <tool_response> block), a tool call without a name, malformed tools_json or arguments_json,
 * invalid UTF-8 outside the message texts. Thread-safe (reads its arguments only). */
FP4RT_API fp4rt_status fp4rt_chat_format(const fp4rt_chat_message *messages, size_t n,
                                         const fp4rt_chat_params *params, char **out);

/* ---- prompts with images (vision-language models) ------------------------ */

/* A prompt's tokens with the images they stand for, ready to evaluate: each image
 * decoded, preprocessed as the checkpoint's preprocessor_config.json says (Qwen2-VL's
 * image processor) and run through the model's vision tower on its device, and its
 * single <|image_pad|> (as fp4rt_tokenize gives for fp4rt_chat_format's text) expanded
 * to the image's merged tokens, grid_t * (grid_h / 2) * (grid_w / 2) for 16-pixel
 * patches merged 2 x 2. Immutable; may be evaluated on any session of its model. */
typedef struct fp4rt_prompt fp4rt_prompt;

/* tokens[0 .. n): the k-th <|image_pad|> token is images[k]. NULL and one line on
 * failure (naming the file, or "image K (in memory)"): a model without a vision tower
 * (UNSUPPORTED), more images than <|image_pad|> tokens or the reverse
 * (INVALID_ARGUMENT), an image that cannot be read or decoded (IO / FORMAT /
 * UNSUPPORTED, runtime/vision), ids outside the vocabulary. n_images 0: a text
 * prompt (no <|image_pad|> allowed). Runs the vision tower: as slow as that is. */
FP4RT_API fp4rt_prompt *fp4rt_prompt_create(fp4rt_model *model, const int32_t *tokens, size_t n,
                                            const fp4rt_image_input *images, size_t n_images);
/* fp4rt_prompt_create with the vision tower in a chosen numerics mode: exact as
 * fp4rt_session_params.exact (1: the exact mode; 0: the default mode, what
 * fp4rt_prompt_create uses; FP4RT_EXACT=1 forces 1). Give it the exact setting of
 * the session the prompt is for: a session in the exact mode (bit-identical to
 * another backend, say) keeps that promise only for a prompt made with exact 1. */
FP4RT_API fp4rt_prompt *fp4rt_prompt_create_mode(fp4rt_model *model, const int32_t *tokens, size_t n,
                                                 const fp4rt_image_input *images, size_t n_images, int exact);
FP4RT_API void fp4rt_prompt_free(fp4rt_prompt *prompt);
/* The expanded tokens (what the session holds after evaluating it); valid while it lives. */
FP4RT_API size_t fp4rt_prompt_n_tokens(const fp4rt_prompt *prompt);
FP4RT_API const int32_t *fp4rt_prompt_tokens(const fp4rt_prompt *prompt);
/* Appends the prompt to the session as fp4rt_session_eval appends tokens (logits NULL
 * or [n_vocab] for its last token), the images' tokens taking their vision embeddings
 * and every token its multimodal rotary position (M-RoPE: transformers'
 * get_rope_index; the text after an image continues from the image's largest
 * position + 1, and so do all later tokens of the session, including its snapshots).
 * A prompt that does not fit is refused before anything runs, naming the first
 * image that does not fit in the context. fp4rt_generate_params.prompt_images does
 * the same inside fp4rt_generate. */
FP4RT_API fp4rt_status fp4rt_session_eval_prompt(fp4rt_session *s, const fp4rt_prompt *prompt, float *logits);

/* Frees memory the library returned (strings, id arrays). NULL is fine. */
FP4RT_API void fp4rt_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* FP4RT_H */
