/* Cooperative matrices (the matrix units) for prefill linears: which kind the
 * device offers, and a check of shaders/linear_coop.comp on the device before
 * the backend uses it.
 *
 * Kinds: VK_KHR_cooperative_matrix (the NV SPIR-V rewritten, vk_spirv_coop.c),
 * VK_NV_cooperative_matrix (the SPIR-V as compiled), each only with a
 * subgroup-scope 16 x 16 x 16 FP16 x FP16 + FP32 configuration, shaderFloat16
 * and the Vulkan memory model. The Vulkan headers of Debian 12 (1.3.239) predate
 * the KHR extension, so its structures are declared here from the registry
 * (extension 507). The KHR kind is preferred; FP4RT_VK_COOPMAT=0 turns the
 * path off, =nv / =khr pick that kind (when the device has it), =emu runs
 * linear_coop_emu (the same kernel with the fragments emulated) on any
 * device with shaderFloat16 and subgroups of at least 8: tests use it on
 * lavapipe. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STYPE_COOP_FEATURES_KHR ((VkStructureType)1000506000)
#define STYPE_COOP_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef struct {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
} coop_features_khr;
typedef struct {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    int32_t AType, BType, CType, ResultType; /* VkComponentTypeKHR: FLOAT16 0, FLOAT32 1 */
    VkBool32 saturatingAccumulation;
    int32_t scope; /* VkScopeKHR: SUBGROUP 3 */
} coop_props_khr;
typedef VkResult(VKAPI_PTR *pfn_coop_props_khr)(VkPhysicalDevice, uint32_t *, coop_props_khr *);

static int khr_config(VkInstance inst, VkPhysicalDevice pd) {
    pfn_coop_props_khr get = (pfn_coop_props_khr)vkGetInstanceProcAddr(
        inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0 || n > 256) return 0;
    coop_props_khr *p = calloc(n, sizeof *p);
    int ok = 0;
    if (p) {
        for (uint32_t i = 0; i < n; i++)
            p[i].sType = STYPE_COOP_PROPERTIES_KHR;
        if (get(pd, &n, p) == VK_SUCCESS)
            for (uint32_t i = 0; i < n && !ok; i++)
                ok = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 && p[i].AType == 0 &&
                     p[i].BType == 0 && p[i].CType == 1 && p[i].ResultType == 1 && p[i].scope == 3;
    }
    free(p);
    return ok;
}

static int nv_config(VkInstance inst, VkPhysicalDevice pd) {
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0 || n > 256) return 0;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    int ok = 0;
    if (p) {
        for (uint32_t i = 0; i < n; i++)
            p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
        if (get(pd, &n, p) == VK_SUCCESS)
            for (uint32_t i = 0; i < n && !ok; i++)
                ok = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
                     p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                     p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                     p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                     p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                     p[i].scope == VK_SCOPE_SUBGROUP_NV;
    }
    free(p);
    return ok;
}

int fp4rt_vk_coop_probe(VkInstance inst, VkPhysicalDevice pd, uint32_t api_version) {
    int mask = 0;
    if (api_version < VK_API_VERSION_1_2) return 0;
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f12};
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (!f12.shaderFloat16 || !f12.vulkanMemoryModel) return 0;
    if (fp4rt_vk_has_device_ext(pd, "VK_KHR_cooperative_matrix")) {
        coop_features_khr fk = {.sType = STYPE_COOP_FEATURES_KHR};
        f2.pNext = &fk;
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        if (fk.cooperativeMatrix && khr_config(inst, pd)) mask |= 1 << FP4RT_VK_COOP_KHR;
    }
    if (fp4rt_vk_has_device_ext(pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME)) {
        VkPhysicalDeviceCooperativeMatrixFeaturesNV fn = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
        f2.pNext = &fn;
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        if (fn.cooperativeMatrix && nv_config(inst, pd)) mask |= 1 << FP4RT_VK_COOP_NV;
    }
    return mask;
}

const char *fp4rt_vk_coop_name(int kind) {
    switch (kind) {
    case FP4RT_VK_COOP_KHR:
        return "KHR";
    case FP4RT_VK_COOP_NV:
        return "NV";
    case FP4RT_VK_COOP_EMU:
        return "emulated";
    default:
        return "none";
    }
}

/* Device-creation chain for c->coop: shaderFloat16 (+ the Vulkan memory model and
 * the cooperative-matrix feature for the real kinds). The structures live in *s. */
void fp4rt_vk_coop_enable(const vk_ctx *c, vk_coop_enable *s, const char **exts, uint32_t *n_exts,
                          void **chain) {
    memset(s, 0, sizeof *s);
    if (c->coop == FP4RT_VK_COOP_NONE) return;
    s->f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
    s->f12.shaderFloat16 = VK_TRUE;
    s->f12.pNext = *chain;
    *chain = &s->f12;
    if (c->coop == FP4RT_VK_COOP_EMU) return;
    s->f12.vulkanMemoryModel = VK_TRUE;
    if (c->coop == FP4RT_VK_COOP_KHR) {
        coop_features_khr *fk = (coop_features_khr *)s->khr;
        _Static_assert(sizeof s->khr >= sizeof(coop_features_khr),
                       "room for the KHR feature struct");
        fk->sType = STYPE_COOP_FEATURES_KHR;
        fk->cooperativeMatrix = VK_TRUE;
        fk->pNext = *chain;
        *chain = fk;
        exts[(*n_exts)++] = "VK_KHR_cooperative_matrix";
    } else {
        s->nv.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
        s->nv.cooperativeMatrix = VK_TRUE;
        s->nv.pNext = *chain;
        *chain = &s->nv;
        exts[(*n_exts)++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    }
}

/* ---- the check ---- */

#define CHECK_N 40 /* rows: one full 32-row tile and a partial one */
#define CHECK_T 37 /* tokens: the same */
#define CHECK_K 80 /* two full 32-wide stages and a half one */

/* One FP8 or NVFP4 (W4A4 layout) product of the check through the kernel. */
static fp4rt_status run_check(vk_ctx *c, int fmt, double *worst) {
    int N = CHECK_N, T = CHECK_T, K = CHECK_K;
    size_t wbytes = fmt == FP4RT_W_FP8 ? (size_t)N * K : (size_t)N * K / 2,
           sbytes = (size_t)N * K / 16;
    uint8_t *w = malloc(wbytes), *s = malloc(sbytes);
    float *x = malloc(sizeof(float) * (size_t)T * K), *y = malloc(sizeof(float) * (size_t)T * N);
    fp4rt_buffer *bx = NULL, *bw = NULL, *bs = NULL, *by = NULL;
    fp4rt_status st =
        w && s && x && y ? FP4RT_OK : fp4rt_fail(FP4RT_OUT_OF_MEMORY, "vulkan: coop check buffers");
    uint32_t seed = 12345u + (uint32_t)fmt;
#define NEXT() (seed = seed * 1664525u + 1013904223u, seed >> 8)
    /* weights: random codes (no NaN), scales 2^-3 .. 2^3 with mantissas;
     * activations: E4M3 values as act_quant writes them */
    for (size_t i = 0; !st && i < wbytes; i++) {
        uint8_t b = (uint8_t)NEXT();
        if (fmt == FP4RT_W_FP8 && (b & 0x7f) == 0x7f) b &= 0xfe;
        w[i] = b;
    }
    for (size_t i = 0; !st && i < sbytes; i++)
        s[i] = (uint8_t)(0x20 + NEXT() % 0x30);
    for (size_t i = 0; !st && i < (size_t)T * K; i++) {
        uint8_t b = (uint8_t)NEXT();
        if ((b & 0x7f) == 0x7f) b &= 0xfe;
        x[i] = fp4rt_e4m3_to_f32(b);
    }
    if (!st) st = fp4rt_vk_buffer_create(c, sizeof(float) * (size_t)T * K, 0, "coop check x", &bx);
    if (!st) st = fp4rt_vk_buffer_create(c, (wbytes + 3) / 4 * 4, 0, "coop check w", &bw);
    if (!st) st = fp4rt_vk_buffer_create(c, (sbytes + 3) / 4 * 4, 0, "coop check scales", &bs);
    if (!st) st = fp4rt_vk_buffer_create(c, sizeof(float) * (size_t)T * N, 0, "coop check y", &by);
    if (!st) st = fp4rt_vk_upload(c, bx, 0, x, sizeof(float) * (size_t)T * K);
    if (!st) st = fp4rt_vk_upload(c, bw, 0, w, wbytes);
    if (!st) st = fp4rt_vk_upload(c, bs, 0, s, sbytes);
    vk_bind b[4];
    fp4rt_buffer *bufs[4] = {bx, bw, bs, by};
    for (int i = 0; !st && i < 4; i++)
        st = fp4rt_vk_window(c, bufs[i], 0, bufs[i]->bytes, "coop check", &b[i], NULL);
    vk_pc_linear pc = {.K = (uint32_t)K,
                       .fmt = (uint32_t)fmt,
                       .x_stride = (uint32_t)K,
                       .y_stride = (uint32_t)N,
                       .N = (uint32_t)N,
                       .T = (uint32_t)T,
                       .post = 0.5f};
    if (!st)
        st = fp4rt_vk_dispatch(
            c, c->coop == FP4RT_VK_COOP_EMU ? FP4RT_VK_SHADER_LINEAR_COOP_EMU : FP4RT_VK_SHADER_LINEAR_COOP, b, 4, &pc,
            sizeof pc, (uint32_t)(N + 31) / 32, (uint32_t)(T + 31) / 32, 1);
    if (!st) st = fp4rt_vk_submit_wait(c);
    if (st) fp4rt_vk_abandon(c);
    if (!st) st = fp4rt_vk_download(c, by, 0, y, sizeof(float) * (size_t)T * N);
    /* the exact sums in double; the kernel may differ by its FP32 accumulation */
    for (int t = 0; !st && t < T; t++)
        for (int n = 0; n < N; n++) {
            double sum = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                size_t i = (size_t)n * K + k;
                double wv = fmt == FP4RT_W_FP8
                                ? fp4rt_e4m3_to_f32(w[i])
                                : fp4rt_e2m1_to_f32((w[i / 2] >> (4 * (i & 1))) & 15) *
                                      fp4rt_e4m3_to_f32(s[i / 16]);
                sum += wv * x[(size_t)t * K + k];
                mag += fabs(wv * x[(size_t)t * K + k]);
            }
            double err = fabs(y[(size_t)t * N + n] - 0.5 * sum) / (0.5 * mag + 1e-30);
            if (!(err <= *worst)) *worst = isnan(err) ? INFINITY : err;
        }
#undef NEXT
    for (int i = 0; i < 4; i++)
        fp4rt_vk_buffer_destroy(c, bufs[i]);
    free(w);
    free(s);
    free(x);
    free(y);
    return st;
}

fp4rt_status fp4rt_vk_coop_check(vk_ctx *c) {
    if (c->coop == FP4RT_VK_COOP_NONE) return FP4RT_OK;
    double worst = 0;
    fp4rt_status st = run_check(c, FP4RT_W_FP8, &worst);
    if (!st) st = run_check(c, FP4RT_W_NVFP4_W4A4, &worst);
    /* FP32 accumulation of exact products: a few ulps of the magnitude sum */
    if (st || !(worst <= 1e-5)) {
        char why[512];
        if (st)
            snprintf(why, sizeof why, "%s", fp4rt_last_error());
        else
            snprintf(why, sizeof why, "relative error %.3g > 1e-5", worst);
        fp4rt_log(FP4RT_LOG_WARN,
                  "vulkan:%d (%s): the %s cooperative-matrix prefill kernel failed its check (%s): "
                  "prefill "
                  "uses the other linear kernels",
                  c->index, c->desc.name, fp4rt_vk_coop_name(c->coop), why);
        fp4rt_clear_error();
        c->coop = FP4RT_VK_COOP_NONE;
    } else
        fp4rt_log(FP4RT_LOG_INFO,
                  "vulkan:%d: prefill FP8 / W4A4 linears on %s cooperative matrices (check: "
                  "relative error %.2g)",
                  c->index, fp4rt_vk_coop_name(c->coop), worst);
    return FP4RT_OK;
}
