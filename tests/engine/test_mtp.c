/* The MTP head (issue 16 item 1) on the trained reference model
 * models/qwen35-kjv-10m:
 *  (a) teacher-forced MTP logits vs PyTorch (tests/fixtures/kjv-mtp.logits.bin,
 *      tools/mtp_reference_logits.py) on the CPU and on Vulkan, NMSE <= 1e-6 as
 *      the unquantized main fixtures, one token at a time and after a chunked
 *      prefill (the head's cache filled by the steps' catch-up);
 *  (b) greedy drafts (K = 3) vs the main model's greedy tokens on held-out text
 *      (tests/fixtures/kjv-heldout.tokens.txt, Numbers 33), teacher-forced: the
 *      acceptance per draft position, printed (bench/RESULTS.md) and bounded;
 *  (c) CPU == Vulkan: the MTP logits bit-identical;
 *  (d) an mtp.* tensor of a wrong shape: a one-line error naming it. */
#include "fp4rt.h"
#include "loader/safetensors.h"
#include "loader/st_writer.h"
#include "runtime/engine/mtp.h"
#include "tests/test_devices.h"
#include "tests/test_util.h"

#define MODEL "models/qwen35-kjv-10m"
#define MAX_K 3

static float *read_floats(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *x = malloc(n * sizeof *x);
    size_t got = fread(x, sizeof *x, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        free(x);
        return NULL;
    }
    return x;
}

static fp4rt_model *load(const char *dir, const char *device) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = device;
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "load %s on %s: %s", dir, device, fp4rt_last_error());
    return m;
}

static fp4rt_session *session(fp4rt_model *m, int chunk) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 512;
    sp.prefill_chunk = chunk;
    sp.mtp = 1;
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

static void test_fixture(const char *vk_dev) {
    int n = 0;
    int32_t *x = test_read_tokens("tests/fixtures/kjv-mtp.tokens.txt", &n);
    CHECK_MSG(x && n == 40, "tests/fixtures/kjv-mtp.tokens.txt missing or not 40 tokens");
    if (!x) return;
    fp4rt_model *m = load(MODEL, "cpu");
    if (!m) return;
    int V = fp4rt_model_n_vocab(m);
    size_t rows = (size_t)(n - 1);
    float *ref = read_floats("tests/fixtures/kjv-mtp.logits.bin", rows * V);
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
        fp4rt_model *g = load(MODEL, vk_dev);
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
    fp4rt_model *m = load(MODEL, "cpu");
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
    CHECK(mkdir(dir, 0755) == 0);
    fp4rt_checkpoint *ck = NULL;
    CHECK(fp4rt_checkpoint_open(MODEL, &ck) == FP4RT_OK);
    if (!ck) return;
    fp4rt_stw *w = NULL;
    CHECK(fp4rt_stw_create(dir, 0, &w) == FP4RT_OK);
    for (int pass = 0; w && pass < 2; pass++)
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const fp4rt_st_tensor *t = ck->tensors[i];
            int64_t shape[FP4RT_ST_MAX_DIMS];
            memcpy(shape, t->shape, sizeof shape);
            uint64_t nb = t->nbytes;
            if (!strcmp(t->name, "mtp.fc.weight")) {
                shape[1] /= 2;
                nb /= 2;
            }
            fp4rt_status st = pass ? fp4rt_stw_write(w, t->name, t->data, nb)
                                   : fp4rt_stw_declare(w, t->name, t->dtype, t->ndim, shape);
            CHECK(st == FP4RT_OK);
        }
    CHECK(w && fp4rt_stw_finish(w) == FP4RT_OK);
    fp4rt_stw_free(w);
    fp4rt_checkpoint_close(ck);
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(files); i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", MODEL, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        CHECK(fp4rt_copy_file(a, b) == FP4RT_OK);
    }
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

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char dev[64];
    fp4rt_device_ref ref;
    fp4rt_device_desc desc;
    test_tmpdir("mtp");
    int have_vk = test_pick_device("vulkan", NULL, dev, sizeof dev, &ref, &desc);
    test_fixture(have_vk ? dev : NULL);
    test_acceptance();
    test_bad_shape();
    test_tmpdir_remove();
    return test_summary("test_mtp");
}
