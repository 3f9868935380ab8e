/* Devices: parsing --device, starting a backend with fallback, the device list (fp4rt.h). */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/backend/cuda.h"
#ifdef FP4RT_HAVE_VULKAN
#include "runtime/backend/vulkan/vk.h"
#endif


/* Parses "kind" or "kind:N" (N defaults to 0); 0 when dev is not of that kind. */
static int parse_indexed(const char *dev, const char *kind, int *index, fp4rt_status *st) {
    size_t k = strlen(kind);
    if (strncmp(dev, kind, k) || (dev[k] && dev[k] != ':')) return 0;
    *st = FP4RT_OK;
    *index = 0;
    if (dev[k]) {
        char *end = NULL;
        long i = strtol(dev + k + 1, &end, 10);
        if (end == dev + k + 1 || *end || i < 0 || i > 1000)
            *st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "device '%s': expected %s:N", dev, kind);
        *index = (int)i;
    }
    return 1;
}

/* --device: NULL / "auto" (the best CUDA device when the CUDA module loads,
 * else the best Vulkan GPU, never a software device, else the CPU), "cpu",
 * "vulkan" (= vulkan:0), "vulkan:N", "cuda" (= cuda:0), "cuda:N". */
fp4rt_status fp4rt_device_parse(const char *dev, fp4rt_device_choice *out) {
    out->kind = DEV_CPU;
    out->index = -1;
    out->asked = 0;
    if (!dev || !strcmp(dev, "auto")) {
        int cu = fp4rt_cuda_best_device();
        if (cu >= 0) {
            out->kind = DEV_CUDA;
            out->index = cu;
            return FP4RT_OK;
        }
#ifdef FP4RT_HAVE_VULKAN
        int vk = fp4rt_vk_best_device();
        if (vk >= 0) {
            out->kind = DEV_VULKAN;
            out->index = vk;
        }
#endif
        return FP4RT_OK;
    }
    if (!strcmp(dev, "cpu")) return FP4RT_OK;
    out->asked = 1;
    fp4rt_status st;
    int i;
    if (parse_indexed(dev, "cuda", &i, &st)) {
        if (st) return st;
        if (i >= fp4rt_cuda_device_count()) {
            fp4rt_cuda_device_desc d;
            return fp4rt_fail_context(fp4rt_cuda_device_get(i, &d), "device '%s'", dev);
        }
        out->kind = DEV_CUDA;
        out->index = i;
        return FP4RT_OK;
    }
    if (parse_indexed(dev, "vulkan", &i, &st)) {
        if (st) return st;
#ifdef FP4RT_HAVE_VULKAN
        if (i >= fp4rt_vk_device_count())
            return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available: %d Vulkan device%s%s%s%s", dev,
                              fp4rt_vk_device_count(), fp4rt_vk_device_count() == 1 ? "" : "s",
                              fp4rt_vk_unavailable_reason()[0] ? " (" : "", fp4rt_vk_unavailable_reason(),
                              fp4rt_vk_unavailable_reason()[0] ? ")" : "");
        out->kind = DEV_VULKAN;
        out->index = i;
        return FP4RT_OK;
#else
        return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available: this build has no Vulkan backend", dev);
#endif
    }
    return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available (known: auto, cpu, vulkan:N, cuda:N)", dev);
}

/* Creates and prepares the backend on one GPU device. */
static fp4rt_status start_gpu(fp4rt_model *m, fp4rt_backend_kind kind, int index, uint64_t seed) {
    fp4rt_status st = FP4RT_UNSUPPORTED;
    m->backend = NULL;
    if (kind == DEV_CUDA) {
        m->backend = fp4rt_cuda_backend();
        st = fp4rt_cuda_backend_create(index, &m->backend_ctx);
    }
#ifdef FP4RT_HAVE_VULKAN
    if (kind == DEV_VULKAN) {
        m->backend = &fp4rt_backend_vulkan;
        st = fp4rt_vk_backend_create(index, &m->backend_ctx);
    }
#endif
    if (!m->backend) return fp4rt_fail(FP4RT_DEVICE, "no backend for device kind %d", (int)kind);
    if (!st) st = fp4rt_backend_prepare(m->backend, m->backend_ctx, m->program, seed);
    if (st) fp4rt_backend_destroy(m->backend, m->backend_ctx);
    if (st) m->backend_ctx = NULL;
    return st;
}

/* Creates and prepares the backend; a GPU device the user did not name falls
 * back (CUDA to the best Vulkan GPU, then the CPU) with a warning. */
fp4rt_status fp4rt_backend_start(fp4rt_model *m, fp4rt_device_choice d, uint64_t seed) {
    fp4rt_status st;
    while (d.kind != DEV_CPU) {
        st = start_gpu(m, d.kind, d.index, seed);
        if (!st || d.asked) return st;
        const char *name = d.kind == DEV_CUDA ? "cuda" : "vulkan";
        int failed = d.index;
        d.kind = DEV_CPU;
#ifdef FP4RT_HAVE_VULKAN
        if (!strcmp(name, "cuda") && fp4rt_vk_best_device() >= 0) {
            d.kind = DEV_VULKAN;
            d.index = fp4rt_vk_best_device();
        }
#endif
        fp4rt_log(FP4RT_LOG_WARN, "%s:%d is not usable (%s); falling back to %s", name, failed, fp4rt_last_error(),
                  d.kind == DEV_VULKAN ? "Vulkan" : "the CPU");
        fp4rt_clear_error();
    }
    m->backend = &fp4rt_backend_cpu;
    st = fp4rt_backend_create(m->backend, m->n_threads, &m->backend_ctx);
    if (!st) st = fp4rt_backend_prepare(m->backend, m->backend_ctx, m->program, seed);
    return st;
}

static int vk_count(void) {
#ifdef FP4RT_HAVE_VULKAN
    return fp4rt_vk_device_count();
#else
    return 0;
#endif
}

/* Device order: the CPU, the Vulkan devices, the CUDA devices. */
int fp4rt_device_count(void) { return 1 + vk_count() + fp4rt_cuda_device_count(); }

fp4rt_status fp4rt_device_get(int index, fp4rt_device_info *out) {
    if (!out || index < 0 || index >= fp4rt_device_count()) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "no device %d", index);
    memset(out, 0, sizeof *out);
    if (index > vk_count()) {
        int i = index - 1 - vk_count();
        fp4rt_cuda_device_desc d;
        fp4rt_status st = fp4rt_cuda_device_get(i, &d);
        if (st) return st;
        out->kind = FP4RT_DEVICE_CUDA;
        snprintf(out->name, sizeof out->name, "cuda:%d", i);
        snprintf(out->description, sizeof out->description, "%.80s (sm_%d%d, %.0f GB/s), NVFP4 %s%s%.60s", d.name,
                 d.cc_major, d.cc_minor, d.bandwidth_gbs, fp4rt_cuda_fp4_path_name(d.fp4_path),
                 d.usable ? "" : ", not usable: ", d.usable ? "" : d.reason);
        out->memory_bytes = d.memory_bytes;
        out->usable = d.usable;
        return FP4RT_OK;
    }
#ifdef FP4RT_HAVE_VULKAN
    if (index > 0) {
        fp4rt_vk_device_desc d;
        fp4rt_status st = fp4rt_vk_device_get(index - 1, &d);
        if (st) return st;
        out->kind = FP4RT_DEVICE_VULKAN;
        snprintf(out->name, sizeof out->name, "vulkan:%d", index - 1);
        snprintf(out->description, sizeof out->description, "%.80s (%s%s), %.60s%s%.40s", d.name, d.type,
                 d.software ? ", software: used only when named" : "", d.driver, d.usable ? "" : ", not usable: ",
                 d.usable ? "" : d.reason);
        out->memory_bytes = d.memory_bytes;
        out->usable = d.usable;
        return FP4RT_OK;
    }
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->kind = FP4RT_DEVICE_CPU;
    snprintf(out->name, sizeof out->name, "cpu");
    out->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    snprintf(out->description, sizeof out->description,
             "%ld cores, %.1f GiB memory, FP32 reference kernels (NVFP4/FP8 decoded in registers)", cores,
             out->memory_bytes / 1073741824.0);
    out->usable = 1;
    return FP4RT_OK;
}

