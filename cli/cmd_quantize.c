/* fp4rt quantize: BF16/F16/F32 checkpoint -> ModelOpt NVFP4 / FP8 checkpoint. */
#include "commands.h"

#include "quantize.h"
#include "schema.h"

#include <stdio.h>
#include <string.h>

static const char *k_usage = "--in DIR --out DIR --recipe nvidia-mixed|nvfp4-all|nvfp4-w4a4 "
                             "[--shard-mb M] [--force]";

int fp4rt_cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *recipe = NULL, *v;
    long shard_mb = 0;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--in"))) in = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--out"))) out = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--recipe"))) recipe = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--shard-mb")))
            shard_mb = fp4rt_cli_parse_long("--shard-mb", v);
        else if (!strcmp(argv[i], "--force")) force = 1;
        else return fp4rt_cli_usage("quantize", k_usage);
    }
    if (!in || !out || !recipe) return fp4rt_cli_usage("quantize", k_usage);
    if (fp4rt_recipe_known(recipe) < 0) {
        fprintf(stderr, "fp4rt: error: unknown recipe '%s' (known: nvidia-mixed, nvfp4-all, "
                        "nvfp4-w4a4)\n", recipe);
        return 2;
    }

    fp4rt_quantize_opts opts = {.shard_bytes = (uint64_t)shard_mb << 20};
    fp4rt_quantize_summary s;
    fp4rt_status st = fp4rt_quantize(in, out, recipe, force, &opts, &s);
    if (st != FP4RT_OK) return fp4rt_cli_fail(st);
    printf("quantize: wrote %s (%s): %zu tensors, %llu bytes; %zu NVFP4, %zu FP8, %zu kept, "
           "%zu copied\n",
           out, recipe, s.n_tensors, (unsigned long long)s.bytes, s.n_nvfp4, s.n_fp8, s.n_kept,
           s.n_copied);
    if (s.default_input_scale)
        printf("quantize: no calibration: input_scale is the default for activation amax %g "
               "(FP8 %g, NVFP4 %g)\n",
               (double)s.assumed_act_amax, (double)s.assumed_act_amax / 448.0,
               (double)s.assumed_act_amax / 2688.0);
    return 0;
}
