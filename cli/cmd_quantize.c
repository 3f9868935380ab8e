/* fp4rt quantize: BF16/F16/F32 checkpoint -> ModelOpt NVFP4 / FP8 checkpoint. */
#include "cli/commands.h"

#include "runtime/tools/quantize.h"
#include "runtime/model/schema.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_usage =
    "--in DIR --out DIR --recipe nvidia-mixed|nvfp4-all|nvfp4-w4a4|fp8\n"
    "       [--scale mse|4over6|absmax] [--err mse|mae] [--calib FILE] [--calib-tokens N]\n"
    "       [--no-importance] [--eval FILE] [--eval-tokens N] [--report FILE.json]\n"
    "       [--threads N] [--shard-mb M] [--force]";

/* A one-line progress bar on stderr (only when stderr is a terminal). */
static int progress_bar(float f, const char *stage, void *user) {
    (void)user;
    int w = 30, n = (int)(f * w + 0.5f);
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < n ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r\033[Kquantize [%s] %3d%% %.60s", bar, (int)(f * 100 + 0.5f), stage);
    if (f >= 1.0f) fprintf(stderr, "\r\033[K");
    fflush(stderr);
    return 0;
}

int fp4rt_cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *recipe = NULL, *v;
    long shard_mb = 0;
    int force = 0, scale_given = 0;
    fp4rt_quantize_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--in"))) in = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--out"))) out = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--recipe"))) recipe = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--shard-mb")))
            shard_mb = fp4rt_cli_parse_range("--shard-mb", v, 0, 1L << 30);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--scale"))) {
            int s = fp4rt_scale_strategy_parse(v);
            if (s < 0) return fp4rt_cli_bad("--scale: unknown '%s' (known: absmax, 4over6, mse)", v);
            opts.scale = (fp4rt_scale_strategy)s;
            scale_given = 1;
        } else if ((v = fp4rt_cli_opt(argc, argv, &i, "--err"))) {
            if (strcmp(v, "mse") && strcmp(v, "mae")) return fp4rt_cli_bad("--err: unknown '%s' (known: mse, mae)", v);
            opts.err = strcmp(v, "mae") ? FP4RT_ERR_MSE : FP4RT_ERR_MAE;
        } else if ((v = fp4rt_cli_opt(argc, argv, &i, "--calib"))) opts.calib_path = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--calib-tokens")))
            opts.calib_tokens = (int)fp4rt_cli_parse_range("--calib-tokens", v, 0, INT_MAX);
        else if (!strcmp(argv[i], "--no-importance")) opts.no_importance = 1;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--eval"))) opts.eval_path = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--eval-tokens")))
            opts.eval_tokens = (int)fp4rt_cli_parse_range("--eval-tokens", v, 0, INT_MAX);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--report"))) opts.report_path = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--threads")))
            opts.n_threads = (int)fp4rt_cli_parse_range("--threads", v, 0, FP4RT_CLI_MAX_THREADS);
        else if (!strcmp(argv[i], "--force")) force = 1;
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!in || !out || !recipe)
        return fp4rt_cli_bad("quantize: %s is required", !in ? "--in DIR" : !out ? "--out DIR" : "--recipe");
    if (fp4rt_recipe_known(recipe) < 0)
        return fp4rt_cli_bad("--recipe: unknown recipe '%s' (known: nvidia-mixed, nvfp4-all, nvfp4-w4a4, fp8)", recipe);
    /* The command's default block scales are mse, the lowest KL to BF16 measured on
     * the trained reference model (bench/RESULTS.md); absmax (the library's zero
     * value) reproduces ModelOpt byte for byte. fp8 has no NVFP4 weights. */
    if (!scale_given && strcmp(recipe, "fp8") != 0) opts.scale = FP4RT_SCALE_MSE;
    if (opts.err == FP4RT_ERR_MAE && opts.scale != FP4RT_SCALE_4OVER6)
        return fp4rt_cli_bad("--err applies to --scale 4over6 only");
    if (fp4rt_cli_check_out_dir(out, in, force) ||
        (opts.report_path && fp4rt_cli_check_out_path("--report", opts.report_path, 0)))
        return 1;
    if (fp4rt_cli_clean_on_signal()) return 1;
    opts.shard_bytes = (uint64_t)shard_mb << 20;
    if (isatty(STDERR_FILENO)) opts.progress = progress_bar;

    fp4rt_quantize_summary s;
    fp4rt_status st = fp4rt_quantize(in, out, recipe, force, &opts, &s);
    if (st != FP4RT_OK) {
        if (opts.progress) fprintf(stderr, "\r\033[K");
        return fp4rt_cli_fail(st);
    }
    printf("quantize: wrote %s (%s): %zu tensors, %llu bytes; %zu NVFP4, %zu FP8, %zu kept, "
           "%zu copied\n",
           out, recipe, s.n_tensors, (unsigned long long)s.bytes, s.n_nvfp4, s.n_fp8, s.n_kept,
           s.n_copied);
    fputs(s.text, stdout);
    if (opts.report_path) printf("quantize: report in %s\n", opts.report_path);
    free(s.text);
    return 0;
}
