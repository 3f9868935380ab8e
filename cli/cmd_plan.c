/* fp4rt plan: bytes of each part (weights, KV cache, GDN state, scratch,
 * logits, the GPU backends' RoPE table) for a context length, from a checkpoint or from a named config and a
 * quantization recipe alone (nothing is allocated or written). */
#include "cli/commands.h"

#include "runtime/engine/model.h"
#include "runtime/model/plan.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *k_usage =
    "(--model DIR | --config tiny|small|qwen3.5-0.8b|qwen3.6-27b [--layers N] [--recipe R]) [--ctx N] "
    "[--chunk N] [--kv bf16|f32|fp8] [--fp4-activations]";

static void print_plan(const fp4rt_config *cfg, const fp4rt_memory_plan *p,
                       const fp4rt_format_totals *t, const fp4rt_session_params *sp) {
    char b[32], b2[32];
    uint64_t n_tensors = 0;
    for (int f = 0; f <= FP4RT_W_COUNT; f++) n_tensors += t->tensors[f];
    printf("layers: %d (%d Gated DeltaNet, %d full attention), hidden %d, vocab %d\n", cfg->n_layers,
           cfg->n_layers - fp4rt_cfg_n_attention_layers(cfg), fp4rt_cfg_n_attention_layers(cfg),
           cfg->hidden, cfg->vocab);
    printf("tensors: %llu\n", (unsigned long long)n_tensors);
    for (int f = 0; f <= FP4RT_W_COUNT; f++) {
        if (!t->tensors[f]) continue;
        if (f == FP4RT_FMT_OTHER)
            printf("  %-12s %5llu tensors            %12s  (%llu bytes)\n", "other (BF16)",
                   (unsigned long long)t->tensors[f], fp4rt_cli_bytes(t->bytes[f], b, sizeof b),
                   (unsigned long long)t->bytes[f]);
        else
            printf("  %-12s %5llu linears, %5llu tensors %12s  (%llu bytes)\n", fp4rt_wfmt_name((fp4rt_wfmt)f),
                   (unsigned long long)t->modules[f], (unsigned long long)t->tensors[f],
                   fp4rt_cli_bytes(t->bytes[f], b, sizeof b), (unsigned long long)t->bytes[f]);
    }
    uint64_t total = p->weights + p->kv + p->conv + p->ssm + p->scratch + p->logits + p->rope;
    printf("weights      %12s  (%llu bytes; %.2f GB)\n", fp4rt_cli_bytes(p->weights, b, sizeof b),
           (unsigned long long)p->weights, p->weights / 1e9);
    printf("  read per decode token %s\n", fp4rt_cli_bytes(p->weights_per_token, b, sizeof b));
    printf("kv cache     %12s  (%d tokens x %s, %s, %d layers)\n", fp4rt_cli_bytes(p->kv, b, sizeof b),
           sp->n_ctx, fp4rt_cli_bytes(p->kv / (uint64_t)sp->n_ctx, b2, sizeof b2),
           fp4rt_kv_type_name(sp->kv_type), fp4rt_cfg_n_attention_layers(cfg));
    printf("gdn conv     %12s\n", fp4rt_cli_bytes(p->conv, b, sizeof b));
    printf("gdn state    %12s  (F32)\n", fp4rt_cli_bytes(p->ssm, b, sizeof b));
    printf("  verify checkpoints %s per position, %s for %d (speculative decoding, on first use; not in the total)\n",
           fp4rt_cli_bytes(p->conv + p->ssm, b, sizeof b),
           fp4rt_cli_bytes((p->conv + p->ssm) * FP4RT_VERIFY_MAX, b2, sizeof b2), FP4RT_VERIFY_MAX);
    printf("scratch      %12s  (chunk %d)\n", fp4rt_cli_bytes(p->scratch, b, sizeof b), sp->prefill_chunk);
    printf("logits       %12s\n", fp4rt_cli_bytes(p->logits, b, sizeof b));
    printf("rope table   %12s  (GPU backends: cos / sin of %d positions, F32)\n",
           fp4rt_cli_bytes(p->rope, b, sizeof b), sp->n_ctx);
    printf("total        %12s  (%llu bytes)\n", fp4rt_cli_bytes(total, b, sizeof b), (unsigned long long)total);
    if (p->mtp_tensors)
        printf("mtp head     %12s  (%llu tensors, %d layers; not in the total) + kv cache %s (%d tokens; "
               "sessions that draft with it)\n",
               fp4rt_cli_bytes(p->mtp_weights, b, sizeof b), (unsigned long long)p->mtp_tensors, cfg->mtp_layers,
               fp4rt_cli_bytes(p->mtp_kv, b2, sizeof b2), sp->n_ctx);
    if (p->vision_tensors)
        printf("vision tower %12s  (%llu tensors, depth %d; not in the total) + per image %s (the activations of "
               "a %d-patch image, 16,777,216 pixels: the processor's largest)\n",
               fp4rt_cli_bytes(p->vision_weights, b, sizeof b), (unsigned long long)p->vision_tensors,
               cfg->vision.depth, fp4rt_cli_bytes(p->vision_image, b2, sizeof b2), FP4RT_VISION_MAX_PATCHES);
}

int fp4rt_cmd_plan(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    const char *config = NULL, *recipe = NULL, *v;
    long layers = 0;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o)) continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--config"))) config = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--recipe"))) recipe = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--layers"))) layers = fp4rt_cli_parse_range("--layers", v, 0, FP4RT_MAX_LAYERS);
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    struct stat sb;
    if (!config && o.model && stat(o.model, &sb) != 0) config = o.model; /* a config name */
    if (!config && !o.model) return fp4rt_cli_bad("plan: give --model DIR or --config NAME");
    fp4rt_session_params sp;
    if (config) {
        fp4rt_config cfg;
        fp4rt_status st = fp4rt_config_preset(config, (int)layers, &cfg);
        if (st) return fp4rt_cli_fail(st);
        fp4rt_session_params_resolve(&cfg, 0, &o.session, &sp);
        fp4rt_memory_plan p;
        fp4rt_format_totals t;
        st = fp4rt_plan_config(&cfg, recipe, sp.n_ctx, sp.prefill_chunk, sp.kv_type, &p, &t);
        if (st) return fp4rt_cli_fail(st);
        printf("model: %s (config; recipe %s; nothing loaded)\n", config, recipe ? recipe : "none (BF16)");
        print_plan(&cfg, &p, &t, &sp);
        if (o.fp4_activations)
            printf("fp4-activations: on (the NVFP4-W4A16 linears of the decoder layers run as W4A4)\n");
        return 0;
    }
    if (recipe) return fp4rt_cli_error("--recipe applies to --config; a checkpoint's formats come from its files");
    fp4rt_weights *w;
    fp4rt_status st = fp4rt_weights_load(o.model, &w);
    if (st) return fp4rt_cli_fail(st);
    if (o.fp4_activations && (st = fp4rt_weights_fp4_activations(w))) {
        fp4rt_weights_free(w);
        return fp4rt_cli_fail(st);
    }
    fp4rt_program *prog;
    if ((st = fp4rt_program_build(w, &prog))) {
        fp4rt_weights_free(w);
        return fp4rt_cli_fail(st);
    }
    fp4rt_session_params_resolve(&w->cfg, w->quant.kv_cache_fp8, &o.session, &sp);
    fp4rt_memory_plan p;
    fp4rt_format_totals t;
    fp4rt_plan_checkpoint(w, &p, &t);
    fp4rt_plan_session(prog, sp.n_ctx, sp.prefill_chunk, sp.kv_type, &p);
    printf("model: %s\n", o.model);
    print_plan(&w->cfg, &p, &t, &sp);
    if (o.fp4_activations)
        printf("fp4-activations: on: %d NVFP4-W4A16 linears run as W4A4 (%d with a per-row dynamic "
               "tensor scale, %d with the checkpoint's input_scale)\n",
               w->n_fp4_act, w->n_fp4_act_dynamic, w->n_fp4_act - w->n_fp4_act_dynamic);
    fp4rt_program_free(prog);
    fp4rt_weights_free(w);
    return 0;
}
