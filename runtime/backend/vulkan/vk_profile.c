/* Vulkan --profile: a timestamp query before the first op of a step and after
 * every op (each op ends with a full barrier, so the difference of two
 * consecutive timestamps is that op's GPU time), summed per op kind and, for
 * linear ops, per weight format; logged when the backend is destroyed, in the
 * same form as the CPU backend's profile. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

fp4rt_status fp4rt_vk_profile_enable(vk_ctx *c, int on) {
    if (!on) {
        c->prof.on = 0;
        return FP4RT_OK;
    }
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &n, NULL);
    VkQueueFamilyProperties *qf = fp4rt_calloc(n ? n : 1, sizeof *qf, "queue families");
    if (!qf) return FP4RT_OUT_OF_MEMORY;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &n, qf);
    uint32_t bits = c->queue_family < n ? qf[c->queue_family].timestampValidBits : 0;
    free(qf);
    if (bits == 0 || c->props.limits.timestampPeriod <= 0) {
        fp4rt_log(FP4RT_LOG_WARN, "vulkan:%d: the compute queue has no timestamps: no GPU profile", c->index);
        return FP4RT_OK;
    }
    c->prof.valid_mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    c->prof.ns_per_tick = c->props.limits.timestampPeriod;
    c->prof.on = 1;
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_profile_begin(vk_ctx *c, const fp4rt_program *p) {
    if (!c->prof.on) return FP4RT_OK;
    uint32_t need = (uint32_t)p->n_ops + 1;
    if (c->prof.n_queries < need) {
        if (c->prof.pool) c->vt.vkDestroyQueryPool(c->dev, c->prof.pool, NULL);
        c->prof.pool = VK_NULL_HANDLE;
        c->prof.n_queries = 0;
        c->replay.valid = 0; /* the recorded step writes the old pool */
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = need};
        fp4rt_status st =
            fp4rt_vk_check(c->vt.vkCreateQueryPool(c->dev, &qi, NULL, &c->prof.pool), "vkCreateQueryPool");
        if (st) return st;
        c->prof.n_queries = need;
    }
    c->vt.vkCmdResetQueryPool(c->cmd, c->prof.pool, 0, need);
    fp4rt_vk_timestamp(c, 0);
    return FP4RT_OK;
}

void fp4rt_vk_profile_op(vk_ctx *c, int i) {
    if (c->prof.on) fp4rt_vk_timestamp(c, (uint32_t)i + 1);
}

fp4rt_status fp4rt_vk_profile_collect(vk_ctx *c, const fp4rt_program *p, int replayed) {
    if (!c->prof.on) return FP4RT_OK;
    uint32_t n = (uint32_t)p->n_ops + 1;
    uint64_t *t = fp4rt_malloc(n * sizeof *t, "timestamps");
    if (!t) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st = fp4rt_vk_check(c->vt.vkGetQueryPoolResults(c->dev, c->prof.pool, 0, n, n * sizeof *t, t,
                                                                 sizeof *t, VK_QUERY_RESULT_64_BIT |
                                                                                VK_QUERY_RESULT_WAIT_BIT),
                                     "vkGetQueryPoolResults");
    for (uint32_t i = 0; !st && i + 1 < n; i++) {
        const fp4rt_op *op = &p->ops[i];
        double ms = (double)((t[i + 1] - t[i]) & c->prof.valid_mask) * c->prof.ns_per_tick * 1e-6;
        c->prof.op_ms[op->kind] += ms;
        c->prof.op_calls[op->kind]++;
        if (op->kind == FP4RT_OP_LINEAR && (int)op->lin->fmt >= 0 && op->lin->fmt < FP4RT_W_COUNT) {
            c->prof.lin_ms[op->lin->fmt] += ms;
            c->prof.lin_calls[op->lin->fmt]++;
        }
    }
    free(t);
    if (!st) {
        c->prof.steps++;
        c->prof.replays += replayed;
        c->prof.dispatches += replayed ? c->replay.dispatches : c->hz.dispatches;
        c->prof.barriers += replayed ? c->replay.barriers : c->hz.barriers;
    }
    return st;
}

void fp4rt_vk_profile_report(vk_ctx *c) {
    if (!c->prof.steps) return;
    double total = 0;
    for (int k = 0; k < FP4RT_OP_COUNT; k++) total += c->prof.op_ms[k];
    fp4rt_log(FP4RT_LOG_INFO, "profile: vulkan:%d GPU time, %ld steps (%ld replayed from a recorded command buffer)",
              c->index, c->prof.steps, c->prof.replays);
    fp4rt_log(FP4RT_LOG_INFO, "profile: %.1f dispatches and %.1f barriers per step%s",
              (double)c->prof.dispatches / c->prof.steps, (double)c->prof.barriers / c->prof.steps,
              c->full_barriers ? " (FP4RT_VK_FULL_BARRIERS=1: one after every dispatch)"
                               : " (a barrier only where a dispatch depends on an earlier one)");
    for (int k = 0; k < FP4RT_OP_COUNT; k++) {
        if (!c->prof.op_calls[k]) continue;
        fp4rt_log(FP4RT_LOG_INFO, "profile: %-14s %8ld calls %10.3f ms %5.1f%%", fp4rt_op_name((fp4rt_op_kind)k),
                  c->prof.op_calls[k], c->prof.op_ms[k], total > 0 ? 100 * c->prof.op_ms[k] / total : 0);
        if (k != FP4RT_OP_LINEAR) continue;
        for (int f = 0; f < FP4RT_W_COUNT; f++)
            if (c->prof.lin_calls[f])
                fp4rt_log(FP4RT_LOG_INFO, "profile:   %-12s %8ld calls %10.3f ms %5.1f%%",
                          fp4rt_wfmt_name((fp4rt_wfmt)f), c->prof.lin_calls[f], c->prof.lin_ms[f],
                          total > 0 ? 100 * c->prof.lin_ms[f] / total : 0);
    }
}

fp4rt_status fp4rt_vk_profile_take(void *vc, double *seconds, long *calls) {
    vk_ctx *c = vc;
    for (int k = 0; k < FP4RT_OP_COUNT; k++) {
        seconds[k] = 1e-3 * c->prof.op_ms[k];
        calls[k] = c->prof.op_calls[k];
    }
    memset(c->prof.op_ms, 0, sizeof c->prof.op_ms);
    memset(c->prof.op_calls, 0, sizeof c->prof.op_calls);
    memset(c->prof.lin_ms, 0, sizeof c->prof.lin_ms);
    memset(c->prof.lin_calls, 0, sizeof c->prof.lin_calls);
    return FP4RT_OK;
}

void fp4rt_vk_profile_free(vk_ctx *c) {
    if (c->prof.pool) c->vt.vkDestroyQueryPool(c->dev, c->prof.pool, NULL);
    c->prof.pool = VK_NULL_HANDLE;
    c->prof.n_queries = 0;
}
