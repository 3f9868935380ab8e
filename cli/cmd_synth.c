/* fp4rt synth: write a deterministic random BF16 checkpoint of a named config. */
#include "cli/commands.h"

#include "runtime/base/common.h"
#include "runtime/model/schema.h"
#include "runtime/tools/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "--config tiny|small|qwen3.5-0.8b|qwen3.6-27b --out DIR [--seed S] [--layers N] [--shard-mb M] "
    "[--format causal-lm] [--force]";

int fp4rt_cmd_synth(int argc, char **argv) {
    const char *name = NULL, *out = NULL, *v;
    long seed = 0, layers = 0, shard_mb = 0;
    int force = 0, causal = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--config"))) name = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--out"))) out = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--seed"))) seed = fp4rt_cli_parse_long("--seed", v);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--layers")))
            layers = fp4rt_cli_parse_range("--layers", v, 0, FP4RT_MAX_LAYERS);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--shard-mb")))
            shard_mb = fp4rt_cli_parse_range("--shard-mb", v, 0, 1L << 30);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--format"))) {
            if (strcmp(v, "causal-lm") && strcmp(v, "conditional-generation"))
                return fp4rt_cli_bad("--format: '%s' is not causal-lm or conditional-generation", v);
            causal = !strcmp(v, "causal-lm");
        } else if (!strcmp(argv[i], "--force")) force = 1;
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!name || !out) return fp4rt_cli_bad("synth: %s is required", !name ? "--config NAME" : "--out DIR");
    if (fp4rt_cli_check_out_dir(out, NULL, force) || fp4rt_cli_clean_on_signal()) return 1;

    fp4rt_config cfg;
    fp4rt_status st = fp4rt_config_preset(name, (int)layers, &cfg);
    if (st == FP4RT_INVALID_ARGUMENT) { /* unknown config name: a usage error */
        fp4rt_cli_fail(st);
        return 2;
    }
    if (st != FP4RT_OK) return fp4rt_cli_fail(st);
    if (causal) { /* text-only Qwen3_5ForCausalLM layout, tensors under "model." */
        snprintf(cfg.architecture, sizeof cfg.architecture, "Qwen3_5ForCausalLM");
        cfg.nested = 0;
        snprintf(cfg.tensor_prefix, sizeof cfg.tensor_prefix, "model.");
    }
    st = fp4rt_synth(&cfg, out, (uint64_t)seed, (uint64_t)shard_mb << 20, force);
    if (st != FP4RT_OK) return fp4rt_cli_fail(st);

    fp4rt_tensor_spec *specs = NULL;
    size_t n = fp4rt_schema_tensors(&cfg, &specs);
    uint64_t params = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = 1;
        for (int d = 0; d < specs[i].ndim; d++) e *= (uint64_t)specs[i].shape[d];
        params += e;
    }
    free(specs);
    size_t n_mtp = fp4rt_schema_mtp_tensors(&cfg, &specs);
    for (size_t i = 0; i < n_mtp; i++) {
        uint64_t e = 1;
        for (int d = 0; d < specs[i].ndim; d++) e *= (uint64_t)specs[i].shape[d];
        params += e;
    }
    n += n_mtp;
    free(specs);
    specs = NULL;
    size_t n_vis = cfg.nested ? fp4rt_schema_vision_tensors(&cfg, &specs) : 0;
    uint64_t vparams = 0;
    for (size_t i = 0; i < n_vis; i++) {
        uint64_t e = 1;
        for (int d = 0; d < specs[i].ndim; d++) e *= (uint64_t)specs[i].shape[d];
        vparams += e;
    }
    n += n_vis;
    params += vparams;
    free(specs);
    printf("synth: wrote %s: %s, %d layers, %zu tensors, %llu parameters (%llu of the vision tower), %llu bytes "
           "BF16, seed %ld\n",
           out, name, cfg.n_layers, n, (unsigned long long)params, (unsigned long long)vparams,
           (unsigned long long)(params * 2), seed);
    return 0;
}
