/* Perplexity / KL math and the window loop (contracts in perplexity.h). */
#include "runtime/tools/perplexity.h"

#include "runtime/base/common.h"
#include "runtime/engine/model.h"
#include "runtime/tools/logit_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

fp4rt_status fp4rt_ppl_plan(int n_tokens, int ctx, int stride, int max_ctx,
                            fp4rt_ppl_windows *out) {
    memset(out, 0, sizeof *out);
    if (ctx < 2)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "--ctx %d: a window needs at least 2 tokens",
                          ctx);
    if (max_ctx > 0 && ctx > max_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "--ctx %d exceeds the model's context of %d tokens", ctx, max_ctx);
    if (stride < 1 || stride > ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "--stride %d: expected 1 to --ctx (%d)", stride,
                          ctx);
    if (n_tokens < ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "text shorter than one window: %d tokens, --ctx %d", n_tokens, ctx);
    out->n_tokens = n_tokens;
    out->ctx = ctx;
    out->stride = stride;
    out->n_windows = (n_tokens - ctx) / stride + 1;
    out->first = ctx - stride > 1 ? ctx - stride : 1;
    out->n_scored = (long)out->n_windows * (ctx - out->first);
    return FP4RT_OK;
}

uint64_t fp4rt_ppl_token_hash(const int32_t *ids, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

void fp4rt_ppl_acc_add(fp4rt_ppl_acc *a, double nll) {
    a->sum += nll;
    a->sum2 += nll * nll;
    a->n++;
}

double fp4rt_ppl_acc_ppl(const fp4rt_ppl_acc *a) {
    return a->n ? exp(a->sum / (double)a->n) : 1.0;
}

double fp4rt_ppl_acc_err(const fp4rt_ppl_acc *a) {
    if (a->n < 2) return 0;
    double mean = a->sum / (double)a->n, var = a->sum2 / (double)a->n - mean * mean;
    return var > 0 ? fp4rt_ppl_acc_ppl(a) * sqrt(var / (double)(a->n - 1)) : 0;
}

double fp4rt_ppl_logsumexp(const float *x, int V) {
    double m = -INFINITY;
    for (int i = 0; i < V; i++)
        if (x[i] > m) m = x[i];
    if (!isfinite(m)) return m;
    double s = 0;
    for (int i = 0; i < V; i++)
        s += exp((double)x[i] - m);
    return m + log(s);
}

/* The k largest of x (ties: lower id first) into ids, most probable first. */
static void top_k(const float *x, int V, int k, int32_t *ids) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (n == k && !(x[i] > x[ids[k - 1]])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && x[i] > x[ids[j - 1]]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

fp4rt_status fp4rt_ppl_record_fill(const float *logits, int V, int32_t target, int k,
                                   const int32_t *ids, fp4rt_ppl_record *r) {
    if (target < 0 || target >= V || k < 0 || k > V)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "perplexity: target %d / k %d outside a vocabulary of %d", target, k, V);
    double m = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i])) return fp4rt_fail(FP4RT_NUMERIC, "perplexity: logit %d is NaN", i);
        if (logits[i] > m) m = logits[i];
    }
    if (!isfinite(m)) return fp4rt_fail(FP4RT_NUMERIC, "perplexity: the largest logit is %g", m);
    double s = 0;
    for (int i = 0; i < V; i++)
        s += exp((double)logits[i] - m);
    double lse = m + log(s);
    r->target = target;
    r->nll = lse - (double)logits[target];
    r->target_logp = (float)-r->nll;
    r->rest_logp = 0;
    if (k == 0) return FP4RT_OK;
    if (!ids)
        top_k(logits, V, k, r->ids);
    else if (r->ids != ids)
        memcpy(r->ids, ids, (size_t)k * sizeof *ids);
    for (int j = 0; j < k; j++)
        r->logp[j] = (float)((double)logits[r->ids[j]] - lse);
    /* the rest: the sum over the ids outside the set, walked in id order */
    int32_t stack[64],
        *sorted = k <= 64 ? stack : fp4rt_malloc((size_t)k * sizeof *sorted, "perplexity ids");
    if (!sorted) return FP4RT_OUT_OF_MEMORY;
    memcpy(sorted, r->ids, (size_t)k * sizeof *sorted);
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_i32);
    double rest = 0;
    int j = 0;
    for (int i = 0; i < V; i++) {
        if (j < k && sorted[j] == i) {
            while (j < k && sorted[j] == i)
                j++;
            continue;
        }
        rest += exp((double)logits[i] - m);
    }
    if (sorted != stack) free(sorted);
    r->rest_logp = rest > 0 ? (float)(log(rest) + m - lse) : -INFINITY;
    return FP4RT_OK;
}

/* p_b (log p_b - log p_t), 0 where p_b = 0. */
static double kl_term(float lb, float lt) {
    if (lb == -INFINITY) return 0;
    return exp((double)lb) * ((double)lb - (double)lt);
}

double fp4rt_ppl_kl(const fp4rt_ppl_record *base, const fp4rt_ppl_record *cur, int k) {
    double kl = 0;
    for (int j = 0; j < k; j++)
        kl += kl_term(base->logp[j], cur->logp[j]);
    return kl + kl_term(base->rest_logp, cur->rest_logp);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double fp4rt_ppl_quantile(double *x, long n, double q) {
    if (n <= 0) return 0;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    long i = (long)ceil(q * (double)n) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return x[i];
}

void fp4rt_ppl_result_free(fp4rt_ppl_result *r) {
    free(r->kl.kl);
    r->kl.kl = NULL;
}

/* Scratch for the records of one row. */
typedef struct ppl_rows {
    int32_t *save_ids, *cur_ids;
    float *save_logp, *cur_logp;
} ppl_rows;

/* Scores one row of logits (predicting `target`) at scored position `pos`. */
static fp4rt_status score_row(const float *row, int V, int32_t target, long pos,
                              const fp4rt_ppl_params *p, ppl_rows *sc, fp4rt_ppl_result *out) {
    fp4rt_ppl_record rec = {.ids = sc->save_ids, .logp = sc->save_logp};
    int ks = p->save ? fp4rt_ppl_writer_k(p->save) : 0;
    fp4rt_status st = fp4rt_ppl_record_fill(row, V, target, ks, NULL, &rec);
    if (!st && p->save) st = fp4rt_ppl_writer_add(p->save, &rec);
    if (st) return st;
    fp4rt_ppl_acc_add(&out->nll, rec.nll);
    if (!p->base) return FP4RT_OK;
    fp4rt_ppl_record b = fp4rt_ppl_file_record(p->base, pos);
    int kb = (int)p->base->h.k;
    if (b.target != target)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "perplexity: base position %ld scores token %d, this run %d", pos,
                          b.target, target);
    fp4rt_ppl_record cur = {.ids = sc->cur_ids, .logp = sc->cur_logp};
    if ((st = fp4rt_ppl_record_fill(row, V, target, kb, b.ids, &cur))) return st;
    fp4rt_ppl_kl_stats *k = &out->kl;
    double kl = fp4rt_ppl_kl(&b, &cur, kb);
    k->kl[k->n++] = kl;
    k->kl_sum += kl;
    k->kl_sum2 += kl * kl;
    k->same_top += fp4rt_logit_argmax(row, V) == b.ids[0];
    double dp = exp((double)cur.logp[0]) - exp((double)b.logp[0]);
    k->dp_sum += dp;
    k->dp_sum2 += dp * dp;
    fp4rt_ppl_acc_add(&k->base, -(double)b.target_logp);
    return FP4RT_OK;
}

fp4rt_status fp4rt_ppl_run(fp4rt_session *s, const int32_t *tokens, const fp4rt_ppl_windows *w,
                           const fp4rt_ppl_params *params, fp4rt_ppl_result *out) {
    memset(out, 0, sizeof *out);
    int V = fp4rt_model_n_vocab(s->model);
    if (params->base && (long)params->base->h.n_positions != w->n_scored)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "perplexity: the base has %llu positions, the windows score %ld",
                          (unsigned long long)params->base->h.n_positions, w->n_scored);
    /* logits of up to `block` positions per eval call (64 Mi floats, 256 MiB: 270
     * positions of Qwen3.5's 248k vocabulary), so a long window needs no
     * ctx x vocab buffer; the calls continue one session, as prefill chunks do */
    long rows = params->max_rows > 0 ? params->max_rows : (64l << 20) / V;
    int block = (int)FP4RT_MAX(1, FP4RT_MIN((long)w->ctx, rows));
    int ks = params->save ? fp4rt_ppl_writer_k(params->save) : 0,
        kb = params->base ? (int)params->base->h.k : 0;
    float *logits = fp4rt_malloc((size_t)block * V * sizeof(float), "perplexity logits");
    ppl_rows sc = {fp4rt_malloc((size_t)(ks + 1) * sizeof(int32_t), "perplexity ids"),
                   fp4rt_malloc((size_t)(kb + 1) * sizeof(int32_t), "perplexity ids"),
                   fp4rt_malloc((size_t)(ks + 1) * sizeof(float), "perplexity logp"),
                   fp4rt_malloc((size_t)(kb + 1) * sizeof(float), "perplexity logp")};
    if (params->base)
        out->kl.kl =
            fp4rt_malloc((size_t)(w->n_scored + 1) * sizeof(double), "perplexity KL values");
    fp4rt_status st = FP4RT_OK;
    if (!logits || !sc.save_ids || !sc.cur_ids || !sc.save_logp || !sc.cur_logp ||
        (params->base && !out->kl.kl))
        st = FP4RT_OUT_OF_MEMORY;
    long pos = 0;
    for (int win = 0; win < w->n_windows && !st; win++) {
        const int32_t *t = tokens + (size_t)win * w->stride;
        fp4rt_session_reset(s);
        /* positions [0, first - 1) are context only; [first - 1, ctx - 1) predict the scored tokens
         */
        int p = w->first - 1;
        if (p > 0) st = fp4rt_session_eval(s, t, p, NULL, 0);
        while (!st && p < w->ctx - 1) {
            int nb = FP4RT_MIN(block, w->ctx - 1 - p);
            st = fp4rt_session_eval(s, t + p, nb, logits, 1);
            for (int r = 0; r < nb && !st; r++)
                st = score_row(logits + (size_t)r * V, V, t[p + r + 1], pos++, params, &sc, out);
            p += nb;
        }
        out->tokens_evaluated += w->ctx - 1;
        if (!st && params->progress &&
            params->progress(win + 1, w->n_windows, fp4rt_ppl_acc_ppl(&out->nll),
                             params->progress_user))
            st = fp4rt_fail(FP4RT_CANCELLED, "perplexity: cancelled after window %d", win + 1);
    }
    fp4rt_session_reset(s);
    free(logits);
    free(sc.save_ids);
    free(sc.cur_ids);
    free(sc.save_logp);
    free(sc.cur_logp);
    return st;
}
