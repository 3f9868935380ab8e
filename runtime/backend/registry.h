/* The backend registry (in the manner of ggml's ggml_backend_reg): one record
 * per backend this build knows, in device order (cpu, vulkan, cuda). The
 * engine (--device, fp4rt_device_count / fp4rt_device_get), fp4rt devices and
 * the tests' device loops go through it; only registry.c names the concrete
 * backends.
 *
 * Adding a backend (say Metal): its folder (runtime/backend/metal/) provides a
 * header with the record's functions (device count, fp4rt_device_desc filler,
 * unavailable reason, create) and registry.c gets one line in its table (with
 * the #include of that header, and the folder in the CMake lists). Nothing
 * else changes: devices, fallback, fp4rt devices and the tests follow. */
#ifndef FP4RT_REGISTRY_H
#define FP4RT_REGISTRY_H

#include "fp4rt.h"
#include "runtime/backend/backend.h"

#include <stdint.h>

#define FP4RT_DEVICE_DETAILS 6 /* detail lines of one device at most */
#define FP4RT_DEVICE_LINE 256

/* One device, as a backend describes it. */
typedef struct fp4rt_device_desc {
    char name[32];                         /* "cpu", "vulkan:0": what --device accepts */
    fp4rt_device_kind kind;                /* the public kind (fp4rt.h) */
    char title[FP4RT_DEVICE_LINE];         /* fp4rt devices' first line after the name: the hardware's name */
    char description[FP4RT_DEVICE_LINE];   /* one line: fp4rt_device_info.description */
    uint64_t memory_bytes;
    int usable;                            /* 0: reason says why */
    char reason[128];
    int software;                          /* a CPU implementation of a GPU API: never picked by auto */
    /* --device auto picks the device with the highest score (the first on a
     * tie); 0: used only when named. The backend gives its preference within
     * itself (> 0, e.g. memory bandwidth); fp4rt_registry_device adds the
     * record's priority, so every device of a higher-priority backend wins. */
    double score;
    int n_details;
    char details[FP4RT_DEVICE_DETAILS][FP4RT_DEVICE_LINE]; /* fp4rt devices' lines under the title */
} fp4rt_device_desc;

/* One backend. Every function works (and reports no device, with the reason)
 * when the backend's library or driver is absent. */
typedef struct fp4rt_backend_reg {
    const char *name;      /* "vulkan": its devices are "vulkan:N" ("vulkan" = "vulkan:0") */
    const char *label;     /* "Vulkan": in messages */
    fp4rt_device_kind kind;
    int indexed;           /* 0: one device named just `name` (the CPU) */
    int priority;          /* --device auto: a device of a higher priority wins */
    const char *not_built; /* non-NULL: not in this build, and why; the functions below are NULL */
    int (*device_count)(void);
    /* Fills *out (every field but score's priority part) for device 0 .. count - 1. */
    fp4rt_status (*device_get)(int index, fp4rt_device_desc *out);
    /* Why there is no device ("" when there is one). */
    const char *(*unavailable_reason)(void);
    /* (optional) Lines fp4rt devices prints after the backend's devices (the
     * CUDA module's path); returns how many (at most max). */
    int (*notes)(char (*lines)[FP4RT_DEVICE_LINE], int max);
    /* A backend context on device `index`; *ops is the backend's table. The
     * CPU uses n_threads (0: one per core), the GPUs ignore it. */
    fp4rt_status (*create)(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx);
    /* (optional) Validation-layer / driver messages (warnings and errors) the
     * backend has seen since the process started; tests require 0. */
    long (*message_count)(void);
} fp4rt_backend_reg;

/* The records, in device order. */
int fp4rt_registry_count(void);
const fp4rt_backend_reg *fp4rt_registry_get(int i);
/* The record named `name` ("vulkan"), or NULL. */
const fp4rt_backend_reg *fp4rt_registry_find(const char *name);
/* Devices of a record (0 when it is not built). */
int fp4rt_registry_device_count(const fp4rt_backend_reg *r);
/* Device `index` of r, score included; INVALID_ARGUMENT (one line) when out of range. */
fp4rt_status fp4rt_registry_device(const fp4rt_backend_reg *r, int index, fp4rt_device_desc *out);

/* The message_count of every record that has one, summed. */
long fp4rt_registry_message_count(void);

/* A device: a record and an index in it. */
typedef struct fp4rt_device_ref {
    const fp4rt_backend_reg *reg;
    int index;
} fp4rt_device_ref;

/* Parses a device name: "cpu", "vulkan" (= vulkan:0), "vulkan:N", ...
 * FP4RT_DEVICE (one line naming the device and the known backends, or the
 * device count and why) when the backend or device does not exist,
 * INVALID_ARGUMENT when the name is malformed. */
fp4rt_status fp4rt_registry_parse(const char *name, fp4rt_device_ref *out);
/* The device with the highest score among the records not in `skip` (a bit
 * per record index, for fallback), or {NULL, -1} when none scores above 0. */
fp4rt_device_ref fp4rt_registry_best(unsigned skip);

#endif
