/* The CPU backend's registry record functions (runtime/backend/registry.h):
 * one device, "cpu", always usable. */
#ifndef FP4RT_CPU_H
#define FP4RT_CPU_H

#include "runtime/backend/registry.h"

int fp4rt_cpu_device_count(void);                                  /* 1 */
fp4rt_status fp4rt_cpu_device_get(int index, fp4rt_device_desc *out); /* cores, memory, kernel path */
const char *fp4rt_cpu_unavailable_reason(void);                    /* "" */
/* fp4rt_backend_cpu with n_threads workers (0: one per core); index must be 0. */
fp4rt_status fp4rt_cpu_device_create(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx);

#endif
