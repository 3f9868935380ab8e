/* Vulkan greedy pick on the device (shaders/argmax.comp): the token id of a
 * logits row is computed where the logits are, so a decode step downloads one
 * id instead of [vocab] floats. The valid-id mask is uploaded once per mask
 * (bit per id); the picks land in a small host-visible buffer, one slot per
 * row of a verify step (FP4RT_DECODE_ROWS_MAX). */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t n, l_off, has_mask, o_off;
} pc_argmax;
_Static_assert(sizeof(pc_argmax) == 16, "pc_argmax mirrors argmax.comp");

#define PICK_SLOT_BYTES 8 /* (id, NaN seen) */

fp4rt_status fp4rt_vk_argmax_prepare(vk_ctx *c, const uint8_t *valid, int n) {
    fp4rt_status st = FP4RT_OK;
    if (!c->pick) {
        st = fp4rt_vk_buffer_create(c, PICK_SLOT_BYTES * FP4RT_DECODE_ROWS_MAX, 1, "greedy picks", &c->pick);
        if (st) return st;
    }
    if (!valid || (c->mask && c->mask_host == valid && c->mask_n == n)) return FP4RT_OK;
    size_t words = ((size_t)n + 31) / 32;
    uint32_t *bits = fp4rt_calloc(words, 4, "valid-id mask");
    if (!bits) return FP4RT_OUT_OF_MEMORY;
    for (int i = 0; i < n; i++)
        if (valid[i]) bits[i >> 5] |= 1u << (i & 31);
    fp4rt_vk_buffer_destroy(c, c->mask);
    c->mask = NULL;
    c->replay.valid = 0; /* a recorded decode step bound the old mask buffer */
    c->mask_host = NULL;
    st = fp4rt_vk_buffer_create(c, words * 4, 0, "valid-id mask", &c->mask);
    if (!st) st = fp4rt_vk_upload(c, c->mask, 0, bits, words * 4);
    free(bits);
    if (st) return st;
    c->mask_host = valid;
    c->mask_n = n;
    c->mask_version++;
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_rec_argmax(vk_ctx *c, const fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                                 int slot) {
    if (valid && (c->mask_host != valid || c->mask_n < n)) /* a mask of more ids covers the first n */
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: the valid-id mask was not prepared");
    if (slot < 0 || slot >= FP4RT_DECODE_ROWS_MAX)
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: greedy pick slot %d outside 0 .. %d", slot,
                          FP4RT_DECODE_ROWS_MAX - 1);
    vk_bind b[3] = {{0}};
    VkDeviceSize skew = 0, oskew = 0;
    fp4rt_status st = fp4rt_vk_window(c, logits, (VkDeviceSize)offset * 4, (VkDeviceSize)n * 4, "a logits row",
                                      &b[0], &skew);
    if (!st && valid) st = fp4rt_vk_window(c, c->mask, 0, c->mask->bytes, "the valid-id mask", &b[1], NULL);
    if (!st)
        st = fp4rt_vk_window(c, c->pick, (VkDeviceSize)slot * PICK_SLOT_BYTES, PICK_SLOT_BYTES, "the greedy pick",
                             &b[2], &oskew);
    if (st) return st;
    pc_argmax pc = {.n = (uint32_t)n,
                    .l_off = (uint32_t)(skew / 4),
                    .has_mask = valid ? 1u : 0u,
                    .o_off = (uint32_t)(oskew / 4)};
    return fp4rt_vk_dispatch(c, FP4RT_VK_SHADER_ARGMAX, b, 3, &pc, sizeof pc, 1, 1, 1);
}

int32_t fp4rt_vk_pick_result(const vk_ctx *c, int slot) {
    const uint32_t *o = (const uint32_t *)c->pick->mapped + (size_t)slot * (PICK_SLOT_BYTES / 4);
    return o[1] ? -1 : (int32_t)o[0];
}

fp4rt_status fp4rt_vk_argmax(void *vc, fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                             int32_t *out) {
    vk_ctx *c = vc;
    *out = -1;
    if (n < 1) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "argmax of %d logits", n);
    c->mask_host = NULL; /* the caller may have changed the mask in place: upload it again */
    fp4rt_status st = fp4rt_vk_argmax_prepare(c, valid, n);
    if (!st) st = fp4rt_vk_begin(c);
    if (!st) st = fp4rt_vk_rec_argmax(c, logits, offset, n, valid, 0);
    if (st) {
        fp4rt_vk_abandon(c);
        return st;
    }
    st = fp4rt_vk_submit_wait(c);
    if (!st) *out = fp4rt_vk_pick_result(c, 0);
    return st;
}
