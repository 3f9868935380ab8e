/* The MTP head (issue 16 item 1) on the trained reference model
 * models/qwen35-kjv-10m:
 *  (a) teacher-forced MTP logits vs PyTorch (tests/fixtures/kjv-mtp.logits.bin,
 *      tools/mtp_reference_logits.py) on the CPU and on Vulkan, NMSE <= 1e-6 as
 *      the unquantized main fixtures, one token at a time and after a chunked
 *      prefill (the head's cache filled by the steps' catch-up); and 3 chained
 *      drafts (tests/fixtures/kjv-mtp.chain.logits.bin);
 *  (b) greedy drafts (K = 3) vs the main model's greedy tokens on held-out text
 *      (tests/fixtures/kjv-heldout.tokens.txt, Numbers 33), teacher-forced: the
 *      acceptance per draft position, printed (bench/RESULTS.md) and bounded;
 *  (c) CPU == Vulkan: the MTP logits bit-identical;
 *  (d) an mtp.* tensor of a wrong shape: a one-line error naming it. */
#include "fp4rt.h"
#include "loader/safetensors.h"
#include "loader/st_writer.h"
#include "runtime/engine/mtp.h"
#include "runtime/model/plan.h"
#include "tests/test_devices.h"
#include "tests/test_util.h"
#include "tests/test_checkpoint_util.h"
#include "tests/test_session_util.h"

#define MODEL "models/qwen35-kjv-10m"
#define MAX_K 3

static fp4rt_session *session(fp4rt_model *m, int chunk) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 512;
    sp.prefill_chunk = chunk;
    sp.mtp = 1;
    sp.exact = 1; /* vs PyTorch, and CPU == Vulkan bit for bit */
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    return s;
}

/* MTP logits of rows first .. n - 2 (row i: pair (h_i, x_{i+1})) into out + i * V:
 * x_0 .. x_first evaluated as one prefill (chunks of `chunk`), then one token at a
 * time, drafting one token after each. */
static int mtp_rows(fp4rt_model *m, const int32_t *x, int n, int first, int chunk, float *out) {
    int V = fp4rt_model_n_vocab(m);
    fp4rt_session *s = session(m, chunk);
    if (!s) return 0;
    int ok = fp4rt_session_eval(s, x, first + 1, NULL, 0) == FP4RT_OK;
    for (int i = first; ok && i < n - 1; i++) {
        int32_t d;
        ok = fp4rt_session_mtp_draft(s, x[i + 1], 1, NULL, &d, out + (size_t)i * V) == FP4RT_OK;
        if (ok && i + 1 < n - 1) ok = fp4rt_session_eval(s, &x[i + 1], 1, NULL, 0) == FP4RT_OK;
    }
    CHECK_MSG(ok, "MTP rows on %s: %s", fp4rt_model_device(m), fp4rt_last_error());
    fp4rt_session_free(s);
    return ok;
}

/* K = 3 chained greedy drafts after x_0 .. x_{n-2} with next token x_{n-1}:
 * drafts and their logits (out [3, V]). */
static int chain(fp4rt_model *m, const int32_t *x, int n, int32_t *d, float *out) {
    fp4rt_session *s = session(m, 16);
    int ok = s && fp4rt_session_eval(s, x, n - 1, NULL, 0) == FP4RT_OK &&
             fp4rt_session_mtp_draft(s, x[n - 1], 3, NULL, d, out) == FP4RT_OK;
    CHECK_MSG(ok, "chained drafts on %s: %s", fp4rt_model_device(m), fp4rt_last_error());
    fp4rt_session_free(s);
    return ok;
}

/* The chained drafts vs PyTorch (tests/fixtures/kjv-mtp.chain.logits.bin): the
 * head fed its own mtp.norm output and previous draft, as vLLM chains it. */
static void test_chain(const char *vk_dev) {
    int n = 0;
    int32_t *x = test_read_tokens("tests/fixtures/kjv-mtp.tokens.txt", &n);
    fp4rt_model *m = x ? test_load_model(MODEL, "cpu") : NULL;
    if (!m) {
        free(x);
        return;
    }
    int V = fp4rt_model_n_vocab(m);
    float *ref = test_read_floats("tests/fixtures/kjv-mtp.chain.logits.bin", 3 * (size_t)V);
    CHECK_MSG(ref != NULL, "tests/fixtures/kjv-mtp.chain.logits.bin missing or not 3 x %d floats", V);
    float *got = calloc(3 * (size_t)V, sizeof(float)), *vk = calloc(3 * (size_t)V, sizeof(float));
    int32_t d[3], dv[3];
    if (ref && chain(m, x, n, d, got)) {
        for (int j = 0; j < 3; j++) {
            double e = test_nmse(got + (size_t)j * V, ref + (size_t)j * V, V);
            int best = 0;
            for (int i = 1; i < V; i++)
                if (ref[(size_t)j * V + i] > ref[(size_t)j * V + best]) best = i;
            printf("(a) chained draft %d: NMSE %.3g vs PyTorch, token %d (PyTorch %d)\n", j + 1, e, d[j], best);
            CHECK_MSG(e <= 1e-6, "chained draft %d NMSE %.3g", j + 1, e);
            CHECK_EQ_INT(d[j], best);
        }
        fp4rt_model *g = vk_dev ? test_load_model(MODEL, vk_dev) : NULL;
        if (g && chain(g, x, n, dv, vk))
            CHECK_MSG(!memcmp(vk, got, 3 * (size_t)V * sizeof(float)) && !memcmp(d, dv, sizeof d),
                      "chained drafts on %s differ from the CPU's", vk_dev);
        fp4rt_model_free(g);
    }
    free(ref);
    free(got);
    free(vk);
    free(x);
    fp4rt_model_free(m);
}

static void test_fixture(const char *vk_dev) {
    int n = 0;
    int32_t *x = test_read_tokens("tests/fixtures/kjv-mtp.tokens.txt", &n);
    CHECK_MSG(x && n == 40, "tests/fixtures/kjv-mtp.tokens.txt missing or not 40 tokens");
    if (!x) return;
    fp4rt_model *m = test_load_model(MODEL, "cpu");
    if (!m) return;
    int V = fp4rt_model_n_vocab(m);
    size_t rows = (size_t)(n - 1);
    float *ref = test_read_floats("tests/fixtures/kjv-mtp.logits.bin", rows * V);
    CHECK_MSG(ref != NULL, "tests/fixtures/kjv-mtp.logits.bin missing or not %zu x %d floats", rows, V);
    float *cpu = calloc(rows * V, sizeof(float)), *pre = calloc(rows * V, sizeof(float));
    if (ref && mtp_rows(m, x, n, 0, 8, cpu) && mtp_rows(m, x, n, 20, 8, pre)) {
        double e = test_nmse(cpu, ref, rows * V);
        double ep = test_nmse(pre + 20 * V, ref + 20 * V, (rows - 20) * V);
        int bad = test_argmax_disagreements(cpu, ref, (int)rows, V, 1e-3f);
        printf("(a) CPU MTP logits vs PyTorch: NMSE %.3g decode, %.3g after a chunked prefill; argmax "
               "disagreements %d of %zu\n", e, ep, bad, rows);
        CHECK_MSG(e <= 1e-6, "CPU MTP logits NMSE %.3g > 1e-6", e);
        CHECK_MSG(ep <= 1e-6, "CPU MTP logits after prefill NMSE %.3g > 1e-6", ep);
        CHECK_MSG(bad == 0, "%d argmax disagreements", bad);
    }
    fp4rt_model_free(m);
    if (vk_dev && ref) {
        fp4rt_model *g = test_load_model(MODEL, vk_dev);
        float *vk = calloc(rows * V, sizeof(float)), *vkp = calloc(rows * V, sizeof(float));
        if (g && mtp_rows(g, x, n, 0, 8, vk) && mtp_rows(g, x, n, 20, 8, vkp)) {
            double e = test_nmse(vk, ref, rows * V);
            printf("(a) %s MTP logits vs PyTorch: NMSE %.3g\n", vk_dev, e);
            CHECK_MSG(e <= 1e-6, "Vulkan MTP logits NMSE %.3g > 1e-6", e);
            int same = !memcmp(vk, cpu, rows * V * sizeof(float)) &&
                       !memcmp(vkp + 20 * V, pre + 20 * V, (rows - 20) * V * sizeof(float));
            printf("(c) %s == CPU MTP logits bit for bit: %s\n", vk_dev, same ? "yes" : "NO");
            CHECK_MSG(same, "Vulkan MTP logits differ from the CPU's");
        }
        free(vk);
        free(vkp);
        fp4rt_model_free(g);
    }
    free(x);
    free(ref);
    free(cpu);
    free(pre);
}

/* Greedy drafts from every position of the held-out text vs the main model's
 * greedy picks at the positions they predict (teacher-forced on the text). */
static void test_acceptance(void) {
    int n = 0;
    int32_t *x = test_read_tokens("tests/fixtures/kjv-heldout.tokens.txt", &n);
    CHECK_MSG(x && n >= 200, "tests/fixtures/kjv-heldout.tokens.txt missing or short");
    if (!x) return;
    if (test_short() && n > 100) n = 100; /* the sanitizer pass: the first 100 tokens */
    fp4rt_model *m = test_load_model(MODEL, "cpu");
    if (!m) return;
    int V = fp4rt_model_n_vocab(m);
    fp4rt_session *s = session(m, 64);
    float *lg = malloc((size_t)V * sizeof(float));
    int32_t *g = malloc((size_t)n * sizeof(int32_t)), *d = malloc((size_t)n * MAX_K * sizeof(int32_t));
    int ok = s && lg && g && d;
    for (int p = 0; ok && p < n; p++) { /* g[p]: main greedy after x_0 .. x_p */
        ok = fp4rt_session_eval(s, &x[p], 1, lg, 0) == FP4RT_OK;
        int best = 0;
        for (int i = 1; ok && i < V; i++)
            if (lg[i] > lg[best]) best = i;
        g[p] = best;
        if (ok && p + 1 < n) ok = fp4rt_session_mtp_draft(s, x[p + 1], MAX_K, NULL, &d[(size_t)p * MAX_K], NULL) == 0;
    }
    CHECK_MSG(ok, "acceptance run: %s", fp4rt_last_error());
    if (ok) {
        /* draft j from position p predicts x_{p+2+j}: the main pick g[p+1+j] */
        int tries = 0, prefix[MAX_K] = {0}, pos_hit[MAX_K] = {0};
        for (int p = 0; p + 1 + MAX_K < n; p++, tries++) {
            int run = 1;
            for (int j = 0; j < MAX_K; j++) {
                int hit = d[(size_t)p * MAX_K + j] == g[p + 1 + j];
                pos_hit[j] += hit;
                run &= hit;
                prefix[j] += run;
            }
        }
        printf("(b) held-out %d positions, greedy drafts vs main greedy (teacher-forced):\n", tries);
        double mean = 0;
        for (int j = 0; j < MAX_K; j++) {
            mean += (double)prefix[j] / tries;
            printf("    K=%d: draft %d matches %.3f, drafts 1..%d all accepted %.3f, mean accepted drafts %.3f\n",
                   j + 1, j + 1, (double)pos_hit[j] / tries, j + 1, (double)prefix[j] / tries, mean);
        }
        CHECK_MSG((double)prefix[0] / tries > 0.3, "first-draft acceptance %.3f <= 0.3", (double)prefix[0] / tries);
        CHECK_MSG(prefix[MAX_K - 1] <= prefix[0], "prefix acceptance not monotone");
    }
    free(lg);
    free(g);
    free(d);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    free(x);
}

/* A copy of the model with mtp.fc.weight of shape [H, H] instead of [H, 2H]. */
static void test_bad_shape(void) {
    const char *dir = test_tmp_path("bad-mtp");
    test_copy_with_halved_tensor(MODEL, dir, "mtp.fc.weight");
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    const char *err = fp4rt_last_error();
    printf("(d) mtp.fc.weight [256, 256]: %s\n", err);
    CHECK_MSG(m == NULL, "a misshapen mtp.fc.weight loaded");
    CHECK_MSG(strstr(err, "mtp.fc.weight") && !strchr(err, '\n'), "error does not name the tensor on one line: %s",
              err);
    fp4rt_model_free(m);
}

/* (e) The planner counts the head apart from the text model; a session asking
 * for MTP on a model without a head fails with one line. */
static void test_plan_and_absent(void) {
    fp4rt_weights *w = NULL;
    CHECK(fp4rt_weights_load(MODEL, &w) == FP4RT_OK);
    if (w) {
        fp4rt_memory_plan p;
        fp4rt_format_totals tot;
        fp4rt_plan_checkpoint(w, &p, &tot);
        /* fc 256x512 + q 512x256 + k, v 128x256 + o 256x256 + gate, up, down 768x256 (BF16)
         * + 5 norms of 256 + q/k norms of 64 */
        uint64_t expect = 2ull * (256 * 512 + 512 * 256 + 2 * 128 * 256 + 256 * 256 + 3 * 768 * 256 + 5 * 256 + 2 * 64);
        CHECK_EQ_INT(w->n_mtp_layers, 1);
        CHECK_EQ_INT(p.mtp_tensors, 15);
        CHECK_EQ_INT(p.mtp_weights, expect);
        CHECK_EQ_INT(w->n_tensors_used - w->n_tensors_mtp, 108);
        fp4rt_program *prog = NULL;
        CHECK(fp4rt_program_build(w, &prog) == FP4RT_OK);
        if (prog) {
            fp4rt_plan_session(prog, 1000, 16, FP4RT_KV_BF16, &p);
            CHECK_EQ_INT(p.mtp_kv, 1ull * 2 * 1000 * 2 * 64 * 2); /* 1 layer, K+V, 2 KV heads x 64, BF16 */
        }
        fp4rt_program_free(prog);
        fp4rt_weights_free(w);
    }
    fp4rt_config c;
    fp4rt_memory_plan p;
    fp4rt_format_totals tot;
    CHECK(fp4rt_config_preset("qwen3.6-27b", 0, &c) == FP4RT_OK);
    CHECK(fp4rt_plan_config(&c, "nvidia-mixed", 4096, 512, FP4RT_KV_BF16, &p, &tot) == FP4RT_OK);
    printf("(e) qwen3.6-27b MTP head %.3f GB BF16, %llu tensors; its KV cache %.1f MiB at 4096 tokens\n",
           p.mtp_weights / 1e9, (unsigned long long)p.mtp_tensors, p.mtp_kv / 1048576.0);
    CHECK(p.mtp_tensors == 15 && p.mtp_weights > 840000000ull && p.mtp_weights < 860000000ull);

    fp4rt_model *m = test_load_model("tests/fixtures/tiny-bf16", "cpu");
    if (!m) return;
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.mtp = 1;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    const char *err = fp4rt_last_error();
    CHECK_MSG(!s && strstr(err, "no MTP head") && !strchr(err, '\n'), "session with mtp on tiny-bf16: %s", err);
    fp4rt_session_free(s);
    sp.mtp = 0;
    s = fp4rt_session_create(m, &sp);
    int32_t d;
    CHECK(s && fp4rt_session_mtp_draft(s, 1, 1, NULL, &d, NULL) == FP4RT_INVALID_ARGUMENT);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char dev[64];
    fp4rt_device_ref ref;
    fp4rt_device_desc desc;
    test_tmpdir("mtp");
    int have_vk = test_pick_device("vulkan", NULL, dev, sizeof dev, &ref, &desc);
    test_fixture(have_vk ? dev : NULL);
    test_chain(have_vk ? dev : NULL);
    test_acceptance();
    test_bad_shape();
    test_plan_and_absent();
    test_tmpdir_remove();
    return test_summary("test_mtp");
}
