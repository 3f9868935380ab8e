/* Prompts with images end to end vs transformers (tools/image_logits_reference.py):
 *   test_image_logits [cpu|vulkan]
 * (vulkan: the same checks on the Vulkan device, and its logits bit-identical to the
 * CPU's, as every op on lavapipe; skipped without a Vulkan device)
 * fp4rt's synthetic "tiny" (seed 0, as test_vision) with
 * tests/fixtures/vision/cfg_rgb6x6.json as its preprocessor_config.json; for each case
 * of tests/fixtures/vision/image_logits.txt (one image mid-prompt; two images of
 * different grids) the public path fp4rt_prompt_create_mode, in the exact mode as
 * every session here (the image files decoded, preprocessed, encoded by the vision
 * tower, each <|image_pad|> expanded) must give
 * transformers' expanded ids, and its evaluation (prefill chunks of 8: the images'
 * rows straddle chunks) the logits of Qwen3_5ForConditionalGeneration(input_ids,
 * pixel_values, image_grid_thw) with NMSE <= 1e-6 on every row (the float32 text
 * ceiling of tests/engine/test_model.c; the vision embeddings themselves match to
 * ~1e-12, test_vision) and the same argmax where clear. The expanded ids evaluated
 * as plain text (the pads' own embeddings, text positions) must miss. Then
 * fp4rt_generate with prompt_images: its first greedy token is the reference's
 * argmax of the last row, and the same prompt through fp4rt_generate on another
 * session gives the same tokens. */
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "fp4rt.h"
#include "runtime/engine/model.h"
#include "runtime/tools/synth.h"
#include "tests/test_devices.h"

#define MAXN 128

static fp4rt_model *g_cpu; /* the CPU model when the device under test is another */

typedef struct icase {
    char name[64], images[4][64];
    int n_images, n, ne;
    int32_t prompt[MAXN], expanded[MAXN];
} icase;

static int read_ids(FILE *f, int32_t *ids, int *n) {
    if (fscanf(f, "%d", n) != 1 || *n > MAXN) return 0;
    for (int i = 0; i < *n; i++)
        if (fscanf(f, "%d", &ids[i]) != 1) return 0;
    return 1;
}

static int next_case(FILE *f, icase *c) {
    char key[32];
    memset(c, 0, sizeof *c);
    while (fscanf(f, "%31s", key) == 1) {
        if (key[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != '\n' && ch != EOF) {
            }
        } else if (!strcmp(key, "case")) {
            if (fscanf(f, "%63s", c->name) != 1) return 0;
        } else if (!strcmp(key, "images")) {
            char line[512];
            if (!fgets(line, sizeof line, f)) return 0;
            for (char *tok = strtok(line, " \n"); tok && c->n_images < 4; tok = strtok(NULL, " \n"))
                snprintf(c->images[c->n_images++], sizeof c->images[0], "%s", tok);
        } else if (!strcmp(key, "prompt")) {
            if (!read_ids(f, c->prompt, &c->n)) return 0;
        } else if (!strcmp(key, "expanded")) {
            if (!read_ids(f, c->expanded, &c->ne)) return 0;
        } else if (!strcmp(key, "end")) {
            return 1;
        }
    }
    return 0;
}

static fp4rt_session *session(fp4rt_model *m) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 256;
    sp.prefill_chunk = 8;
    sp.kv_type = FP4RT_KV_F32;
    sp.exact = 1; /* vs transformers at 1e-10 and bit for bit across devices */
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    return s;
}

static void check_case(fp4rt_model *m, const icase *c) {
    int V = fp4rt_model_n_vocab(m);
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/vision/%s.logits", c->name);
    float *want = test_read_floats(path, (size_t)c->ne * V);
    CHECK_MSG(want != NULL, "%s missing or not %d x %d floats", path, c->ne, V);
    fp4rt_image_input im[4];
    char files[4][128];
    for (int k = 0; k < c->n_images; k++) {
        snprintf(files[k], sizeof files[k], "tests/fixtures/images/%s", c->images[k]);
        im[k] = (fp4rt_image_input){.path = files[k]};
    }
    fp4rt_prompt *p = fp4rt_prompt_create_mode(m, c->prompt, (size_t)c->n, im, (size_t)c->n_images, 1);
    CHECK_MSG(p != NULL, "%s: %s", c->name, fp4rt_last_error());
    fp4rt_session *s = session(m), *r = session(m);
    float *got = malloc((size_t)c->ne * V * 4), *plain = malloc((size_t)c->ne * V * 4);
    if (!p || !want || !s || !r || !got || !plain) goto out;
    CHECK_MSG(fp4rt_prompt_n_tokens(p) == (size_t)c->ne &&
                  !memcmp(fp4rt_prompt_tokens(p), c->expanded, (size_t)c->ne * 4),
              "%s: expanded to %zu tokens, transformers %d (or other ids)", c->name, fp4rt_prompt_n_tokens(p), c->ne);
    fp4rt_status st = fp4rt_session_eval_prompt_rows(s, p, got, 1);
    CHECK_MSG(!st, "%s: eval: %s", c->name, fp4rt_last_error());
    if (!st) {
        double worst = 0;
        for (int i = 0; i < c->ne; i++) {
            double e = test_nmse(got + (size_t)i * V, want + (size_t)i * V, (size_t)V);
            if (e > worst) worst = e;
        }
        printf("%-8s %d tokens, %d image(s): NMSE vs transformers %.3g (worst row %.3g, ceiling 1e-6)\n", c->name,
               c->ne, c->n_images, test_nmse(got, want, (size_t)c->ne * V), worst);
        CHECK_MSG(worst <= 1e-6, "%s: a row's NMSE %.3g > 1e-6", c->name, worst);
        int bad = test_argmax_disagreements(got, want, c->ne, V, 1e-3f);
        CHECK_MSG(bad == 0, "%s: argmax differs at %d clear positions", c->name, bad);
        fp4rt_prompt *pc =
            g_cpu ? fp4rt_prompt_create_mode(g_cpu, c->prompt, (size_t)c->n, im, (size_t)c->n_images, 1) : NULL;
        fp4rt_session *sc = pc ? session(g_cpu) : NULL;
        if (sc && !fp4rt_session_eval_prompt_rows(sc, pc, plain, 1))
            CHECK_MSG(!memcmp(got, plain, (size_t)c->ne * V * 4), "%s: the device's logits differ from the CPU's",
                      c->name);
        else if (g_cpu)
            CHECK_MSG(0, "%s: on the CPU: %s", c->name, fp4rt_last_error());
        fp4rt_session_free(sc);
        fp4rt_prompt_free(pc);
    }
    /* the images' rows and positions are what makes it match */
    CHECK(!fp4rt_session_eval(r, c->expanded, c->ne, plain, 1));
    double ep = test_nmse(plain, want, (size_t)c->ne * V);
    printf("%-8s as plain text: NMSE %.3g\n", c->name, ep);
    CHECK_MSG(ep > 1e-4, "%s: the pads as text match as well (%.3g)", c->name, ep);
    /* fp4rt_generate with prompt_images: its first greedy pick is the reference's
     * argmax, and it is deterministic across sessions */
    fp4rt_session_reset(s);
    fp4rt_session_reset(r);
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.sampling.greedy = 1;
    gp.max_tokens = 4;
    gp.prompt_images = p;
    int32_t out1[4] = {-1, -1, -1, -1}, out2[4] = {-2, -2, -2, -2};
    gp.output_ids = out1;
    gp.output_cap = 4;
    fp4rt_generate_result res;
    st = fp4rt_generate(s, NULL, 0, &gp, NULL, NULL, &res);
    CHECK_MSG(!st && res.n_prompt == c->ne && res.n_generated == 4, "%s: generate: %s", c->name,
              fp4rt_last_error());
    const float *last = want + (size_t)(c->ne - 1) * V;
    int best = 0;
    for (int i = 1; i < V; i++)
        if (last[i] > last[best]) best = i;
    CHECK_MSG(out1[0] == best, "%s: first greedy token %d, transformers' argmax %d", c->name, out1[0], best);
    gp.output_ids = out2;
    CHECK(!fp4rt_generate(r, NULL, 0, &gp, NULL, NULL, NULL) && !memcmp(out1, out2, sizeof out1));
    CHECK_EQ_INT(fp4rt_session_n_past(s), c->ne + 4);
    /* both prompt and prompt_images: refused */
    CHECK(fp4rt_generate(r, c->prompt, 1, &gp, NULL, NULL, NULL) == FP4RT_INVALID_ARGUMENT);
    /* speculative decoding (the MTP head's steps and the verify rows at the image
     * prompt's positions): exactly plain greedy decoding's tokens */
    fp4rt_session_params spp = fp4rt_session_default_params();
    spp.n_ctx = 256;
    spp.prefill_chunk = 8;
    spp.mtp = 1;
    spp.exact = 1; /* as the plain session */
    fp4rt_session *sm = fp4rt_session_create(m, &spp);
    CHECK_MSG(sm != NULL, "mtp session: %s", fp4rt_last_error());
    fp4rt_session_reset(s);
    int32_t plain_ids[12], spec_ids[12];
    gp.max_tokens = 12;
    gp.output_cap = 12;
    gp.output_ids = plain_ids;
    CHECK(!fp4rt_generate(s, NULL, 0, &gp, NULL, NULL, NULL));
    gp.output_ids = spec_ids;
    gp.spec_drafts = 2;
    st = sm ? fp4rt_generate(sm, NULL, 0, &gp, NULL, NULL, &res) : FP4RT_INTERNAL;
    CHECK_MSG(!st && res.spec_steps > 0 && !memcmp(plain_ids, spec_ids, sizeof plain_ids),
              "%s: speculative greedy differs from plain (%s)", c->name, fp4rt_last_error());
    fp4rt_session_free(sm);
    /* the images as bytes in memory: the same prompt, the same logits */
    fp4rt_image_input mem[4];
    void *bytes[4] = {0};
    for (int k = 0; k < c->n_images; k++) {
        FILE *f = fopen(files[k], "rb");
        long len = 0;
        if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) && (bytes[k] = malloc((size_t)len)))
            CHECK(fread(bytes[k], 1, (size_t)len, f) == (size_t)len);
        if (f) fclose(f);
        mem[k] = (fp4rt_image_input){.data = bytes[k], .size = (size_t)len};
    }
    fp4rt_prompt *pm = fp4rt_prompt_create_mode(m, c->prompt, (size_t)c->n, mem, (size_t)c->n_images, 1);
    CHECK_MSG(pm != NULL, "%s in memory: %s", c->name, fp4rt_last_error());
    fp4rt_session_reset(r);
    float *lm = malloc((size_t)V * 4);
    if (pm && lm && !fp4rt_session_eval_prompt(r, pm, lm))
        CHECK_MSG(!memcmp(lm, got + (size_t)(c->ne - 1) * V, (size_t)V * 4), "%s: in memory != from the files", c->name);
    else
        CHECK_MSG(0, "%s: eval in memory: %s", c->name, fp4rt_last_error());
    free(lm);
    fp4rt_prompt_free(pm);
    mem[0].data = NULL; /* neither path nor data: one line naming the image */
    CHECK(fp4rt_prompt_create(m, c->prompt, (size_t)c->n, mem, (size_t)c->n_images) == NULL &&
          strstr(fp4rt_last_error(), "image 1 (in memory): neither a path nor data"));
    for (int k = 0; k < c->n_images; k++) free(bytes[k]);
out:
    free(got);
    free(plain);
    free(want);
    fp4rt_session_free(s);
    fp4rt_session_free(r);
    fp4rt_prompt_free(p);
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "cpu";
    char dev[64];
    if (!test_device_arg(argc, argv, dev, sizeof dev)) return 0;
    test_tmpdir(strcmp(kind, "cpu") ? "image_logits_dev" : "image_logits");
    const char *dir = test_tmp_path("tiny");
    fp4rt_config cfg;
    CHECK(fp4rt_config_preset("tiny", 0, &cfg) == FP4RT_OK);
    CHECK_MSG(fp4rt_synth(&cfg, dir, 0, 0, 0) == FP4RT_OK, "synth: %s", fp4rt_last_error());
    /* the reference's processor limits (small grids) as the model's preprocessor_config.json */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/vision/cfg_rgb6x6.json %s/preprocessor_config.json", dir);
    CHECK(system(cmd) == 0);
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    if (strcmp(kind, "cpu")) g_cpu = fp4rt_model_load(dir, &mp);
    mp.device = dev;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL && (g_cpu || !strcmp(kind, "cpu")), "load: %s", fp4rt_last_error());
    FILE *f = fopen("tests/fixtures/vision/image_logits.txt", "r");
    CHECK_MSG(f != NULL, "tests/fixtures/vision/image_logits.txt missing");
    int n = 0;
    icase c;
    while (m && f && next_case(f, &c)) {
        check_case(m, &c);
        n++;
    }
    CHECK_EQ_INT(n, 2);
    if (f) fclose(f);
    fp4rt_model_free(m);
    fp4rt_model_free(g_cpu);
    /* a malformed preprocessor_config.json: the load fails naming it */
    snprintf(cmd, sizeof cmd, "echo '{\"patch_size\": \"16\"}' > %s/preprocessor_config.json", dir);
    CHECK(system(cmd) == 0);
    mp.device = "cpu";
    fp4rt_model *bad = fp4rt_model_load(dir, &mp);
    CHECK_MSG(!bad && strstr(fp4rt_last_error(), "preprocessor_config.json") && strstr(fp4rt_last_error(), "patch_size"),
              "a bad preprocessor_config.json: %s", bad ? "loaded" : fp4rt_last_error());
    fp4rt_model_free(bad);
    test_tmpdir_remove();
    return test_summary("test_image_logits");
}
