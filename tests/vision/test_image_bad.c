/* Bad image files (issue 18 item 6): each is refused with a non-OK status and a
 * one-line error naming the file, or (where the reference accepts it) decoded; never
 * a crash (this test also runs in the sanitizer build). The files are written to a
 * temporary directory from the committed fixtures and hand-built headers. */
#include "runtime/vision/image.h"
#include "tests/test_util.h"

#define DIR "tests/fixtures/images/"

static char tmpdir[256];

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    void *buf = malloc((size_t)sz + 1);
    *n = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    return buf;
}

static const char *write_tmp(const char *name, const void *data, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        if (n) fwrite(data, 1, n, f);
        fclose(f);
    }
    return path;
}

/* loading path must fail with status want (or any non-OK when want is OK... never) and a
 * one-line message naming path */
static void expect_refused(const char *path, fp4rt_status want, const char *phrase) {
    fp4rt_image img;
    fp4rt_status st = fp4rt_image_load_file(path, NULL, &img);
    const char *e = fp4rt_last_error();
    CHECK_MSG(st == want, "%s: status %s, expected %s (%s)", path, fp4rt_status_name(st),
              fp4rt_status_name(want), e);
    CHECK_MSG(strstr(e, path) && !strchr(e, '\n'), "%s: message \"%s\"", path, e);
    CHECK_MSG(!phrase || strstr(e, phrase), "%s: message \"%s\" lacks \"%s\"", path, e, phrase);
    CHECK(img.rgb == NULL && img.width == 0);
    printf("  refused: %s\n", e);
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* a PNG signature + IHDR declaring w x h RGB8 + an empty IDAT + IEND (CRCs zero:
 * stb_image does not check them) */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    size_t n = 0;
    memcpy(b, sig, 8);
    n = 8;
    be32(b + n, 13);
    memcpy(b + n + 4, "IHDR", 4);
    be32(b + n + 8, w);
    be32(b + n + 12, h);
    b[n + 16] = 8;
    b[n + 17] = 2;
    b[n + 18] = b[n + 19] = b[n + 20] = 0;
    be32(b + n + 21, 0);
    n += 25;
    be32(b + n, 0);
    memcpy(b + n + 4, "IEND", 4);
    be32(b + n + 8, 0);
    return n + 12;
}

/* a 24-bit BMP of w x h, all pixels (10, 20, 30) */
static size_t bmp(uint8_t *b, int w, int h) {
    int row = (w * 3 + 3) & ~3;
    size_t n = 54 + (size_t)row * h;
    memset(b, 0, n);
    b[0] = 'B';
    b[1] = 'M';
    b[2] = (uint8_t)n;
    b[3] = (uint8_t)(n >> 8);
    b[10] = 54;
    b[14] = 40;
    b[18] = (uint8_t)w;
    b[22] = (uint8_t)h;
    b[26] = 1;
    b[28] = 24;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = b + 54 + (size_t)y * row + (size_t)x * 3;
            p[0] = 30; /* B, G, R */
            p[1] = 20;
            p[2] = 10;
        }
    return n;
}

int main(void) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/fp4rt_image_bad_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    uint8_t b[4096];

    expect_refused(DIR "no-such-image.png", FP4RT_IO, "No such file");
    expect_refused(DIR, FP4RT_IO, "directory");
    expect_refused(write_tmp("empty.png", "", 0), FP4RT_FORMAT, "empty");
    expect_refused(write_tmp("text.png", "hello, not an image\n", 20), FP4RT_FORMAT,
                   "not a PNG, JPEG, BMP or GIF file");

    size_t n;
    uint8_t *png = slurp(DIR "rgb.png", &n);
    CHECK(png != NULL);
    if (png) {
        expect_refused(write_tmp("trunc_header.png", png, 20), FP4RT_FORMAT, NULL);
        expect_refused(write_tmp("trunc_half.png", png, n / 2), FP4RT_FORMAT, "cannot decode");
        /* corrupt the zlib stream: stb must refuse or decode, never read out of bounds */
        for (size_t i = 60; i < n - 20; i += 97)
            png[i] ^= 0x5A;
        fp4rt_image img;
        const char *p = write_tmp("corrupt.png", png, n);
        fp4rt_status st = fp4rt_image_load_file(p, NULL, &img);
        CHECK_MSG(st == FP4RT_OK || (st == FP4RT_FORMAT && strstr(fp4rt_last_error(), p)),
                  "corrupt.png: %s", fp4rt_last_error());
        fp4rt_image_free(&img);
        free(png);
    }
    /* every prefix of a JPEG and a GIF: a status, no crash */
    static const char *const names[] = {DIR "orient6.jpg", DIR "anim.gif", DIR "rgb.bmp",
                                        DIR "pal_trns.png"};
    for (size_t k = 0; k < FP4RT_ARRAY_LEN(names); k++) {
        uint8_t *d = slurp(names[k], &n);
        CHECK(d != NULL);
        int refused = 0;
        for (size_t cut = 0; d && cut < n; cut += 1 + n / 97) {
            fp4rt_image img;
            fp4rt_status st = fp4rt_image_load_memory(d, cut, "prefix", NULL, &img);
            if (st != FP4RT_OK) {
                refused++;
                CHECK_MSG(strstr(fp4rt_last_error(), "prefix") && !strchr(fp4rt_last_error(), '\n'),
                          "%s", fp4rt_last_error());
            }
            fp4rt_image_free(&img);
        }
        CHECK_MSG(refused > 0, "%s: no prefix refused", names[k]);
        free(d);
    }

    /* JPEG Huffman tables declaring more than 256 codes: Debian's stb_image 2.27 writes
     * past its tables on them (upstream 2.28 refuses them); refused before stb reads the
     * header. One whole, one cut inside its DHT segment (found by fuzz_image). */
    uint8_t *jpg = slurp(DIR "orient6.jpg", &n);
    CHECK(jpg != NULL);
    for (size_t i = 2; jpg && i + 21 < n; i++) {
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) {
            jpg[i + 4 + 1 + 15] = 255; /* the first table's count of 16-bit codes */
            jpg[i + 4 + 1 + 14] = 255;
            expect_refused(write_tmp("dht.jpg", jpg, n), FP4RT_FORMAT, "DHT");
            expect_refused(write_tmp("dht_cut.jpg", jpg, i + 4 + 17), FP4RT_FORMAT, "DHT");
            break;
        }
    }
    free(jpg);
    expect_refused("tests/vision/fuzz_corpus/image/dht_truncated.jpg", FP4RT_FORMAT, "DHT");

    /* PNG bombs: dimensions refused from the header, before any decoding */
    n = png_header(b, 60000, 60000);
    expect_refused(write_tmp("bomb.png", b, n), FP4RT_UNSUPPORTED, "refused before decoding");
    n = png_header(b, 9000, 9000); /* 81 Mpx: over the default cap */
    expect_refused(write_tmp("bomb81.png", b, n), FP4RT_UNSUPPORTED, "more than the");
    n = png_header(b, 1u << 20, 4); /* a side beyond stb's 2^16 */
    expect_refused(write_tmp("wide.png", b, n), FP4RT_FORMAT, "corrupt or unsupported PNG header");
    {
        fp4rt_image img; /* a caller's own cap */
        n = png_header(b, 300, 300);
        fp4rt_image_load_params lp = {.max_pixels = 1000};
        CHECK(fp4rt_image_load_memory(b, n, "capped", &lp, &img) == FP4RT_UNSUPPORTED);
        CHECK(strstr(fp4rt_last_error(), "capped: 300x300 is 90000 pixels"));
    }
    n = png_header(b, 0, 5);
    expect_refused(write_tmp("zero.png", b, n), FP4RT_FORMAT, NULL);

    /* 1-pixel images and 1-pixel-wide ones; 2x2 is the smallest accepted */
    n = bmp(b, 1, 1);
    expect_refused(write_tmp("one.bmp", b, n), FP4RT_UNSUPPORTED, "at least 2 pixels");
    n = bmp(b, 40, 1);
    expect_refused(write_tmp("line.bmp", b, n), FP4RT_UNSUPPORTED, "at least 2 pixels");
    n = bmp(b, 2, 2);
    {
        fp4rt_image img;
        CHECK(fp4rt_image_load_memory(b, n, "two.bmp", NULL, &img) == FP4RT_OK);
        CHECK(img.width == 2 && img.height == 2 && img.rgb[0] == 10 && img.rgb[1] == 20 &&
              img.rgb[2] == 30);
        fp4rt_image_config cfg;
        fp4rt_image_config_default(&cfg);
        fp4rt_image_patches p;
        CHECK(fp4rt_image_preprocess(&img, &cfg, "two.bmp", &p) ==
              FP4RT_OK); /* upscaled to 256x256 */
        CHECK(p.grid_h == 16 && p.grid_w == 16 && p.patch_dim == 1536);
        CHECK(fabsf(p.data[0] - ((float)(10 / 255.0) - 0.5f) / 0.5f) == 0.0f);
        fp4rt_image_patches_free(&p);
        /* an aspect ratio over 200: the processor refuses it */
        fp4rt_image wide = {.width = 402, .height = 2, .rgb = calloc(402 * 2, 3)};
        CHECK(fp4rt_image_preprocess(&wide, &cfg, "wide.bmp", &p) == FP4RT_UNSUPPORTED);
        CHECK(strstr(fp4rt_last_error(), "wide.bmp") && strstr(fp4rt_last_error(), "aspect ratio"));
        CHECK(p.data == NULL);
        fp4rt_image_free(&wide);
        fp4rt_image_free(&img);
    }
    /* CMYK JPEG: stb_image converts it (as PIL does); test_image compares it with the processor */
    {
        fp4rt_image img;
        CHECK(fp4rt_image_load_file(DIR "cmyk.jpg", NULL, &img) == FP4RT_OK);
        fp4rt_image_free(&img);
    }
    fp4rt_image_free(NULL);
    fp4rt_image_patches_free(NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
    return test_summary("test_image_bad");
}
