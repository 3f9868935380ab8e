/* Perplexity and KL divergence of a model over a token sequence (fp4rt
 * perplexity), as llama.cpp's llama-perplexity and Hugging Face's perplexity
 * guide compute them.
 *
 * Windows. The tokens t[0..n) are cut into windows of ctx tokens starting at
 * w x stride (w = 0, 1, ...) while the window fits: n_windows =
 * (n - ctx) / stride + 1; tokens after the last full window are not scored.
 * Each window runs in a fresh session (teacher forcing, all-position logits).
 * In every window, the tokens at window positions j in [first, ctx) are scored,
 * first = max(1, ctx - stride): their log-probability under the logits of
 * position j - 1. So every scored token has at least ctx - stride tokens of
 * context (at least 1 when stride = ctx), each text position is scored at most
 * once, and the scored positions of successive windows are contiguous:
 * stride = ctx (default) scores ctx - 1 tokens per window (all but each
 * window's first); stride < ctx scores the last stride tokens of each window,
 * the first window included (as llama.cpp scores the second half of every
 * chunk), so the first ctx - stride tokens of the text are context only.
 * n_scored = n_windows x (ctx - first).
 *
 * Perplexity = exp(mean NLL) over the scored tokens (NLL accumulated in
 * double); its error is ppl x the standard error of the mean NLL,
 * sqrt((mean(NLL^2) - mean(NLL)^2) / (N - 1)), as llama.cpp prints.
 *
 * Saved log-probabilities (--save-logits), little-endian, version 1:
 *   header (56 bytes): char magic[8] = "FP4RTPPL"; u32 version = 1; u32 vocab;
 *     u32 k; u32 ctx; u32 stride; u32 reserved = 0; u64 n_positions (scored);
 *     u64 n_tokens (of the whole text); u64 token_hash (FNV-1a 64 over the
 *     token ids as u32 little-endian);
 *   then n_positions records in scoring order, 12 + 8k bytes each:
 *     i32 target (the scored token id); f32 target_logp (its log-probability);
 *     f32 rest_logp (log of the probability mass outside the k ids, -inf when
 *     they hold it all); i32 ids[k] (the k most probable ids, most probable
 *     first, ties by lower id); f32 logp[k] (their log-probabilities).
 *   A KL run is refused unless vocab, ctx, stride, n_positions, n_tokens and
 *   token_hash all match.
 *
 * KL divergence (base || this) per scored position, over the k + 1 buckets of
 * the base's top-k ids plus one "rest" bucket of every other id:
 *   KL = sum_{i in top-k} p_b(i) (log p_b(i) - log p_t(i))
 *        + p_b(rest) (log p_b(rest) - log p_t(rest)),
 * p_t(rest) = this model's mass outside the base's k ids. This is the KL of the
 * two distributions coarsened to those buckets: a lower bound of the full-vocab
 * KL, exact when the rest mass is ~0 (llama.cpp stores every log-prob as uint16
 * instead; here the tail enters as one bucket). This run's log-probabilities go
 * through float32 as the saved ones did, so a model against its own file gives
 * exactly 0. */
#ifndef FP4RT_PERPLEXITY_H
#define FP4RT_PERPLEXITY_H

#include "fp4rt.h"

#include <stdint.h>
#include <stdio.h>

/* The windows of n tokens (see the top). */
typedef struct fp4rt_ppl_windows {
    int n_tokens, ctx, stride;
    int n_windows;
    int first;     /* first scored window position: max(1, ctx - stride) */
    long n_scored; /* n_windows x (ctx - first) */
} fp4rt_ppl_windows;

/* Plans the windows. INVALID_ARGUMENT (naming the value) when ctx < 2,
 * ctx > max_ctx (max_ctx > 0), stride < 1 or stride > ctx, or n_tokens < ctx
 * ("text shorter than one window"). */
fp4rt_status fp4rt_ppl_plan(int n_tokens, int ctx, int stride, int max_ctx, fp4rt_ppl_windows *out);

/* FNV-1a 64 of the ids as u32 little-endian (the file's token_hash). */
uint64_t fp4rt_ppl_token_hash(const int32_t *ids, int n);

/* Running NLL statistics in double. */
typedef struct fp4rt_ppl_acc {
    double sum, sum2;
    long n;
} fp4rt_ppl_acc;
void fp4rt_ppl_acc_add(fp4rt_ppl_acc *a, double nll);
/* exp(mean NLL) (1 when empty) and its error ppl x SEM (0 when n < 2). */
double fp4rt_ppl_acc_ppl(const fp4rt_ppl_acc *a);
double fp4rt_ppl_acc_err(const fp4rt_ppl_acc *a);

/* log sum exp(x[i]) over V values, in double. */
double fp4rt_ppl_logsumexp(const float *x, int V);

/* One scored position's saved form (the file record). ids / logp point to k
 * entries owned by whoever made the record. */
typedef struct fp4rt_ppl_record {
    double nll; /* -log p(target) in double (not saved) */
    int32_t target;
    float target_logp;
    float rest_logp;
    int32_t *ids;
    float *logp;
} fp4rt_ppl_record;

/* Fills r from one row of V logits: target_logp, and the log-probabilities of
 * the k ids in `ids` (NULL: r's own top-k, written to r->ids) and the rest
 * mass outside them; each log-probability rounded to float. A NaN logit is
 * NUMERIC. r->ids / r->logp must hold k entries; 0 <= k <= V (k = 0: the
 * target only, rest_logp = 0). ids must be distinct and in [0, V). */
fp4rt_status fp4rt_ppl_record_fill(const float *logits, int V, int32_t target, int k,
                                   const int32_t *ids, fp4rt_ppl_record *r);

/* KL (base || this) of two records over the base's ids (this->ids == base->ids
 * as fp4rt_ppl_record_fill makes it), see the top. */
double fp4rt_ppl_kl(const fp4rt_ppl_record *base, const fp4rt_ppl_record *cur, int k);

/* ---- the saved file (runtime/tools/ppl_file.c) --------------------------- */

typedef struct fp4rt_ppl_header {
    uint32_t version, vocab, k, ctx, stride;
    uint64_t n_positions, n_tokens, token_hash;
} fp4rt_ppl_header;

/* A writer: the records go to "<path>.tmp-<pid>", renamed to path by
 * fp4rt_ppl_writer_close(w, 1); close(w, 0) removes the temporary. open
 * fails (IO naming the path) when it cannot be created. */
typedef struct fp4rt_ppl_writer fp4rt_ppl_writer;
fp4rt_status fp4rt_ppl_writer_open(const char *path, const fp4rt_ppl_header *h,
                                   fp4rt_ppl_writer **out);
int fp4rt_ppl_writer_k(const fp4rt_ppl_writer *w);
fp4rt_status fp4rt_ppl_writer_add(fp4rt_ppl_writer *w, const fp4rt_ppl_record *r);
/* commit: 1 to finish (checks n_positions records were written), 0 to drop.
 * Frees w; returns the first write error. */
fp4rt_status fp4rt_ppl_writer_close(fp4rt_ppl_writer *w, int commit);

/* A whole saved file in memory. */
typedef struct fp4rt_ppl_file {
    fp4rt_ppl_header h;
    int32_t *targets;   /* [n_positions] */
    float *target_logp; /* [n_positions] */
    float *rest_logp;   /* [n_positions] */
    int32_t *ids;       /* [n_positions x k] */
    float *logp;        /* [n_positions x k] */
} fp4rt_ppl_file;
/* Reads and checks a file (FORMAT naming the path and what is wrong: magic,
 * version, sizes, a truncated or overlong body). */
fp4rt_status fp4rt_ppl_file_read(const char *path, fp4rt_ppl_file *out);
void fp4rt_ppl_file_free(fp4rt_ppl_file *f);
/* Record i of f (pointers into f). */
fp4rt_ppl_record fp4rt_ppl_file_record(const fp4rt_ppl_file *f, long i);
/* INVALID_ARGUMENT naming the first field that differs ("<path>: made with ctx
 * 64, this run has ctx 32") unless f was made from the same tokens and windows. */
fp4rt_status fp4rt_ppl_file_check(const fp4rt_ppl_file *f, const char *path,
                                  const fp4rt_ppl_windows *w, int vocab, uint64_t token_hash);

/* ---- running a model (runtime/tools/perplexity.c) ------------------------ */

/* KL statistics against a base file. */
typedef struct fp4rt_ppl_kl_stats {
    double *kl; /* [n] per scored position, in order (malloc'ed) */
    long n;
    double kl_sum, kl_sum2;
    long same_top;          /* positions whose argmax equals the base's top id */
    double dp_sum, dp_sum2; /* delta p = p_this - p_base of the base's top id */
    fp4rt_ppl_acc base;     /* the base's NLL (from the file) */
} fp4rt_ppl_kl_stats;

/* Called after each window: windows done, their total, the perplexity so far.
 * Non-zero cancels (CANCELLED). */
typedef int (*fp4rt_ppl_progress_fn)(int done, int total, double ppl, void *user);

typedef struct fp4rt_ppl_params {
    fp4rt_ppl_writer *save;         /* NULL, or where the records go (k = its header's k) */
    const fp4rt_ppl_file *base;     /* NULL, or the base to compare with (already checked) */
    fp4rt_ppl_progress_fn progress; /* NULL = none */
    void *progress_user;
    int max_rows; /* logits rows per eval call; 0 = 64 Mi floats / vocab */
} fp4rt_ppl_params;

typedef struct fp4rt_ppl_result {
    fp4rt_ppl_acc nll;     /* this model's NLL over the scored tokens */
    fp4rt_ppl_kl_stats kl; /* filled when params->base is set */
    long tokens_evaluated; /* tokens run through the model */
} fp4rt_ppl_result;

/* Runs every window of w over tokens through s (reset before each window;
 * s's n_ctx >= ctx - 1), scores as described at the top, saves and compares
 * as params asks. *out is zeroed first; free it with fp4rt_ppl_result_free
 * (also after a failure). */
fp4rt_status fp4rt_ppl_run(fp4rt_session *s, const int32_t *tokens, const fp4rt_ppl_windows *w,
                           const fp4rt_ppl_params *params, fp4rt_ppl_result *out);
void fp4rt_ppl_result_free(fp4rt_ppl_result *r);

/* The q-quantile (0..1, nearest rank on the sorted values) of n values; sorts x. */
double fp4rt_ppl_quantile(double *x, long n, double q);

#endif
