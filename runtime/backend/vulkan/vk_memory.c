/* Vulkan memory: one allocation per buffer (the backend makes few, large
 * buffers: weights, the session parts, staging), memory types from an ordered
 * preference list, and transfers through one bounded host-visible staging
 * buffer (peak host memory for an upload: the staging size, not the tensor). */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdlib.h>

#include <string.h>

#define STAGING_BYTES ((VkDeviceSize)16 << 20)

static int pick_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->mem_props.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

fp4rt_status fp4rt_vk_buffer_create(vk_ctx *c, VkDeviceSize bytes, int host_visible, const char *what,
                                    fp4rt_buffer **out) {
    *out = NULL;
    fp4rt_buffer *b = fp4rt_calloc(1, sizeof *b, what);
    if (!b) return FP4RT_OUT_OF_MEMORY;
    b->bytes = bytes;
    b->what = what;
    if (bytes == 0) bytes = 4;
    bytes = (bytes + 3) & ~(VkDeviceSize)3;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    fp4rt_status st = fp4rt_vk_check(c->vt.vkCreateBuffer(c->dev, &bci, NULL, &b->buf), what);
    if (st) {
        free(b);
        return st;
    }
    VkMemoryRequirements req;
    c->vt.vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
    /* preference: device-local (falling back to any) for device buffers,
     * host-visible coherent (cached if possible) for staging */
    int type = host_visible
                   ? pick_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                          VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                                          VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                   : pick_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0)
        type = host_visible ? pick_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                                   VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
                            : pick_type(c, req.memoryTypeBits, 0);
    if (type < 0) {
        c->vt.vkDestroyBuffer(c->dev, b->buf, NULL);
        free(b);
        return fp4rt_fail(FP4RT_DEVICE, "vulkan: no memory type for %s", what);
    }
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                .memoryTypeIndex = (uint32_t)type};
    VkResult r = c->vt.vkAllocateMemory(c->dev, &mai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        c->vt.vkDestroyBuffer(c->dev, b->buf, NULL);
        free(b);
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "vulkan: allocating %llu bytes for %s failed: %s",
                          (unsigned long long)req.size, what, fp4rt_vk_result_name(r));
    }
    st = fp4rt_vk_check(c->vt.vkBindBufferMemory(c->dev, b->buf, b->mem, 0), what);
    if (!st && host_visible) st = fp4rt_vk_check(c->vt.vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->mapped), what);
    if (st) {
        fp4rt_vk_buffer_destroy(c, b);
        return st;
    }
    *out = b;
    return FP4RT_OK;
}

void fp4rt_vk_buffer_destroy(vk_ctx *c, fp4rt_buffer *b) {
    if (!b) return;
    c->replay.valid = 0; /* the recorded decode step may bind it */
    if (b->mapped) c->vt.vkUnmapMemory(c->dev, b->mem);
    if (b->buf) c->vt.vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) c->vt.vkFreeMemory(c->dev, b->mem, NULL);
    free(b);
}

static fp4rt_status ensure_staging(vk_ctx *c) {
    if (c->staging) return FP4RT_OK;
    return fp4rt_vk_buffer_create(c, STAGING_BYTES, 1, "staging buffer", &c->staging);
}

static fp4rt_status check_range(const fp4rt_buffer *b, VkDeviceSize off, size_t n, const char *op) {
    if (off > b->bytes || n > b->bytes - off)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "vulkan: %s of %zu bytes at %llu past the %llu-byte %s", op, n,
                          (unsigned long long)off, (unsigned long long)b->bytes, b->what);
    return FP4RT_OK;
}

/* Copies between a buffer and the staging buffer: one submission per piece. */
static fp4rt_status copy_piece(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, VkDeviceSize n, int to_device) {
    fp4rt_status st = fp4rt_vk_begin(c);
    if (st) return st;
    /* copies may be unaligned at the end: round n up within the buffers */
    VkBufferCopy r = {.srcOffset = to_device ? 0 : off, .dstOffset = to_device ? off : 0, .size = n};
    c->vt.vkCmdCopyBuffer(c->cmd, to_device ? c->staging->buf : b->buf, to_device ? b->buf : c->staging->buf, 1, &r);
    return fp4rt_vk_submit_wait(c);
}

fp4rt_status fp4rt_vk_upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *src, size_t n) {
    fp4rt_status st = check_range(b, off, n, "upload");
    if (!st) st = ensure_staging(c);
    for (size_t done = 0; !st && done < n;) {
        size_t k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        memcpy(c->staging->mapped, (const char *)src + done, k);
        st = copy_piece(c, b, off + done, k, 1);
        done += k;
    }
    return st;
}

fp4rt_status fp4rt_vk_upload_synth(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const fp4rt_weights *w,
                                   const void *ptr, size_t n, uint64_t seed) {
    fp4rt_status st = check_range(b, off, n, "upload");
    if (!st) st = ensure_staging(c);
    for (size_t done = 0; !st && done < n;) {
        size_t k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        fp4rt_weights_synth_bytes(w, (const char *)ptr + done, k, seed, c->staging->mapped);
        st = copy_piece(c, b, off + done, k, 1);
        done += k;
    }
    return st;
}

fp4rt_status fp4rt_vk_download(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, void *dst, size_t n) {
    fp4rt_status st = check_range(b, off, n, "download");
    if (!st) st = ensure_staging(c);
    for (size_t done = 0; !st && done < n;) {
        size_t k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        st = copy_piece(c, b, off + done, k, 0);
        if (!st) memcpy((char *)dst + done, c->staging->mapped, k);
        done += k;
    }
    return st;
}

fp4rt_status fp4rt_vk_record_copy(vk_ctx *c, fp4rt_buffer *dst, VkDeviceSize dst_off, fp4rt_buffer *src,
                                  VkDeviceSize src_off, size_t n) {
    fp4rt_status st = check_range(src, src_off, n, "copy source");
    if (!st) st = check_range(dst, dst_off, n, "copy destination");
    if (!st) st = fp4rt_vk_begin(c);
    if (st || !n) return st;
    VkBufferCopy r = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    c->vt.vkCmdCopyBuffer(c->cmd, src->buf, dst->buf, 1, &r);
    /* the copy before later dispatches and copies (they may overwrite its source) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    c->vt.vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                               NULL, 0, NULL);
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_copy(vk_ctx *c, fp4rt_buffer *dst, VkDeviceSize dst_off, fp4rt_buffer *src,
                           VkDeviceSize src_off, size_t n) {
    fp4rt_status st = fp4rt_vk_record_copy(c, dst, dst_off, src, src_off, n);
    return st ? st : fp4rt_vk_submit_wait(c);
}

fp4rt_status fp4rt_vk_fill_zero(vk_ctx *c, fp4rt_buffer *b) {
    fp4rt_status st = fp4rt_vk_begin(c);
    if (st) return st;
    c->vt.vkCmdFillBuffer(c->cmd, b->buf, 0, VK_WHOLE_SIZE, 0);
    return fp4rt_vk_submit_wait(c);
}
