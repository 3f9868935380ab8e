/* Shared by the tests that run on one device of a backend kind, through the
 * backend registry (runtime/backend/registry.h). */
#ifndef FP4RT_TEST_DEVICES_H
#define FP4RT_TEST_DEVICES_H

#include "runtime/backend/registry.h"
#include "runtime/base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The device under test of backend `kind` ("vulkan", "cuda"): `want` when
 * given (a device name such as "cuda:0"), else for Vulkan
 * $FP4RT_TEST_VK_DEVICE, else kind:0. Writes its name to dev, the device to
 * *out and its description to *d; returns 0 (after printing "skipped: ...")
 * when the backend has no such device or it is not usable. */
static inline int test_pick_device(const char *kind, const char *want, char *dev, size_t n,
                                   fp4rt_device_ref *out, fp4rt_device_desc *d) {
    const fp4rt_backend_reg *r = fp4rt_registry_find(kind);
    if (!r) {
        printf("skipped: no backend '%s'\n", kind);
        return 0;
    }
    if (fp4rt_registry_device_count(r) == 0) {
        printf("skipped: no %s device (%s)\n", r->label, r->not_built ? r->not_built : r->unavailable_reason());
        return 0;
    }
    const char *env = !strcmp(kind, "vulkan") ? getenv("FP4RT_TEST_VK_DEVICE") : NULL;
    if (want && want[0])
        snprintf(dev, n, "%s", want);
    else if (env && env[0])
        snprintf(dev, n, "%s", env);
    else
        snprintf(dev, n, "%s:0", kind);
    fp4rt_device_ref ref;
    if (fp4rt_registry_parse(dev, &ref) || ref.reg != r || fp4rt_registry_device(r, ref.index, d)) {
        printf("skipped: %s: %s\n", dev, ref.reg != r && !fp4rt_last_error()[0] ? "another backend" : fp4rt_last_error());
        fp4rt_clear_error();
        return 0;
    }
    if (!d->usable) {
        printf("skipped: %s is not usable (%s)\n", dev, d->reason);
        return 0;
    }
    *out = ref;
    return 1;
}

#endif
