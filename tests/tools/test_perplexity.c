/* The perplexity / KL math of runtime/tools/perplexity.h on hand-made logits:
 * window planning and its refusals, the perplexity of a uniform distribution
 * (= vocab), the error propagation, top-k order, KL of identical rows (0) and of
 * a two-token case worked by hand, the rest bucket, the saved-file round trip
 * and the refused mismatches / malformed files. */
#include "tests/test_util.h"

#include "runtime/tools/perplexity.h"

static int near(double a, double b, double tol) {
    return fabs(a - b) <= tol;
}

static void test_plan(void) {
    fp4rt_ppl_windows w;
    CHECK(fp4rt_ppl_plan(10, 4, 4, 0, &w) == FP4RT_OK);
    CHECK(w.n_windows == 2 && w.first == 1 &&
          w.n_scored == 6); /* tokens 1-3, 5-7; 8, 9 left over */
    CHECK(fp4rt_ppl_plan(10, 4, 2, 8, &w) == FP4RT_OK);
    CHECK(w.n_windows == 4 && w.first == 2 && w.n_scored == 8); /* tokens 2-9, each once */
    CHECK(fp4rt_ppl_plan(10, 4, 3, 0, &w) == FP4RT_OK);
    CHECK(w.n_windows == 3 && w.first == 1 && w.n_scored == 9);
    CHECK(fp4rt_ppl_plan(4, 4, 1, 0, &w) == FP4RT_OK && w.n_windows == 1 && w.first == 3 &&
          w.n_scored == 1);
    CHECK(fp4rt_ppl_plan(10, 1, 1, 0, &w) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_ppl_plan(10, 0, 1, 0, &w) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_ppl_plan(10, 8, 8, 4, &w) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "context of 4"));
    CHECK(fp4rt_ppl_plan(10, 4, 0, 0, &w) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "--stride 0"));
    CHECK(fp4rt_ppl_plan(10, 4, 5, 0, &w) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "--stride 5"));
    CHECK(fp4rt_ppl_plan(3, 4, 4, 0, &w) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "shorter than one window"));
}

static void test_math(void) {
    enum { V = 8 };
    float uni[V];
    for (int i = 0; i < V; i++)
        uni[i] = 0.37f;
    int32_t ids[V];
    float logp[V];
    fp4rt_ppl_record r = {.ids = ids, .logp = logp};
    fp4rt_ppl_acc acc = {0};
    for (int t = 0; t < 20; t++) {
        CHECK(fp4rt_ppl_record_fill(uni, V, t % V, 3, NULL, &r) == FP4RT_OK);
        fp4rt_ppl_acc_add(&acc, r.nll);
    }
    CHECK_MSG(near(fp4rt_ppl_acc_ppl(&acc), V, 1e-12), "uniform ppl %.15g",
              fp4rt_ppl_acc_ppl(&acc));
    CHECK(fp4rt_ppl_acc_err(&acc) < 1e-6);
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 2); /* ties: lower id first */
    CHECK(near(r.rest_logp, log(5.0 / 8), 1e-6));

    /* error: NLL 1 and 3 -> mean 2, variance 1, SEM 1 */
    fp4rt_ppl_acc a2 = {0};
    fp4rt_ppl_acc_add(&a2, 1);
    fp4rt_ppl_acc_add(&a2, 3);
    CHECK(near(fp4rt_ppl_acc_ppl(&a2), exp(2.0), 1e-12) &&
          near(fp4rt_ppl_acc_err(&a2), exp(2.0), 1e-12));

    /* top-k order, most probable first */
    float x[V] = {0.5f, 3, -1, 2, 3, 7, -4, 2};
    CHECK(fp4rt_ppl_record_fill(x, V, 5, 4, NULL, &r) == FP4RT_OK);
    CHECK(ids[0] == 5 && ids[1] == 1 && ids[2] == 4 && ids[3] == 3);
    CHECK(logp[0] >= logp[1] && logp[1] == logp[2] && logp[2] >= logp[3]);
    CHECK(near(fp4rt_ppl_logsumexp(x, V), -logp[0] + 7, 1e-6));
    double mass = exp(r.rest_logp);
    for (int j = 0; j < 4; j++)
        mass += exp(logp[j]);
    CHECK_MSG(near(mass, 1, 1e-6), "top-4 + rest mass %.9g", mass);

    /* KL of identical rows is exactly 0 */
    int32_t ids2[V];
    float logp2[V];
    fp4rt_ppl_record c = {.ids = ids2, .logp = logp2};
    CHECK(fp4rt_ppl_record_fill(x, V, 5, 4, ids, &c) == FP4RT_OK);
    CHECK(fp4rt_ppl_kl(&r, &c, 4) == 0);

    /* two tokens by hand: base p = (1/2, 1/2), this p = (3/4, 1/4).
     * KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3), with k = 1 (rest = token 1) and
     * k = 2 (full vocabulary, rest mass 0) alike; NLL of token 1 = ln 4. */
    float b2[2] = {0, 0}, t2[2] = {(float)log(3.0), 0};
    for (int k = 1; k <= 2; k++) {
        CHECK(fp4rt_ppl_record_fill(b2, 2, 1, k, NULL, &r) == FP4RT_OK);
        CHECK(ids[0] == 0);
        CHECK(fp4rt_ppl_record_fill(t2, 2, 1, k, ids, &c) == FP4RT_OK);
        CHECK(k == 1 ? near(r.rest_logp, log(0.5), 1e-7) : r.rest_logp == -INFINITY);
        double kl = fp4rt_ppl_kl(&r, &c, k);
        CHECK_MSG(near(kl, 0.5 * log(4.0 / 3), 1e-7), "k %d: KL %.9g", k, kl);
        CHECK(near(c.nll, log(4.0), 1e-7) && near(r.nll, log(2.0), 1e-12));
    }
    /* the reverse direction differs (KL is not symmetric): 3/4 ln(3/2) + 1/4 ln(1/2) */
    CHECK(fp4rt_ppl_record_fill(t2, 2, 1, 1, NULL, &r) == FP4RT_OK);
    CHECK(fp4rt_ppl_record_fill(b2, 2, 1, 1, ids, &c) == FP4RT_OK);
    CHECK(near(fp4rt_ppl_kl(&r, &c, 1), 0.75 * log(1.5) + 0.25 * log(0.5), 1e-7));

    x[2] = NAN;
    CHECK(fp4rt_ppl_record_fill(x, V, 5, 4, NULL, &r) == FP4RT_NUMERIC);
    CHECK(fp4rt_ppl_record_fill(uni, V, V, 0, NULL, &r) == FP4RT_INVALID_ARGUMENT);

    double q[5] = {5, 1, 4, 2, 3};
    CHECK(fp4rt_ppl_quantile(q, 5, 0.5) == 3 && fp4rt_ppl_quantile(q, 5, 1) == 5 &&
          fp4rt_ppl_quantile(q, 5, 0.99) == 5 && fp4rt_ppl_quantile(q, 5, 0) == 1);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void test_file(void) {
    enum { V = 16, K = 3, N = 6 };
    test_tmpdir("ppl");
    int32_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    fp4rt_ppl_windows w;
    CHECK(fp4rt_ppl_plan(10, 4, 2, 0, &w) == FP4RT_OK);
    uint64_t hash = fp4rt_ppl_token_hash(toks, 10);
    fp4rt_ppl_header h = {.vocab = V,
                          .k = K,
                          .ctx = 4,
                          .stride = 2,
                          .n_positions = 8,
                          .n_tokens = 10,
                          .token_hash = hash};
    const char *path = test_tmp_path("base.ppl");
    fp4rt_ppl_writer *wr;
    CHECK(fp4rt_ppl_writer_open(path, &h, &wr) == FP4RT_OK && fp4rt_ppl_writer_k(wr) == K);
    int32_t ids[8][K];
    float logp[8][K], row[V];
    fp4rt_ppl_record recs[8];
    for (int i = 0; i < 8; i++) {
        for (int v = 0; v < V; v++)
            row[v] = (float)sin(i * 7.0 + v * 1.3) * 3;
        recs[i] = (fp4rt_ppl_record){.ids = ids[i], .logp = logp[i]};
        CHECK(fp4rt_ppl_record_fill(row, V, toks[i + 2], K, NULL, &recs[i]) == FP4RT_OK);
        CHECK(fp4rt_ppl_writer_add(wr, &recs[i]) == FP4RT_OK);
    }
    CHECK(test_tmpdir_count("base.ppl") == 1 &&
          test_tmpdir_count(".tmp-") == 1); /* only the temporary */
    CHECK(fp4rt_ppl_writer_close(wr, 1) == FP4RT_OK);
    CHECK(test_tmpdir_count(".tmp-") == 0);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size == 56 + 8 * (12 + 8 * K));

    fp4rt_ppl_file f;
    CHECK(fp4rt_ppl_file_read(path, &f) == FP4RT_OK);
    CHECK(f.h.version == 1 && f.h.vocab == V && f.h.k == K && f.h.ctx == 4 && f.h.stride == 2 &&
          f.h.n_positions == 8 && f.h.n_tokens == 10 && f.h.token_hash == hash);
    int same = 1;
    for (int i = 0; i < 8; i++) {
        fp4rt_ppl_record r = fp4rt_ppl_file_record(&f, i);
        same &= r.target == recs[i].target && r.target_logp == recs[i].target_logp &&
                r.rest_logp == recs[i].rest_logp && !memcmp(r.ids, ids[i], sizeof ids[i]) &&
                !memcmp(r.logp, logp[i], sizeof logp[i]) && fp4rt_ppl_kl(&r, &recs[i], K) == 0;
    }
    CHECK_MSG(same, "records differ after the round trip");
    CHECK(fp4rt_ppl_file_check(&f, path, &w, V, hash) == FP4RT_OK);

    /* mismatches are refused, naming the field */
    CHECK(fp4rt_ppl_file_check(&f, path, &w, V + 1, hash) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "made with vocab 16, this run has vocab 17"));
    toks[5] = 99;
    CHECK(fp4rt_ppl_file_check(&f, path, &w, V, fp4rt_ppl_token_hash(toks, 10)) ==
              FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "other text"));
    fp4rt_ppl_windows w2;
    CHECK(fp4rt_ppl_plan(10, 4, 4, 0, &w2) == FP4RT_OK);
    CHECK(fp4rt_ppl_file_check(&f, path, &w2, V, hash) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "stride 2, this run has stride 4"));
    CHECK(fp4rt_ppl_plan(12, 4, 2, 0, &w2) == FP4RT_OK);
    CHECK(fp4rt_ppl_file_check(&f, path, &w2, V, hash) == FP4RT_INVALID_ARGUMENT &&
          strstr(fp4rt_last_error(), "tokens 10"));
    fp4rt_ppl_file_free(&f);

    /* malformed files */
    char raw[4096];
    FILE *fp = fopen(path, "rb");
    size_t n = fread(raw, 1, sizeof raw, fp);
    fclose(fp);
    const char *bad = test_tmp_path("bad.ppl");
    write_bytes(bad, raw, n - 1);
    CHECK(fp4rt_ppl_file_read(bad, &f) == FP4RT_FORMAT && strstr(fp4rt_last_error(), "bad.ppl"));
    raw[0] = 'X';
    write_bytes(bad, raw, n);
    CHECK(fp4rt_ppl_file_read(bad, &f) == FP4RT_FORMAT && strstr(fp4rt_last_error(), "magic"));
    raw[0] = 'F';
    raw[12 + 56 + 4 * 0] = 100; /* record 0's first id: 100 >= vocab 16 */
    write_bytes(bad, raw, n);
    CHECK(fp4rt_ppl_file_read(bad, &f) == FP4RT_FORMAT &&
          strstr(fp4rt_last_error(), "outside the vocabulary"));
    CHECK(fp4rt_ppl_file_read(test_tmp_path("missing.ppl"), &f) != FP4RT_OK);

    /* a dropped writer leaves nothing; an unwritable path fails at open */
    const char *drop = test_tmp_path("drop.ppl");
    CHECK(fp4rt_ppl_writer_open(drop, &h, &wr) == FP4RT_OK);
    CHECK(fp4rt_ppl_writer_add(wr, &recs[0]) == FP4RT_OK);
    CHECK(fp4rt_ppl_writer_close(wr, 0) == FP4RT_OK);
    CHECK(test_tmpdir_count("drop.ppl") == 0);
    /* committing fewer records than the header says is an error, and leaves nothing */
    CHECK(fp4rt_ppl_writer_open(drop, &h, &wr) == FP4RT_OK);
    CHECK(fp4rt_ppl_writer_close(wr, 1) == FP4RT_INTERNAL && test_tmpdir_count("drop.ppl") == 0);
    CHECK(fp4rt_ppl_writer_open(test_tmp_path("no/such/dir.ppl"), &h, &wr) == FP4RT_IO && !wr &&
          strstr(fp4rt_last_error(), "cannot write"));
    test_tmpdir_remove();
}

int main(void) {
    test_plan();
    test_math();
    test_file();
    return test_summary("test_perplexity");
}
