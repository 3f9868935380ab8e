/* The vision tower (issue 18) on fp4rt's synthetic "tiny" model (seed 0: vision
 * depth 2, hidden 64, 2 heads, an 8 x 8 position table), which fp4rt_synth writes
 * byte-identically on every machine:
 *  (a) the merged vision embeddings vs transformers (tests/fixtures/vision,
 *      tools/vision_reference.py: Qwen3_5ForConditionalGeneration's visual model on
 *      the CPU in float32) from the processor's pixel values of two committed
 *      images (grids 6 x 6 and 6 x 4: interpolated position embeddings, rotary
 *      positions across merge blocks). NMSE <= 1e-10: BF16 weights widened to FP32
 *      and FP32 arithmetic on both sides; only the summation order of the dot
 *      products, the softmax and the LayerNorm statistics differ (FP32 rounding,
 *      ~1e-14 relative per element squared), the erf GELU of canon_math is a fit
 *      within ~1e-7 of erf; a wrong index, position or reshape gives ~1e-2 or more;
 *  (b) fp4rt_image_preprocess of the same images and configs gives the same
 *      pixel values (the processor's, bit for bit: runtime/vision's contract);
 *  (c) with argv[1] = "vulkan" or "cuda": that device's embeddings bit-identical to
 *      the CPU's (skipped with a message when there is no such device);
 *  (d) a model.visual tensor of a wrong shape: a one-line error naming it; a model
 *      without vision_config stays text-only;
 *  (e) fp4rt quantize (nvfp4-all) keeps the tower BF16: the quantized model's
 *      embeddings are the BF16 model's, bit for bit;
 *  (f) vision_config: the synthesized one parses back; bad values are one-line
 *      errors naming the key; absent keys take transformers' defaults.
 * Build the fixtures: tools/vision_reference.py (its header). */
#include "fp4rt.h"
#include "loader/safetensors.h"
#include "loader/st_writer.h"
#include "runtime/engine/vision.h"
#include "runtime/model/schema.h"
#include "runtime/tools/quantize.h"
#include "runtime/tools/synth.h"
#include "tests/test_devices.h"
#include "tests/test_util.h"
#include "tests/test_checkpoint_util.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

#define FIX "tests/fixtures/vision"

typedef struct vcase {
    char name[32];
    int t, h, w, pd, hidden, n_tokens, out_hidden;
} vcase;

static int read_cases(vcase *c, int cap) {
    FILE *f = fopen(FIX "/vision.txt", "r");
    CHECK_MSG(f != NULL, "cannot open %s/vision.txt", FIX);
    int n = 0;
    while (f && n < cap && fscanf(f, "%31s %d %d %d %d %d %d %d", c[n].name, &c[n].t, &c[n].h, &c[n].w, &c[n].pd,
                                  &c[n].hidden, &c[n].n_tokens, &c[n].out_hidden) == 8)
        n++;
    if (f) fclose(f);
    CHECK_MSG(n >= 2, "vision.txt has %d cases", n);
    return n;
}

static fp4rt_model *load(const char *dir, const char *device) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = device;
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "load %s on %s: %s", dir, device, fp4rt_last_error());
    return m;
}

/* The embeddings of case c on model m from the fixture's pixel values (NULL on failure). */
static float *encode(fp4rt_model *m, const vcase *c) {
    char path[512];
    snprintf(path, sizeof path, FIX "/%s.pv", c->name);
    size_t np = (size_t)c->t * c->h * c->w;
    fp4rt_image_patches ip = {.grid_t = c->t, .grid_h = c->h, .grid_w = c->w, .n_patches = (int64_t)np,
                              .patch_dim = c->pd, .data = test_read_floats(path, np * c->pd)};
    CHECK_MSG(ip.data != NULL, "cannot read %s", path);
    fp4rt_vision_embeds e;
    fp4rt_status st = ip.data ? fp4rt_vision_encode(m, &ip, 1, &e) : FP4RT_IO;
    CHECK_MSG(st == FP4RT_OK, "%s on %s: %s", c->name, fp4rt_model_device(m), fp4rt_last_error());
    free(ip.data);
    if (st) return NULL;
    CHECK_EQ_INT(e.n_tokens, c->n_tokens);
    CHECK_EQ_INT(e.hidden, c->out_hidden);
    CHECK(e.grid_h == c->h && e.grid_w == c->w && e.merge == 2);
    float *x = e.data;
    e.data = NULL;
    fp4rt_vision_embeds_free(&e);
    return x;
}

/* (a) vs transformers on the CPU; returns the CPU embeddings of every case. */
static void test_reference(const char *dir, const vcase *c, int n, float **cpu) {
    fp4rt_model *m = load(dir, "cpu");
    if (!m) return;
    CHECK(fp4rt_model_has_vision(m));
    for (int i = 0; i < n; i++) {
        cpu[i] = encode(m, &c[i]);
        char path[512];
        snprintf(path, sizeof path, FIX "/%s.vision", c[i].name);
        size_t k = (size_t)c[i].n_tokens * c[i].out_hidden;
        float *ref = test_read_floats(path, k);
        CHECK_MSG(ref != NULL, "cannot read %s", path);
        if (cpu[i] && ref) {
            double e = test_nmse(cpu[i], ref, k);
            printf("(a) %s: %d x %d patches -> %d tokens, NMSE vs transformers %.3g\n", c[i].name, c[i].h, c[i].w,
                   c[i].n_tokens, e);
            CHECK_MSG(e <= 1e-10, "%s: NMSE %.3g > 1e-10", c[i].name, e);
        }
        free(ref);
    }
    fp4rt_model_free(m);
}

/* (b) the preprocessing of the same image and config gives the fixture's pixel values. */
static void test_preprocess(const vcase *c, int n) {
    static const char *const images[] = {"rgb.png", "gray.png"};
    for (int i = 0; i < n && i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, FIX "/cfg_%s.json", c[i].name);
        char *text = NULL;
        size_t len = 0;
        fp4rt_image_config cfg;
        fp4rt_image img = {0};
        fp4rt_image_patches ip = {0};
        snprintf(path, sizeof path, FIX "/cfg_%s.json", c[i].name);
        CHECK(fp4rt_read_file(path, 1 << 20, &text, &len) == FP4RT_OK);
        CHECK(text && fp4rt_image_config_parse(text, len, path, &cfg) == FP4RT_OK);
        snprintf(path, sizeof path, "tests/fixtures/images/%s", images[i]);
        CHECK(fp4rt_image_load_file(path, NULL, &img) == FP4RT_OK);
        CHECK(fp4rt_image_preprocess(&img, &cfg, path, &ip) == FP4RT_OK);
        CHECK(ip.grid_h == c[i].h && ip.grid_w == c[i].w && ip.patch_dim == c[i].pd);
        snprintf(path, sizeof path, FIX "/%s.pv", c[i].name);
        size_t k = (size_t)c[i].t * c[i].h * c[i].w * c[i].pd;
        float *ref = test_read_floats(path, k);
        int same = ref && ip.data && ip.n_patches * ip.patch_dim == (int64_t)k && !memcmp(ref, ip.data, k * 4);
        printf("(b) %s: fp4rt_image_preprocess %s the processor's pixel values\n", c[i].name,
               same ? "equals" : "DIFFERS FROM");
        CHECK(same);
        free(ref);
        free(text);
        fp4rt_image_free(&img);
        fp4rt_image_patches_free(&ip);
    }
}

/* (c) a GPU device's embeddings are the CPU's, bit for bit. */
/* Returns 0 when there is no such device (nothing compared), else 1. */
static int test_device(const char *kind, const char *dir, const vcase *c, int n, float **cpu) {
    char dev[64];
    fp4rt_device_ref ref;
    fp4rt_device_desc d;
    if (!test_pick_device(kind, NULL, dev, sizeof dev, &ref, &d)) return 0;
    fp4rt_model *m = load(dir, dev);
    if (!m) return 1;
    for (int i = 0; i < n; i++) {
        float *x = encode(m, &c[i]);
        size_t k = (size_t)c[i].n_tokens * c[i].out_hidden;
        int same = x && cpu[i] && !memcmp(x, cpu[i], k * 4);
        printf("(c) %s on %s: %s the CPU's\n", c[i].name, dev, same ? "bit-identical to" : "DIFFERS FROM");
        CHECK(same);
        free(x);
    }
    fp4rt_model_free(m);
    return 1;
}

/* (d) A copy of dir with model.visual.blocks.1.attn.proj.weight of shape [64, 32];
 * and a model whose config has no vision_config. */
static void test_bad_shape(const char *dir) {
    const char *bad = test_tmp_path("bad-vision");
    test_copy_with_halved_tensor(dir, bad, "model.visual.blocks.1.attn.proj.weight");
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    fp4rt_model *m = fp4rt_model_load(bad, &mp);
    const char *err = fp4rt_last_error();
    printf("(d) attn.proj.weight [64, 32]: %s\n", err);
    CHECK_MSG(m == NULL, "a misshapen vision tensor loaded");
    CHECK_MSG(strstr(err, "model.visual.blocks.1.attn.proj.weight") && strstr(err, "[64, 32]") && !strchr(err, '\n'),
              "error does not name the tensor and its shape on one line: %s", err);
    fp4rt_model_free(m);

    /* a text-only model (no vision_config): loads, has no vision, encode refuses */
    fp4rt_config tc;
    CHECK(fp4rt_config_preset("tiny", 0, &tc) == FP4RT_OK);
    tc.vision.depth = 0;
    const char *text_only = test_tmp_path("text-only");
    CHECK(fp4rt_synth(&tc, text_only, 0, 0, 0) == FP4RT_OK);
    m = load(text_only, "cpu");
    if (!m) return;
    CHECK(!fp4rt_model_has_vision(m));
    fp4rt_image_patches ip = {.grid_t = 1, .grid_h = 2, .grid_w = 2, .n_patches = 4, .patch_dim = 1536};
    fp4rt_vision_embeds e;
    CHECK(fp4rt_vision_encode(m, &ip, 1, &e) == FP4RT_INVALID_ARGUMENT);
    CHECK(e.data == NULL && e.n_tokens == 0);
    printf("(d) text-only model: %s\n", fp4rt_last_error());
    fp4rt_model_free(m);
}

/* Grids the encoder refuses: not whole merge blocks, too many patches. */
static void test_bad_grid(const char *dir) {
    fp4rt_model *m = load(dir, "cpu");
    if (!m) return;
    float px[6 * 1536] = {0};
    fp4rt_image_patches ip = {.grid_t = 1, .grid_h = 2, .grid_w = 3, .n_patches = 6, .patch_dim = 1536, .data = px};
    fp4rt_vision_embeds e;
    CHECK(fp4rt_vision_encode(m, &ip, 1, &e) == FP4RT_INVALID_ARGUMENT);
    printf("(d) 2 x 3 grid: %s\n", fp4rt_last_error());
    ip.grid_h = 512, ip.grid_w = 256, ip.n_patches = 512 * 256;
    CHECK(fp4rt_vision_encode(m, &ip, 1, &e) == FP4RT_UNSUPPORTED);
    const char *err = fp4rt_last_error();
    printf("(d) 512 x 256 grid: %s\n", err);
    CHECK(strstr(err, "4096 x 8192 pixels") != NULL);
    fp4rt_model_free(m);
}

/* (e) The quantized copy's tower: BF16, unquantized, the same embeddings. */
static void test_quantized(const char *dir, const vcase *c, float **cpu) {
    const char *q = test_tmp_path("nvfp4");
    fp4rt_quantize_summary sum;
    fp4rt_status st = fp4rt_quantize(dir, q, "nvfp4-all", 0, NULL, &sum);
    CHECK_MSG(st == FP4RT_OK, "quantize: %s", fp4rt_last_error());
    if (st) return;
    free(sum.text);
    fp4rt_model *m = load(q, "cpu");
    if (!m) return;
    const fp4rt_vision_weights *v = m->weights->vision;
    CHECK(v && v->blocks[0].qkv.fmt == FP4RT_W_BF16 && v->merger_fc2.fmt == FP4RT_W_BF16);
    float *x = encode(m, &c[0]);
    size_t k = (size_t)c[0].n_tokens * c[0].out_hidden;
    int same = x && cpu[0] && !memcmp(x, cpu[0], k * 4);
    printf("(e) nvfp4-all copy: the tower %s, embeddings %s\n", v && v->blocks[0].qkv.fmt == FP4RT_W_BF16 ? "BF16" : "?",
           same ? "bit-identical" : "DIFFERENT");
    CHECK(same);
    free(x);
    fp4rt_model_free(m);
}

/* config.json of dir with vision_config.KEY set to the JSON value `val` ("" removes
 * it), parsed: the status, the config in *c. */
static fp4rt_status parse_with(const char *dir, const char *key, const char *val, fp4rt_config *c) {
    char path[1100], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(fp4rt_read_file(path, 1 << 20, &text, &len) == FP4RT_OK);
    cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
    cJSON *vc = cJSON_GetObjectItem(root, "vision_config");
    CHECK(vc != NULL);
    if (key) {
        cJSON_DeleteItemFromObject(vc, key);
        if (val[0]) cJSON_AddItemToObject(vc, key, cJSON_Parse(val));
    }
    char *out = cJSON_PrintUnformatted(root);
    fp4rt_status st = out ? fp4rt_config_parse(out, strlen(out), "cfg.json", c) : FP4RT_OUT_OF_MEMORY;
    free(out);
    cJSON_Delete(root);
    free(text);
    return st;
}

/* (f) */
static void test_config(const char *dir) {
    fp4rt_config c;
    CHECK(parse_with(dir, NULL, NULL, &c) == FP4RT_OK);
    CHECK(c.vision.depth == 2 && c.vision.hidden == 64 && c.vision.n_heads == 2 && c.vision.n_pos == 64);
    CHECK(fp4rt_vcfg_head_dim(&c.vision) == 32 && fp4rt_vcfg_patch_dim(&c.vision) == 1536 &&
          fp4rt_vcfg_grid_side(&c.vision) == 8);
    static const struct {
        const char *key, *val, *needle;
    } bad[] = {
        {"num_heads", "3", "vision_config.num_heads"},  /* 64 / 3 */
        {"num_heads", "32", "vision_config.num_heads"}, /* head_dim 2: no quarters for the 2-D rotary */
        {"num_position_embeddings", "60", "vision_config.num_position_embeddings"},
        {"hidden_act", "\"relu\"", "vision_config.hidden_act"},
        {"deepstack_visual_indexes", "[1, 2]", "vision_config.deepstack_visual_indexes"},
        {"depth", "-1", "vision_config.depth"},
        {"patch_size", "\"16\"", "vision_config.patch_size"},
        {"in_channels", "4", "vision_config.in_channels"},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(bad); i++) {
        fp4rt_status st = parse_with(dir, bad[i].key, bad[i].val, &c);
        const char *err = fp4rt_last_error();
        CHECK_MSG(st != FP4RT_OK, "vision_config.%s = %s accepted", bad[i].key, bad[i].val);
        if (st) {
            printf("(f) %s = %s: %s\n", bad[i].key, bad[i].val, err);
            CHECK_MSG(strstr(err, bad[i].needle) && !strchr(err, '\n'), "error does not name %s: %s", bad[i].needle, err);
        }
    }
    /* absent keys: Qwen3VLVisionConfig's defaults */
    CHECK(parse_with(dir, "hidden_size", "", &c) == FP4RT_OK && c.vision.hidden == 1152);
    CHECK(parse_with(dir, "hidden_act", "", &c) == FP4RT_OK && c.vision.gelu_tanh == 1);
    CHECK(parse_with(dir, "hidden_act", "\"gelu\"", &c) == FP4RT_OK && c.vision.gelu_tanh == 0);
}

int main(int argc, char **argv) {
    const char *vk = argc > 1 ? argv[1] : NULL;
    test_tmpdir("vision");
    const char *dir = test_tmp_path("tiny");
    fp4rt_config cfg;
    CHECK(fp4rt_config_preset("tiny", 0, &cfg) == FP4RT_OK);
    CHECK_MSG(fp4rt_synth(&cfg, dir, 0, 0, 0) == FP4RT_OK, "synth: %s", fp4rt_last_error());
    vcase c[4];
    int n = read_cases(c, 4);
    float *cpu[4] = {0};
    test_reference(dir, c, n, cpu);
    int skipped = 0;
    if (vk && (!strcmp(vk, "vulkan") || !strcmp(vk, "cuda"))) {
        skipped = !test_device(vk, dir, c, n, cpu);
    } else {
        test_preprocess(c, n);
        test_bad_shape(dir);
        test_bad_grid(dir);
        test_quantized(dir, c, cpu);
        test_config(dir);
    }
    for (int i = 0; i < n; i++) free(cpu[i]);
    test_tmpdir_remove();
    int rc = test_summary("test_vision");
    return rc == 0 && skipped ? 77 : rc; /* ctest: SKIP_RETURN_CODE 77 */
}
