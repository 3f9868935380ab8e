/* The Vulkan backend's bandwidth measurement (backend.h measure_bandwidth):
 * vkCmdCopyBuffer of a large device-local buffer into another, timed on the
 * device with timestamp queries (host wall time around the submission when
 * the queue has no timestamps); best of 5 copies, (read + written bytes) / s. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

fp4rt_status fp4rt_vk_measure_bandwidth(void *vc, double *bytes_per_s) {
    vk_ctx *c = vc;
    *bytes_per_s = 0;
    /* 256 MiB each way, less on a device with little memory */
    VkDeviceSize bytes = (VkDeviceSize)256 << 20;
    while (bytes > ((VkDeviceSize)16 << 20) && 4 * bytes > c->desc.memory_bytes) bytes /= 2;
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
    if (!qf) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "vulkan: bandwidth: out of memory");
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, qf);
    int timestamps = c->queue_family < nq && qf[c->queue_family].timestampValidBits >= 32 &&
                     c->props.limits.timestampPeriod > 0;
    free(qf);

    fp4rt_buffer *src = NULL, *dst = NULL;
    VkQueryPool pool = VK_NULL_HANDLE;
    fp4rt_status st = fp4rt_vk_buffer_create(c, bytes, 0, "bandwidth source", &src);
    if (!st) st = fp4rt_vk_buffer_create(c, bytes, 0, "bandwidth destination", &dst);
    if (!st) st = fp4rt_vk_fill_zero(c, src);
    if (!st && timestamps) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2};
        st = fp4rt_vk_check(c->vt.vkCreateQueryPool(c->dev, &qi, NULL, &pool), "vkCreateQueryPool");
    }
    for (int pass = 0; !st && pass < 5; pass++) {
        st = fp4rt_vk_begin(c);
        if (st) break;
        if (pool) {
            c->vt.vkCmdResetQueryPool(c->cmd, pool, 0, 2);
            c->vt.vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pool, 0);
        }
        VkBufferCopy region = {0, 0, bytes};
        c->vt.vkCmdCopyBuffer(c->cmd, src->buf, dst->buf, 1, &region);
        if (pool) c->vt.vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, 1);
        double t0 = now();
        st = fp4rt_vk_submit_wait(c);
        double dt = now() - t0;
        if (!st && pool) {
            uint64_t ts[2];
            st = fp4rt_vk_check(c->vt.vkGetQueryPoolResults(c->dev, pool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                                            VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
                                "vkGetQueryPoolResults");
            if (!st && ts[1] > ts[0]) dt = (double)(ts[1] - ts[0]) * c->props.limits.timestampPeriod * 1e-9;
        }
        if (!st && dt > 0 && 2.0 * (double)bytes / dt > *bytes_per_s) *bytes_per_s = 2.0 * (double)bytes / dt;
    }
    if (pool) c->vt.vkDestroyQueryPool(c->dev, pool, NULL);
    if (dst) fp4rt_vk_buffer_destroy(c, dst);
    if (src) fp4rt_vk_buffer_destroy(c, src);
    return st;
}
