/* Public API: the memory estimate of a checkpoint before loading it (fp4rt.h
 * fp4rt_model_plan), the numbers `fp4rt plan --model` prints. */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"

#include <string.h>

fp4rt_status fp4rt_model_plan(const char *dir, const fp4rt_model_params *params,
                              const fp4rt_session_params *sp, fp4rt_memory_estimate *out) {
    if (!dir) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_plan: dir is NULL");
    if (!out) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_plan: out is NULL");
    memset(out, 0, sizeof *out);
    fp4rt_session_params sdef = fp4rt_session_default_params(), s;
    if (!sp) sp = &sdef;
    if (sp->n_ctx < 0 || sp->prefill_chunk < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "fp4rt_session_params.%s = %d: expected 0 (default) or > 0",
                          sp->n_ctx < 0 ? "n_ctx" : "prefill_chunk",
                          sp->n_ctx < 0 ? sp->n_ctx : sp->prefill_chunk);
    /* the headers, config and scales only: the weights stay mapped, unread */
    fp4rt_weights *w = NULL;
    fp4rt_status st = fp4rt_weights_load(dir, &w);
    if (!st && params && params->fp4_activations) st = fp4rt_weights_fp4_activations(w);
    fp4rt_program *prog = NULL;
    if (!st) st = fp4rt_program_build(w, &prog);
    if (!st) {
        fp4rt_session_params_resolve(&w->cfg, w->quant.kv_cache_fp8, sp, &s);
        if (s.kv_type != FP4RT_KV_BF16 && s.kv_type != FP4RT_KV_F32 && s.kv_type != FP4RT_KV_FP8)
            st = fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                            "fp4rt_session_params.kv_type = %d is not a kv type", (int)s.kv_type);
    }
    if (!st) {
        fp4rt_memory_plan p = {0};
        fp4rt_format_totals tot;
        fp4rt_plan_checkpoint(w, &p, &tot);
        fp4rt_plan_session(prog, s.n_ctx, s.prefill_chunk, s.kv_type, &p);
        out->weights = p.weights;
        out->kv = p.kv;
        out->conv = p.conv;
        out->ssm = p.ssm;
        out->scratch = p.scratch;
        out->logits = p.logits;
        out->rope = p.rope;
        out->total = p.weights + p.kv + p.conv + p.ssm + p.scratch + p.logits + p.rope;
        out->n_ctx = s.n_ctx;
        out->prefill_chunk = s.prefill_chunk;
        out->kv_type = s.kv_type;
    }
    fp4rt_program_free(prog);
    fp4rt_weights_free(w);
    return st;
}
