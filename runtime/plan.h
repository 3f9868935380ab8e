/* Memory planning without running anything: from an opened checkpoint, or from
 * a config + recipe alone (no files: `fp4rt plan --config qwen3.6-27b`). */
#ifndef FP4RT_PLAN_H
#define FP4RT_PLAN_H

#include "model.h"
#include "schema.h"

/* Per-format totals. Index FP4RT_W_COUNT collects non-linear tensors (embedding,
 * norms, conv, gates' vectors). Linears count their scale tensors with them. */
#define FP4RT_FMT_OTHER FP4RT_W_COUNT
typedef struct fp4rt_format_totals {
    uint64_t modules[FP4RT_W_COUNT + 1]; /* linears per format; other: tensors */
    uint64_t tensors[FP4RT_W_COUNT + 1]; /* tensors (weights and scales) */
    uint64_t bytes[FP4RT_W_COUNT + 1];
} fp4rt_format_totals;

/* The checkpoint's text-model weights; plan->weights and weights_per_token. */
void fp4rt_plan_checkpoint(const fp4rt_weights *w, fp4rt_memory_plan *plan,
                           fp4rt_format_totals *tot);
/* Everything for a config + recipe ("none" or NULL = BF16 as synthesized). */
fp4rt_status fp4rt_plan_config(const fp4rt_config *cfg, const char *recipe, int n_ctx, int chunk,
                               fp4rt_kv_type kv, fp4rt_memory_plan *plan, fp4rt_format_totals *tot);

#endif
