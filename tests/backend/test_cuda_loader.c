/* The CUDA module loader (runtime/backend/cuda_loader.c) and device choice, on any
 * machine. argv[1] says what this machine is expected to show:
 *   "present"    the module was built (FP4RT_CUDA_MODULE names it): with no
 *                loadable libcuda.so.1 the reason is "no CUDA driver"; with
 *                devices, each description is checked;
 *   "no-module"  FP4RT_CUDA_MODULE names a missing file: "no CUDA module";
 *   "disabled"   FP4RT_NO_CUDA=1: no device, "CUDA disabled", nothing loaded;
 *   "old-driver" LD_LIBRARY_PATH holds a fake libcuda.so.1 of CUDA 12.4: the
 *                reason names cudaErrorInsufficientDriver and both versions.
 * In every mode: fp4rt_device_count() lists the CUDA devices after the CPU and
 * Vulkan ones, --device cuda:0 without a device fails with the reason,
 * --device auto still loads the model, and "cuda:x" is refused. */
#include "fp4rt.h"
#include "tests/test_util.h"

#include "runtime/backend/cuda.h"

#include <dlfcn.h>

static const char *model_dir = "tests/fixtures/tiny-bf16";

static void check_device_choice(int n) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.n_threads = 2;
    mp.device = "auto";
    fp4rt_model *m = fp4rt_model_load(model_dir, &mp);
    CHECK_MSG(m != NULL, "auto: %s", fp4rt_last_error());
    if (m) {
        printf("auto -> %s\n", fp4rt_model_device(m));
        if (n == 0) CHECK_MSG(strncmp(fp4rt_model_device(m), "cuda", 4), "auto picked %s", fp4rt_model_device(m));
        fp4rt_model_free(m);
    }
    mp.device = "cuda:0";
    m = fp4rt_model_load(model_dir, &mp);
    if (n == 0) {
        CHECK_MSG(m == NULL, "cuda:0 loaded without a CUDA device");
        printf("cuda:0 -> %s\n", fp4rt_last_error());
        CHECK_MSG(strstr(fp4rt_last_error(), "cuda:0") && strstr(fp4rt_last_error(), fp4rt_cuda_unavailable_reason()),
                  "cuda:0 error does not give the reason: %s", fp4rt_last_error());
    } else {
        CHECK_MSG(m != NULL, "cuda:0: %s", fp4rt_last_error());
        if (m) CHECK_MSG(!strncmp(fp4rt_model_device(m), "cuda:0", 6), "device %s", fp4rt_model_device(m));
    }
    fp4rt_model_free(m);
    mp.device = "cuda:x";
    m = fp4rt_model_load(model_dir, &mp);
    CHECK(m == NULL && strstr(fp4rt_last_error(), "expected cuda:N"));
    fp4rt_model_free(m);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "present";
    int n = fp4rt_cuda_device_count();
    const char *why = fp4rt_cuda_unavailable_reason();
    printf("mode %s: %d CUDA device%s%s%s\n", mode, n, n == 1 ? "" : "s", n ? "" : ": ", why);
    printf("module: %s (%s)\n", fp4rt_cuda_module_path(), fp4rt_cuda_module_build());
    /* the public list: CPU, Vulkan devices, then CUDA devices */
    int total = fp4rt_device_count(), n_cuda_listed = 0;
    for (int i = 0; i < total; i++) {
        fp4rt_device_info d;
        CHECK(fp4rt_device_get(i, &d) == FP4RT_OK);
        if (d.kind == FP4RT_DEVICE_CUDA) {
            n_cuda_listed++;
            CHECK_MSG(!strncmp(d.name, "cuda:", 5), "name %s", d.name);
            printf("%s: %s\n", d.name, d.description);
        }
    }
    CHECK_EQ_INT(n_cuda_listed, n);
    if (!strcmp(mode, "disabled")) {
        CHECK_EQ_INT(n, 0);
        CHECK_MSG(strstr(why, "CUDA disabled") != NULL, "reason: %s", why);
        CHECK_MSG(!fp4rt_cuda_module_path()[0], "module %s loaded", fp4rt_cuda_module_path());
    } else if (!strcmp(mode, "no-module")) {
        CHECK_EQ_INT(n, 0);
        CHECK_MSG(strstr(why, "no CUDA module") != NULL, "reason: %s", why);
    } else if (!strcmp(mode, "old-driver")) {
        CHECK_EQ_INT(n, 0);
        CHECK_MSG(strstr(why, "too old") && strstr(why, "cudaErrorInsufficientDriver") && strstr(why, "CUDA 12.4") &&
                      strstr(why, "CUDA 13."),
                  "reason: %s", why);
    } else {
        const char *path = getenv("FP4RT_CUDA_MODULE");
        CHECK_MSG(path && !strcmp(path, fp4rt_cuda_module_path()), "module %s not loaded: %s", path ? path : "(unset)",
                  why);
        void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!drv) {
            CHECK_EQ_INT(n, 0);
            CHECK_MSG(strstr(why, "no CUDA driver") != NULL, "reason: %s", why);
        } else {
            dlclose(drv);
        }
        for (int i = 0; i < n; i++) {
            fp4rt_cuda_device_desc d;
            CHECK(fp4rt_cuda_device_get(i, &d) == FP4RT_OK);
            printf("cuda:%d %s sm_%d%d %.1f GiB %.0f GB/s NVFP4 %s%s%s\n", i, d.name, d.cc_major, d.cc_minor,
                   d.memory_bytes / 1073741824.0, d.bandwidth_gbs, fp4rt_cuda_fp4_path_name(d.fp4_path),
                   d.usable ? "" : ", not usable: ", d.reason);
            CHECK(d.name[0] && d.cc_major >= 5 && d.memory_bytes > 0 && d.bandwidth_gbs > 0 && d.sm_count > 0);
            if (d.cc_major == 10) CHECK_EQ_INT(d.fp4_path, FP4RT_CUDA_FP4_DEQUANT_TCGEN05);
            if (d.cc_major != 10 && d.cc_major != 12) CHECK_EQ_INT(d.fp4_path, FP4RT_CUDA_FP4_DEQUANT);
        }
        fp4rt_cuda_device_desc d;
        CHECK(fp4rt_cuda_device_get(n, &d) == FP4RT_DEVICE);
    }
    check_device_choice(n);
    return test_summary("test_cuda_loader");
}
