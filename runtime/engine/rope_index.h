/* M-RoPE positions of a token sequence with images (issue 18), as transformers'
 * Qwen3_5Model.get_rope_index (models/qwen3_5/modeling_qwen3_5.py) computes them
 * for one sequence, engine internal.
 *
 * The sequence is split into runs: a maximal run of image_pad tokens is one image
 * (the template puts <|vision_start|> and <|vision_end|> around each, which are
 * text), everything else is text. With p the position the run starts at:
 *   text of length L: row r gets (p + r, p + r, p + r); p += L
 *   an image of patch grid (t, h, w) with spatial merge m, H = h / m, W = w / m:
 *     its t * H * W rows, in (ti, hi, wi) order (wi fastest), get
 *     (p + ti, p + hi, p + wi); p += max(H, W)
 * (get_vision_position_ids with temp_merge_size 1; transformers advances p by
 * max(H, W) whatever t: for a still image t = 1, so that is max + 1). The first
 * run starts at start_pos (0 for a fresh sequence; a session continues at
 * n_past + rope_delta). rope_delta = (the position after the sequence) - (the
 * cache index after it), transformers' mrope_position_deltas (which is
 * max + 1 - length for a sequence starting at 0). */
#ifndef FP4RT_ENGINE_ROPE_INDEX_H
#define FP4RT_ENGINE_ROPE_INDEX_H

#include "runtime/base/common.h"

#include <stdint.h>

/* One image of a prompt: its patch grid before merging (image_grid_thw) and the
 * vision tower's spatial merge; embeds: its n = t * (h / m) * (w / m) rows of text
 * hidden size (the vision embeddings, in the order the pads take them), or NULL
 * where only positions are wanted. */
typedef struct fp4rt_image_span {
    int grid_t, grid_h, grid_w, merge;
    const float *embeds;
} fp4rt_image_span;

/* Tokens the image takes: t * (h / m) * (w / m); -1 for a grid that is not a
 * positive multiple of m (or overflows). */
int64_t fp4rt_image_span_tokens(const fp4rt_image_span *im);

/* Positions of tokens[0 .. n) into positions[n * 3] ((t, h, w) per row), the
 * k-th run of image_pad tokens being images[k], the first run starting at
 * start_pos; *next_pos gets the position after the sequence (a session keeps
 * rope_delta = *next_pos - its cache index after the sequence). Refused with one line (INVALID_ARGUMENT,
 * naming `what[k]` for image k when what is given, else "image k + 1"): more pad
 * runs than images or fewer, a run whose length is not that image's token count,
 * a bad grid. */
fp4rt_status fp4rt_rope_index(const int32_t *tokens, int n, int32_t image_pad_id, const fp4rt_image_span *images,
                              int n_images, const char *const *what, int start_pos, int32_t *positions,
                              int *next_pos);

#endif
