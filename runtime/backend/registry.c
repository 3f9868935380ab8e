/* The backend registry's table: the one place that names concrete backends. */
#include "runtime/backend/registry.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend/cpu/cpu.h"
#include "runtime/backend/cuda.h"
#ifdef FP4RT_HAVE_VULKAN
#include "runtime/backend/vulkan/vk.h"
#endif

/* A device of a higher priority outscores any device of a lower one. */
#define PRIORITY_SCALE 1e9

static const fp4rt_backend_reg g_regs[] = {
    {.name = "cpu", .label = "CPU", .kind = FP4RT_DEVICE_CPU, .indexed = 0, .priority = 1,
     .device_count = fp4rt_cpu_device_count, .device_get = fp4rt_cpu_device_get,
     .unavailable_reason = fp4rt_cpu_unavailable_reason, .create = fp4rt_cpu_device_create},
#ifdef FP4RT_HAVE_VULKAN
    {.name = "vulkan", .label = "Vulkan", .kind = FP4RT_DEVICE_VULKAN, .indexed = 1, .priority = 2,
     .device_count = fp4rt_vk_device_count, .device_get = fp4rt_vk_device_fill,
     .unavailable_reason = fp4rt_vk_unavailable_reason, .create = fp4rt_vk_device_create,
     .message_count = fp4rt_vk_message_count},
#else
    {.name = "vulkan", .label = "Vulkan", .kind = FP4RT_DEVICE_VULKAN, .indexed = 1, .priority = 2,
     .not_built = "configure found no glslc / volk.h"},
#endif
    {.name = "cuda", .label = "CUDA", .kind = FP4RT_DEVICE_CUDA, .indexed = 1, .priority = 3,
     .device_count = fp4rt_cuda_device_count, .device_get = fp4rt_cuda_device_fill,
     .unavailable_reason = fp4rt_cuda_unavailable_reason, .notes = fp4rt_cuda_notes,
     .create = fp4rt_cuda_device_create},
};
#define N_REGS ((int)(sizeof g_regs / sizeof g_regs[0]))

int fp4rt_registry_count(void) { return N_REGS; }

const fp4rt_backend_reg *fp4rt_registry_get(int i) { return i >= 0 && i < N_REGS ? &g_regs[i] : NULL; }

const fp4rt_backend_reg *fp4rt_registry_find(const char *name) {
    for (int i = 0; name && i < N_REGS; i++)
        if (!strcmp(g_regs[i].name, name)) return &g_regs[i];
    return NULL;
}

int fp4rt_registry_device_count(const fp4rt_backend_reg *r) {
    return r && !r->not_built ? r->device_count() : 0;
}

fp4rt_status fp4rt_registry_device(const fp4rt_backend_reg *r, int index, fp4rt_device_desc *out) {
    if (!r || !out) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "registry: no backend record or output");
    int n = fp4rt_registry_device_count(r);
    if (index < 0 || index >= n)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: no device %d (%d device%s)", r->name, index, n,
                          n == 1 ? "" : "s");
    memset(out, 0, sizeof *out);
    fp4rt_status st = r->device_get(index, out);
    if (st) return st;
    out->kind = r->kind;
    if (r->indexed)
        snprintf(out->name, sizeof out->name, "%s:%d", r->name, index);
    else
        snprintf(out->name, sizeof out->name, "%s", r->name);
    out->score = out->usable && !out->software && out->score > 0 ? r->priority * PRIORITY_SCALE + out->score : 0;
    return FP4RT_OK;
}

long fp4rt_registry_message_count(void) {
    long n = 0;
    for (int i = 0; i < N_REGS; i++)
        if (!g_regs[i].not_built && g_regs[i].message_count) n += g_regs[i].message_count();
    return n;
}

fp4rt_status fp4rt_registry_parse(const char *name, fp4rt_device_ref *out) {
    out->reg = NULL;
    out->index = -1;
    if (!name) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "device name missing");
    size_t k = strcspn(name, ":");
    const fp4rt_backend_reg *r = NULL;
    for (int i = 0; i < N_REGS; i++)
        if (strlen(g_regs[i].name) == k && !strncmp(g_regs[i].name, name, k)) r = &g_regs[i];
    if (!r) {
        char known[128] = "auto";
        for (int i = 0; i < N_REGS; i++) {
            size_t len = strlen(known);
            snprintf(known + len, sizeof known - len, ", %s%s", g_regs[i].name, g_regs[i].indexed ? ":N" : "");
        }
        return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available (known: %s)", name, known);
    }
    int index = 0;
    if (name[k]) {
        char *end = NULL;
        long i = strtol(name + k + 1, &end, 10);
        if (!r->indexed || end == name + k + 1 || *end || i < 0 || i > 1000)
            return r->indexed ? fp4rt_fail(FP4RT_INVALID_ARGUMENT, "device '%s': expected %s:N", name, r->name)
                              : fp4rt_fail(FP4RT_INVALID_ARGUMENT, "device '%s': expected %s", name, r->name);
        index = (int)i;
    }
    if (r->not_built)
        return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available: this build has no %s backend (%s)", name,
                          r->label, r->not_built);
    int n = r->device_count();
    if (index >= n) {
        const char *why = r->unavailable_reason();
        return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available: %d %s device%s%s%s%s", name, n, r->label,
                          n == 1 ? "" : "s", why[0] ? " (" : "", why, why[0] ? ")" : "");
    }
    out->reg = r;
    out->index = index;
    return FP4RT_OK;
}

fp4rt_device_ref fp4rt_registry_best(unsigned skip) {
    fp4rt_device_ref best = {NULL, -1};
    double best_score = 0;
    for (int i = 0; i < N_REGS; i++) {
        if (skip & (1u << i)) continue;
        for (int d = 0; d < fp4rt_registry_device_count(&g_regs[i]); d++) {
            fp4rt_device_desc desc;
            if (fp4rt_registry_device(&g_regs[i], d, &desc)) {
                fp4rt_clear_error();
                continue;
            }
            if (desc.score > best_score) {
                best_score = desc.score;
                best.reg = &g_regs[i];
                best.index = d;
            }
        }
    }
    return best;
}
