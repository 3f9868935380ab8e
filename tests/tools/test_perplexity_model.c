/* fp4rt_ppl_run on real models against transformers: the perplexity of a
 * fixture's tokens computed here (double) from its committed reference logits
 * (transformers' teacher-forced float32 logits, tests/fixtures/README.md)
 * equals what the library computes by running the model on the CPU, within
 * 1e-4 relative, for a window over all the tokens (stride = ctx) and with a
 * shorter stride, with the logits fetched all at once and 7 rows per eval call:
 *   - tiny-bf16 on tests/fixtures/tokens.txt (96 tokens; stride 96: targets
 *     1..95, stride 40: targets 56..95), the default (BF16) KV cache;
 *   - the trained model models/qwen35-kjv-10m on its fixture text
 *     (tests/fixtures/qwen35-kjv-10m.tokens.txt, 64 tokens; stride 64: targets
 *     1..63, stride 40: targets 24..63), an F32 KV cache as transformers keeps.
 * Also, on tiny-bf16: saving and comparing against the saved file in one run
 * gives KL exactly 0, and windows of another size are refused by the file
 * check. */
#include "tests/test_util.h"

#include "runtime/tools/perplexity.h"

/* exp(mean NLL) of targets [first, n) predicted by ref rows [first - 1, n - 1). */
static double ref_ppl(const float *ref, int V, const int32_t *ids, int first, int n, double *err) {
    fp4rt_ppl_acc a = {0};
    for (int t = first; t < n; t++) {
        const float *row = ref + (size_t)(t - 1) * V;
        double m = row[0], s = 0;
        for (int v = 1; v < V; v++)
            m = row[v] > m ? row[v] : m;
        for (int v = 0; v < V; v++)
            s += exp((double)row[v] - m);
        fp4rt_ppl_acc_add(&a, m + log(s) - (double)row[ids[t]]);
    }
    *err = fp4rt_ppl_acc_err(&a);
    return fp4rt_ppl_acc_ppl(&a);
}

/* One window over all n tokens with stride n, then with stride 40 (scoring from
 * firsts[0] / firsts[1]): fp4rt_ppl_run's perplexity and error against ref's. */
static void check_vs_reference(fp4rt_session *s, const char *what, const float *ref, int V,
                               const int32_t *ids, int n, const int firsts[2]) {
    const int strides[2] = {n, 40};
    for (int i = 0; i < 2 && s; i++) {
        fp4rt_ppl_windows w;
        CHECK(fp4rt_ppl_plan(n, n, strides[i], 4096, &w) == FP4RT_OK);
        CHECK(w.n_windows == 1 && w.first == firsts[i]);
        double err_ref, ppl_ref = ref_ppl(ref, V, ids, w.first, n, &err_ref);
        fp4rt_ppl_params p = {0};
        fp4rt_ppl_result r;
        fp4rt_status st = fp4rt_ppl_run(s, ids, &w, &p, &r);
        CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
        if (st) continue;
        double ppl = fp4rt_ppl_acc_ppl(&r.nll), err = fp4rt_ppl_acc_err(&r.nll);
        CHECK_EQ_INT(r.nll.n, n - w.first);
        CHECK_MSG(fabs(ppl - ppl_ref) <= 1e-4 * ppl_ref,
                  "%s, stride %d: ppl %.8f, transformers %.8f", what, strides[i], ppl, ppl_ref);
        CHECK_MSG(fabs(err - err_ref) <= 1e-3 * err_ref,
                  "%s, stride %d: error %.8f, transformers %.8f", what, strides[i], err, err_ref);
        printf("%s, stride %d: ppl %.6f (transformers %.6f, relative difference %.2g) ± %.6f\n",
               what, strides[i], ppl, ppl_ref, fabs(ppl - ppl_ref) / ppl_ref, err);
        fp4rt_ppl_result_free(&r);
        /* the same with the logits fetched 7 rows per eval call */
        p.max_rows = 7;
        st = fp4rt_ppl_run(s, ids, &w, &p, &r);
        CHECK(st == FP4RT_OK && r.nll.n == n - w.first);
        if (st) continue;
        double ppl7 = fp4rt_ppl_acc_ppl(&r.nll);
        CHECK_MSG(fabs(ppl7 - ppl_ref) <= 1e-4 * ppl_ref,
                  "%s, stride %d, 7 rows per call: ppl %.8f, transformers %.8f", what, strides[i],
                  ppl7, ppl_ref);
        fp4rt_ppl_result_free(&r);
    }
}

/* The trained model on its fixture text, an F32 KV cache. */
static void test_trained(void) {
    int n;
    int32_t *ids = test_read_tokens("tests/fixtures/qwen35-kjv-10m.tokens.txt", &n);
    const int V = 8192;
    float *ref =
        ids ? test_read_floats("tests/fixtures/qwen35-kjv-10m.logits.bin", (size_t)n * V) : NULL;
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load("models/qwen35-kjv-10m", &mp);
    CHECK_MSG(ids && n == 64 && ref && m, "the qwen35-kjv-10m fixture or model: %s",
              fp4rt_last_error());
    if (ids && n == 64 && ref && m) {
        CHECK(fp4rt_model_n_vocab(m) == V);
        fp4rt_session_params sp = fp4rt_session_default_params();
        sp.n_ctx = n;
        sp.kv_type = FP4RT_KV_F32;
        fp4rt_session *s = fp4rt_session_create(m, &sp);
        CHECK(s != NULL);
        check_vs_reference(s, "qwen35-kjv-10m", ref, V, ids, n, (const int[2]){1, 24});
        fp4rt_session_free(s);
    }
    fp4rt_model_free(m);
    free(ref);
    free(ids);
}

int main(void) {
    int n;
    int32_t *ids = test_read_tokens("tests/fixtures/tokens.txt", &n);
    const int V = 512;
    float *ref = test_read_floats("tests/fixtures/tiny-bf16.logits.bin", (size_t)96 * V);
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load("tests/fixtures/tiny-bf16", &mp);
    CHECK(ids && n == 96 && ref && m);
    if (!ids || n != 96 || !ref || !m) return test_summary("test_perplexity_model");
    CHECK(fp4rt_model_n_vocab(m) == V);
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = n;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK(s != NULL);

    check_vs_reference(s, "tiny-bf16", ref, V, ids, n, (const int[2]){1, 56});

    /* save with windows of 48, then compare a second run with the file: KL 0 */
    test_tmpdir("pplmodel");
    const char *path = test_tmp_path("base.ppl");
    fp4rt_ppl_windows w;
    CHECK(fp4rt_ppl_plan(n, 48, 24, 4096, &w) == FP4RT_OK && w.n_windows == 3 && w.n_scored == 72);
    uint64_t hash = fp4rt_ppl_token_hash(ids, n);
    fp4rt_ppl_header h = {.vocab = V,
                          .k = 8,
                          .ctx = 48,
                          .stride = 24,
                          .n_positions = 72,
                          .n_tokens = 96,
                          .token_hash = hash};
    fp4rt_ppl_writer *wr = NULL;
    CHECK(fp4rt_ppl_writer_open(path, &h, &wr) == FP4RT_OK);
    fp4rt_ppl_params p = {.save = wr};
    fp4rt_ppl_result r1, r2;
    CHECK(s && fp4rt_ppl_run(s, ids, &w, &p, &r1) == FP4RT_OK);
    CHECK(fp4rt_ppl_writer_close(wr, 1) == FP4RT_OK);
    fp4rt_ppl_file f;
    CHECK(fp4rt_ppl_file_read(path, &f) == FP4RT_OK);
    CHECK(fp4rt_ppl_file_check(&f, path, &w, V, hash) == FP4RT_OK);
    p = (fp4rt_ppl_params){.base = &f};
    CHECK(fp4rt_ppl_run(s, ids, &w, &p, &r2) == FP4RT_OK);
    CHECK(r2.kl.n == 72 && r2.kl.kl_sum == 0 && r2.kl.same_top == 72 && r2.kl.dp_sum2 == 0);
    CHECK(r1.nll.sum == r2.nll.sum);
    CHECK(fabs(fp4rt_ppl_acc_ppl(&r2.kl.base) - fp4rt_ppl_acc_ppl(&r2.nll)) <
          1e-5 * fp4rt_ppl_acc_ppl(&r2.nll));
    fp4rt_ppl_windows w2;
    CHECK(fp4rt_ppl_plan(n, 48, 48, 4096, &w2) == FP4RT_OK);
    CHECK(fp4rt_ppl_file_check(&f, path, &w2, V, hash) == FP4RT_INVALID_ARGUMENT);
    fp4rt_ppl_result_free(&r1);
    fp4rt_ppl_result_free(&r2);
    fp4rt_ppl_file_free(&f);
    test_tmpdir_remove();

    fp4rt_session_free(s);
    fp4rt_model_free(m);
    free(ref);
    free(ids);
    test_trained();
    return test_summary("test_perplexity_model");
}
