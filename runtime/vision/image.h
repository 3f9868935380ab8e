/* Images in (issue 18): decoding and preprocessing exactly as the Hugging Face image
 * processor of Qwen3.5 / Qwen3.6 (Qwen2VLImageProcessor, preprocessor_config.json).
 * The math and its sources are in docs/MODEL.md, "Vision preprocessing".
 *
 * Layer 4.5 (runtime/vision/): above base and loader, below engine. Nothing here
 * keeps global state; every function is thread-safe on distinct outputs. Errors are
 * one line naming the image (its path, or the name given for bytes in memory), set
 * with fp4rt_fail and returned as a non-OK status; outputs are then zeroed. */
#ifndef FP4RT_VISION_IMAGE_H
#define FP4RT_VISION_IMAGE_H

#include "runtime/base/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default cap on the decoded pixels (width * height) of one image, checked from the
 * file's header before anything is decoded (a PNG "bomb" declares 100k x 100k in a
 * few hundred bytes). 64 Mpx: 4x the largest image Qwen3.5's processor keeps
 * (16,777,216 px); larger photos are refused rather than decoded into 256+ MB. */
#define FP4RT_IMAGE_MAX_PIXELS_DEFAULT ((int64_t)64 * 1024 * 1024)
/* Files larger than this are refused before reading (bytes). */
#define FP4RT_IMAGE_MAX_FILE_BYTES ((size_t)256 * 1024 * 1024)

/* A decoded image: 8-bit RGB, rows top to bottom, EXIF orientation applied, alpha
 * composited onto white. rgb is owned (free with fp4rt_image_free). */
typedef struct fp4rt_image {
    int width, height;
    uint8_t *rgb; /* [height, width, 3] */
} fp4rt_image;

/* Zero value = defaults. */
typedef struct fp4rt_image_load_params {
    int64_t
        max_pixels; /* cap on width * height before decoding; 0: FP4RT_IMAGE_MAX_PIXELS_DEFAULT */
} fp4rt_image_load_params;

/* Decodes PNG, JPEG (baseline and progressive; EXIF orientation applied), BMP or the
 * first frame of a GIF, from a file or from encoded bytes in memory (name: how
 * errors call it; NULL means "image"). Refused, with a one-line error naming the
 * image: a missing file or a directory (IO), an unknown / truncated / corrupt
 * encoding (FORMAT), more pixels than params->max_pixels or a side under 2 pixels
 * (UNSUPPORTED / FORMAT). params may be NULL. On failure *out is zeroed. */
fp4rt_status fp4rt_image_load_file(const char *path, const fp4rt_image_load_params *params,
                                   fp4rt_image *out);
fp4rt_status fp4rt_image_load_memory(const void *data, size_t size, const char *name,
                                     const fp4rt_image_load_params *params, fp4rt_image *out);
void fp4rt_image_free(fp4rt_image *img); /* NULL-safe; leaves *img zeroed */

/* The EXIF orientation (1..8) of a JPEG's APP1 "Exif" segment; 1 when the data is
 * not a JPEG, has no EXIF block, or the tag is missing, malformed or out of range
 * (like PIL.ImageOps.exif_transpose, a bad tag is ignored). Reads only within
 * [data, data + size). */
int fp4rt_image_jpeg_orientation(const uint8_t *data, size_t size);

/* 0 when a JPEG's Huffman tables (DHT segments, before or between scans) declare more
 * than 256 codes or overrun their segment; 1 otherwise (also for non-JPEG data or a
 * truncated stream, which the decoder reports). Debian's stb_image 2.27 writes past
 * its 256-entry tables on such input (fixed upstream in 2.28: "bad DHT header"), so
 * fp4rt_image_load_* refuses it before decoding. */
int fp4rt_image_jpeg_dht_ok(const uint8_t *data, size_t size);

/* Applies EXIF orientation o (2..8; 1 or anything else: a copy) to an RGB image into
 * *out, as PIL.ImageOps.exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
 * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise. */
fp4rt_status fp4rt_image_orient(const fp4rt_image *in, int orientation, fp4rt_image *out);

/* preprocessor_config.json, the fields this processor reads. */
typedef struct fp4rt_image_config {
    int64_t min_pixels;      /* size.shortest_edge (or legacy min_pixels) */
    int64_t max_pixels;      /* size.longest_edge (or legacy max_pixels) */
    int patch_size;          /* spatial patch side, pixels */
    int temporal_patch_size; /* copies of a still image along time */
    int merge_size;          /* spatial merge of the vision merger */
    float image_mean[3], image_std[3];
    double rescale_factor; /* 1/255 */
    bool do_resize, do_rescale, do_normalize;
} fp4rt_image_config;

/* The Qwen3.5 / Qwen3.6 values (shortest_edge 65536, longest_edge 16777216, patch 16,
 * temporal 2, merge 2, mean = std = 0.5, rescale 1/255, all steps on). */
void fp4rt_image_config_default(fp4rt_image_config *cfg);
/* Parses a preprocessor_config.json text (or a processor_config.json whose
 * "image_processor" object holds the fields); absent fields keep the transformers
 * class defaults (Qwen2VLImageProcessor's: 56*56 / 28*28*1280 px, patch 14, CLIP
 * mean / std). Refused (FORMAT / UNSUPPORTED, naming `name` and the key): a wrong
 * type, a non-positive size, a zero std, a resample other than 3 (bicubic),
 * do_convert_rgb false. */
fp4rt_status fp4rt_image_config_parse(const char *json, size_t len, const char *name,
                                      fp4rt_image_config *cfg);
/* Reads dir/preprocessor_config.json, else dir/processor_config.json; neither:
 * FP4RT_IO naming dir (callers may then use the defaults). */
fp4rt_status fp4rt_image_config_load(const char *dir, fp4rt_image_config *cfg);

/* smart_resize (transformers.models.qwen2_vl): the target size, multiples of
 * patch_size * merge_size, aspect kept, area within [min_pixels, max_pixels], in the
 * reference's double arithmetic (Python round() is half-to-even: rint()). Refused
 * (UNSUPPORTED, naming `name`): an aspect ratio over 200, or a result of 0 pixels or
 * one whose patch count overflows int. */
fp4rt_status fp4rt_image_smart_resize(int height, int width, const fp4rt_image_config *cfg,
                                      const char *name, int *out_height, int *out_width);

/* PIL's Image.resize(..., BICUBIC) of an RGB image, bit for bit: two 1-D passes,
 * a = -0.5 kernel stretched by the scale on downscaling,
 * coefficients in 22-bit fixed point, each pass rounded and clamped to uint8
 * (Pillow src/libImaging/Resample.c), the passes in Pillow 13.0's order (vertical
 * first when the height shrinks by more than twice what the width loses). Same
 * size: a copy. */
fp4rt_status fp4rt_image_resize_bicubic(const fp4rt_image *in, int width, int height,
                                        fp4rt_image *out);

/* The processor's output for one image. */
typedef struct fp4rt_image_patches {
    int grid_t, grid_h, grid_w; /* image_grid_thw: 1, resized height / patch, width / patch */
    int64_t n_patches;          /* grid_t * grid_h * grid_w */
    int patch_dim;              /* 3 * temporal_patch_size * patch_size^2 */
    float *data;                /* [n_patches, patch_dim], owned */
} fp4rt_image_patches;

/* smart_resize + bicubic resize + rescale + normalize + patchify, as
 * Qwen2VLImageProcessor(Pil)._preprocess: row r = (bh, bw, mh, mw) with
 * h = bh*merge + mh, w = bw*merge + mw in patches; within a row [c][t][py][px], the
 * still image repeated over t. On failure *out is zeroed. */
fp4rt_status fp4rt_image_preprocess(const fp4rt_image *img, const fp4rt_image_config *cfg,
                                    const char *name, fp4rt_image_patches *out);
void fp4rt_image_patches_free(fp4rt_image_patches *p); /* NULL-safe; leaves *p zeroed */

#endif
