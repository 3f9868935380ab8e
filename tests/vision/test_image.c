/* Image loading and preprocessing against the Hugging Face image processor
 * (tests/fixtures/images/, written by tools/image_reference.py with transformers'
 * Qwen2VLImageProcessorPil): grids identical, pixel values equal (lossless formats)
 * or within the JPEG decoder tolerance below; PIL's bicubic resize bit-exact;
 * smart_resize under the real Qwen3.5 limits; the EXIF parser and transposes. */
#include "runtime/vision/image.h"
#include "tests/test_util.h"

#define DIR "tests/fixtures/images/"

/* stb_image and libjpeg-turbo (PIL) decode JPEG with different IDCTs and chroma
 * upsampling: pixels differ by a few levels (measured max 3, Pillow 13.0.0 with
 * its bundled libjpeg-turbo; the log line prints each), one
 * level being 1/255/std = 0.0078 for std 0.5, 0.015 for CLIP's std. Lossless formats
 * must match exactly. */
#define JPEG_LEVELS 4

static void *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    void *buf = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    return buf;
}

static int load_cfg(const char *cfg_name, fp4rt_image_config *cfg) {
    char path[256];
    snprintf(path, sizeof path, DIR "cfg_%s.json", cfg_name);
    size_t n;
    char *json = read_all(path, &n);
    if (!json) return 0;
    fp4rt_status st = fp4rt_image_config_parse(json, n, path, cfg);
    free(json);
    return st == FP4RT_OK;
}

static void test_against_processor(void) {
    FILE *f = fopen(DIR "images.txt", "r");
    CHECK(f != NULL);
    if (!f) return;
    char img_name[64], cfg_name[32];
    int gt, gh, gw;
    long rows, cols;
    int cases = 0;
    while (fscanf(f, "%63s %31s %d %d %d %ld %ld", img_name, cfg_name, &gt, &gh, &gw, &rows,
                  &cols) == 7) {
        cases++;
        fp4rt_image_config cfg;
        CHECK_MSG(load_cfg(cfg_name, &cfg), "%s", cfg_name);
        char path[256];
        snprintf(path, sizeof path, DIR "%s", img_name);
        fp4rt_image img;
        fp4rt_status st = fp4rt_image_load_file(path, NULL, &img);
        CHECK_MSG(st == FP4RT_OK, "%s: %s", path, fp4rt_last_error());
        if (st != FP4RT_OK) continue;
        fp4rt_image_patches p;
        st = fp4rt_image_preprocess(&img, &cfg, path, &p);
        CHECK_MSG(st == FP4RT_OK, "%s: %s", path, fp4rt_last_error());
        fp4rt_image_free(&img);
        if (st != FP4RT_OK) continue;
        CHECK_MSG(p.grid_t == gt && p.grid_h == gh && p.grid_w == gw && p.n_patches == rows &&
                      p.patch_dim == cols,
                  "%s %s: grid %d %d %d [%lld, %d], reference %d %d %d [%ld, %ld]", img_name,
                  cfg_name, p.grid_t, p.grid_h, p.grid_w, (long long)p.n_patches, p.patch_dim, gt,
                  gh, gw, rows, cols);
        snprintf(path, sizeof path, DIR "%s.%s.pv", img_name, cfg_name);
        size_t nbytes;
        float *ref = read_all(path, &nbytes);
        CHECK_MSG(ref && nbytes == (size_t)rows * cols * sizeof(float), "%s: %zu bytes", path,
                  ref ? nbytes : 0);
        if (ref && p.n_patches == rows && p.patch_dim == cols &&
            nbytes == (size_t)rows * cols * sizeof(float)) {
            double maxd = 0;
            size_t nd = 0;
            for (size_t i = 0; i < (size_t)rows * cols; i++) {
                double d = fabs((double)p.data[i] - ref[i]);
                if (d > maxd) maxd = d;
                nd += d != 0;
            }
            /* the step of one 8-bit level after normalization, for this config */
            double std_min = fmin(cfg.image_std[0], fmin(cfg.image_std[1], cfg.image_std[2]));
            double level = cfg.rescale_factor / std_min;
            int jpeg = strstr(img_name, ".jpg") != NULL;
            double tol = jpeg ? JPEG_LEVELS * level * 1.0001 : 0.0;
            printf("  %-12s %-4s grid 1x%dx%d  max |diff| %.6g (%.2f levels), %zu of %ld values "
                   "differ%s\n",
                   img_name, cfg_name, gh, gw, maxd, maxd / level, nd, rows * cols,
                   jpeg ? " (JPEG: stb vs libjpeg)" : "");
            CHECK_MSG(maxd <= tol, "%s %s: max |diff| %g > %g", img_name, cfg_name, maxd, tol);
            if (jpeg) { /* most values agree or differ by a level: the decoders differ locally */
                CHECK_MSG(nd < (size_t)rows * cols / 2, "%s: %zu values differ", img_name, nd);
            }
        }
        free(ref);
        fp4rt_image_patches_free(&p);
    }
    fclose(f);
    CHECK_MSG(cases >= 19, "%d cases in images.txt", cases);
}

/* PIL's bicubic resize of resize_src.png (lossless), bit for bit */
static void test_resize(void) {
    fp4rt_image src;
    CHECK(fp4rt_image_load_file(DIR "resize_src.png", NULL, &src) == FP4RT_OK);
    size_t n;
    uint8_t *blob = read_all(DIR "resize.bin", &n);
    FILE *f = fopen(DIR "resize.txt", "r");
    CHECK(blob && f);
    if (!blob || !f || !src.rgb) return;
    int w, h;
    long off;
    int sizes = 0;
    while (fscanf(f, "%d %d %ld", &w, &h, &off) == 3) {
        sizes++;
        fp4rt_image out;
        CHECK(fp4rt_image_resize_bicubic(&src, w, h, &out) == FP4RT_OK);
        CHECK(out.width == w && out.height == h);
        CHECK((size_t)off + (size_t)w * h * 3 <= n);
        int maxd = 0;
        for (size_t i = 0; out.rgb && (size_t)off + (size_t)w * h * 3 <= n && i < (size_t)w * h * 3;
             i++) {
            int d = abs((int)out.rgb[i] - blob[off + i]);
            if (d > maxd) maxd = d;
        }
        CHECK_MSG(maxd == 0, "resize 23x17 -> %dx%d: max |diff| %d levels against PIL", w, h, maxd);
        fp4rt_image_free(&out);
    }
    CHECK(sizes == 14);
    fclose(f);
    free(blob);
    fp4rt_image_free(&src);
}

static void test_smart_resize(void) {
    fp4rt_image_config cfg;
    fp4rt_image_config_default(&cfg);
    FILE *f = fopen(DIR "smart_resize.txt", "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[128];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        int h, w, rh, rw;
        int k = sscanf(line, "%d %d %d %d", &h, &w, &rh, &rw);
        if (k < 2) continue;
        cases++;
        int oh, ow;
        fp4rt_status st = fp4rt_image_smart_resize(h, w, &cfg, "case", &oh, &ow);
        if (k == 4)
            CHECK_MSG(st == FP4RT_OK && oh == rh && ow == rw, "%dx%d: got %dx%d, reference %dx%d",
                      h, w, oh, ow, rh, rw);
        else
            CHECK_MSG(st == FP4RT_UNSUPPORTED && strstr(fp4rt_last_error(), "aspect ratio"),
                      "%dx%d: expected an error", h, w);
    }
    fclose(f);
    CHECK(cases == 20);
    /* half-to-even rounding: 48 / 32 = 1.5 -> 2, 80 / 32 = 2.5 -> 2 (Python round) */
    cfg.min_pixels = 1;
    int oh, ow;
    CHECK(fp4rt_image_smart_resize(48, 80, &cfg, "even", &oh, &ow) == FP4RT_OK && oh == 64 &&
          ow == 64);
}

/* a hand-built JPEG prefix: SOI, APP0, APP1 Exif with a TIFF IFD */
static size_t exif_jpeg(uint8_t *b, int le, unsigned tag, unsigned type, unsigned count,
                        unsigned value) {
    size_t n = 0;
    const uint8_t soi_app0[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J', 'F'};
    memcpy(b, soi_app0, sizeof soi_app0);
    n = sizeof soi_app0;
    uint8_t t[64];
    size_t tn = 0;
#define P16(v)                                                                                     \
    (le ? (t[tn++] = (uint8_t)(v), t[tn++] = (uint8_t)((v) >> 8))                                  \
        : (t[tn++] = (uint8_t)((v) >> 8), t[tn++] = (uint8_t)(v)))
#define P32(v) (le ? (P16((v)&0xFFFF), P16((v) >> 16)) : (P16((v) >> 16), P16((v)&0xFFFF)))
    t[tn++] = le ? 'I' : 'M';
    t[tn++] = le ? 'I' : 'M';
    P16(42);
    P32(8u);
    P16(1); /* one entry */
    P16(tag);
    P16(type);
    P32(count);
    if (type == 3) {
        P16(value);
        P16(0);
    } else {
        P32(value);
    }
    P32(0u);
    size_t len = 2 + 6 + tn;
    b[n++] = 0xFF;
    b[n++] = 0xE1;
    b[n++] = (uint8_t)(len >> 8);
    b[n++] = (uint8_t)len;
    memcpy(b + n, "Exif\0\0", 6);
    n += 6;
    memcpy(b + n, t, tn);
    n += tn;
    b[n++] = 0xFF;
    b[n++] = 0xDA;
    return n;
#undef P16
#undef P32
}

static void test_exif(void) {
    uint8_t b[128];
    for (int o = 1; o <= 8; o++) {
        size_t n = exif_jpeg(b, 1, 0x0112, 3, 1, (unsigned)o);
        CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), o);
        n = exif_jpeg(b, 0, 0x0112, 3, 1, (unsigned)o);
        CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), o);
        n = exif_jpeg(b, 0, 0x0112, 4, 1, (unsigned)o);
        CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), o);
    }
    size_t n = exif_jpeg(b, 1, 0x0112, 3, 1, 9); /* out of range */
    CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), 1);
    n = exif_jpeg(b, 1, 0x0112, 3, 2, 6); /* count 2 */
    CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), 1);
    n = exif_jpeg(b, 1, 0x0110, 3, 1, 6); /* another tag */
    CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), 1);
    n = exif_jpeg(b, 1, 0x0112, 3, 1, 6);
    for (size_t cut = 0; cut < n; cut++) /* every truncation: no read past the end */
        CHECK(fp4rt_image_jpeg_orientation(b, cut) == 1 || cut >= n - 2);
    b[2 + 2 + 4 + 2 + 1] = 0xFF; /* corrupt the APP1 length */
    CHECK_EQ_INT(fp4rt_image_jpeg_orientation(b, n), 1);
    CHECK_EQ_INT(fp4rt_image_jpeg_orientation(NULL, 0), 1);

    /* the transposes on a 3x2 image with distinct pixels: out(x, y) = in(sx, sy) */
    uint8_t px[6 * 3];
    for (int i = 0; i < 18; i++)
        px[i] = (uint8_t)(i / 3);
    fp4rt_image in = {.width = 3, .height = 2, .rgb = px};
    /* expected pixel indices (in = y * 3 + x) of each output, row-major */
    static const int want[9][6] = {
        {0},
        {0, 1, 2, 3, 4, 5},
        {2, 1, 0, 5, 4, 3},
        {5, 4, 3, 2, 1, 0},
        {3, 4, 5, 0, 1, 2},
        {0, 3, 1, 4, 2, 5}, /* 5 transpose: 2 wide, 3 high */
        {3, 0, 4, 1, 5, 2}, /* 6 clockwise */
        {5, 2, 4, 1, 3, 0}, /* 7 transverse */
        {2, 5, 1, 4, 0, 3}, /* 8 counter-clockwise */
    };
    for (int o = 1; o <= 8; o++) {
        fp4rt_image out;
        CHECK(fp4rt_image_orient(&in, o, &out) == FP4RT_OK);
        CHECK(out.width == (o >= 5 ? 2 : 3) && out.height == (o >= 5 ? 3 : 2));
        int ok = 1;
        for (int i = 0; i < 6; i++)
            ok &= out.rgb[i * 3] == want[o][i];
        CHECK_MSG(ok, "orientation %d", o);
        fp4rt_image_free(&out);
    }
}

static void test_config(void) {
    fp4rt_image_config cfg;
    const char *nested =
        "{\"image_processor\": {\"size\": {\"longest_edge\": 4096, \"shortest_edge\": 1024}, "
        "\"patch_size\": 16, \"image_mean\": 0.5, \"image_std\": [0.5, 0.25, 2]}}";
    CHECK(fp4rt_image_config_parse(nested, strlen(nested), "nested", &cfg) == FP4RT_OK);
    CHECK(cfg.min_pixels == 1024 && cfg.max_pixels == 4096 && cfg.patch_size == 16 &&
          cfg.merge_size == 2);
    CHECK(cfg.image_mean[2] == 0.5f && cfg.image_std[1] == 0.25f && cfg.image_std[2] == 2.0f);
    const char *legacy =
        "{\"min_pixels\": 3136, \"max_pixels\": 12845056, \"size\": {\"shortest_edge\": 5}}";
    CHECK(fp4rt_image_config_parse(legacy, strlen(legacy), "legacy", &cfg) == FP4RT_OK);
    CHECK(cfg.min_pixels == 3136 && cfg.max_pixels == 12845056 && cfg.patch_size == 14);
    CHECK(fabsf(cfg.image_mean[0] - 0.48145466f) == 0);
    static const char *const bad[] = {
        "{\"patch_size\": 0}",
        "{\"patch_size\": 1.5}",
        "{\"image_std\": [0.5, 0, 0.5]}",
        "{\"image_mean\": [1, 2]}",
        "{\"resample\": 2}",
        "{\"do_convert_rgb\": false}",
        "{\"size\": 7}",
        "{\"do_resize\": 1}",
        "[1]",
        "{",
        "{\"rescale_factor\": -1}",
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(bad); i++) {
        fp4rt_status st = fp4rt_image_config_parse(bad[i], strlen(bad[i]), "bad.json", &cfg);
        CHECK_MSG(st != FP4RT_OK && strstr(fp4rt_last_error(), "bad.json"), "accepted %s", bad[i]);
    }
    CHECK(fp4rt_image_config_load(DIR "no-such-dir", &cfg) == FP4RT_IO);
    CHECK(cfg.patch_size == 16 && cfg.max_pixels == 16777216); /* the Qwen3.5 defaults */
}

int main(void) {
    test_against_processor();
    test_resize();
    test_smart_resize();
    test_exif();
    test_config();
    return test_summary("test_image");
}
