/* Vulkan devices: enumeration with the features fp4rt cares about (listed by
 * `fp4rt devices`), the choice for --device auto (never a software device), and
 * the logical device with one compute queue.
 *
 * Requirements of this backend: Vulkan 1.2 and VK_KHR_push_descriptor. The
 * shaders read 8- and 16-bit data through 32-bit words, so 8/16-bit storage and
 * shaderFloat16 are reported but not yet required. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fp4rt_vk_has_device_ext(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkExtensionProperties *e = fp4rt_calloc(n, sizeof *e, "vulkan extensions");
    int found = 0;
    if (e && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

static int compute_queue_family(VkPhysicalDevice pd) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    if (n == 0 || n > 64) return -1;
    VkQueueFamilyProperties q[64];
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return (int)i;
    return -1;
}

void fp4rt_vk_describe_physical(VkInstance inst, VkPhysicalDevice pd, fp4rt_vk_device_desc *d) {
    memset(d, 0, sizeof *d);
    int idot_ext = fp4rt_vk_has_device_ext(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    VkPhysicalDeviceShaderIntegerDotProductProperties dotp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
                                            .pNext = idot_ext ? &dotp : NULL};
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                             .pNext = &drv};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
                                                 .pNext = &sg};
    VkPhysicalDeviceProperties pre;
    vkGetPhysicalDeviceProperties(pd, &pre);
    int m4_ok = pre.apiVersion >= VK_API_VERSION_1_3 ||
                fp4rt_vk_has_device_ext(pd, VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
    VkPhysicalDeviceMaintenance4Properties m4 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES,
                                                 .pNext = &m3};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = m4_ok ? (void *)&m4 : (void *)&m3};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    d->max_alloc = m3.maxMemoryAllocationSize;
    d->max_buffer = m4_ok && m4.maxBufferSize ? m4.maxBufferSize : d->max_alloc;
    VkPhysicalDeviceShaderIntegerDotProductFeatures dotf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = idot_ext ? &dotf : NULL};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    const VkPhysicalDeviceProperties *p = &p2.properties;
    d->api_version = p->apiVersion;
    if (p->apiVersion >= VK_API_VERSION_1_2) vkGetPhysicalDeviceFeatures2(pd, &f2);
    snprintf(d->name, sizeof d->name, "%s", p->deviceName);
    static const char *types[] = {"other", "integrated", "discrete", "virtual", "cpu"};
    snprintf(d->type, sizeof d->type, "%s", p->deviceType <= 4 ? types[p->deviceType] : "other");
    d->software = p->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    snprintf(d->driver, sizeof d->driver, "%s %s", drv.driverName[0] ? drv.driverName : "driver",
             drv.driverInfo[0] ? drv.driverInfo : "");
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    int has_budget = fp4rt_vk_has_device_ext(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    VkPhysicalDeviceMemoryProperties2 mp2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                             .pNext = has_budget ? &budget : NULL};
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp2);
    const VkPhysicalDeviceMemoryProperties *mp = &mp2.memoryProperties;
    for (uint32_t i = 0; i < mp->memoryHeapCount; i++)
        if ((mp->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mp->memoryHeaps[i].size > d->memory_bytes) {
            d->memory_bytes = mp->memoryHeaps[i].size;
            d->budget_bytes = has_budget && budget.heapBudget[i] > budget.heapUsage[i]
                                  ? budget.heapBudget[i] - budget.heapUsage[i]
                                  : 0;
        }
    d->fp16 = f12.shaderFloat16;
    d->int8 = f12.shaderInt8;
    d->int64 = f2.features.shaderInt64;
    d->storage16 = f11.storageBuffer16BitAccess;
    d->storage8 = f12.storageBuffer8BitAccess;
    d->coop_kinds = fp4rt_vk_coop_probe(inst, pd, p->apiVersion);
    d->coopmat = d->coop_kinds >> FP4RT_VK_COOP_KHR & 1  ? FP4RT_VK_COOP_KHR
                 : d->coop_kinds >> FP4RT_VK_COOP_NV & 1 ? FP4RT_VK_COOP_NV
                                                         : FP4RT_VK_COOP_NONE;
    d->idot = idot_ext && dotf.shaderIntegerDotProduct;
    d->idot_fast = d->idot && dotp.integerDotProduct4x8BitPackedSignedAccelerated;
    d->push_descriptor = fp4rt_vk_has_device_ext(pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    d->subgroup_size = sg.subgroupSize;
    d->subgroup_shuffle = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                          (sg.supportedOperations & VK_SUBGROUP_FEATURE_VOTE_BIT) &&
                          (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    d->max_storage_range = p->limits.maxStorageBufferRange;
    d->usable = 1;
    if (p->apiVersion < VK_API_VERSION_1_2)
        snprintf(d->reason, sizeof d->reason, "Vulkan %u.%u < 1.2", VK_API_VERSION_MAJOR(p->apiVersion),
                 VK_API_VERSION_MINOR(p->apiVersion));
    else if (!d->push_descriptor)
        snprintf(d->reason, sizeof d->reason, "no VK_KHR_push_descriptor");
    else if (compute_queue_family(pd) < 0)
        snprintf(d->reason, sizeof d->reason, "no compute queue");
    d->usable = d->reason[0] == 0;
}

/* The device list, made once per process. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static fp4rt_vk_device_desc *g_devs;
static int g_n_devs;
static char g_reason[256];

static void enumerate_once(void) {
    VkInstance inst;
    VkDebugUtilsMessengerEXT msg;
    if (fp4rt_vk_instance_create(&inst, &msg)) {
        snprintf(g_reason, sizeof g_reason, "%s", fp4rt_last_error());
        fp4rt_clear_error();
        return;
    }
    uint32_t n = 0;
    if (vkEnumeratePhysicalDevices(inst, &n, NULL) == VK_SUCCESS && n > 0) {
        VkPhysicalDevice *pds = fp4rt_calloc(n, sizeof *pds, "vulkan devices");
        g_devs = fp4rt_calloc(n, sizeof *g_devs, "vulkan devices");
        if (pds && g_devs && vkEnumeratePhysicalDevices(inst, &n, pds) == VK_SUCCESS) {
            for (uint32_t i = 0; i < n; i++) fp4rt_vk_describe_physical(inst, pds[i], &g_devs[i]);
            g_n_devs = (int)n;
        }
        free(pds);
    }
    if (g_n_devs == 0) snprintf(g_reason, sizeof g_reason, "the Vulkan loader found no device (no driver installed)");
    fp4rt_vk_instance_destroy(inst, msg);
}

int fp4rt_vk_device_count(void) {
    pthread_once(&g_once, enumerate_once);
    return g_n_devs;
}

const char *fp4rt_vk_unavailable_reason(void) {
    pthread_once(&g_once, enumerate_once);
    return g_reason;
}

fp4rt_status fp4rt_vk_device_get(int index, fp4rt_vk_device_desc *out) {
    if (index < 0 || index >= fp4rt_vk_device_count())
        return fp4rt_fail(FP4RT_DEVICE, "vulkan:%d does not exist (%d Vulkan device%s%s%s)", index, g_n_devs,
                          g_n_devs == 1 ? "" : "s", g_reason[0] ? ": " : "", g_reason);
    *out = g_devs[index];
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_device_open(vk_ctx *c, int index) {
    fp4rt_status st = fp4rt_vk_instance_create(&c->instance, &c->messenger);
    if (st) return st;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(c->instance, &n, NULL);
    if (index < 0 || (uint32_t)index >= n || n > 64)
        return fp4rt_fail(FP4RT_DEVICE, "vulkan:%d does not exist (%u Vulkan device%s)", index, n, n == 1 ? "" : "s");
    VkPhysicalDevice pds[64];
    vkEnumeratePhysicalDevices(c->instance, &n, pds);
    c->pdev = pds[index];
    c->index = index;
    fp4rt_vk_describe_physical(c->instance, c->pdev, &c->desc);
    if (!c->desc.usable)
        return fp4rt_fail(FP4RT_DEVICE, "vulkan:%d (%s) cannot run fp4rt: %s", index, c->desc.name, c->desc.reason);
    vkGetPhysicalDeviceProperties(c->pdev, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->pdev, &c->mem_props);
    c->queue_family = (uint32_t)compute_queue_family(c->pdev);
    c->max_range = c->props.limits.maxStorageBufferRange;
    c->align = c->props.limits.minStorageBufferOffsetAlignment;
    if (c->align < 16) c->align = 16;
    /* tests lower the binding limit of the whole device to exercise everything
     * bound in pieces and the prefill chunk capped to what fits one binding */
    unsigned long long lim = fp4rt_env_size(FP4RT_ENV_VK_MAX_RANGE);
    if (lim > 2 * c->align && lim < c->max_range) {
        c->max_range = lim / 4 * 4;
        fp4rt_log(FP4RT_LOG_INFO, "vulkan: FP4RT_VK_MAX_RANGE: bindings limited to %llu bytes",
                  (unsigned long long)c->max_range);
    }
    /* FP4RT_VK_PIECE_RANGE lowers only the size of the weight pieces of linears */
    c->piece_range = c->max_range;
    lim = fp4rt_env_size(FP4RT_ENV_VK_PIECE_RANGE);
    if (lim > 2 * c->align && lim < c->piece_range) c->piece_range = lim;
    /* and the activation / logits windows of linears, cut into token pieces */
    c->act_range = c->max_range;
    lim = fp4rt_env_size(FP4RT_ENV_VK_MAX_ACT_RANGE);
    if (lim > 2 * c->align && lim < c->max_range) c->act_range = lim;
    /* the largest buffer: both driver limits (RADV, ANV, AMDVLK: 2-4 GiB), or
     * lower with FP4RT_VK_MAX_ALLOC (tests emulate such a driver on lavapipe) */
    c->max_alloc = c->desc.max_alloc && c->desc.max_alloc < c->desc.max_buffer ? c->desc.max_alloc : c->desc.max_buffer;
    if (!c->max_alloc) c->max_alloc = (VkDeviceSize)1 << 30; /* Vulkan's guaranteed minimum */
    lim = fp4rt_env_size(FP4RT_ENV_VK_MAX_ALLOC);
    if (lim >= 4096 && lim < c->max_alloc) {
        c->max_alloc = lim / 4 * 4;
        c->max_alloc_knob = 1;
        fp4rt_log(FP4RT_LOG_INFO, "vulkan: FP4RT_VK_MAX_ALLOC: buffers limited to %llu bytes",
                  (unsigned long long)c->max_alloc);
    }
    /* tests force the shared-memory reduction with FP4RT_VK_NO_SUBGROUP=1 */
    c->linear_subgroup = c->desc.subgroup_shuffle && !fp4rt_env_bool(FP4RT_ENV_VK_NO_SUBGROUP);
    /* a software device runs a workgroup as SIMD lanes of a CPU: one row per
     * lane is its fast layout (same bits); FP4RT_VK_LINEAR=rows / mv forces one */
    int lk = fp4rt_env_enum(FP4RT_ENV_VK_LINEAR); /* rows|mv */
    c->linear_rows = c->desc.int64 && (lk >= 0 ? lk == 0 : c->desc.software);
    /* the decode layout (shaders/wlayout.glsl) wherever the matrix-vector kernels run */
    c->interleave = !c->linear_rows && fp4rt_env_bool(FP4RT_ENV_VK_INTERLEAVE);
    c->fuse = fp4rt_env_bool(FP4RT_ENV_VK_FUSE);
    /* prefill FP8 / W4A4 linears on the matrix units where the device has
     * them; FP4RT_VK_COOPMAT=0 turns that off, =nv / =khr pick a kind the device
     * has (else none), =emu runs the emulated kernel (tests: needs
     * shaderFloat16 and subgroups of 8 or more) */
    int ck = fp4rt_env_enum(FP4RT_ENV_VK_COOPMAT); /* 0|nv|khr|emu */
    c->coop = c->desc.coopmat;
    if (ck == 0) c->coop = FP4RT_VK_COOP_NONE;
    if (ck == 1 || ck == 2) {
        int want = ck == 1 ? FP4RT_VK_COOP_NV : FP4RT_VK_COOP_KHR;
        c->coop = c->desc.coop_kinds >> want & 1 ? want : FP4RT_VK_COOP_NONE;
    }
    if (ck == 3)
        c->coop = c->desc.fp16 && c->desc.subgroup_size >= 8 ? FP4RT_VK_COOP_EMU : FP4RT_VK_COOP_NONE;
    /* prefill of W4A4 linears on packed integer dot products (linear_i8.comp)
     * where the device accelerates them and has no matrix units;
     * FP4RT_VK_IDOT=1 / 0 forces it (tests run it on lavapipe, not accelerated) */
    c->idot = c->desc.idot && (fp4rt_env_is_set(FP4RT_ENV_VK_IDOT) ? fp4rt_env_bool(FP4RT_ENV_VK_IDOT)
                                                                  : c->desc.idot_fast && !c->desc.software);
    /* FP4RT_VK_EXACT=1: every linear on the exact kernels (linear_mv /
     * linear_rows: the CPU's sums bit for bit), prefill too */
    c->exact = fp4rt_env_bool(FP4RT_ENV_VK_EXACT);
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = c->queue_family, .queueCount = 1,
                                   .pQueuePriorities = &prio};
    const char *exts[3] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    uint32_t n_exts = 1;
    void *chain = NULL;
    VkPhysicalDeviceShaderIntegerDotProductFeatures dotf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = VK_TRUE};
    if (c->idot) {
        chain = &dotf;
        exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    }
    vk_coop_enable coop;
    fp4rt_vk_coop_enable(c, &coop, exts, &n_exts, &chain);
    VkPhysicalDeviceFeatures feats = {.shaderInt64 = c->linear_rows}; /* linear_rows.comp's 64-bit loads */
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = chain,
                              .queueCreateInfoCount = 1, .pEnabledFeatures = &feats,
                              .pQueueCreateInfos = &qci, .enabledExtensionCount = n_exts,
                              .ppEnabledExtensionNames = exts};
    st = fp4rt_vk_check(vkCreateDevice(c->pdev, &dci, NULL, &c->dev), "vkCreateDevice");
    if (st) return st;
    volkLoadDeviceTable(&c->vt, c->dev);
    c->vt.vkGetDeviceQueue(c->dev, c->queue_family, 0, &c->queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = c->queue_family};
    st = fp4rt_vk_check(c->vt.vkCreateCommandPool(c->dev, &pci, NULL, &c->cmd_pool), "vkCreateCommandPool");
    if (st) return st;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 4};
    VkCommandBuffer cbs[4];
    st = fp4rt_vk_check(c->vt.vkAllocateCommandBuffers(c->dev, &ai, cbs), "vkAllocateCommandBuffers");
    if (st) return st;
    c->cmd = c->cmd_once = cbs[0];
    c->cmd_step = cbs[1];
    c->cmd_xfer[0] = cbs[2];
    c->cmd_xfer[1] = cbs[3];
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence *fences[] = {&c->fence, &c->xfer_fence[0], &c->xfer_fence[1]};
    for (size_t i = 0; !st && i < FP4RT_ARRAY_LEN(fences); i++)
        st = fp4rt_vk_check(c->vt.vkCreateFence(c->dev, &fci, NULL, fences[i]), "vkCreateFence");
    return st;
}

void fp4rt_vk_device_close(vk_ctx *c) {
    if (c->dev) {
        c->vt.vkDeviceWaitIdle(c->dev);
        /* after a timed-out submission this waits for the driver to finish or
         * to give the device up (device lost) */
        VkFence fences[] = {c->fence, c->xfer_fence[0], c->xfer_fence[1]};
        for (size_t i = 0; i < FP4RT_ARRAY_LEN(fences); i++)
            if (fences[i]) c->vt.vkDestroyFence(c->dev, fences[i], NULL);
        if (c->cmd_pool) c->vt.vkDestroyCommandPool(c->dev, c->cmd_pool, NULL);
        c->vt.vkDestroyDevice(c->dev, NULL);
    }
    fp4rt_vk_instance_destroy(c->instance, c->messenger);
}

/* ---- the registry record (vk.h) ---- */

fp4rt_status fp4rt_vk_device_fill(int index, fp4rt_device_desc *out) {
    fp4rt_vk_device_desc d;
    fp4rt_status st = fp4rt_vk_device_get(index, &d);
    if (st) return st;
    snprintf(out->title, sizeof out->title, "%.200s", d.name);
    snprintf(out->description, sizeof out->description, "%.80s (%s%s), %.60s%s%.40s", d.name, d.type,
             d.software ? ", software: used only when named" : "", d.driver, d.usable ? "" : ", not usable: ",
             d.usable ? "" : d.reason);
    out->memory_bytes = d.memory_bytes;
    out->usable = d.usable;
    snprintf(out->reason, sizeof out->reason, "%s", d.reason);
    out->software = d.software;
    /* discrete over integrated over the rest */
    out->score = !strcmp(d.type, "discrete") ? 3 : !strcmp(d.type, "integrated") ? 2 : 1;
    const char *coop = d.coop_kinds == (1 << FP4RT_VK_COOP_KHR | 1 << FP4RT_VK_COOP_NV) ? "KHR and NV"
                       : d.coopmat                                                    ? fp4rt_vk_coop_name(d.coopmat)
                                                                                      : "no";
    char(*l)[FP4RT_DEVICE_LINE] = out->details;
    snprintf(l[0], sizeof l[0], "type %s%s, driver %.150s, Vulkan %u.%u, %.1f GiB device-local", d.type,
             d.software ? " (software: used only when named)" : "", d.driver, (d.api_version >> 22) & 0x7f,
             (d.api_version >> 12) & 0x3ff, d.memory_bytes / 1073741824.0);
    snprintf(l[1], sizeof l[1],
             "fp16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s, subgroup %u, maxStorageBufferRange %.0f MiB",
             d.fp16 ? "yes" : "no", d.int8 ? "yes" : "no", d.storage16 ? "yes" : "no", d.storage8 ? "yes" : "no",
             d.subgroup_size, d.max_storage_range / 1048576.0);
    snprintf(l[2], sizeof l[2], "cooperative matrix %s, integer dot product %s", coop,
             d.idot_fast ? "yes (4x8 packed, accelerated)" : d.idot ? "yes (not accelerated)" : "no");
    char budget[64] = "not reported (no VK_EXT_memory_budget)";
    if (d.budget_bytes) snprintf(budget, sizeof budget, "%.2f GiB free", d.budget_bytes / 1073741824.0);
    snprintf(l[3], sizeof l[3],
             "one allocation up to %.2f GiB (maxMemoryAllocationSize), one buffer up to %.2f GiB (maxBufferSize), "
             "memory budget %s",
             d.max_alloc / 1073741824.0, d.max_buffer / 1073741824.0, budget);
    snprintf(l[4], sizeof l[4], "%s%s", d.usable ? "usable" : "not usable: ", d.usable ? "" : d.reason);
    out->n_details = 5;
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_device_create(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx) {
    (void)n_threads;
    *ops = &fp4rt_backend_vulkan;
    return fp4rt_vk_backend_create(index, ctx);
}
