/* Vulkan top-k on the device (backend.h top_k, shaders/topk.comp): the k best
 * candidates of a logits row, so a sampled decode step downloads k pairs
 * instead of [vocab] floats. Levels of one dispatch each: level 0 takes slices
 * of TOPK_SLICE ids and keeps k of each, every later level keeps k of each
 * TOPK_SLICE candidates, until one workgroup is left; its k pairs land in a
 * small host-visible buffer. The valid-id mask is shared with the greedy pick
 * (vk_sample.c) and uploaded again when its bytes change (compared with a host
 * copy); the penalty list goes through a host-visible buffer. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOPK_SLICE 1024u /* S of topk.comp */
#define TOPK_NAN_ID 0xfffffffeu

typedef struct {
    uint32_t n, level, k, src_off, dst_off, has_mask, n_pen;
    float temperature, rep, presence, frequency;
} pc_topk;
_Static_assert(sizeof(pc_topk) == 44, "pc_topk mirrors topk.comp");
_Static_assert(sizeof(fp4rt_topk_penalty) == 8, "the penalty list is uploaded as (id, count) uvec2");

static int normal_positive(float x) { return isnormal(x) && x > 0; }

/* Checks a request against the contract of backend.h (UNSUPPORTED: outside
 * what the device does; INVALID_ARGUMENT: a malformed penalty list). */
static fp4rt_status check_request(int n, const fp4rt_topk_request *r) {
    if (n < 1) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "top-k of %d logits", n);
    if (r->k < 1 || r->k > FP4RT_TOPK_MAX || r->k > n)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "device top-k: k = %d (1 .. %d and at most %d)", r->k, FP4RT_TOPK_MAX, n);
    if (!normal_positive(r->temperature) || !normal_positive(r->repetition_penalty))
        return fp4rt_fail(FP4RT_UNSUPPORTED, "device top-k: temperature %g, repetition penalty %g (need positive normal)",
                          (double)r->temperature, (double)r->repetition_penalty);
    if (r->n_pen < 0 || (r->n_pen > 0 && !r->pen))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "device top-k: penalty list of %d entries", r->n_pen);
    for (int i = 0; i < r->n_pen; i++)
        if (r->pen[i].id < 0 || r->pen[i].id >= n || (i && r->pen[i].id <= r->pen[i - 1].id) || r->pen[i].count < 0)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                              "device top-k: penalty entry %d (id %d, count %d) is not ascending in [0, %d)", i,
                              r->pen[i].id, r->pen[i].count, n);
    return FP4RT_OK;
}

/* Host-visible (*b) of at least `bytes`, kept between calls. */
static fp4rt_status ensure_host(vk_ctx *c, fp4rt_buffer **b, VkDeviceSize bytes, const char *what) {
    if (*b && (*b)->bytes >= bytes) return FP4RT_OK;
    fp4rt_vk_buffer_destroy(c, *b);
    *b = NULL;
    return fp4rt_vk_buffer_create(c, bytes, 1, what, b);
}

static VkDeviceSize align_up(VkDeviceSize x, VkDeviceSize a) { return (x + a - 1) / a * a; }

static fp4rt_status record(vk_ctx *c, const fp4rt_buffer *logits, size_t offset, uint32_t n,
                           const fp4rt_topk_request *r, VkDeviceSize half) {
    pc_topk pc = {.n = n, .k = (uint32_t)r->k, .has_mask = r->valid ? 1u : 0u, .n_pen = (uint32_t)r->n_pen,
                  .temperature = r->temperature, .rep = r->repetition_penalty,
                  .presence = r->presence_penalty, .frequency = r->frequency_penalty};
    int src_half = -1; /* -1: the logits */
    for (uint32_t level = 0;; level++) {
        uint32_t groups = (pc.n + TOPK_SLICE - 1) / TOPK_SLICE, k = pc.k;
        int last = groups == 1, dst_half = src_half == 0 ? 1 : 0;
        vk_bind b[4] = {{0}};
        VkDeviceSize skew = 0;
        fp4rt_status st;
        if (src_half < 0) {
            st = fp4rt_vk_window(c, logits, (VkDeviceSize)offset * 4, (VkDeviceSize)n * 4, "a logits row", &b[0],
                                 &skew);
            if (!st && r->valid) st = fp4rt_vk_window(c, c->mask, 0, c->mask->bytes, "the valid-id mask", &b[1], NULL);
            if (!st && r->n_pen) st = fp4rt_vk_window(c, c->topk_pen, 0, (VkDeviceSize)r->n_pen * 8, "the penalty list",
                                                      &b[2], NULL);
        } else {
            st = fp4rt_vk_window(c, c->topk_work, src_half * half, (VkDeviceSize)pc.n * 8, "top-k candidates", &b[0],
                                 &skew);
        }
        if (st) return st;
        pc.level = level;
        pc.src_off = (uint32_t)(skew / 4);
        skew = 0;
        if (last) st = fp4rt_vk_window(c, c->topk_out, 0, (VkDeviceSize)k * 8, "the top-k result", &b[3], &skew);
        else st = fp4rt_vk_window(c, c->topk_work, dst_half * half, (VkDeviceSize)groups * k * 8, "top-k candidates",
                                  &b[3], &skew);
        if (st) return st;
        pc.dst_off = (uint32_t)(skew / 4);
        st = fp4rt_vk_dispatch(c, FP4RT_VK_SHADER_TOPK, b, 4, &pc, sizeof pc, groups, 1, 1);
        if (st || last) return st;
        pc.n = groups * k;
        src_half = dst_half;
    }
}

fp4rt_status fp4rt_vk_top_k(void *vc, fp4rt_buffer *logits, size_t offset, int n, const fp4rt_topk_request *r,
                            float *vals, int32_t *ids) {
    vk_ctx *c = vc;
    ids[0] = -1;
    fp4rt_status st = check_request(n, r);
    if (st) return st;
    if ((size_t)offset + (size_t)n > logits->bytes / 4)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "top-k of %d logits at %zu: past the end of %s", n, offset,
                          logits->what);
    /* level 0 writes the most candidates: groups * k pairs per half */
    uint32_t groups = ((uint32_t)n + TOPK_SLICE - 1) / TOPK_SLICE;
    VkDeviceSize half = align_up((VkDeviceSize)groups * (VkDeviceSize)r->k * 8, c->align);
    if (groups > 1 && (!c->topk_work || c->topk_work->bytes < 2 * half)) {
        fp4rt_vk_buffer_destroy(c, c->topk_work);
        c->topk_work = NULL;
        /* sized for the largest k once, so a k change does not reallocate */
        VkDeviceSize full = align_up((VkDeviceSize)groups * FP4RT_TOPK_MAX * 8, c->align);
        st = fp4rt_vk_buffer_create(c, 2 * (full > half ? full : half), 0, "top-k candidates", &c->topk_work);
        if (st) return st;
    }
    st = ensure_host(c, &c->topk_out, FP4RT_TOPK_MAX * 8, "top-k result");
    if (!st && r->n_pen) st = ensure_host(c, &c->topk_pen, (VkDeviceSize)r->n_pen * 8, "penalty list");
    if (!st && r->valid && (c->mask_host != r->valid || c->mask_n != n || !c->topk_mask ||
                            c->topk_mask_version != c->mask_version || memcmp(c->topk_mask, r->valid, (size_t)n))) {
        /* the mask changed (or is another one): upload it, keep a copy to compare with */
        c->mask_host = NULL;
        free(c->topk_mask);
        c->topk_mask = fp4rt_malloc((size_t)n, "valid-id mask copy");
        if (!c->topk_mask) return FP4RT_OUT_OF_MEMORY;
        memcpy(c->topk_mask, r->valid, (size_t)n);
    }
    if (!st) st = fp4rt_vk_argmax_prepare(c, r->valid, n);
    if (st) return st;
    c->topk_mask_version = c->mask_version;
    if (r->n_pen) memcpy(c->topk_pen->mapped, r->pen, (size_t)r->n_pen * 8);
    st = fp4rt_vk_begin(c);
    if (!st) st = record(c, logits, offset, (uint32_t)n, r, half);
    if (st) {
        fp4rt_vk_abandon(c);
        return st;
    }
    st = fp4rt_vk_submit_wait(c);
    if (st) return st;
    const uint32_t *o = c->topk_out->mapped;
    if (o[1] == TOPK_NAN_ID) return FP4RT_OK; /* ids[0] = -1: a NaN */
    for (int i = 0; i < r->k; i++) {
        uint32_t v = o[2 * i];
        memcpy(&vals[i], &v, 4);
        ids[i] = (int32_t)o[2 * i + 1];
    }
    return FP4RT_OK;
}
