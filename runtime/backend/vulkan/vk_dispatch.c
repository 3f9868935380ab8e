/* Vulkan recording: a primary command buffer (one-shot, or the replayable
 * decode step), begun, filled with dispatches (a compute-to-compute barrier
 * before a dispatch only where it reads what an earlier dispatch since the
 * last barrier wrote, or writes what one read or wrote: vk_hazards, with the
 * written bindings of each kernel read from its SPIR-V; FP4RT_VK_FULL_BARRIERS=1
 * puts one after every dispatch), submitted and waited
 * for -- with a finite timeout: a submission that does not finish in
 * FP4RT_VK_FENCE_TIMEOUT_MS, or a lost device, is one error naming the work, and
 * the context refuses every later submission (vk_ctx.lost). Bindings are push descriptors over
 * explicit windows of buffers (never VK_WHOLE_SIZE), each checked against
 * maxStorageBufferRange. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static fp4rt_status lost_error(const vk_ctx *c) {
    return fp4rt_fail(FP4RT_DEVICE, "vulkan: device %d was lost or hung earlier: free the model and load it again",
                      c->index);
}

fp4rt_status fp4rt_vk_result(vk_ctx *c, VkResult r, const char *what) {
    if (r == VK_ERROR_DEVICE_LOST) {
        c->lost = 1;
        return fp4rt_fail(FP4RT_DEVICE,
                          "vulkan: device %d was lost during %s (%s): the driver reset it after a GPU fault, a hang or "
                          "running out of memory; free the model and load it again",
                          c->index, c->work[0] ? c->work : "a submission", what);
    }
    return fp4rt_vk_check(r, what);
}

void fp4rt_vk_set_work(vk_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->work, sizeof c->work, fmt, ap);
    va_end(ap);
}

/* FP4RT_VK_FENCE_TIMEOUT_MS, else 2 minutes on a GPU and an hour on a software
 * device (lavapipe runs a large prefill step for minutes on a loaded CPU). */
static uint64_t fence_timeout_ns(const vk_ctx *c) {
    long long ms = fp4rt_env_int(FP4RT_ENV_VK_FENCE_TIMEOUT_MS);
    if (ms <= 0) ms = c->desc.software ? 3600000 : 120000;
    return (uint64_t)ms * 1000000u;
}

fp4rt_status fp4rt_vk_wait_fence(vk_ctx *c, VkFence f) {
    uint64_t ns = fence_timeout_ns(c);
    VkResult r = c->vt.vkWaitForFences(c->dev, 1, &f, VK_TRUE, ns);
    if (r == VK_TIMEOUT) {
        c->lost = 1;
        return fp4rt_fail(FP4RT_DEVICE,
                          "vulkan: %s did not finish within %.3g s on device %d (a GPU hang? FP4RT_VK_FENCE_TIMEOUT_MS "
                          "sets the limit); the device is given up: free the model and load it again",
                          c->work[0] ? c->work : "a submission", ns / 1e9, c->index);
    }
    fp4rt_status st = fp4rt_vk_result(c, r, "vkWaitForFences");
    if (!st) st = fp4rt_vk_result(c, c->vt.vkResetFences(c->dev, 1, &f), "vkResetFences");
    return st;
}

/* The barrier every ordering uses: shader and transfer writes before later
 * shader and transfer reads and writes. */
static void barrier(vk_ctx *c) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    c->vt.vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                               NULL, 0, NULL);
    c->hz.nw = c->hz.nr = 0;
    c->hz.barriers++;
}

void fp4rt_vk_hazard_flush(vk_ctx *c) {
    if (c->recording && (c->hz.nw || c->hz.nr)) barrier(c);
}

static int overlaps(const vk_range *set, int n, const vk_range *x) {
    for (int i = 0; i < n; i++)
        if (set[i].b == x->b && set[i].lo < x->hi && x->lo < set[i].hi) return 1;
    return 0;
}

/* Orders a dispatch with bindings x[0, n) (written: bit i of writes) after the
 * dispatches since the last barrier; then records its ranges. */
static void order_dispatch(vk_ctx *c, const vk_range *x, int n, uint32_t writes) {
    vk_hazards *h = &c->hz;
    int conflict = h->nw + n > VK_HAZARD_MAX || h->nr + n > VK_HAZARD_MAX;
    for (int i = 0; !conflict && i < n; i++)
        conflict = overlaps(h->w, h->nw, &x[i]) || ((writes >> i & 1) && overlaps(h->r, h->nr, &x[i]));
    if (conflict) barrier(c);
    for (int i = 0; i < n; i++) {
        if (writes >> i & 1)
            h->w[h->nw++] = x[i];
        else
            h->r[h->nr++] = x[i];
    }
}

static fp4rt_status begin_into(vk_ctx *c, VkCommandBuffer cb, VkCommandBufferUsageFlags flags) {
    if (c->lost) return lost_error(c);
    c->hz = (vk_hazards){0};
    c->full_barriers = fp4rt_env_bool(FP4RT_ENV_VK_FULL_BARRIERS);
    fp4rt_status st = fp4rt_vk_check(c->vt.vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, .flags = flags};
    if (!st) st = fp4rt_vk_check(c->vt.vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    if (st) return st;
    c->cmd = cb;
    c->recording = 1;
    /* work of earlier submissions (uploads, steps) before anything recorded here */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT};
    c->vt.vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1,
                               &mb, 0, NULL, 0, NULL);
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_begin(vk_ctx *c) {
    if (c->recording) return FP4RT_OK;
    return begin_into(c, c->cmd_once, VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT);
}

fp4rt_status fp4rt_vk_begin_step(vk_ctx *c) {
    if (c->recording) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: a step is recorded while recording");
    c->replay.valid = 0;
    return begin_into(c, c->cmd_step, 0);
}

void fp4rt_vk_abandon(vk_ctx *c) {
    if (!c->recording) return;
    c->vt.vkEndCommandBuffer(c->cmd);
    c->recording = 0;
    if (c->cmd == c->cmd_step) c->replay.valid = 0;
}

static fp4rt_status submit_wait(vk_ctx *c, VkCommandBuffer cb) {
    if (c->lost) return lost_error(c);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    fp4rt_status st = fp4rt_vk_result(c, c->vt.vkQueueSubmit(c->queue, 1, &si, c->fence), "vkQueueSubmit");
    if (!st) st = fp4rt_vk_wait_fence(c, c->fence);
    c->work[0] = 0;
    return st;
}

fp4rt_status fp4rt_vk_submit_wait(vk_ctx *c) {
    if (!c->recording) return FP4RT_OK;
    c->recording = 0;
    /* make transfers and shader writes visible to the host */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    c->vt.vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    fp4rt_status st = fp4rt_vk_check(c->vt.vkEndCommandBuffer(c->cmd), "vkEndCommandBuffer");
    if (st) {
        if (c->cmd == c->cmd_step) c->replay.valid = 0;
        return st;
    }
    return submit_wait(c, c->cmd);
}

fp4rt_status fp4rt_vk_replay_step(vk_ctx *c) {
    if (c->recording || !c->replay.valid)
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: no recorded step to replay");
    return submit_wait(c, c->cmd_step);
}

void fp4rt_vk_timestamp(vk_ctx *c, uint32_t q) {
    c->vt.vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->prof.pool, q);
}

fp4rt_status fp4rt_vk_window(const vk_ctx *c, const fp4rt_buffer *b, VkDeviceSize offset, VkDeviceSize bytes,
                             const char *what, vk_bind *out, VkDeviceSize *skew) {
    /* within the part holding offset (split buffers: fp4rt_vk_buffer_create_split) */
    VkDeviceSize rel, left;
    fp4rt_vk_part(b, offset, &rel, &left);
    if (bytes > left)
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s: a %llu-byte binding at %llu crosses a part of the split %s",
                          what, (unsigned long long)bytes, (unsigned long long)offset, b->what);
    VkDeviceSize part0 = offset - rel;
    VkDeviceSize start = part0 + rel / c->align * c->align;
    VkDeviceSize range = (offset - start + bytes + 3) & ~(VkDeviceSize)3;
    VkDeviceSize cap = part0 + ((rel + left + 3) & ~(VkDeviceSize)3);
    if (start + range > cap) range = cap - start;
    if (range > c->max_range)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: %s needs a %llu-byte binding, over this device's maxStorageBufferRange of %llu "
                          "(binding it in pieces is not implemented for this tensor yet)",
                          what, (unsigned long long)range, (unsigned long long)c->max_range);
    *out = (vk_bind){b, start, range ? range : 4};
    if (skew) *skew = offset - start;
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_dispatch(vk_ctx *c, vk_kernel k, const vk_bind *binds, int n_binds, const void *push,
                               size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0) return FP4RT_OK;
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    if (gx > lim->maxComputeWorkGroupCount[0] || gy > lim->maxComputeWorkGroupCount[1] ||
        gz > lim->maxComputeWorkGroupCount[2])
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: dispatch of %ux%ux%u workgroups exceeds the device limit", gx,
                          gy, gz);
    VkPipeline pipe;
    fp4rt_status st = fp4rt_vk_pipeline_get(c, k, &pipe);
    if (!st) st = fp4rt_vk_begin(c);
    if (st) return st;
    VkDescriptorBufferInfo bi[FP4RT_VK_MAX_BINDINGS + 1];
    VkWriteDescriptorSet w[FP4RT_VK_MAX_BINDINGS + 1];
    for (int i = 0; i <= FP4RT_VK_MAX_BINDINGS; i++) {
        if (i == FP4RT_VK_STEP_BINDING)
            bi[i] = (VkDescriptorBufferInfo){c->step_info->buf, 0, sizeof(vk_step_info)};
        else if (i < n_binds && binds[i].b) {
            VkDeviceSize rel; /* the window lies within one part (fp4rt_vk_window) */
            VkBuffer vb = fp4rt_vk_part(binds[i].b, binds[i].offset, &rel, NULL);
            bi[i] = (VkDescriptorBufferInfo){vb, rel, binds[i].range};
        } else
            bi[i] = (VkDescriptorBufferInfo){c->dummy->buf, 0, 16};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = i == FP4RT_VK_STEP_BINDING ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
                                                                             : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    uint8_t pc[FP4RT_VK_PUSH_BYTES] = {0};
    memcpy(pc, push, push_bytes < sizeof pc ? push_bytes : sizeof pc);
    if (!c->full_barriers) {
        vk_range x[FP4RT_VK_MAX_BINDINGS];
        uint32_t writes = 0;
        int nx = 0;
        for (int i = 0; i < n_binds && i < FP4RT_VK_MAX_BINDINGS; i++) {
            if (!binds[i].b) continue;
            x[nx] = (vk_range){bi[i].buffer, bi[i].offset, bi[i].offset + bi[i].range};
            writes |= (c->writes[k] >> i & 1u) << nx;
            nx++;
        }
        order_dispatch(c, x, nx, writes);
    }
    c->vt.vkCmdBindPipeline(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    c->vt.vkCmdPushDescriptorSetKHR(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, FP4RT_VK_MAX_BINDINGS + 1, w);
    c->vt.vkCmdPushConstants(c->cmd, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, FP4RT_VK_PUSH_BYTES, pc);
    c->vt.vkCmdDispatch(c->cmd, gx, gy, gz);
    c->hz.dispatches++;
    if (c->full_barriers) barrier(c);
    return FP4RT_OK;
}
