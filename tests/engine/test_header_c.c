/* The public header compiles as strict C11 (-Wpedantic -Werror) and links
 * against libfp4rt.so alone. */
#include <fp4rt.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    int fails = 0;
    fails += strcmp(fp4rt_status_name(FP4RT_FORMAT), "FORMAT") != 0;
    fails += strcmp(fp4rt_status_message(FP4RT_OUT_OF_MEMORY), "out of memory") != 0;
    fails += strcmp(fp4rt_status_name((fp4rt_status)999), "UNKNOWN") != 0;
    fp4rt_model_params mp = fp4rt_model_default_params();
    fails += mp.n_threads != 0 || mp.device != NULL;
    fails += fp4rt_model_load("/nonexistent-fp4rt-model", &mp) != NULL;
    fails += strstr(fp4rt_last_error(), "/nonexistent-fp4rt-model") == NULL;
    fp4rt_device_info d;
    fails += fp4rt_device_count() < 1 || fp4rt_device_get(0, &d) != FP4RT_OK || d.kind != FP4RT_DEVICE_CPU;
    fails += strcmp(FP4RT_VERSION_STRING, "0.1.0") != 0;
    printf("header (C): %d passed, %d failed\n", 8 - fails, fails);
    return fails != 0;
}
