/* Devices: parsing --device, starting a backend with fallback, the device list
 * (fp4rt.h), all through the backend registry (runtime/backend/registry.h). */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <string.h>

fp4rt_status fp4rt_device_parse(const char *dev, fp4rt_device_choice *out) {
    out->asked = 0;
    if (!dev || !strcmp(dev, "auto")) {
        out->dev = fp4rt_registry_best(0);
        if (!out->dev.reg) return fp4rt_fail(FP4RT_DEVICE, "--device auto: no usable device");
        return FP4RT_OK;
    }
    fp4rt_status st = fp4rt_registry_parse(dev, &out->dev);
    out->asked = 1;
    return st;
}

/* Creates and prepares the backend on one device; on failure nothing is left. */
static fp4rt_status start_on(fp4rt_model *m, fp4rt_device_ref d, uint64_t seed) {
    m->backend = NULL;
    m->backend_ctx = NULL;
    fp4rt_status st = d.reg->create(d.index, m->n_threads, &m->backend, &m->backend_ctx);
    if (!st && !m->backend) st = fp4rt_fail(FP4RT_DEVICE, "%s:%d: the backend has no table", d.reg->name, d.index);
    if (!st) st = fp4rt_backend_prepare(m->backend, m->backend_ctx, m->program, seed);
    if (st) fp4rt_backend_destroy(m->backend, m->backend_ctx);
    if (st) m->backend_ctx = NULL;
    if (!st) m->dev = d;
    if (!st) m->seed = seed;
    return st;
}

static int reg_index(const fp4rt_backend_reg *r) {
    for (int i = 0; i < fp4rt_registry_count(); i++)
        if (fp4rt_registry_get(i) == r) return i;
    return -1;
}

fp4rt_status fp4rt_backend_start(fp4rt_model *m, fp4rt_device_choice d, uint64_t seed) {
    unsigned failed = 0; /* records that failed (a bit per record index) */
    for (;;) {
        fp4rt_status st = start_on(m, d.dev, seed);
        if (!st || d.asked) return st;
        failed |= 1u << reg_index(d.dev.reg);
        fp4rt_device_ref next = fp4rt_registry_best(failed);
        if (!next.reg || next.reg->priority >= d.dev.reg->priority) return st; /* only downwards */
        fp4rt_device_desc to;
        if (fp4rt_registry_device(next.reg, next.index, &to)) return st;
        fp4rt_log(FP4RT_LOG_WARN, "%s:%d is not usable (%s); falling back to %s", d.dev.reg->name, d.dev.index,
                  fp4rt_last_error(), to.name);
        fp4rt_clear_error();
        d.dev = next;
    }
}

/* Device order: the registry's records in order, each record's devices in order. */
int fp4rt_device_count(void) {
    int n = 0;
    for (int i = 0; i < fp4rt_registry_count(); i++) n += fp4rt_registry_device_count(fp4rt_registry_get(i));
    return n;
}

fp4rt_status fp4rt_device_get(int index, fp4rt_device_info *out) {
    if (!out) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_device_get: out is NULL");
    int first = 0;
    for (int i = 0; index >= 0 && i < fp4rt_registry_count(); i++) {
        const fp4rt_backend_reg *r = fp4rt_registry_get(i);
        int n = fp4rt_registry_device_count(r);
        if (index < first + n) {
            fp4rt_device_desc d;
            fp4rt_status st = fp4rt_registry_device(r, index - first, &d);
            if (st) return st;
            memset(out, 0, sizeof *out);
            out->kind = d.kind;
            snprintf(out->name, sizeof out->name, "%s", d.name);
            snprintf(out->description, sizeof out->description, "%s", d.description);
            out->memory_bytes = d.memory_bytes;
            out->usable = d.usable;
            return FP4RT_OK;
        }
        first += n;
    }
    return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "no device %d (%d devices)", index, fp4rt_device_count());
}
