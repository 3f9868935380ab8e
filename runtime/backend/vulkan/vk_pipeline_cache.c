/* The on-disk Vulkan pipeline cache (docs/STYLE.md rule 10): the VkPipelineCache's
 * data saved in <dir>/pipelines-<vendorID>-<deviceID>.bin behind our own
 * header, where <dir> is $FP4RT_CACHE_DIR, else $XDG_CACHE_HOME/fp4rt, else
 * $HOME/.cache/fp4rt. The header pins the library version, vendor, device,
 * driver version and pipelineCacheUUID and checksums the data (FNV-1a 64); the
 * Vulkan-side header (VkPipelineCacheHeaderVersionOne) is checked as well.
 * A file that is missing, truncated, corrupt or made for something else is
 * ignored (logged at INFO) and overwritten at the next save; a cache that
 * cannot be read or written never fails the backend. Saved on destroy, only
 * when pipelines were created and the data changed, through a temporary file
 * renamed over the old one (atomic on POSIX). */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PC_MAGIC "FP4RTPC1"
#define PC_HEADER_VERSION 1u
#define PC_MAX_DATA ((uint64_t)256 << 20)

typedef struct pcache_header {
    char magic[8];            /* "FP4RTPC1" */
    uint32_t header_version;  /* PC_HEADER_VERSION */
    uint32_t header_bytes;    /* sizeof(pcache_header) */
    char lib_version[16];     /* FP4RT_VERSION_STRING, NUL-padded */
    uint32_t vendor_id, device_id, driver_version;
    uint8_t uuid[VK_UUID_SIZE]; /* pipelineCacheUUID */
    uint32_t reserved;        /* 0 */
    uint64_t data_bytes;      /* Vulkan cache data that follows */
    uint64_t checksum;        /* FNV-1a 64 of the data */
} pcache_header;
_Static_assert(sizeof(pcache_header) == 80, "pcache_header has no padding");

static atomic_size_t g_loaded_bytes;
static atomic_long g_saves;

size_t fp4rt_vk_pipeline_cache_loaded_bytes(void) { return atomic_load(&g_loaded_bytes); }
long fp4rt_vk_pipeline_cache_saves(void) { return atomic_load(&g_saves); }

static uint64_t fnv1a64(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void make_header(const vk_ctx *c, pcache_header *h, const void *data, size_t n) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, PC_MAGIC, 8);
    h->header_version = PC_HEADER_VERSION;
    h->header_bytes = sizeof *h;
    snprintf(h->lib_version, sizeof h->lib_version, "%s", FP4RT_VERSION_STRING);
    h->vendor_id = c->props.vendorID;
    h->device_id = c->props.deviceID;
    h->driver_version = c->props.driverVersion;
    memcpy(h->uuid, c->props.pipelineCacheUUID, VK_UUID_SIZE);
    h->data_bytes = n;
    h->checksum = fnv1a64(data, n);
}

/* The cache directory (new string), or NULL when no location is known. */
static char *cache_dir(void) {
    const char *e = fp4rt_env_str(FP4RT_ENV_CACHE_DIR);
    if (e) return fp4rt_strdup(e);
    e = getenv("XDG_CACHE_HOME");
    if (e && e[0]) return fp4rt_path_join(e, "fp4rt");
    e = getenv("HOME");
    if (e && e[0]) return fp4rt_path_join(e, ".cache/fp4rt");
    return NULL;
}

/* mkdir -p; 0 on success. */
static int make_dirs(char *path) {
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char saved = *p;
        *p = 0;
        int r = mkdir(path, 0755);
        int err = errno;
        *p = saved;
        if (r && err != EEXIST) return -1;
        if (!saved) break;
    }
    struct stat sb;
    return stat(path, &sb) || !S_ISDIR(sb.st_mode) ? -1 : 0;
}

static void set_path(vk_ctx *c) {
    if (c->cache_path) return;
    char *dir = cache_dir();
    if (!dir) return;
    char name[64];
    snprintf(name, sizeof name, "pipelines-%u-%u.bin", c->props.vendorID, c->props.deviceID);
    c->cache_path = fp4rt_path_join(dir, name);
    free(dir);
}

void fp4rt_vk_pipeline_cache_load(vk_ctx *c, void **data, size_t *n) {
    *data = NULL;
    *n = 0;
    atomic_store(&g_loaded_bytes, 0);
    set_path(c);
    if (!c->cache_path) return;
    const char *path = c->cache_path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fp4rt_log(FP4RT_LOG_DEBUG, "vulkan: no pipeline cache at %s (%s): starting empty", path, strerror(errno));
        return;
    }
    pcache_header h, want;
    void *buf = NULL;
    const char *why = NULL;
    if (fread(&h, sizeof h, 1, f) != 1) why = "truncated header";
    else if (memcmp(h.magic, PC_MAGIC, 8)) why = "bad magic";
    else if (h.header_version != PC_HEADER_VERSION || h.header_bytes != sizeof h) why = "other header version";
    else if (h.data_bytes < 32 || h.data_bytes > PC_MAX_DATA) why = "bad data size";
    if (!why) {
        make_header(c, &want, NULL, 0);
        if (memcmp(h.lib_version, want.lib_version, sizeof h.lib_version)) why = "other library version";
        else if (h.vendor_id != want.vendor_id || h.device_id != want.device_id) why = "other device";
        else if (h.driver_version != want.driver_version) why = "other driver version";
        else if (memcmp(h.uuid, want.uuid, VK_UUID_SIZE)) why = "other pipelineCacheUUID";
    }
    if (!why) {
        buf = malloc((size_t)h.data_bytes);
        if (!buf) why = "out of memory";
        else if (fread(buf, 1, (size_t)h.data_bytes, f) != h.data_bytes) why = "truncated data";
        else if (fgetc(f) != EOF) why = "trailing bytes";
        else if (fnv1a64(buf, (size_t)h.data_bytes) != h.checksum) why = "checksum mismatch";
    }
    fclose(f);
    if (!why) { /* VkPipelineCacheHeaderVersionOne */
        const uint8_t *b = buf;
        uint32_t v[4];
        memcpy(v, b, sizeof v);
        if (v[0] < 32 || v[0] > h.data_bytes) why = "bad Vulkan header size";
        else if (v[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE) why = "other Vulkan header version";
        else if (v[2] != c->props.vendorID || v[3] != c->props.deviceID) why = "Vulkan header names another device";
        else if (memcmp(b + 16, c->props.pipelineCacheUUID, VK_UUID_SIZE)) why = "Vulkan header UUID differs";
    }
    if (why) {
        fp4rt_log(FP4RT_LOG_INFO, "vulkan: ignoring pipeline cache %s (%s): it will be rebuilt", path, why);
        free(buf);
        return;
    }
    fp4rt_log(FP4RT_LOG_DEBUG, "vulkan: pipeline cache %s: %llu bytes", path, (unsigned long long)h.data_bytes);
    *data = buf;
    *n = (size_t)h.data_bytes;
    c->cache_loaded_sum = h.checksum;
    c->cache_loaded_bytes = *n;
    atomic_store(&g_loaded_bytes, *n);
}

void fp4rt_vk_pipeline_cache_save(vk_ctx *c) {
    if (!c->cache || !c->pipes_created) return;
    set_path(c);
    if (!c->cache_path) return;
    size_t n = 0;
    if (c->vt.vkGetPipelineCacheData(c->dev, c->cache, &n, NULL) != VK_SUCCESS || n == 0 || n > PC_MAX_DATA) return;
    void *data = malloc(n);
    if (!data) return;
    VkResult r = c->vt.vkGetPipelineCacheData(c->dev, c->cache, &n, data);
    pcache_header h;
    if (r == VK_SUCCESS) make_header(c, &h, data, n);
    if (r != VK_SUCCESS || (n == c->cache_loaded_bytes && h.checksum == c->cache_loaded_sum)) {
        free(data); /* unchanged (or unreadable): nothing to write */
        return;
    }
    char *dir = cache_dir();
    char *tmp = malloc(strlen(c->cache_path) + 32);
    const char *why = NULL;
    if (!dir || !tmp) why = "out of memory";
    else if (make_dirs(dir)) why = "cannot create the directory";
    if (!why) {
        sprintf(tmp, "%s.tmp.%ld", c->cache_path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        if (!f) why = "cannot create the file";
        else {
            int bad = fwrite(&h, sizeof h, 1, f) != 1 || fwrite(data, 1, n, f) != n;
            bad |= fclose(f) != 0;
            if (bad || rename(tmp, c->cache_path)) {
                why = "cannot write the file";
                remove(tmp);
            }
        }
    }
    if (why)
        fp4rt_log(FP4RT_LOG_INFO, "vulkan: pipeline cache not saved to %s (%s: %s)", c->cache_path, why,
                  strerror(errno));
    else {
        fp4rt_log(FP4RT_LOG_DEBUG, "vulkan: pipeline cache saved to %s (%zu bytes)", c->cache_path, n);
        atomic_fetch_add(&g_saves, 1);
    }
    free(dir);
    free(tmp);
    free(data);
}
