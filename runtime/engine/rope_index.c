/* M-RoPE positions (rope_index.h): transformers' get_rope_index for one sequence. */
#include "runtime/engine/rope_index.h"

#include <stdio.h>

int64_t fp4rt_image_span_tokens(const fp4rt_image_span *im) {
    if (im->merge < 1 || im->grid_t < 1 || im->grid_h < im->merge || im->grid_w < im->merge ||
        im->grid_h % im->merge || im->grid_w % im->merge)
        return -1;
    int64_t n = (int64_t)im->grid_t * (im->grid_h / im->merge) * (im->grid_w / im->merge);
    return n > INT32_MAX ? -1 : n;
}

/* "image 3" or the caller's name of image k, for messages. */
static const char *name_of(const char *const *what, int k, char *buf, size_t cap) {
    if (what && what[k]) return what[k];
    snprintf(buf, cap, "image %d", k + 1);
    return buf;
}

fp4rt_status fp4rt_rope_index(const int32_t *tokens, int n, int32_t image_pad_id, const fp4rt_image_span *images,
                              int n_images, const char *const *what, int start_pos, int32_t *positions,
                              int *next_pos) {
    char nb[32];
    int64_t p = start_pos;
    int k = 0; /* the next image */
    for (int i = 0; i < n;) {
        if (tokens[i] != image_pad_id) { /* text: all three components together */
            positions[i * 3 + 0] = positions[i * 3 + 1] = positions[i * 3 + 2] = (int32_t)p;
            p++, i++;
            continue;
        }
        int j = i;
        while (j < n && tokens[j] == image_pad_id) j++;
        if (k >= n_images)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "the prompt has more <|image_pad|> runs than the %d image%s given (run %d at token %d)",
                              n_images, n_images == 1 ? "" : "s", k + 1, i);
        const fp4rt_image_span *im = &images[k];
        int64_t want = fp4rt_image_span_tokens(im);
        if (want < 0)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: patch grid %dx%dx%d is not a multiple of the merge size %d",
                              name_of(what, k, nb, sizeof nb), im->grid_t, im->grid_h, im->grid_w, im->merge);
        if (want != j - i)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "%s: takes %lld <|image_pad|> tokens but the prompt has a run of %d at token %d",
                              name_of(what, k, nb, sizeof nb), (long long)want, j - i, i);
        int gh = im->grid_h / im->merge, gw = im->grid_w / im->merge;
        int r = i;
        for (int ti = 0; ti < im->grid_t; ti++)
            for (int hi = 0; hi < gh; hi++)
                for (int wi = 0; wi < gw; wi++, r++) {
                    positions[r * 3 + 0] = (int32_t)(p + ti);
                    positions[r * 3 + 1] = (int32_t)(p + hi);
                    positions[r * 3 + 2] = (int32_t)(p + wi);
                }
        p += gh > gw ? gh : gw;
        k++;
        i = j;
    }
    if (k < n_images)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s has no <|image_pad|> run in the prompt (%d run%s for %d images)",
                          name_of(what, k, nb, sizeof nb), k, k == 1 ? "" : "s", n_images);
    if (p > INT32_MAX) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "rope positions overflow (position %lld)", (long long)p);
    *next_pos = (int)p;
    return FP4RT_OK;
}
