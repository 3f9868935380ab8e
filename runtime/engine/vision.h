/* The vision tower on the model's device (issue 18; the math: docs/MODEL.md
 * "Vision encoder"): one preprocessed image (runtime/vision's fp4rt_image_patches)
 * in, its merged embeddings (the rows its <|image_pad|> tokens take) out.
 *
 * Backend contexts: the encoder and the merger programs each get a backend context
 * of their own on the model's device, created on the first image (a context is
 * prepared for one program, as the MTP head's); steps run under the model's run
 * lock. The activation buffers are allocated per image and freed after it. */
#ifndef FP4RT_ENGINE_VISION_H
#define FP4RT_ENGINE_VISION_H

#include "runtime/engine/model.h"
#include "runtime/vision/image.h"

/* Larger images than FP4RT_VISION_MAX_PATCHES (program.h) are refused, one line
 * naming their size, before anything is allocated. */

/* The merged vision embeddings of one preprocessed image (runtime/vision's
 * fp4rt_image_patches): n_tokens = grid_t * (grid_h / merge) * (grid_w / merge)
 * rows of text hidden size, in the order the <|image_pad|> tokens take them. */
typedef struct fp4rt_vision_embeds {
    int n_tokens;
    int grid_t, grid_h, grid_w; /* the patch grid (image_grid_thw), before merging */
    int merge;                  /* spatial_merge_size */
    int hidden;                 /* text hidden size */
    float *data;                /* [n_tokens * hidden], owned */
} fp4rt_vision_embeds;

/* 1 when the model has a vision tower (config.json vision_config and the
 * checkpoint's model.visual.* tensors). */
int fp4rt_model_has_vision(const fp4rt_model *m);
/* Runs the encoder and the merger on one image, in the numerics mode `exact`
 * (fp4rt_session_params.exact of the session the embeddings are for: 1 the exact
 * mode, 0 the default; FP4RT_EXACT=1 forces 1). INVALID_ARGUMENT (one line): no
 * vision tower, NULL arguments, a patch size or grid that does not match the
 * model's vision_config (patch_dim, grid_h / grid_w multiples of merge);
 * UNSUPPORTED: more than FP4RT_VISION_MAX_PATCHES patches or more than the
 * device's largest step. On failure *out is zeroed. Thread-safe (the run lock). */
fp4rt_status fp4rt_vision_encode(fp4rt_model *m, const fp4rt_image_patches *patches, int exact,
                                 fp4rt_vision_embeds *out);
void fp4rt_vision_embeds_free(fp4rt_vision_embeds *e); /* NULL-safe; leaves *e zeroed */

/* Host side of the encoder's inputs (exposed for tests): for row r of an image of
 * grid (grid_h, grid_w) patches in the processor's order (merge blocks), its patch
 * coordinates (*h, *w), and its position embedding [hidden]: the bilinear
 * interpolation (align_corners) of the learned table [side, side, hidden] at
 * (h * (side - 1) / (grid_h - 1), w * (side - 1) / (grid_w - 1)), in FP32 as
 * transformers' get_vision_interpolation_indices_and_weights. */
void fp4rt_vision_row_hw(int r, int grid_h, int grid_w, int merge, int *h, int *w);
void fp4rt_vision_pos_embed(const float *table, int side, int hidden, int grid_h, int grid_w, int h, int w,
                            float *out);

#endif
