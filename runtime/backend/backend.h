/* A backend: a table of function pointers plus a context. The executor
 * (runtime/engine/session.c) owns the program and the session state layout; a
 * backend allocates buffers, prepares weights for a program and runs steps.
 *
 * The engine calls the fp4rt_backend_* wrappers at the end of this header, never
 * a slot directly: they check their arguments, give the optional slots (marked
 * (optional)) their defaults and validate a step once for every backend. All
 * sizes are bytes. */
#ifndef FP4RT_BACKEND_H
#define FP4RT_BACKEND_H

#include "runtime/model/program.h"

#include <math.h>

typedef struct fp4rt_buffer fp4rt_buffer; /* backend-defined */

/* The numerics contract (every backend computes the same bits): docs/NUMERICS.md.
 * Gated delta rule: a step of n_tokens > 1 runs the chunked form with chunks of
 * this many tokens, a step of one token the recurrent form (docs/MODEL.md §2.4). */
#define FP4RT_GDN_CHUNK 64

/* Attention's online softmax and its decode splits: docs/NUMERICS.md rule 4. */
#define FP4RT_ATTN_SPLIT_MIN 256 /* at least this many positions of n_ctx per split */
#define FP4RT_ATTN_MAX_SPLITS 256 /* 65,536 positions of n_ctx; longer contexts make longer spans */
#define FP4RT_ATTN_TILE 16 /* spans are whole tiles of this many positions */

#if defined(__CUDACC__) /* the CUDA kernels use them on the device (cuda/cu_attn_index.h) */
#define FP4RT_ATTN_FN static inline __host__ __device__
#else
#define FP4RT_ATTN_FN static inline
#endif

/* Spans a step's attention runs in: 1 for n_tokens > 1, else one per
 * FP4RT_ATTN_SPLIT_MIN positions of n_ctx (1 .. FP4RT_ATTN_MAX_SPLITS). */
FP4RT_ATTN_FN int fp4rt_attn_splits(int n_ctx, int n_tokens) {
    int ns = (n_ctx + FP4RT_ATTN_SPLIT_MIN - 1) / FP4RT_ATTN_SPLIT_MIN;
    return n_tokens > 1 || ns < 1 ? 1 : ns > FP4RT_ATTN_MAX_SPLITS ? FP4RT_ATTN_MAX_SPLITS : ns;
}

/* Positions per span for len positions in `splits` spans: whole tiles; the last
 * spans shorter or empty. */
FP4RT_ATTN_FN int fp4rt_attn_span(int len, int splits) {
    return ((len + splits - 1) / splits + FP4RT_ATTN_TILE - 1) / FP4RT_ATTN_TILE * FP4RT_ATTN_TILE;
}

/* Everything one session needs on the device. */
typedef struct fp4rt_session_buffers {
    fp4rt_buffer *scratch; /* activation arena: [chunk, arena_width] f32 */
    fp4rt_buffer *kv;      /* [n_attn, 2 (K, V), n_ctx, n_kv_heads, head_dim] of kv_type */
    fp4rt_buffer *conv;    /* [n_gdn, conv_dim, conv_kernel - 1] f32: last pre-conv inputs, oldest first */
    fp4rt_buffer *ssm;     /* [n_gdn, lin_v_heads, lin_k_dim, lin_v_dim] f32 recurrent state */
    fp4rt_buffer *logits;  /* [chunk, vocab] f32 */
    int n_ctx;
    int chunk;
    fp4rt_kv_type kv_type; /* BF16 or F32 */
    /* NULL, or FP4RT_DECODE_ROWS_MAX slots of conv bytes + ssm bytes (the sizes
     * of conv and ssm): where a decode_rows step keeps the GDN state before each
     * row r, in slot r as [conv | ssm] in their layouts. */
    fp4rt_buffer *ckpt;
} fp4rt_session_buffers;

/* Rows of a decode_rows (verify) step at most. */
#define FP4RT_DECODE_ROWS_MAX 8

/* One step: tokens pos0 .. pos0 + n_tokens - 1 of a sequence. */
typedef struct fp4rt_step {
    const int32_t *tokens; /* [n_tokens] */
    int n_tokens;          /* 1 .. chunk */
    int pos0;              /* position of tokens[0]; the cache holds pos0 tokens before */
    int all_logits;        /* logits for every row, else only the last row (row 0 of logits) */
    int no_logits;         /* skip the logits entirely (a prefill chunk that is not the last) */
    /* 0: every logit; 1 .. vocab - 1: only logits [0, logits_rows) of each row are
     * needed (the MTP head's draft vocabulary, FP4RT_MTP_DRAFT_VOCAB): a backend may
     * compute just those (the CPU does); the rest are then undefined. */
    int logits_rows;
    /* A verify step (backends whose ops.decode_rows is 1; n_tokens <= FP4RT_DECODE_ROWS_MAX):
     * every row gets exactly the bits a 1-token step of its token at its position
     * gives after the rows before it: the GDN in the recurrent form row by row,
     * attention with the decode splits fp4rt_attn_splits(n_ctx, 1), the linears
     * batched (their rows are independent: docs/NUMERICS.md rule 3). When sb->ckpt
     * is set, the GDN state before each row goes to its slot there. */
    int decode_rows;
    /* 1: only the step's KV cache entries are needed (the MTP head's feed of the
     * main model's rows, runtime/engine/mtp.c): a backend may skip the ops after
     * the program's last KV_APPEND (the CPU does), leaving the arena's rows
     * undefined. Only with no_logits, on a program without GDN state (else
     * INVALID_ARGUMENT); a backend that runs every op is correct too. */
    int kv_only;
    /* Greedy pick on the device (backends with the argmax slot only): when argmax_out
     * is set, the run also writes the argmax of the last row's logits (ids whose
     * argmax_valid byte is 0 count as -inf; ties: the lowest id; exactly what
     * fp4rt_sampler_sample picks greedily) to *argmax_out, or -1 when a logit is
     * NaN (the caller then downloads the logits). With logits_rows set (backends
     * whose ops.argmax_rows is 1 only) the pick is over ids [0, logits_rows). */
    const uint8_t *argmax_valid; /* [vocab] or NULL: every id valid; must stay alive and unchanged */
    int32_t *argmax_out;
    /* With argmax_out and all_logits (backends whose ops.argmax_rows is 1 only;
     * n_tokens <= FP4RT_DECODE_ROWS_MAX): the pick of every row, row r's to
     * argmax_out[r] ([n_tokens]), each as above (a verify step's rows). */
    int argmax_all;
    /* Rotary positions (M-RoPE, issue 18). positions: [n_tokens * 3] (t, h, w) per row,
     * or NULL: every component of row r is pos0 + r + rope_delta (rope_delta is 0 for
     * text-only sessions; after an image it is the offset transformers' get_rope_index
     * returns as mrope_position_deltas). The KV cache is still indexed by pos0 + r. */
    const int32_t *positions;
    int rope_delta;
    /* Embedding overrides (image tokens): where embed_rows[r] is 1, the EMBED op copies
     * row r of input_embeds ([n_tokens * hidden] F32) instead of embedding tokens[r].
     * Both NULL: every row embeds its token. */
    const float *input_embeds;
    const uint8_t *embed_rows;
    /* Numerics mode (docs/NUMERICS.md, "Modes"): 1 = the default mode, where kernels
     * that have a relaxed variant use it (the CPU's linears: each multiply-add of the
     * contract's chains fused, same chains, same tree); 0 = the exact contract. A
     * backend without relaxed kernels ignores it. Zero-initialized steps (the
     * backend tests) are exact; sessions set it from fp4rt_session_params.exact. */
    int relaxed;
} fp4rt_step;

/* A row's rotary position component c (0: t, 1: h, 2: w): step->positions when
 * set, else pos0 + row + rope_delta (fp4rt_backend_run checks that every one a
 * program with ROPE ops reads lies in [0, n_ctx)). */
static inline int fp4rt_step_rope_pos(const fp4rt_step *s, int row, int c) {
    return s->positions ? s->positions[3 * row + c] : s->pos0 + row + s->rope_delta;
}

/* ROPE frequency j of op (0 <= j < rotary_dim / 2; program.h): the position
 * component that drives it and its inverse frequency, the FP32 values every
 * backend uses (the angle is (float)position * inv_freq, its cos / sin the C
 * library's cosf / sinf: docs/NUMERICS.md). */
static inline int fp4rt_rope_component(const fp4rt_op *op, int j) {
    if (op->rope_mode == FP4RT_ROPE_VISION_2D) return j < op->rotary_dim / 4 ? 1 : 2;
    if (j % 3 == 1 && j < 3 * op->mrope_section[1]) return 1;
    if (j % 3 == 2 && j < 3 * op->mrope_section[2]) return 2;
    return 0;
}

static inline float fp4rt_rope_inv_freq(const fp4rt_op *op, int j) {
    if (op->rope_mode == FP4RT_ROPE_VISION_2D) {
        int q = op->rotary_dim / 4, i = j < q ? j : j - q;
        return 1.0f / powf((float)op->rope_theta, (float)(2 * i) / (float)(op->rotary_dim / 2));
    }
    return 1.0f / powf((float)op->rope_theta, (float)(2 * j) / (float)op->rotary_dim);
}

/* OK when a ROPE op's mode fields are ones the backends implement (program.h):
 * rope_mode TEXT or VISION_2D, rotary_dim even, at most 1024 and within the
 * group; TEXT with an mrope_section only interleaved, sections >= 0; VISION_2D
 * with rotary_dim a multiple of 4. Else UNSUPPORTED naming the field. */
fp4rt_status fp4rt_rope_op_check(const fp4rt_op *op);

/* Device top-k (the top_k slot): the k best candidates of a logits row after
 * exactly the CPU sampler's (sampler.c) masking, penalties and temperature, so
 * the host finishes sampling on them and draws the same token as from the
 * full logits. */
#define FP4RT_TOPK_MAX 256

/* An id the sampler has seen (prompt or output): the repetition penalty applies
 * to it; count > 0 (occurrences in the output): presence and frequency apply.
 * Two int32, copied to devices as they are. */
typedef struct fp4rt_topk_penalty {
    int32_t id;
    int32_t count;
} fp4rt_topk_penalty;

typedef struct fp4rt_topk_request {
    int k;                /* 1 .. FP4RT_TOPK_MAX, at most n */
    float temperature;    /* positive, normal: v = x / temperature */
    const uint8_t *valid; /* [n] or NULL (every id valid); 0: x = -inf. Read afresh each call */
    float repetition_penalty; /* positive, normal; 1: off */
    float presence_penalty, frequency_penalty;
    const fp4rt_topk_penalty *pen; /* [n_pen] ids ascending, distinct, in [0, n); NULL when n_pen = 0 */
    int n_pen;
} fp4rt_topk_request;

/* Calibration hook: called for every LINEAR op with its input rows (FP32, before
 * any activation quantization): rows of n_in floats, row_stride floats apart. It
 * runs on the thread that runs the step, before the op computes. */
typedef void (*fp4rt_linear_observer)(void *user, const fp4rt_linear *lin, const float *x,
                                      size_t row_stride, int rows);

/* measure_arith_peak's mode bits: the default numerics mode (fp4rt_step.relaxed),
 * and most of the linear work on BF16 weights. */
#define FP4RT_PEAK_FUSED 1
#define FP4RT_PEAK_BF16 2

typedef struct fp4rt_backend_ops {
    const char *name; /* "cpu" */
    fp4rt_status (*create)(int n_threads, void **ctx);
    void (*destroy)(void *ctx);

    fp4rt_status (*buffer_alloc)(void *ctx, size_t bytes, const char *what, fp4rt_buffer **out);
    void (*buffer_free)(void *ctx, fp4rt_buffer *b);
    fp4rt_status (*buffer_upload)(void *ctx, fp4rt_buffer *b, size_t offset, const void *src,
                                  size_t bytes);
    fp4rt_status (*buffer_download)(void *ctx, fp4rt_buffer *b, size_t offset, void *dst,
                                    size_t bytes);
    /* Sets the whole buffer to zero bytes. */
    fp4rt_status (*buffer_clear)(void *ctx, fp4rt_buffer *b);

    /* (optional) Upload weights / compile kernels for a program. */
    fp4rt_status (*prepare)(void *ctx, const fp4rt_program *p);
    /* Runs every op of the program for one step. */
    fp4rt_status (*run)(void *ctx, const fp4rt_program *p, const fp4rt_session_buffers *sb,
                        const fp4rt_step *step);
    /* (optional) Waits for all submitted work. */
    fp4rt_status (*synchronize)(void *ctx);
    /* (optional) One line describing the device and kernel path. */
    void (*describe)(void *ctx, char *buf, size_t n);
    /* (optional) Installs (fn != NULL) or removes the calibration hook; a backend
     * without it returns UNSUPPORTED. */
    fp4rt_status (*set_observer)(void *ctx, fp4rt_linear_observer fn, void *user);
    /* (optional) Measures the memory bandwidth decode is bound by, on the device
     * itself, in bytes per second (bytes read + bytes written, divided by the
     * time): the CPU streams a buffer much larger than its caches with its
     * worker threads (bytes read); a GPU backend copies a large device-local
     * buffer to another with the device's copy engine or a kernel and times it
     * on the device (timestamps), counting read + written bytes. Takes up to a
     * second or so; allocates and frees its own buffers (OUT_OF_MEMORY if it
     * cannot). fp4rt bench divides it by the bytes a decode step reads. */
    fp4rt_status (*measure_bandwidth)(void *ctx, double *bytes_per_s);
    /* (optional) The largest prefill chunk (tokens per step) the backend accepts
     * for this program (e.g. what fits the device's binding limit); sessions cap
     * their chunk to it. NULL: no limit. */
    int (*max_chunk)(void *ctx, const fp4rt_program *p);
    /* (optional) Turns per-op timing on or off (--profile, FP4RT_PROFILE=1); the
     * totals per op kind are logged when the backend is destroyed. */
    fp4rt_status (*set_profile)(void *ctx, int on);
    /* (optional) The greedy pick of `n` logits at float `offset` of `logits`, as
     * step->argmax_out defines it, in a submission of its own (valid is read
     * afresh). A backend with this slot honours step->argmax_out in run. */
    fp4rt_status (*argmax)(void *ctx, fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                           int32_t *out);
    /* (optional) Like prepare, for synthetic weights (weights.h
     * fp4rt_weights_synthetic): every tensor whose host pointer is a placeholder
     * (fp4rt_weights_is_placeholder) gets fp4rt_weights_synth_bytes(..., seed)
     * content on the device (valid values of its format), never read from the
     * host; real host tensors are uploaded as usual. Fails with OUT_OF_MEMORY
     * (one line) when the device cannot hold the weights. A backend without it
     * cannot run synthetic weights. */
    fp4rt_status (*prepare_synthetic)(void *ctx, const fp4rt_program *p, uint64_t seed);
    /* (optional) The k best of `n` logits at float `offset` of `logits`, in a
     * submission of its own. For each id, in float arithmetic with no fused
     * operations (as sampler.c does it): x = logit, or -inf when valid[id] is 0;
     * for a listed id x = x > 0 ? x / repetition_penalty : x * repetition_penalty
     * when repetition_penalty != 1, then when count > 0
     * x -= presence_penalty + frequency_penalty * (float)count; finally
     * v = x / temperature (every division correctly rounded). vals[0, k) and
     * ids[0, k) get the k best (v, id): higher v first, ties by lower id (-inf
     * entries included when fewer than k are finite) -- exactly what the CPU
     * sampler's top-k selects and in its order. When some v is NaN, ids[0] = -1
     * (the caller samples downloaded logits on the host). UNSUPPORTED (one line,
     * nothing run) for requests outside the contract above. */
    fp4rt_status (*top_k)(void *ctx, fp4rt_buffer *logits, size_t offset, int n, const fp4rt_topk_request *req,
                          float *vals, int32_t *ids);
    /* (optional) Copies `bytes` bytes of src at src_off to dst at dst_off on the
     * device, ordered after all work submitted before it and before all work
     * submitted after it; src and dst are distinct buffers. A range outside a
     * buffer fails with INVALID_ARGUMENT (one line). None: the wrapper copies
     * through the host (download, upload). */
    fp4rt_status (*buffer_copy)(void *ctx, fp4rt_buffer *dst, size_t dst_off, fp4rt_buffer *src, size_t src_off,
                                size_t bytes);
    /* 1: run honours fp4rt_step.decode_rows; 0: such a step is UNSUPPORTED (the
     * engine runs the rows as 1-token steps). */
    int decode_rows;
    /* (optional) Like buffer_alloc, for a buffer no op binds across a multiple of
     * granule bytes (the KV cache: one layer's K or V; the GDN states: one
     * layer's): the backend may place it in several allocations split at such
     * multiples (a device whose single allocations are smaller than the buffer). */
    fp4rt_status (*buffer_alloc_split)(void *ctx, size_t bytes, size_t granule, const char *what,
                                       fp4rt_buffer **out);
    /* (optional) Measures the arithmetic rate the linear kernels are bound by in
     * prefill, in FP32 operations per second, for the instruction mix of the
     * backend's kernels in the given mode (fused: FP4RT_PEAK_FUSED =
     * fp4rt_step.relaxed, plus FP4RT_PEAK_BF16 where most of the linear work
     * has BF16 weights; the CPU: a vector multiply then add, or one FMA when
     * fused, on the widest instruction set its kernels use, every worker
     * thread; BF16 in the default mode on AMX: the tile products, three per k
     * block); takes well under a second. what[0, n) gets a one-line
     * description of what was run. */
    fp4rt_status (*measure_arith_peak)(void *ctx, int fused, double *flops_per_s, char *what, size_t n);
    /* (optional) The per-op-kind totals the profile (set_profile) gathered since
     * it was turned on or last taken, then zeroes them: seconds[FP4RT_OP_COUNT],
     * calls[FP4RT_OP_COUNT]. What was taken is not in the report logged when the
     * backend is destroyed. */
    fp4rt_status (*profile_take)(void *ctx, double *seconds, long *calls);
    /* 1: run honours fp4rt_step.argmax_all and argmax_out with logits_rows (the
     * pick of every row; over the draft vocabulary); 0: such a step is
     * UNSUPPORTED (the engine calls the argmax slot per row instead). Last, so
     * tables initialized by position (cuda/) leave it 0. */
    int argmax_rows;
} fp4rt_backend_ops;

extern const fp4rt_backend_ops fp4rt_backend_cpu;

/* ---- Wrappers (backend.c) ----
 * `be` is a backend table and `ctx` a context its create made. A NULL argument
 * or a value outside the contract fails with INVALID_ARGUMENT (one line naming
 * the wrapper and the argument) before the backend is called. */
fp4rt_status fp4rt_backend_create(const fp4rt_backend_ops *be, int n_threads, void **ctx);
void fp4rt_backend_destroy(const fp4rt_backend_ops *be, void *ctx); /* ctx NULL: nothing */
fp4rt_status fp4rt_backend_alloc(const fp4rt_backend_ops *be, void *ctx, size_t bytes, const char *what,
                                 fp4rt_buffer **out);
/* buffer_alloc_split (none, or granule 0: fp4rt_backend_alloc). */
fp4rt_status fp4rt_backend_alloc_split(const fp4rt_backend_ops *be, void *ctx, size_t bytes, size_t granule,
                                       const char *what, fp4rt_buffer **out);
void fp4rt_backend_free(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b); /* b NULL: nothing */
fp4rt_status fp4rt_backend_upload(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b, size_t offset,
                                  const void *src, size_t bytes);
fp4rt_status fp4rt_backend_download(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b, size_t offset,
                                    void *dst, size_t bytes);
fp4rt_status fp4rt_backend_clear(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b);
/* buffer_copy (none: through a host buffer of `bytes`); bytes 0: nothing;
 * src == dst: INVALID_ARGUMENT. */
fp4rt_status fp4rt_backend_copy(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *dst, size_t dst_off,
                                fp4rt_buffer *src, size_t src_off, size_t bytes);
/* prepare (none: nothing to do), or prepare_synthetic with seed when
 * p->weights is synthetic (none: UNSUPPORTED). */
fp4rt_status fp4rt_backend_prepare(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p, uint64_t seed);
/* The step contract every backend's run relies on: tokens set, each in
 * [0, vocab) when the program embeds them (has an EMBED op); 1 <= n_tokens <=
 * sb->chunk; 0 <= pos0 and pos0 + n_tokens <= sb->n_ctx ("context full");
 * argmax_out only on a backend with the argmax slot (else UNSUPPORTED) and not
 * with no_logits; argmax_all and argmax_out with logits_rows only on a backend
 * with ops.argmax_rows (else UNSUPPORTED), argmax_all only with argmax_out,
 * all_logits and at most FP4RT_DECODE_ROWS_MAX tokens; decode_rows only on a
 * backend with ops.decode_rows (else UNSUPPORTED) and for at most
 * FP4RT_DECODE_ROWS_MAX tokens; the session buffers scratch and logits
 * allocated. */
fp4rt_status fp4rt_backend_check_step(const fp4rt_backend_ops *be, const fp4rt_program *p,
                                      const fp4rt_session_buffers *sb, const fp4rt_step *step);
/* fp4rt_backend_check_step, then run. */
fp4rt_status fp4rt_backend_run(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p,
                               const fp4rt_session_buffers *sb, const fp4rt_step *step);
fp4rt_status fp4rt_backend_synchronize(const fp4rt_backend_ops *be, void *ctx); /* none: OK */
void fp4rt_backend_describe(const fp4rt_backend_ops *be, void *ctx, char *buf, size_t n); /* none: the name */
fp4rt_status fp4rt_backend_set_observer(const fp4rt_backend_ops *be, void *ctx, fp4rt_linear_observer fn,
                                        void *user); /* none: UNSUPPORTED */
fp4rt_status fp4rt_backend_measure_bandwidth(const fp4rt_backend_ops *be, void *ctx,
                                             double *bytes_per_s); /* none: UNSUPPORTED */
int fp4rt_backend_max_chunk(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p); /* none: INT_MAX */
fp4rt_status fp4rt_backend_set_profile(const fp4rt_backend_ops *be, void *ctx, int on); /* none: UNSUPPORTED */
/* measure_arith_peak, profile_take (none: UNSUPPORTED). */
fp4rt_status fp4rt_backend_measure_arith_peak(const fp4rt_backend_ops *be, void *ctx, int fused, double *flops_per_s,
                                              char *what, size_t n);
fp4rt_status fp4rt_backend_profile_take(const fp4rt_backend_ops *be, void *ctx, double *seconds, long *calls);
/* The argmax / top_k slots (none: UNSUPPORTED) on n >= 1 logits; top_k's own
 * UNSUPPORTED answers a req outside its contract. */
fp4rt_status fp4rt_backend_argmax(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *logits, size_t offset, int n,
                                  const uint8_t *valid, int32_t *out);
fp4rt_status fp4rt_backend_top_k(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *logits, size_t offset, int n,
                                 const fp4rt_topk_request *req, float *vals, int32_t *ids);

#endif
