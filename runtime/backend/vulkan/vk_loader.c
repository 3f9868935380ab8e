/* Vulkan loader and instance: libvulkan is opened at run time through volk (so
 * the binary runs where there is no Vulkan driver), instance-level functions are
 * loaded per instance, and a debug-utils messenger turns every validation-layer
 * warning or error into a log line and a count (tests require zero). */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdlib.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static VkResult g_load = VK_ERROR_INITIALIZATION_FAILED;
static atomic_long g_messages;

static void load_once(void) { g_load = volkInitialize(); }

fp4rt_status fp4rt_vk_load(void) {
    pthread_once(&g_once, load_once);
    if (g_load != VK_SUCCESS)
        return fp4rt_fail(FP4RT_DEVICE, "Vulkan is not available: libvulkan.so.1 could not be loaded");
    return FP4RT_OK;
}

long fp4rt_vk_message_count(void) { return atomic_load(&g_messages); }

const char *fp4rt_vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    default: return "VkResult error";
    }
}

fp4rt_status fp4rt_vk_check(VkResult r, const char *what) {
    if (r == VK_SUCCESS) return FP4RT_OK;
    fp4rt_status s = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                         ? FP4RT_OUT_OF_MEMORY
                         : FP4RT_DEVICE;
    return fp4rt_fail(s, "vulkan: %s failed: %s (%d)", what, fp4rt_vk_result_name(r), (int)r);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user) {
    (void)user;
    /* the loader's own notices (general type: "VK_INSTANCE_LAYERS defined",
     * "Found no drivers") are not validation messages: logged at debug level,
     * not counted (failures still surface as VkResult errors) */
    int counted = (type & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)) != 0;
    if (counted) atomic_fetch_add(&g_messages, 1);
    fp4rt_log(!counted ? FP4RT_LOG_DEBUG
              : sev >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? FP4RT_LOG_ERROR : FP4RT_LOG_WARN,
              "vulkan: %s", data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static int has_instance_ext(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkExtensionProperties *e = fp4rt_calloc(n, sizeof *e, "vulkan extensions");
    int found = 0;
    if (e && vkEnumerateInstanceExtensionProperties(NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

fp4rt_status fp4rt_vk_instance_create(VkInstance *inst, VkDebugUtilsMessengerEXT *msg) {
    *inst = VK_NULL_HANDLE;
    *msg = VK_NULL_HANDLE;
    fp4rt_status st = fp4rt_vk_load();
    if (st) return st;
    uint32_t api = 0;
    if (!vkEnumerateInstanceVersion || vkEnumerateInstanceVersion(&api) != VK_SUCCESS || api < VK_API_VERSION_1_2)
        return fp4rt_fail(FP4RT_DEVICE, "Vulkan 1.2 is needed; the installed loader offers %u.%u",
                          VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));
    /* messages go to the log and the counter whenever the extension exists
     * (the validation layer itself is enabled from the environment:
     * VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation) */
    int debug = has_instance_ext(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "fp4rt",
                             .pEngineName = "fp4rt", .apiVersion = VK_API_VERSION_1_2};
    VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = debug ? &mci : NULL,
                               .pApplicationInfo = &app, .enabledExtensionCount = debug ? 1u : 0u,
                               .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateInstance(&ci, NULL, inst);
    if (r != VK_SUCCESS) {
        *inst = VK_NULL_HANDLE;
        return fp4rt_vk_check(r, "vkCreateInstance");
    }
    volkLoadInstanceOnly(*inst);
    if (debug && vkCreateDebugUtilsMessengerEXT)
        vkCreateDebugUtilsMessengerEXT(*inst, &mci, NULL, msg);
    return FP4RT_OK;
}

void fp4rt_vk_instance_destroy(VkInstance inst, VkDebugUtilsMessengerEXT msg) {
    if (!inst) return;
    if (msg && vkDestroyDebugUtilsMessengerEXT) vkDestroyDebugUtilsMessengerEXT(inst, msg, NULL);
    vkDestroyInstance(inst, NULL);
}
