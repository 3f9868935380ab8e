/* smart_resize, rescale, normalize, patchify (image.h): transformers'
 * Qwen2VLImageProcessor(Pil) for one still image. docs/MODEL.md, "Vision
 * preprocessing", has the math and its sources. */
#include "runtime/vision/image.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The largest resized image accepted (pixels): far above any real limit
 * (Qwen3.5: 16,777,216) but keeps every buffer size and patch count in range. */
#define RESIZED_PIXELS_MAX ((int64_t)1 << 28)

void fp4rt_image_patches_free(fp4rt_image_patches *p) {
    if (!p) return;
    free(p->data);
    memset(p, 0, sizeof *p);
}

fp4rt_status fp4rt_image_smart_resize(int height, int width, const fp4rt_image_config *cfg,
                                      const char *name, int *out_height, int *out_width) {
    *out_height = *out_width = 0;
    if (!name) name = "image";
    if (height < 1 || width < 1)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: %dx%d image", name, width, height);
    const double factor = (double)cfg->patch_size * cfg->merge_size;
    const double h = height, w = width;
    double ratio = (h > w ? h : w) / (h < w ? h : w);
    if (ratio > 200)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: %dx%d has an aspect ratio of %.1f; the processor allows at most 200",
                          name, width, height, ratio);
    /* Python round() is half-to-even, as rint() in the default rounding mode */
    double h_bar = rint(h / factor) * factor, w_bar = rint(w / factor) * factor;
    const double mn = (double)cfg->min_pixels, mx = (double)cfg->max_pixels;
    if (h_bar * w_bar > mx) {
        double beta = sqrt((h * w) / mx);
        h_bar = fmax(factor, floor(h / beta / factor) * factor);
        w_bar = fmax(factor, floor(w / beta / factor) * factor);
    } else if (h_bar * w_bar < mn) {
        double beta = sqrt(mn / (h * w));
        h_bar = ceil(h * beta / factor) * factor;
        w_bar = ceil(w * beta / factor) * factor;
    }
    if (!(h_bar >= factor && w_bar >= factor) || h_bar * w_bar > (double)RESIZED_PIXELS_MAX)
        return fp4rt_fail(
            FP4RT_UNSUPPORTED,
            "%s: %dx%d resizes to %.0fx%.0f pixels (min_pixels %lld, max_pixels %lld)", name, width,
            height, w_bar, h_bar, (long long)cfg->min_pixels, (long long)cfg->max_pixels);
    *out_height = (int)h_bar;
    *out_width = (int)w_bar;
    return FP4RT_OK;
}

/* Rescale then normalize one channel value, in the reference's types: rescale in
 * float64 then cast to float32 (np_rescale), normalize in float32 (np_normalize). */
static float pixel_value(uint8_t v, int c, const fp4rt_image_config *cfg) {
    float x = cfg->do_rescale ? (float)((double)v * cfg->rescale_factor) : (float)v;
    if (cfg->do_normalize) x = (x - cfg->image_mean[c]) / cfg->image_std[c];
    return x;
}

fp4rt_status fp4rt_image_preprocess(const fp4rt_image *img, const fp4rt_image_config *cfg,
                                    const char *name, fp4rt_image_patches *out) {
    memset(out, 0, sizeof *out);
    if (!name) name = "image";
    if (!img || !img->rgb || img->width < 1 || img->height < 1)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: no decoded image", name);
    const int P = cfg->patch_size, M = cfg->merge_size, T = cfg->temporal_patch_size;
    if (P < 1 || M < 1 || T < 1 || P > 1024 || M > 64 || T > 64)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "%s: patch_size %d, merge_size %d, temporal_patch_size %d", name, P, M,
                          T);
    int rh = img->height, rw = img->width;
    fp4rt_status st;
    if (cfg->do_resize) {
        if ((st = fp4rt_image_smart_resize(img->height, img->width, cfg, name, &rh, &rw)) !=
            FP4RT_OK)
            return st;
    } else if (rh % (P * M) || rw % (P * M)) {
        return fp4rt_fail(
            FP4RT_UNSUPPORTED,
            "%s: %dx%d is not a multiple of patch_size * merge_size = %d and do_resize "
            "is false",
            name, rw, rh, P * M);
    }
    fp4rt_image resized = {0};
    const fp4rt_image *src = img;
    if (rh != img->height || rw != img->width) {
        if ((st = fp4rt_image_resize_bicubic(img, rw, rh, &resized)) != FP4RT_OK)
            return fp4rt_fail_context(st, "%s", name);
        src = &resized;
    }
    const int gh = rh / P, gw = rw / P;
    const int64_t n = (int64_t)gh * gw;
    const int dim = 3 * T * P * P;
    float *data = fp4rt_malloc((size_t)n * dim * sizeof(float), name);
    if (!data) {
        fp4rt_image_free(&resized);
        return FP4RT_OUT_OF_MEMORY;
    }
    /* rows in (bh, bw, mh, mw) order; row contents [c][t][py][px] */
    int64_t r = 0;
    for (int bh = 0; bh < gh / M; bh++)
        for (int bw = 0; bw < gw / M; bw++)
            for (int mh = 0; mh < M; mh++)
                for (int mw = 0; mw < M; mw++, r++) {
                    const int y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
                    float *row = data + (size_t)r * dim;
                    for (int c = 0; c < 3; c++) {
                        float *plane = row + (size_t)c * T * P * P;
                        for (int py = 0; py < P; py++)
                            for (int px = 0; px < P; px++)
                                plane[py * P + px] = pixel_value(
                                    src->rgb[((size_t)(y0 + py) * rw + x0 + px) * 3 + c], c, cfg);
                        for (int t = 1; t < T; t++)
                            memcpy(plane + (size_t)t * P * P, plane, sizeof(float) * P * P);
                    }
                }
    fp4rt_image_free(&resized);
    out->grid_t = 1;
    out->grid_h = gh;
    out->grid_w = gw;
    out->n_patches = n;
    out->patch_dim = dim;
    out->data = data;
    return FP4RT_OK;
}
