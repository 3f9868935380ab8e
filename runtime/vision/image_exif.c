/* EXIF orientation of JPEG files (stb_image ignores it) and the eight transposes
 * PIL.ImageOps.exif_transpose applies. The parser reads only within the buffer it is
 * given: every offset is checked against the segment before it is used. */
#include "runtime/vision/image.h"

#include <stdlib.h>
#include <string.h>

static unsigned rd16(const uint8_t *p, int le) {
    return le ? p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | p[1];
}
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The orientation tag of a TIFF block (the body of an "Exif\0\0" APP1 segment):
 * IFD0's tag 0x0112, SHORT or LONG, count 1; 1 if absent or malformed. */
static int tiff_orientation(const uint8_t *t, size_t n) {
    if (n < 8) return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return 1;
    if (rd16(t + 2, le) != 42) return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = rd16(t + ifd, le);
    size_t entries = (size_t)ifd + 2;
    for (unsigned i = 0; i < count; i++) {
        size_t e = entries + (size_t)i * 12;
        if (e > n || n - e < 12) return 1;
        if (rd16(t + e, le) != 0x0112) continue;
        unsigned type = rd16(t + e + 2, le);
        uint32_t cnt = rd32(t + e + 4, le);
        if (cnt != 1) return 1;
        uint32_t v;
        if (type == 3)
            v = rd16(t + e + 8, le); /* SHORT: first two bytes of the value field */
        else if (type == 4)
            v = rd32(t + e + 8, le);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int fp4rt_image_jpeg_orientation(const uint8_t *d, size_t n) {
    if (!d || n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 1;
    size_t p = 2;
    while (p + 4 <= n) {
        if (d[p] != 0xFF) return 1; /* not at a marker: stop (PIL would too) */
        uint8_t m = d[p + 1];
        if (m == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { /* no length */
            p += 2;
            continue;
        }
        if (m == 0xDA || m == 0xD9) return 1;          /* start of scan / end: no EXIF before it */
        size_t len = (size_t)d[p + 2] << 8 | d[p + 3]; /* includes its own two bytes */
        if (len < 2 || len > n - p - 2) return 1;
        const uint8_t *seg = d + p + 4;
        size_t seg_n = len - 2;
        /* the first APP1 "Exif" block counts (PIL keeps the first one) */
        if (m == 0xE1 && seg_n >= 6 && memcmp(seg, "Exif\0\0", 6) == 0)
            return tiff_orientation(seg + 6, seg_n - 6);
        p += 2 + len;
    }
    return 1;
}

int fp4rt_image_jpeg_dht_ok(const uint8_t *d, size_t n) {
    if (!d || n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 1;
    size_t p = 2;
    while (p + 2 <= n) {
        if (d[p] != 0xFF) { /* entropy-coded data after a scan: find the next marker */
            p++;
            continue;
        }
        uint8_t m = d[p + 1];
        if (m == 0xFF || m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 || m == 0xD8) {
            p += m == 0xFF ? 1 : 2; /* fill byte, stuffed zero, restart marker, TEM, SOI */
            continue;
        }
        if (m == 0xD9) return 1; /* EOI */
        if (p + 4 > n) return 1;
        size_t len = (size_t)d[p + 2] << 8 | d[p + 3];
        if (len < 2) return 1; /* stb reports it */
        if (m == 0xC4) {
            /* DHT: tables of 1 + 16 + sum(counts) bytes. stb reads a truncated segment
             * as zeros past the end of the data, so only the bytes present count. */
            size_t at = p + 4, end = p + 2 + len;
            while (at < end && at < n) {
                size_t sum = 0;
                for (size_t i = at + 1; i <= at + 16 && i < n; i++)
                    sum += d[i];
                if (sum > 256 || at + 17 + sum > end) return 0;
                at += 17 + sum;
            }
        }
        if (len > n - p - 2) return 1; /* truncated: stb reports it */
        p += 2 + len; /* after SOS the scan data follows: the loop skips to the next marker */
    }
    return 1;
}

fp4rt_status fp4rt_image_orient(const fp4rt_image *in, int o, fp4rt_image *out) {
    memset(out, 0, sizeof *out);
    const int W = in->width, H = in->height;
    const int swap = o >= 5 && o <= 8;
    const int ow = swap ? H : W, oh = swap ? W : H;
    uint8_t *dst = fp4rt_malloc((size_t)W * H * 3, "oriented image");
    if (!dst) return FP4RT_OUT_OF_MEMORY;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int sx, sy; /* out(x, y) = in(sx, sy) */
            switch (o) {
            case 2:
                sx = W - 1 - x;
                sy = y;
                break; /* FLIP_LEFT_RIGHT */
            case 3:
                sx = W - 1 - x;
                sy = H - 1 - y;
                break; /* ROTATE_180 */
            case 4:
                sx = x;
                sy = H - 1 - y;
                break; /* FLIP_TOP_BOTTOM */
            case 5:
                sx = y;
                sy = x;
                break; /* TRANSPOSE */
            case 6:
                sx = y;
                sy = H - 1 - x;
                break; /* ROTATE_270 (90 clockwise) */
            case 7:
                sx = W - 1 - y;
                sy = H - 1 - x;
                break; /* TRANSVERSE */
            case 8:
                sx = W - 1 - y;
                sy = x;
                break; /* ROTATE_90 (counter-clockwise) */
            default:
                sx = x;
                sy = y;
                break;
            }
            memcpy(dst + ((size_t)y * ow + x) * 3, in->rgb + ((size_t)sy * W + sx) * 3, 3);
        }
    }
    out->width = ow;
    out->height = oh;
    out->rgb = dst;
    return FP4RT_OK;
}
