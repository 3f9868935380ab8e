/* Opens the CUDA module libfp4rt-cuda.so with dlopen, once per process, and
 * hands out its device list and backend table (runtime/backend/cuda.h).
 *
 * Search order: $FP4RT_CUDA_MODULE (a file; when set, nothing else is tried);
 * the directory of the object holding this code (libfp4rt.so, or the
 * executable when linked statically); the running executable's directory and
 * its ../<libdir>; the install lib dir. The module stays loaded until exit.
 * FP4RT_NO_CUDA=1 leaves CUDA alone (no device; the tests that expect the CPU
 * under --device auto set it). */
#include "runtime/backend/cuda.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FP4RT_INSTALL_LIBDIR
#define FP4RT_INSTALL_LIBDIR "/usr/local/lib"
#endif
#ifndef FP4RT_LIBDIR_NAME
#define FP4RT_LIBDIR_NAME "lib"
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const fp4rt_cuda_module *g_mod; /* NULL: not loaded (g_reason says why) */
static int g_count;
static char g_reason[768];
static char g_path[PATH_MAX];

/* ---- host callbacks lent to the module ---- */
static fp4rt_status host_fail(fp4rt_status st, const char *msg) { return fp4rt_fail(st, "%s", msg); }
static fp4rt_status host_fail_context(fp4rt_status st, const char *msg) { return fp4rt_fail_context(st, "%s", msg); }
static void host_log(fp4rt_log_level level, const char *msg) { fp4rt_log(level, "%s", msg); }

static const fp4rt_cuda_host g_host = {
    .abi_version = FP4RT_CUDA_ABI_VERSION,
    .layout = FP4RT_CUDA_LAYOUT,
    .fail = host_fail,
    .fail_context = host_fail_context,
    .log = host_log,
};

/* Directory part of path into out (no trailing slash); 0 when there is none. */
static int dir_of(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= n) return 0;
    memcpy(out, path, (size_t)(slash - path));
    out[slash - path] = 0;
    return 1;
}

/* Tries one candidate file: 1 loaded (g_path set), 0 absent, -1 present but refused (g_reason set). */
static int try_open(const char *file, void **handle) {
    if (access(file, F_OK) != 0) return 0;
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_reason, sizeof g_reason, "%.400s cannot be loaded: %.300s", file, dlerror());
        return -1;
    }
    *handle = h;
    char real[PATH_MAX];
    snprintf(g_path, sizeof g_path, "%.4000s", realpath(file, real) ? real : file);
    return 1;
}

static void load(void) {
    void *h = NULL;
    int r = 0;
    char looked[512] = "";
    if (fp4rt_env_bool(FP4RT_ENV_NO_CUDA)) {
        snprintf(g_reason, sizeof g_reason, "CUDA disabled (FP4RT_NO_CUDA is set)");
        return;
    }
    const char *env = fp4rt_env_str(FP4RT_ENV_CUDA_MODULE);
    if (env) {
        r = try_open(env, &h);
        if (r == 0) snprintf(g_reason, sizeof g_reason, "no CUDA module: FP4RT_CUDA_MODULE=%.600s does not exist", env);
        if (r <= 0) return;
    } else {
        char dirs[4][PATH_MAX];
        int nd = 0;
        Dl_info info;
        char self[PATH_MAX];
        if (dladdr((void *)&load, &info) && info.dli_fname && realpath(info.dli_fname, self) &&
            dir_of(self, dirs[nd], PATH_MAX))
            nd++;
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = 0;
            if (dir_of(exe, dirs[nd], PATH_MAX)) {
                nd++;
                snprintf(dirs[nd], PATH_MAX, "%.*s/../%s", PATH_MAX - 64, dirs[nd - 1], FP4RT_LIBDIR_NAME);
                nd++;
            }
        }
        snprintf(dirs[nd++], PATH_MAX, "%s", FP4RT_INSTALL_LIBDIR);
        for (int i = 0; i < nd && r == 0; i++) {
            int dup = 0;
            for (int j = 0; j < i; j++) dup |= !strcmp(dirs[i], dirs[j]);
            if (dup) continue;
            char file[PATH_MAX + 32];
            snprintf(file, sizeof file, "%.*s/%s", PATH_MAX - 32, dirs[i], FP4RT_CUDA_MODULE_NAME);
            r = try_open(file, &h);
            size_t l = strlen(looked);
            snprintf(looked + l, sizeof looked - l, "%s%.200s", l ? ", " : "", dirs[i]);
        }
        if (r == 0)
            snprintf(g_reason, sizeof g_reason,
                     "no CUDA module: %s not found (looked in %.600s; set FP4RT_CUDA_MODULE to its path)",
                     FP4RT_CUDA_MODULE_NAME, looked);
        if (r <= 0) return;
    }
    fp4rt_cuda_entry_fn entry = (fp4rt_cuda_entry_fn)dlsym(h, FP4RT_CUDA_ENTRY);
    const fp4rt_cuda_module *m = entry ? entry(FP4RT_CUDA_ABI_VERSION) : NULL;
    if (!entry) {
        snprintf(g_reason, sizeof g_reason, "%.500s is not an fp4rt CUDA module of ABI version %u (no symbol %s)", g_path,
                 FP4RT_CUDA_ABI_VERSION, FP4RT_CUDA_ENTRY);
    } else if (!m || m->abi_version != FP4RT_CUDA_ABI_VERSION) {
        snprintf(g_reason, sizeof g_reason, "%.500s does not speak ABI version %u", g_path, FP4RT_CUDA_ABI_VERSION);
        m = NULL;
    } else if (m->layout != FP4RT_CUDA_LAYOUT) {
        snprintf(g_reason, sizeof g_reason,
                 "%.500s was built from another fp4rt source tree (struct layout %08x, this library %08x): rebuild both",
                 g_path, m->layout, FP4RT_CUDA_LAYOUT);
        m = NULL;
    } else if (m->init(&g_host) != FP4RT_OK) {
        snprintf(g_reason, sizeof g_reason, "%.760s", fp4rt_last_error());
        fp4rt_clear_error();
        m = NULL;
    }
    if (!m) return; /* left loaded: unloading a CUDA runtime that may have started is not worth the risk */
    g_mod = m;
    g_count = m->device_count();
    if (g_count == 0) snprintf(g_reason, sizeof g_reason, "no CUDA device (the driver reports none)");
}

static const fp4rt_cuda_module *module(void) {
    pthread_once(&g_once, load);
    return g_mod;
}

int fp4rt_cuda_device_count(void) { return module() ? g_count : 0; }

const char *fp4rt_cuda_unavailable_reason(void) {
    module();
    return g_count > 0 ? "" : g_reason;
}

const char *fp4rt_cuda_module_path(void) {
    module();
    return g_path; /* set when the file was opened, also when its init then failed */
}

const char *fp4rt_cuda_module_build(void) { return module() ? g_mod->build : ""; }

fp4rt_status fp4rt_cuda_device_get(int index, fp4rt_cuda_device_desc *out) {
    memset(out, 0, sizeof *out);
    int n = fp4rt_cuda_device_count();
    if (n == 0) return fp4rt_fail(FP4RT_DEVICE, "cuda:%d is not available: %s", index, g_reason);
    if (index < 0 || index >= n)
        return fp4rt_fail(FP4RT_DEVICE, "cuda:%d is not available: %d CUDA device%s", index, n, n == 1 ? "" : "s");
    return g_mod->device_get(index, out);
}

const fp4rt_backend_ops *fp4rt_cuda_backend(void) { return module() ? g_mod->ops : NULL; }

fp4rt_status fp4rt_cuda_backend_create(int index, void **ctx) {
    *ctx = NULL;
    if (index < 0 || index >= fp4rt_cuda_device_count()) {
        fp4rt_cuda_device_desc d;
        return fp4rt_cuda_device_get(index, &d);
    }
    return g_mod->backend_create(index, ctx);
}

const char *fp4rt_cuda_fp4_path_name(int path) {
    switch (path) {
    case FP4RT_CUDA_FP4_NATIVE: return "native FP4 MMA";
    case FP4RT_CUDA_FP4_DEQUANT_TCGEN05: return "in-register dequant (tcgen05 FP4 not implemented yet)";
    default: return "in-register dequant";
    }
}
