/* Decoding (image.h): read the bytes, check the header's size against the pixel cap,
 * decode with stb_image to RGBA, composite onto white, apply the EXIF orientation. */
#include "runtime/vision/image.h"
#include "runtime/vision/image_stb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void fp4rt_image_free(fp4rt_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* PIL.Image.alpha_composite(white, src).convert("RGB") per channel (Pillow
 * src/libImaging/AlphaComposite.c with an opaque white destination, where
 * outa255 = 255 * 255 so coef1 = a * 128, coef2 = (255 - a) * 128; checked equal to
 * PIL for all 256 x 256 (value, alpha) pairs). Alpha 255 gives the value itself. */
static uint8_t over_white(unsigned v, unsigned a) {
    uint32_t t = v * a * 128u + 255u * (255u - a) * 128u + (0x80u << 7);
    return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}

/* The format named by the file's magic bytes, or NULL. */
static const char *format_of(const uint8_t *d, size_t n) {
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return "JPEG";
    if (n >= 4 && memcmp(d, "GIF8", 4) == 0) return "GIF";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "BMP";
    return NULL;
}

static int is_jpeg(const uint8_t *d, size_t n) {
    return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
}

fp4rt_status fp4rt_image_load_memory(const void *data, size_t size, const char *name,
                                     const fp4rt_image_load_params *params, fp4rt_image *out) {
    memset(out, 0, sizeof *out);
    if (!name) name = "image";
    if (!data || size == 0) return fp4rt_fail(FP4RT_FORMAT, "%s: empty image (0 bytes)", name);
    if (size > FP4RT_IMAGE_MAX_FILE_BYTES)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: %zu bytes, more than the %zu an image may have",
                          name, size, FP4RT_IMAGE_MAX_FILE_BYTES);
    int64_t cap =
        params && params->max_pixels > 0 ? params->max_pixels : FP4RT_IMAGE_MAX_PIXELS_DEFAULT;
    const uint8_t *d = data;
    const char *fmt = format_of(d, size);
    if (!fmt) return fp4rt_fail(FP4RT_FORMAT, "%s: not a PNG, JPEG, BMP or GIF file", name);
    /* a PNG's declared size straight from IHDR: stb_image refuses some huge headers
     * itself, with a vaguer reason */
    if (fmt[1] == 'N' && size >= 24 && memcmp(d + 12, "IHDR", 4) == 0) {
        uint32_t pw = (uint32_t)d[16] << 24 | (uint32_t)d[17] << 16 | (uint32_t)d[18] << 8 | d[19];
        uint32_t ph = (uint32_t)d[20] << 24 | (uint32_t)d[21] << 16 | (uint32_t)d[22] << 8 | d[23];
        if ((uint64_t)pw * ph > (uint64_t)cap)
            return fp4rt_fail(
                FP4RT_UNSUPPORTED,
                "%s: %ux%u is %llu pixels, more than the %lld allowed (refused before "
                "decoding)",
                name, pw, ph, (unsigned long long)pw * ph, (long long)cap);
    }
    /* before stb reads any header: its JPEG header scan builds the tables */
    if (fmt[0] == 'J' && !fp4rt_image_jpeg_dht_ok(d, size))
        return fp4rt_fail(FP4RT_FORMAT, "%s: corrupt JPEG Huffman table (DHT segment)", name);
    int w = 0, h = 0, comp = 0;
    if (!fp4rt_stb_info(d, size, &w, &h, &comp))
        return fp4rt_fail(FP4RT_FORMAT, "%s: corrupt or unsupported %s header (%s)", name, fmt,
                          fp4rt_stb_reason());
    if (w <= 0 || h <= 0)
        return fp4rt_fail(FP4RT_FORMAT, "%s: the header declares %dx%d pixels", name, w, h);
    if ((int64_t)w * h > cap)
        return fp4rt_fail(
            FP4RT_UNSUPPORTED,
            "%s: %dx%d is %lld pixels, more than the %lld allowed (refused before decoding)", name,
            w, h, (long long)w * h, (long long)cap);
    if (w < 2 || h < 2)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: %dx%d pixels; an image needs at least 2 pixels on each side", name,
                          w, h);

    int dw = 0, dh = 0;
    /* A 16-bit grayscale PNG (IHDR bit depth 16, colour type 0) is PIL mode "I;16",
     * whose convert("RGB") clips each value to 255 (stb would keep the high byte). */
    if (fmt[1] == 'N' && size >= 26 && d[24] == 16 && d[25] == 0) {
        uint16_t *g = fp4rt_stb_decode_gray16(d, size, &dw, &dh);
        if (!g) {
            const char *why = fp4rt_stb_reason();
            return fp4rt_fail(strcmp(why, "outofmem") == 0 ? FP4RT_OUT_OF_MEMORY : FP4RT_FORMAT,
                              "%s: cannot decode %dx%d 16-bit PNG image: %s", name, w, h, why);
        }
        fp4rt_image img = {.width = dw, .height = dh, .rgb = NULL};
        if (dw == w && dh == h) img.rgb = fp4rt_malloc((size_t)w * h * 3, name);
        for (size_t i = 0; img.rgb && i < (size_t)w * h; i++)
            img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] =
                (uint8_t)(g[i] > 255 ? 255 : g[i]);
        fp4rt_stb_free(g);
        if (!img.rgb)
            return dw != w || dh != h
                       ? fp4rt_fail(FP4RT_FORMAT, "%s: decoded %dx%d, the header said %dx%d", name,
                                    dw, dh, w, h)
                       : FP4RT_OUT_OF_MEMORY;
        *out = img;
        return FP4RT_OK;
    }
    uint8_t *rgba = fp4rt_stb_decode_rgba(d, size, &dw, &dh);
    if (!rgba) {
        const char *why = fp4rt_stb_reason();
        return fp4rt_fail(strcmp(why, "outofmem") == 0 ? FP4RT_OUT_OF_MEMORY : FP4RT_FORMAT,
                          "%s: cannot decode %dx%d %s image: %s", name, w, h, fmt, why);
    }
    if (dw != w || dh != h) {
        fp4rt_stb_free(rgba);
        return fp4rt_fail(FP4RT_FORMAT, "%s: decoded %dx%d, the header said %dx%d", name, dw, dh, w,
                          h);
    }
    fp4rt_image img = {.width = w, .height = h, .rgb = fp4rt_malloc((size_t)w * h * 3, name)};
    if (!img.rgb) {
        fp4rt_stb_free(rgba);
        return FP4RT_OUT_OF_MEMORY;
    }
    for (size_t i = 0, n = (size_t)w * h; i < n; i++) {
        const uint8_t *s = rgba + 4 * i;
        for (int c = 0; c < 3; c++)
            img.rgb[3 * i + c] = over_white(s[c], s[3]);
    }
    fp4rt_stb_free(rgba);

    int o = is_jpeg(d, size) ? fp4rt_image_jpeg_orientation(d, size) : 1;
    if (o == 1) {
        *out = img;
        return FP4RT_OK;
    }
    fp4rt_status st = fp4rt_image_orient(&img, o, out);
    fp4rt_image_free(&img);
    return st;
}

fp4rt_status fp4rt_image_load_file(const char *path, const fp4rt_image_load_params *params,
                                   fp4rt_image *out) {
    memset(out, 0, sizeof *out);
    if (!path) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "image path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fp4rt_fail(FP4RT_IO, "%s: cannot open image: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return fp4rt_fail(FP4RT_IO, "%s: is a directory, not an image file", path);
    if (!S_ISREG(sb.st_mode)) return fp4rt_fail(FP4RT_IO, "%s: not a regular file", path);
    char *buf = NULL;
    size_t len = 0;
    fp4rt_status st = fp4rt_read_file(path, FP4RT_IMAGE_MAX_FILE_BYTES, &buf, &len);
    if (st != FP4RT_OK) return st;
    st = fp4rt_image_load_memory(buf, len, path, params, out);
    free(buf);
    return st;
}
