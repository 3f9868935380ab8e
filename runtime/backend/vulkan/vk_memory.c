/* Vulkan memory: one allocation per buffer (the backend makes few, large
 * buffers: weights, the session parts, staging), or per part of a split buffer
 * (fp4rt_vk_buffer_create_split: several VkBuffers, each within the device's
 * allocation limits, split at multiples of a granule no binding crosses),
 * memory types from an ordered
 * preference list, and transfers through one bounded host-visible staging
 * buffer (peak host memory for an upload: the staging size, not the tensor).
 * Uploads use its two halves in turn, each with its own command buffer and
 * fence, so the host fills one half while the device copies the other. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#define STAGING_MAX ((VkDeviceSize)16 << 20)
/* The staging buffer's size: 16 MiB, or less under a smaller allocation limit
 * (a multiple of 64: its halves keep 32-byte alignment). */
#define STAGING_BYTES (c->max_alloc < STAGING_MAX ? c->max_alloc / 64 * 64 : STAGING_MAX)

static int pick_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->mem_props.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

/* "1.50 GiB", "12.0 MiB" or "4096 bytes". */
static const char *human(VkDeviceSize n, char buf[32]) {
    if (n >= (VkDeviceSize)1 << 30)
        snprintf(buf, 32, "%.2f GiB", n / 1073741824.0);
    else if (n >= (VkDeviceSize)1 << 20)
        snprintf(buf, 32, "%.1f MiB", n / 1048576.0);
    else
        snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
    return buf;
}

/* One VkBuffer of `bytes` on its own allocation (mapped when host_visible). */
static fp4rt_status create_one(vk_ctx *c, VkDeviceSize bytes, int host_visible, const char *what, VkBuffer *buf,
                               VkDeviceMemory *mem, void **mapped) {
    if (bytes == 0) bytes = 4;
    bytes = (bytes + 3) & ~(VkDeviceSize)3;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    fp4rt_status st = fp4rt_vk_check(c->vt.vkCreateBuffer(c->dev, &bci, NULL, buf), what);
    if (st) return st;
    VkMemoryRequirements req;
    c->vt.vkGetBufferMemoryRequirements(c->dev, *buf, &req);
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
    if (type < 0) return fp4rt_fail(FP4RT_DEVICE, "vulkan: no memory type for %s", what);
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                .memoryTypeIndex = (uint32_t)type};
    VkResult r = c->vt.vkAllocateMemory(c->dev, &mai, NULL, mem);
    if (r != VK_SUCCESS) {
        *mem = VK_NULL_HANDLE;
        char sz[32];
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "vulkan: allocating %s for %s failed: %s (device %d)",
                          human(req.size, sz), what, fp4rt_vk_result_name(r), c->index);
    }
    st = fp4rt_vk_check(c->vt.vkBindBufferMemory(c->dev, *buf, *mem, 0), what);
    if (!st && host_visible) st = fp4rt_vk_check(c->vt.vkMapMemory(c->dev, *mem, 0, VK_WHOLE_SIZE, 0, mapped), what);
    return st;
}

fp4rt_status fp4rt_vk_buffer_create_split(vk_ctx *c, VkDeviceSize bytes, VkDeviceSize granule, int host_visible,
                                          const char *what, fp4rt_buffer **out) {
    *out = NULL;
    VkDeviceSize part = bytes ? bytes : 4;
    if (part > c->max_alloc) {
        if (!granule || host_visible || granule > c->max_alloc)
        {
            char need[32], lim[32];
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY,
                              "vulkan: %s needs %s in one buffer, over device %d's limit of %s "
                              "(maxMemoryAllocationSize, maxBufferSize%s)",
                              what, human(granule > c->max_alloc ? granule : bytes, need), c->index,
                              human(c->max_alloc, lim), c->max_alloc_knob ? ", FP4RT_VK_MAX_ALLOC" : "");
        }
        part = c->max_alloc / granule * granule;
    }
    int n = (int)((bytes + part - 1) / part);
    if (n < 1) n = 1;
    fp4rt_buffer *b = fp4rt_calloc(1, sizeof *b, what);
    VkBuffer *bufs = b ? fp4rt_calloc((size_t)n, sizeof *bufs, what) : NULL;
    VkDeviceMemory *mems = bufs ? fp4rt_calloc((size_t)n, sizeof *mems, what) : NULL;
    if (!mems) {
        free(bufs);
        free(b);
        return FP4RT_OUT_OF_MEMORY;
    }
    *b = (fp4rt_buffer){.bytes = bytes, .what = what, .n_parts = n, .part_bytes = part, .parts = bufs,
                        .part_mems = mems};
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && i < n; i++) {
        VkDeviceSize k = i < n - 1 ? part : bytes - (VkDeviceSize)i * part;
        st = create_one(c, k, host_visible, what, &bufs[i], &mems[i], i == 0 ? &b->mapped : NULL);
    }
    b->buf = bufs[0];
    b->mem = mems[0];
    if (st) {
        fp4rt_vk_buffer_destroy(c, b);
        return st;
    }
    *out = b;
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_buffer_create(vk_ctx *c, VkDeviceSize bytes, int host_visible, const char *what,
                                    fp4rt_buffer **out) {
    return fp4rt_vk_buffer_create_split(c, bytes, 0, host_visible, what, out);
}

void fp4rt_vk_buffer_destroy(vk_ctx *c, fp4rt_buffer *b) {
    if (!b) return;
    if (c->lost == 1) { /* a timed-out submission may still use it: wait for the driver to finish or give up */
        c->vt.vkDeviceWaitIdle(c->dev);
        c->lost = 2;
    }
    c->replay.valid = 0; /* the recorded decode step may bind it */
    if (b->mapped) c->vt.vkUnmapMemory(c->dev, b->mem);
    for (int i = 0; i < b->n_parts; i++) {
        if (b->parts[i]) c->vt.vkDestroyBuffer(c->dev, b->parts[i], NULL);
        if (b->part_mems[i]) c->vt.vkFreeMemory(c->dev, b->part_mems[i], NULL);
    }
    free(b->parts);
    free(b->part_mems);
    free(b);
}

fp4rt_status fp4rt_vk_memory_check(vk_ctx *c, VkDeviceSize bytes, const char *what) {
    if (!fp4rt_vk_has_device_ext(c->pdev, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) return FP4RT_OK;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                             .pNext = &budget};
    vkGetPhysicalDeviceMemoryProperties2(c->pdev, &mp2);
    VkDeviceSize best = 0, heap = 0;
    for (uint32_t i = 0; i < mp2.memoryProperties.memoryHeapCount; i++) {
        if (!(mp2.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)) continue;
        VkDeviceSize free_b = budget.heapBudget[i] > budget.heapUsage[i] ? budget.heapBudget[i] - budget.heapUsage[i] : 0;
        if (free_b > best) {
            best = free_b;
            heap = mp2.memoryProperties.memoryHeaps[i].size;
        }
    }
    if (best && bytes > best)
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY,
                          "vulkan: %s need %.2f GiB of device memory; device %d has %.2f GiB available (budget of "
                          "its %.2f GiB heap)",
                          what, bytes / 1073741824.0, c->index, best / 1073741824.0, heap / 1073741824.0);
    return FP4RT_OK;
}

VkBuffer fp4rt_vk_part(const fp4rt_buffer *b, VkDeviceSize off, VkDeviceSize *rel, VkDeviceSize *left) {
    int i = b->n_parts > 1 ? (int)(off / b->part_bytes) : 0;
    if (i >= b->n_parts) i = b->n_parts - 1;
    VkDeviceSize start = (VkDeviceSize)i * b->part_bytes;
    *rel = off - start;
    if (left) *left = (i < b->n_parts - 1 ? b->part_bytes : b->bytes - start) - *rel;
    return b->parts[i];
}

void fp4rt_vk_cmd_copy(vk_ctx *c, VkCommandBuffer cb, const fp4rt_buffer *dst, VkDeviceSize dst_off,
                       const fp4rt_buffer *src, VkDeviceSize src_off, VkDeviceSize n) {
    if (cb == c->cmd) fp4rt_vk_hazard_flush(c); /* after the dispatches it may depend on */
    while (n > 0) {
        VkDeviceSize so, sl, d_o, dl;
        VkBuffer sb = fp4rt_vk_part(src, src_off, &so, &sl), db = fp4rt_vk_part(dst, dst_off, &d_o, &dl);
        VkDeviceSize k = n < sl ? n : sl;
        if (dl < k) k = dl;
        VkBufferCopy r = {.srcOffset = so, .dstOffset = d_o, .size = k};
        c->vt.vkCmdCopyBuffer(cb, sb, db, 1, &r);
        src_off += k;
        dst_off += k;
        n -= k;
    }
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
    if (!c->recording) fp4rt_vk_set_work(c, "the %s of %s", to_device ? "upload" : "download", b->what);
    fp4rt_status st = fp4rt_vk_begin(c);
    if (st) return st;
    if (to_device)
        fp4rt_vk_cmd_copy(c, c->cmd, b, off, c->staging, 0, n);
    else
        fp4rt_vk_cmd_copy(c, c->cmd, c->staging, 0, b, off, n);
    return fp4rt_vk_submit_wait(c);
}

/* Writes k bytes of the source, from byte `done` on, to dst. */
typedef struct upload_src {
    void (*fill)(const struct upload_src *s, size_t done, size_t k, void *dst);
    const void *data;
    const fp4rt_weights *w; /* synthetic weights: their generator and seed */
    uint64_t seed;
    /* rows permuted to the decode layout (fill_wlayout): the source's own fill,
     * the rows' size and groups, groups per block, two rows of scratch */
    void (*inner)(const struct upload_src *s, size_t done, size_t k, void *dst);
    size_t row_bytes;
    uint32_t G, B;
    uint8_t *row_in, *row_out;
} upload_src;

static void fill_copy(const upload_src *s, size_t done, size_t k, void *dst) {
    memcpy(dst, (const char *)s->data + done, k);
}

static void fill_synth(const upload_src *s, size_t done, size_t k, void *dst) {
    fp4rt_weights_synth_bytes(s->w, (const char *)s->data + done, k, s->seed, dst);
}

/* The destination bytes [done, done + k) of rows in the decode layout: each row
 * the source touches is read whole (s->inner), permuted, and the part inside
 * the range written (rows that straddle a staging piece are permuted twice). */
static void fill_wlayout(const upload_src *s, size_t done, size_t k, void *dst) {
    size_t rb = s->row_bytes;
    for (size_t pos = done; pos < done + k;) {
        size_t row = pos / rb, in = pos - row * rb, m = rb - in;
        if (m > done + k - pos) m = done + k - pos;
        s->inner(s, row * rb, rb, s->row_in);
        if (m == rb) {
            fp4rt_vk_wlayout_row(s->row_in, (uint8_t *)dst + (pos - done), s->G, s->B);
        } else {
            fp4rt_vk_wlayout_row(s->row_in, s->row_out, s->G, s->B);
            memcpy((uint8_t *)dst + (pos - done), s->row_out + in, m);
        }
        pos += m;
    }
}

/* One half's copy: staging[half] -> b[off, off + k), submitted with its fence. */
static fp4rt_status submit_half(vk_ctx *c, int half, fp4rt_buffer *b, VkDeviceSize off, VkDeviceSize k) {
    VkCommandBuffer cb = c->cmd_xfer[half];
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    fp4rt_status st = fp4rt_vk_result(c, c->vt.vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer");
    if (!st) st = fp4rt_vk_result(c, c->vt.vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    if (st) return st;
    /* earlier submissions' writes to b before this copy writes it */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT};
    c->vt.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                               NULL, 0, NULL);
    fp4rt_vk_cmd_copy(c, cb, b, off, c->staging, (VkDeviceSize)half * (STAGING_BYTES / 2), k);
    st = fp4rt_vk_result(c, c->vt.vkEndCommandBuffer(cb), "vkEndCommandBuffer");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    if (!st) st = fp4rt_vk_result(c, c->vt.vkQueueSubmit(c->queue, 1, &si, c->xfer_fence[half]), "vkQueueSubmit");
    return st;
}

/* n bytes of src to b at off, in pieces of half the staging buffer, the two
 * halves in turn; returns when every copy has finished. While a step is being
 * recorded the pieces go into that recording instead (one piece at a time). */
static fp4rt_status upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, size_t n, const upload_src *src) {
    fp4rt_status st = check_range(b, off, n, "upload");
    if (!st) st = ensure_staging(c);
    if (!st && c->lost) st = fp4rt_fail(FP4RT_DEVICE, "vulkan: device %d was lost or hung earlier: free the model "
                                                      "and load it again", c->index);
    if (st) return st;
    if (c->recording) {
        for (size_t done = 0; !st && done < n;) {
            size_t k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
            src->fill(src, done, k, c->staging->mapped);
            st = copy_piece(c, b, off + done, k, 1);
            done += k;
        }
        return st;
    }
    const size_t piece = STAGING_BYTES / 2;
    int pending[2] = {0, 0}, half = 0;
    fp4rt_vk_set_work(c, "the upload of %s", b->what);
    for (size_t done = 0; !st && done < n; half ^= 1) {
        if (pending[half]) { /* the copy out of this half has finished before it is refilled */
            pending[half] = 0;
            st = fp4rt_vk_wait_fence(c, c->xfer_fence[half]);
            if (st) break;
        }
        size_t k = n - done < piece ? n - done : piece;
        src->fill(src, done, k, (char *)c->staging->mapped + (size_t)half * piece);
        st = submit_half(c, half, b, off + done, k);
        if (!st) pending[half] = 1;
        done += k;
    }
    for (int h = 0; h < 2; h++) /* also after a failure: no copy may still read the staging buffer */
        if (pending[h] && !c->lost) {
            fp4rt_status w = fp4rt_vk_wait_fence(c, c->xfer_fence[h]);
            if (!st) st = w;
        }
    c->work[0] = 0;
    return st;
}

fp4rt_status fp4rt_vk_upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *src, size_t n) {
    upload_src s = {.fill = fill_copy, .data = src};
    return upload(c, b, off, n, &s);
}

fp4rt_status fp4rt_vk_upload_wlayout(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *ptr, size_t n,
                                     size_t row_bytes, uint32_t G, uint32_t B, const fp4rt_weights *w,
                                     uint64_t seed) {
    if (!row_bytes || n % row_bytes || row_bytes != (size_t)G * 64 / B)
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: decode layout of %zu bytes in rows of %zu (%u groups)", n,
                          row_bytes, G);
    uint8_t *rows = fp4rt_malloc(2 * row_bytes, "a weight row");
    if (!rows) return FP4RT_OUT_OF_MEMORY;
    upload_src s = {.fill = fill_wlayout, .data = ptr, .w = w, .seed = seed, .inner = w ? fill_synth : fill_copy,
                    .row_bytes = row_bytes, .G = G, .B = B, .row_in = rows, .row_out = rows + row_bytes};
    fp4rt_status st = upload(c, b, off, n, &s);
    free(rows);
    return st;
}

fp4rt_status fp4rt_vk_upload_synth(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const fp4rt_weights *w,
                                   const void *ptr, size_t n, uint64_t seed) {
    upload_src s = {.fill = fill_synth, .data = ptr, .w = w, .seed = seed};
    return upload(c, b, off, n, &s);
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
    fp4rt_vk_cmd_copy(c, c->cmd, dst, dst_off, src, src_off, n);
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
    fp4rt_vk_hazard_flush(c);
    for (int i = 0; i < b->n_parts; i++) c->vt.vkCmdFillBuffer(c->cmd, b->parts[i], 0, VK_WHOLE_SIZE, 0);
    return fp4rt_vk_submit_wait(c);
}
