/* fp4rt perplexity: perplexity of a text file over windows of --ctx tokens
 * (runtime/tools/perplexity.h says which tokens are scored), as llama.cpp's
 * llama-perplexity; --save-logits stores the top-k log-probabilities of every
 * scored token, --kl-base compares with such a file (KL divergence, top-1
 * agreement, delta p). Results on stdout, progress on stderr. */
#include "cli/commands.h"

#include "runtime/base/common.h"
#include "runtime/engine/model.h"
#include "runtime/tools/perplexity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_usage =
    "--model DIR --file TEXT [--ctx N] [--stride S] [--save-logits FILE] [--kl-base FILE]\n"
    "    [--top-k K] " FP4RT_CLI_MODEL_USAGE;

typedef struct bar_state {
    int tty, last_tenth;
} bar_state;

/* "[####....] 12/40 windows, ppl 23.41": redrawn in place on a terminal, else
 * one line per tenth of the windows. */
static int progress(int done, int total, double ppl, void *user) {
    bar_state *b = user;
    int tenth = (int)(10L * done / total);
    if (!b->tty && tenth == b->last_tenth && done != total) return 0;
    b->last_tenth = tenth;
    char bar[41];
    int fill = (int)(40L * done / total);
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = 0;
    fprintf(stderr, "%s[%s] %d/%d windows, ppl %.4f%s", b->tty ? "\r" : "", bar, done, total, ppl,
            b->tty && done != total ? "" : "\n");
    fflush(stderr);
    return 0;
}

static void print_kl(const fp4rt_ppl_result *r, int k) {
    const fp4rt_ppl_kl_stats *s = &r->kl;
    double n = (double)s->n;
    double ppl_q = fp4rt_ppl_acc_ppl(&r->nll), ppl_b = fp4rt_ppl_acc_ppl(&s->base);
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %12.6f ± %10.6f\n", ppl_q, fp4rt_ppl_acc_err(&r->nll));
    printf("Mean PPL(base)                : %12.6f ± %10.6f\n", ppl_b, fp4rt_ppl_acc_err(&s->base));
    printf("Mean ln(PPL(Q)/PPL(base))     : %12.6f\n", log(ppl_q) - log(ppl_b));
    printf("Mean PPL(Q)/PPL(base)         : %12.6f\n", ppl_q / ppl_b);
    double mean = s->kl_sum / n, var = s->kl_sum2 / n - mean * mean;
    double err = s->n > 1 && var > 0 ? sqrt(var / (n - 1)) : 0;
    double *kl = s->kl;
    printf("====== KL divergence statistics (base's top-%d + rest bucket) ======\n", k);
    printf("Mean    KLD: %12.6g ± %10.6g\n", mean, err);
    printf("Maximum KLD: %12.6g\n", fp4rt_ppl_quantile(kl, s->n, 1.0));
    printf("99.0%%   KLD: %12.6g\n", fp4rt_ppl_quantile(kl, s->n, 0.99));
    printf("Median  KLD: %12.6g\n", fp4rt_ppl_quantile(kl, s->n, 0.5));
    printf("Minimum KLD: %12.6g\n", fp4rt_ppl_quantile(kl, s->n, 0.0));
    double dp = s->dp_sum / n, dvar = s->dp_sum2 / n - dp * dp;
    double p_top = (double)s->same_top / n;
    printf("====== Token probability statistics (the base's top token) ======\n");
    printf("Mean    Δp: %9.3f ± %.3f %%\n", 100 * dp,
           s->n > 1 && dvar > 0 ? 100 * sqrt(dvar / (n - 1)) : 0.0);
    printf("RMS     Δp: %9.3f %%\n", 100 * sqrt(s->dp_sum2 / n));
    printf("Same top p: %9.3f ± %.3f %%\n", 100 * p_top,
           s->n > 1 ? 100 * sqrt(p_top * (1 - p_top) / (n - 1)) : 0.0);
}

typedef struct ppl_args {
    fp4rt_cli_model_opts o;
    const char *file, *save, *base;
    long ctx, stride, top_k;
} ppl_args;

/* Parses argv; returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, ppl_args *a) {
    const char *v;
    a->ctx = 512;
    a->stride = -1;
    a->top_k = 32;
    for (int i = 1; i < argc; i++) {
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--ctx")))
            a->ctx = fp4rt_cli_parse_long("--ctx", v);
        else if (fp4rt_cli_model_opt(argc, argv, &i, &a->o))
            continue;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--file")))
            a->file = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--stride")))
            a->stride = fp4rt_cli_parse_long("--stride", v);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--save-logits")))
            a->save = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--kl-base")))
            a->base = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--top-k")))
            a->top_k = fp4rt_cli_parse_long("--top-k", v);
        else
            return fp4rt_cli_usage("perplexity", k_usage);
    }
    if (!a->o.model || !a->file) return fp4rt_cli_usage("perplexity", k_usage);
    if (a->stride < 0) a->stride = a->ctx;
    if (a->ctx < 2 || a->ctx > (1L << 30))
        return fp4rt_cli_error("--ctx %ld: a window needs at least 2 tokens", a->ctx);
    if (a->stride < 1 || a->stride > a->ctx)
        return fp4rt_cli_error("--stride %ld: expected 1 to --ctx (%ld)", a->stride, a->ctx);
    if (a->top_k < 1 || a->top_k > (1L << 24))
        return fp4rt_cli_error("--top-k %ld: expected at least 1", a->top_k);
    a->o.session.n_ctx = (int)a->ctx;
    return -1;
}

int fp4rt_cmd_perplexity(int argc, char **argv) {
    ppl_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    rc = 0;
    char *text;
    size_t len;
    if (fp4rt_read_file(a.file, (size_t)1 << 30, &text, &len)) return fp4rt_cli_fail(1);
    if (len == 0) {
        free(text);
        return fp4rt_cli_error("%s: the text file is empty", a.file);
    }
    fp4rt_model *m;
    fp4rt_session *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    fp4rt_ppl_file base = {0};
    fp4rt_ppl_writer *save = NULL;
    fp4rt_ppl_result res = {0};
    if (fp4rt_cli_open(&a.o, &m, &s)) {
        free(text);
        return 1;
    }
    fp4rt_status st = fp4rt_tokenize(m, text, &ids, &n);
    fp4rt_ppl_windows w;
    if (!st && n > (size_t)1 << 30)
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: %zu tokens is too many", a.file, n);
    if (!st)
        st = fp4rt_ppl_plan((int)n, (int)a.ctx, (int)a.stride, m->weights->cfg.max_positions, &w);
    if (st == FP4RT_INVALID_ARGUMENT && n < (size_t)a.ctx) fp4rt_fail_context(st, "%s", a.file);
    int vocab = fp4rt_model_n_vocab(m);
    uint64_t hash = st ? 0 : fp4rt_ppl_token_hash(ids, (int)n);
    if (!st && a.base && !(st = fp4rt_ppl_file_read(a.base, &base)))
        st = fp4rt_ppl_file_check(&base, a.base, &w, vocab, hash);
    if (!st && a.save) {
        fp4rt_ppl_header h = {.vocab = (uint32_t)vocab,
                              .k = (uint32_t)FP4RT_MIN(a.top_k, (long)vocab),
                              .ctx = (uint32_t)w.ctx,
                              .stride = (uint32_t)w.stride,
                              .n_positions = (uint64_t)w.n_scored,
                              .n_tokens = (uint64_t)n,
                              .token_hash = hash};
        st = fp4rt_ppl_writer_open(a.save, &h, &save);
    }
    if (st) {
        rc = fp4rt_cli_fail(st);
        goto done;
    }
    fprintf(stderr, "fp4rt: %zu tokens, %d windows of %d (stride %d), %ld tokens scored\n", n,
            w.n_windows, w.ctx, w.stride, w.n_scored);
    bar_state bar = {isatty(2), -1};
    fp4rt_ppl_params p = {
        .save = save, .base = a.base ? &base : NULL, .progress = progress, .progress_user = &bar};
    double t0 = fp4rt_cli_now();
    st = fp4rt_ppl_run(s, ids, &w, &p, &res);
    double secs = fp4rt_cli_now() - t0;
    fp4rt_status cst = fp4rt_ppl_writer_close(save, !st);
    save = NULL;
    if (st || cst) {
        if (bar.tty) fputc('\n', stderr);
        rc = fp4rt_cli_fail(st ? st : cst);
        goto done;
    }
    printf("perplexity: %.4f ± %.4f over %ld tokens\n", fp4rt_ppl_acc_ppl(&res.nll),
           fp4rt_ppl_acc_err(&res.nll), res.nll.n);
    printf("speed: %.1f tokens/s (%ld tokens evaluated in %.2f s)\n",
           secs > 0 ? res.tokens_evaluated / secs : 0.0, res.tokens_evaluated, secs);
    if (a.save)
        printf("saved: top-%ld log-probs of %ld positions to %s\n", FP4RT_MIN(a.top_k, (long)vocab),
               w.n_scored, a.save);
    if (a.base) print_kl(&res, (int)base.h.k);
done:
    fp4rt_ppl_writer_close(save, 0);
    fp4rt_ppl_result_free(&res);
    fp4rt_ppl_file_free(&base);
    fp4rt_free(ids);
    free(text);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    return rc;
}
