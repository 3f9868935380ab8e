/* Internal view of the public handles (for the CLI, tests and benchmarks), and
 * the memory planner. */
#ifndef FP4RT_MODEL_H
#define FP4RT_MODEL_H

#include "runtime/backend/backend.h"
#include "runtime/backend/registry.h"
#include "runtime/model/plan.h"

#include <pthread.h>

#include "loader/gen_config.h"
#include "runtime/text/tokenizer.h"
#include "runtime/vision/image.h"

struct fp4rt_model {
    fp4rt_weights *weights;
    fp4rt_program *program;
    const fp4rt_backend_ops *backend;
    void *backend_ctx;
    char device[256]; /* one line: device and kernel path (and model settings) */
    int n_threads;    /* host worker threads used by the backend */
    pthread_mutex_t run_lock;   /* serializes steps of all sessions on the backend */
    fp4rt_tokenizer *tokenizer; /* NULL when the checkpoint has no tokenizer.json */
    fp4rt_gen_config gen;       /* generation_config.json (defaults if absent) */
    int n_eos;
    int32_t eos[FP4RT_MAX_STOP_IDS]; /* end-of-generation ids */
    int32_t think_open, think_close; /* ids of <think> / </think>, -1 if absent */
    int32_t image_pad;               /* id of <|image_pad|>, -1 if absent */
    fp4rt_image_config image_cfg;    /* preprocessor_config.json (the Qwen3.5 defaults if absent) */
    uint8_t *valid_ids;         /* [vocab] 1: the tokenizer has this id; NULL without a tokenizer */
    fp4rt_device_ref dev;       /* the device the backend runs on */
    uint64_t seed;              /* synthetic weights' seed */
    /* The MTP head (runtime/engine/mtp.h), started by the first session that asks:
     * its program on a backend context of its own on the same device. */
    fp4rt_program *mtp_program;
    void *mtp_ctx;
    /* The vision tower (runtime/engine/vision.h), started by the first image: its
     * encoder and merger programs, each on a backend context of its own on the
     * model's device (a backend context is prepared for one program). */
    fp4rt_program *vis_encoder, *vis_merger;
    void *vis_encoder_ctx, *vis_merger_ctx;
};


struct fp4rt_session {
    fp4rt_model *model;
    fp4rt_session_buffers sb;
    int n_past;
    int32_t *history;            /* [n_ctx] the n_past tokens held */
    float *last_logits;          /* [vocab] logits after the last token, if have_logits */
    int have_logits;
    int pending;                 /* 1: history[n_past] is a token fp4rt_generate sampled and did
                                    not evaluate; the next evaluation runs it first (fp4rt.h) */
    fp4rt_eval_progress_fn progress; /* fp4rt_session_params.eval_progress */
    void *progress_user;
    int eval_total;              /* tokens of the evaluation in progress (for progress) */
    fp4rt_memory_plan allocated; /* what was really allocated (bytes) */
    struct fp4rt_mtp_state *mtp; /* NULL unless fp4rt_session_params.mtp (runtime/engine/mtp.c) */
    int spec_corrupt_draft;      /* tests only: j >= 1 replaces draft j of every speculative step by
                                    the next id (runtime/engine/speculate.h); 0 off */
    /* Verify-step rollback (session_state.c): sb.ckpt, the GDN state
     * checkpoints, is allocated on the first fp4rt_session_verify. */
    int verify_pos0, verify_n; /* the last verify's rows, while fp4rt_session_keep may follow; n 0: none */
    /* M-RoPE (rope_index.h): the rotary position of cache index i is i + rope_delta for
     * every component, except where an image was evaluated: once one has been, mrope
     * ([n_ctx * 3], allocated then, freed by a reset) holds the (t, h, w) position of
     * every index < mrope_n (text rows written as i + rope_delta by every step). */
    int rope_delta;
    int32_t *mrope;
    int mrope_n;
    int relaxed; /* fp4rt_step.relaxed of every step: !fp4rt_session_params.exact && !FP4RT_EXACT */
    /* Bytes of logits downloaded to the host so far (the main model's and the MTP
     * head's), for tests and fp4rt bench: device picks download none. */
    uint64_t logits_down;
};

/* A prompt with images, for fp4rt_session_eval_mm: positions [n * 3] of its n
 * tokens (rope_index.h, starting at the session's n_past + rope_delta after its
 * pending token), rows [n]: the embedding row (text hidden size) token r takes
 * instead of its token's, or NULL; next_pos: the position after the prompt. */
typedef struct fp4rt_eval_mm {
    const int32_t *positions;
    const float *const *rows;
    int next_pos;
} fp4rt_eval_mm;
/* fp4rt_session_eval with mm (NULL: plain text, exactly fp4rt_session_eval):
 * the same checks, chunks, progress and cancel (rope_delta restored too); the
 * chunks' steps carry the positions and the embedding overrides (an image's
 * rows may straddle chunks), and the session continues at next_pos. */
fp4rt_status fp4rt_session_eval_mm(fp4rt_session *s, const int32_t *tokens, int n, const fp4rt_eval_mm *mm,
                                   float *logits, int all_logits);

/* fp4rt_prompt_create_mode with its status (the server maps it to an HTTP status). */
fp4rt_status fp4rt_prompt_make(fp4rt_model *m, const int32_t *tokens, size_t n, const fp4rt_image_input *images,
                               size_t n_images, int exact, fp4rt_prompt **out);

/* Numerics modes (docs/NUMERICS.md, "Modes"): fp4rt_step.relaxed for work done for
 * a session (or prompt) of fp4rt_session_params.exact = exact: 1 unless exact or
 * the environment's FP4RT_EXACT=1. */
int fp4rt_numerics_relaxed(int exact);
/* The mode s runs in, in words, for the commands that say it: "exact", or on the
 * CPU "default (FMA linears)", elsewhere "default (as exact: no relaxed kernels on
 * this backend)". A static string. */
const char *fp4rt_session_numerics(const fp4rt_session *s);
/* Evaluates the prompt's tokens [from, n) on a session that holds its first `from`
 * (from <= the index of its first image token: those are text), as
 * fp4rt_session_eval_prompt does the whole (logits of the last row, or NULL). */
fp4rt_status fp4rt_session_eval_prompt_from(fp4rt_session *s, const fp4rt_prompt *p, size_t from, float *logits);
/* fp4rt_session_eval_prompt with the logits of every row ([n, vocab], all_logits 1)
 * or of the last (all_logits 0), for tests. */
fp4rt_status fp4rt_session_eval_prompt_rows(fp4rt_session *s, const fp4rt_prompt *p, float *logits, int all_logits);

/* The rotary fields of a step of n text rows at pos0 (fp4rt_step.rope_delta; rows
 * recorded in s->mrope when it exists). Every step of the session's main program
 * that is not a prompt with images goes through this. */
void fp4rt_session_rope_text(fp4rt_session *s, fp4rt_step *step);
/* The (t, h, w) positions of cache index i (i < n_past). */
void fp4rt_session_position(const fp4rt_session *s, int i, int32_t out[3]);

/* ---- Verify step and rollback (session_state.c), for speculative decoding ----
 * fp4rt_session_verify(s, tokens, n, logits) appends n (1 .. FP4RT_VERIFY_MAX)
 * tokens at position p0 = the session's n_past (a pending token is evaluated
 * first) and writes logits[n][vocab]: row i is, bit for bit, what a 1-token
 * decode step of tokens[i] at p0 + i gives after tokens[0 .. i) (the
 * recurrent GDN form and the attention decode splits, docs/NUMERICS.md): one
 * decode_rows step (backend.h) where the backend has it and n <= the session's
 * chunk, else n 1-token steps with a device copy of the state before each. It
 * keeps the GDN state (conv + ssm) before each row in a session-owned
 * checkpoint buffer of FP4RT_VERIFY_MAX x (conv + ssm) bytes, allocated on the
 * first call (fp4rt_session_ckpt_bytes; ~144 MiB per row for the 27B).
 * Afterwards the session holds all n tokens, last_logits the last row's.
 * fp4rt_session_keep(s, j), 0 <= j <= n, right after a verify (no other
 * evaluation between): the session then holds exactly p0 + j tokens with the
 * GDN state after row j - 1 (the state before the verify for j = 0) as if it
 * had only evaluated tokens[0 .. j); the KV cache truncates (positions >=
 * n_past are never read). last_logits: kept for j = n, else have_logits = 0
 * (row j - 1's logits are the caller's). Any failure: one line, and a failure
 * while running leaves the session needing fp4rt_session_reset. */
#define FP4RT_VERIFY_MAX FP4RT_DECODE_ROWS_MAX
fp4rt_status fp4rt_session_verify(fp4rt_session *s, const int32_t *tokens, int n, float *logits);
/* fp4rt_session_verify with the rows' greedy picks made on the device (the
 * backend must have the argmax slot, else INTERNAL): picks[n] gets, for each
 * row, exactly what fp4rt_session_eval_pick picks (the lowest id of the
 * largest logit among the model's valid ids), and the rows' logits stay on the
 * device (have_logits = 0; fp4rt_session_logits_row brings row i, until the
 * next step). picks[i] = -1: row i's logits were downloaded to logits + i *
 * vocab instead (a NaN in the row, or rows that ran as 1-token steps: the
 * backend has no decode_rows or n exceeds the chunk, when every row is). */
fp4rt_status fp4rt_session_verify_pick(fp4rt_session *s, const int32_t *tokens, int n, float *logits,
                                       int32_t *picks);
fp4rt_status fp4rt_session_keep(fp4rt_session *s, int n_keep);
/* Bytes of the checkpoint buffer the first verify allocates: FP4RT_VERIFY_MAX
 * x the GDN state (conv + ssm) of one position. */
uint64_t fp4rt_session_ckpt_bytes(const fp4rt_session *s);
/* The step of one token at n_past in session.c (run_step without cancel):
 * appends it; logits of the row downloaded to `logits` when not NULL. */
fp4rt_status fp4rt_session_step1(fp4rt_session *s, int32_t token, float *logits);

/* Runs the pending token (if any) through the model; logits: NULL, or [vocab]
 * floats for its logits (have_logits then follows). OK with nothing pending. */
fp4rt_status fp4rt_session_eval_pending(fp4rt_session *s, float *logits);

/* One decode step of `token` whose next token is picked greedily on the device
 * (backend->argmax must exist): *id gets exactly what fp4rt_sampler_sample picks
 * greedily (without penalties) over the model's valid ids, and the logits stay
 * on the device (have_logits = 0; fp4rt_session_fetch_logits brings them). When
 * a logit is NaN, *id = -1 and the logits are downloaded (have_logits = 1). */
fp4rt_status fp4rt_session_eval_pick(fp4rt_session *s, int32_t token, int32_t *id);
/* One decode step of `token` whose next token's candidates come from the
 * device (backend->top_k must exist): vals, ids [req->k] get what top_k
 * returns for the step's logits (backend.h), which stay on the device
 * (have_logits = 0). When a value is NaN, ids[0] = -1 and the logits are
 * downloaded (have_logits = 1). */
fp4rt_status fp4rt_session_eval_topk(fp4rt_session *s, int32_t token, const fp4rt_topk_request *req, float *vals,
                                     int32_t *ids);
/* Downloads the logits of the last step (a decode step) into last_logits. */
fp4rt_status fp4rt_session_fetch_logits(fp4rt_session *s);
/* Downloads row `row` ([vocab] floats) of the device's logits of the last main
 * step (a verify step's rows stay there until the next step) to dst. */
fp4rt_status fp4rt_session_logits_row(fp4rt_session *s, int row, float *dst);

/* A model of preset config `preset` with synthetic weights in the formats of
 * `recipe` (NULL: nvidia-mixed), generated by the backend (backend.h
 * prepare_synthetic) from seed: real shapes, no checkpoint, no tokenizer. For
 * benchmarks. NULL on failure (fp4rt_last_error). */
fp4rt_model *fp4rt_model_load_synthetic(const char *preset, const char *recipe, uint64_t seed,
                                        const fp4rt_model_params *params);

/* Installs (fn != NULL) or removes the calibration hook on the model's backend
 * (runtime/backend/backend.h). UNSUPPORTED if the backend has none. */
fp4rt_status fp4rt_model_set_observer(fp4rt_model *m, fp4rt_linear_observer fn, void *user);



/* For fp4rt bench (engine/model_stats.c). The memory bandwidth of m's device
 * as its backend measures it (backend.h measure_bandwidth), in bytes/s; 0
 * (and FP4RT_OK) when the backend cannot measure; 0 and the error when the
 * measurement fails. */
fp4rt_status fp4rt_model_bandwidth(fp4rt_model *m, double *bytes_per_s);
/* 1 when m runs on the CPU backend (its bandwidth is the read bandwidth of
 * fp4rt_model_n_threads workers), 0 on a GPU. */
int fp4rt_model_on_cpu(const fp4rt_model *m);
/* The arithmetic rate the backend's linear kernels are bound by (backend.h
 * measure_arith_peak) in a numerics mode (fused = fp4rt_numerics_relaxed(exact)),
 * FP32 operations per second, and what was measured; 0 (and FP4RT_OK) when the
 * backend has no probe. In the default mode, where BF16 weights carry most
 * of m's linear work, the probe is asked for the BF16 kernels' mix
 * (FP4RT_PEAK_BF16: the CPU's AMX path). */
fp4rt_status fp4rt_model_arith_peak(fp4rt_model *m, int fused, double *flops_per_s, char *what, size_t n);
/* Per-op timing on m's backend turned on or off (set_profile), and the totals
 * per op kind since the last take (profile_take, then zeroed):
 * seconds[FP4RT_OP_COUNT], calls[FP4RT_OP_COUNT]. UNSUPPORTED without them. */
fp4rt_status fp4rt_model_profile_set(fp4rt_model *m, int on);
fp4rt_status fp4rt_model_profile_take(fp4rt_model *m, double *seconds, long *calls);
/* FP32 operations (2 per multiply-add) of the text model's linears in a step of
 * n_tokens rows whose logits cover only the last row (a prefill). */
double fp4rt_model_linear_flops(const fp4rt_model *m, int n_tokens);
int fp4rt_model_n_threads(const fp4rt_model *m);
/* The recipe of synthetic weights ("nvidia-mixed"), NULL for a checkpoint. */
const char *fp4rt_model_synthetic_recipe(const fp4rt_model *m);
/* The bytes one decode step of s reads at position pos: the weights one token
 * reads (*weights, from the memory planner), the GDN state read and written,
 * and the KV cache of pos positions. */
fp4rt_status fp4rt_session_decode_bytes(const fp4rt_session *s, double pos, double *bytes, uint64_t *weights);

/* The device a model runs on (engine/devices.c). */
typedef struct fp4rt_device_choice {
    fp4rt_device_ref dev; /* a registry device (runtime/backend/registry.h) */
    int asked;            /* the user named the device: no fallback */
} fp4rt_device_choice;
/* --device: NULL / "auto" (the registry device with the highest score: the
 * best CUDA device when the CUDA module loads, else the best Vulkan GPU, never
 * a software device, else the CPU), or a device name: "cpu", "vulkan" (=
 * vulkan:0), "vulkan:N", "cuda" (= cuda:0), "cuda:N". */
fp4rt_status fp4rt_device_parse(const char *dev, fp4rt_device_choice *out);
/* Creates and prepares m's backend on d (synthetic weights from seed); a
 * device the user did not name falls back, with a warning, to the best device
 * of another backend (CUDA to the best Vulkan GPU, then the CPU). */
fp4rt_status fp4rt_backend_start(fp4rt_model *m, fp4rt_device_choice d, uint64_t seed);

#endif
