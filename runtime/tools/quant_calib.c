/* Calibration (per-linear input statistics from the BF16 model run over a text)
 * and the teacher-forced KL / perplexity evaluation, both through the public API
 * on the CPU backend (quant_internal.h, quantize.h). */
#include "runtime/tools/quant_internal.h"

#include "runtime/base/common.h"
#include "runtime/engine/model.h"
#include "runtime/base/numfmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 512 /* tokens per session window (calibration and evaluation) */
#define CHUNK 64   /* tokens per fp4rt_session_eval call (logits [CHUNK, vocab]) */
#define TEXT_MAX (256u << 20)

/* Loads dir on the CPU backend; NULL with the error set. */
static fp4rt_model *load_cpu(const char *dir, int n_threads) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = n_threads;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    if (!m) fp4rt_fail_context(FP4RT_IO, "loading %s", dir);
    return m;
}

/* Reads and tokenizes a text file with m's tokenizer, keeping at most max ids. */
static fp4rt_status read_tokens(const fp4rt_model *m, const char *path, int max, int32_t **ids,
                                size_t *n) {
    char *text = NULL;
    size_t len = 0;
    fp4rt_status st = fp4rt_read_file(path, TEXT_MAX, &text, &len);
    if (st == FP4RT_OK) st = fp4rt_tokenize(m, text, ids, n);
    free(text);
    if (st != FP4RT_OK) return fp4rt_fail_context(st, "%s", path);
    if (*n < 2) {
        fp4rt_free(*ids);
        *ids = NULL;
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: %zu tokens; at least 2 are needed", path, *n);
    }
    if (*n > (size_t)max) *n = (size_t)max;
    return FP4RT_OK;
}

/* Runs ids[0..n) through a session in windows of WINDOW tokens (reset between
 * windows), CHUNK tokens per call with every row's logits; calls fn after each
 * chunk with the logits and the chunk's place. */
typedef fp4rt_status (*chunk_fn)(void *user, const float *logits, size_t first, int rows,
                                 size_t window_start, size_t window_end);

static fp4rt_status run_windows(fp4rt_model *m, const int32_t *ids, size_t n, chunk_fn fn,
                                void *user) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = WINDOW;
    sp.prefill_chunk = CHUNK;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    int vocab = fp4rt_model_n_vocab(m);
    float *logits = fp4rt_malloc((size_t)CHUNK * vocab * sizeof *logits, "calibration logits");
    fp4rt_status st = s && logits ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    int window = s ? FP4RT_MIN(WINDOW, s->sb.n_ctx) : WINDOW;
    for (size_t w0 = 0; w0 < n && st == FP4RT_OK; w0 += (size_t)window) {
        size_t w1 = FP4RT_MIN(n, w0 + (size_t)window);
        fp4rt_session_reset(s);
        for (size_t i = w0; i < w1 && st == FP4RT_OK; i += CHUNK) {
            int rows = (int)FP4RT_MIN((size_t)CHUNK, w1 - i);
            st = fp4rt_session_eval(s, ids + i, rows, logits, 1);
            if (st == FP4RT_OK && fn) st = fn(user, logits, i, rows, w0, w1);
        }
    }
    free(logits);
    fp4rt_session_free(s);
    return st;
}

/* ---- calibration --------------------------------------------------------- */

typedef struct calib {
    qctx *q;
    qjob **by_name; /* quantized jobs sorted by module name */
    size_t n;
    int oom;
} calib;

static int cmp_job(const void *a, const void *b) {
    return strcmp((*(qjob *const *)a)->spec->module, (*(qjob *const *)b)->spec->module);
}

static int cmp_key(const void *key, const void *b) {
    return strcmp((const char *)key, (*(qjob *const *)b)->spec->module);
}

/* The observer: amax and per-channel sum of squares of every row. Runs on the
 * thread that runs the step, one linear at a time. */
static void observe(void *user, const fp4rt_linear *lin, const float *x, size_t stride, int rows) {
    calib *c = user;
    qjob **hit = bsearch(lin->module, c->by_name, c->n, sizeof *c->by_name, cmp_key);
    if (!hit) return; /* an unquantized linear (or the tied lm_head) */
    qjob *j = *hit;
    size_t K = (size_t)lin->n_in;
    if (!j->sumsq) {
        j->sumsq = calloc(K, sizeof *j->sumsq);
        if (!j->sumsq) {
            c->oom = 1;
            return;
        }
    }
    float amax = j->act_amax;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * stride;
        for (size_t k = 0; k < K; k++) {
            float a = fabsf(xr[k]);
            amax = a > amax ? a : amax;
            j->sumsq[k] += (double)xr[k] * xr[k];
        }
    }
    j->act_amax = amax;
    j->rows_seen += rows;
}

/* Importance of a linear's input channels: mean x^2, floored at 1e-3 of the
 * mean over channels so that a channel never seen active still counts a little
 * (a zero weight would let the search ignore it entirely). */
static fp4rt_status make_importance(qjob *j) {
    size_t K = (size_t)j->spec->shape[1];
    j->importance = fp4rt_malloc(K * sizeof *j->importance, "calibration importance");
    if (!j->importance) return FP4RT_OUT_OF_MEMORY;
    double mean = 0;
    for (size_t k = 0; k < K; k++) mean += j->sumsq[k] / (double)j->rows_seen;
    mean /= (double)K;
    for (size_t k = 0; k < K; k++) {
        double v = j->sumsq[k] / (double)j->rows_seen;
        j->importance[k] = (float)(v > 1e-3 * mean ? v : 1e-3 * mean);
    }
    if (!(mean > 0)) { /* an all-zero input: no information, unweighted */
        free(j->importance);
        j->importance = NULL;
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_quant_calibrate(qctx *q) {
    calib c = {.q = q};
    int32_t *ids = NULL;
    size_t n = 0;
    fp4rt_model *m = load_cpu(q->in_dir, q->o.n_threads);
    if (!m) return FP4RT_IO;
    fp4rt_status st = read_tokens(m, q->o.calib_path, q->o.calib_tokens > 0 ? q->o.calib_tokens : 4096,
                                  &ids, &n);
    c.by_name = fp4rt_malloc(q->n_jobs * sizeof *c.by_name, "calibration index");
    if (st == FP4RT_OK && !c.by_name) st = FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; st == FP4RT_OK && i < q->n_jobs; i++)
        if (q->jobs[i].algo != FP4RT_Q_NONE) c.by_name[c.n++] = &q->jobs[i];
    if (st == FP4RT_OK) {
        qsort(c.by_name, c.n, sizeof *c.by_name, cmp_job);
        st = fp4rt_model_set_observer(m, observe, &c);
    }
    if (st == FP4RT_OK) st = run_windows(m, ids, n, NULL, NULL);
    fp4rt_model_set_observer(m, NULL, NULL);
    if (st == FP4RT_OK && c.oom) st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "calibration statistics");
    if (st == FP4RT_OK) {
        /* Input scales share the fused group's amax, as the weights' tensor scales. */
        float *amax = fp4rt_calloc(q->n_jobs, sizeof *amax, "calibration amax");
        if (!amax) st = FP4RT_OUT_OF_MEMORY;
        for (size_t i = 0; amax && i < q->n_jobs; i++) amax[i] = q->jobs[i].act_amax;
        if (amax) fp4rt_quant_group_max(q, amax);
        for (size_t i = 0; amax && i < q->n_jobs && st == FP4RT_OK; i++) {
            qjob *j = &q->jobs[i];
            if (j->algo == FP4RT_Q_NONE || j->rows_seen == 0) continue;
            j->act_amax = amax[i];
            if (amax[i] > 0)
                j->input_scale = j->algo == FP4RT_Q_FP8
                                     ? amax[i] / FP4RT_E4M3_MAX
                                     : amax[i] / (FP4RT_E2M1_MAX * FP4RT_E4M3_MAX);
            if (!q->o.no_importance && fp4rt_q_is_nvfp4(j->algo)) st = make_importance(j);
        }
        free(amax);
        q->calib_tokens = (int)n;
    }
    free(c.by_name);
    fp4rt_free(ids);
    fp4rt_model_free(m);
    return st;
}

/* ---- evaluation ---------------------------------------------------------- */

typedef struct evalrun {
    fp4rt_model *q;        /* quantized model, run in lockstep with the reference */
    fp4rt_session *qs;
    float *qlogits;        /* [CHUNK, vocab] */
    const int32_t *ids;
    int vocab;
    double kl, nll_ref, nll_q;
    long n;
} evalrun;

/* log-sum-exp of a row of logits (double). */
static double lse(const float *l, int n) {
    float m = l[0];
    for (int i = 1; i < n; i++) m = l[i] > m ? l[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)l[i] - m);
    return m + log(s);
}

static fp4rt_status eval_chunk(void *user, const float *ref, size_t first, int rows,
                               size_t window_start, size_t window_end) {
    evalrun *e = user;
    if (first == window_start) fp4rt_session_reset(e->qs);
    fp4rt_status st = fp4rt_session_eval(e->qs, e->ids + first, rows, e->qlogits, 1);
    for (int r = 0; st == FP4RT_OK && r < rows; r++) {
        size_t pos = first + (size_t)r;
        if (pos + 1 >= window_end) break; /* no next token inside this window */
        const float *lp = ref + (size_t)r * e->vocab, *lq = e->qlogits + (size_t)r * e->vocab;
        double zp = lse(lp, e->vocab), zq = lse(lq, e->vocab), kl = 0;
        for (int i = 0; i < e->vocab; i++) {
            double a = lp[i] - zp, b = lq[i] - zq;
            kl += exp(a) * (a - b);
        }
        int32_t next = e->ids[pos + 1];
        e->kl += kl > 0 ? kl : 0; /* rounding can give -1e-17 for identical rows */
        e->nll_ref -= lp[next] - zp;
        e->nll_q -= lq[next] - zq;
        e->n++;
    }
    return st;
}

fp4rt_status fp4rt_quant_eval(const char *ref_dir, const char *q_dir, const char *text_path,
                              int max_tokens, int n_threads, double *kl, double *ppl_ref,
                              double *ppl_q, int *n_predicted) {
    evalrun e = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    fp4rt_status st = FP4RT_OK;
    fp4rt_model *ref = load_cpu(ref_dir, n_threads);
    e.q = ref ? load_cpu(q_dir, n_threads) : NULL;
    if (!ref || !e.q) st = FP4RT_IO;
    if (st == FP4RT_OK) st = read_tokens(ref, text_path, max_tokens > 0 ? max_tokens : 1024, &ids, &n);
    if (st == FP4RT_OK && fp4rt_model_n_vocab(ref) != fp4rt_model_n_vocab(e.q))
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "eval: %s and %s have different vocabularies",
                        ref_dir, q_dir);
    if (st == FP4RT_OK) {
        fp4rt_session_params sp = fp4rt_session_default_params();
        sp.n_ctx = WINDOW;
        sp.prefill_chunk = CHUNK;
        e.vocab = fp4rt_model_n_vocab(ref);
        e.ids = ids;
        e.qs = fp4rt_session_create(e.q, &sp);
        e.qlogits = fp4rt_malloc((size_t)CHUNK * e.vocab * sizeof *e.qlogits, "eval logits");
        if (!e.qs || !e.qlogits) st = FP4RT_OUT_OF_MEMORY;
        /* both sessions must cut windows at the same places */
        if (st == FP4RT_OK && e.qs->sb.n_ctx < WINDOW)
            st = fp4rt_fail(FP4RT_UNSUPPORTED, "eval: %s holds only %d tokens", q_dir, e.qs->sb.n_ctx);
    }
    if (st == FP4RT_OK) st = run_windows(ref, ids, n, eval_chunk, &e);
    if (st == FP4RT_OK) {
        *kl = e.n ? e.kl / (double)e.n : 0;
        *ppl_ref = e.n ? exp(e.nll_ref / (double)e.n) : 0;
        *ppl_q = e.n ? exp(e.nll_q / (double)e.n) : 0;
        *n_predicted = (int)e.n;
    }
    free(e.qlogits);
    fp4rt_session_free(e.qs);
    fp4rt_free(ids);
    fp4rt_model_free(e.q);
    fp4rt_model_free(ref);
    return st;
}
