/* fp4rt inspect: every tensor of a checkpoint with its dtype, shape, role
 * (the format of the linear it belongs to) and size, then totals per format. */
#include "cli/commands.h"

#include "runtime/engine/model.h"
#include "runtime/model/plan.h"

#include <stdio.h>
#include <string.h>

/* The linear whose module is a prefix of `name` ("<module>.weight", ".weight_scale"...). */
static const fp4rt_linear *owner(const fp4rt_weights *w, const char *name) {
    const fp4rt_linear *found = NULL;
    size_t best = 0;
    for (int l = -1; l < w->cfg.n_layers; l++) {
        const fp4rt_linear *cands[12];
        int n = 0;
        if (l < 0) {
            cands[n++] = &w->lm_head;
        } else {
            const fp4rt_layer_weights *L = &w->layers[l];
            const fp4rt_linear *all[] = {&L->gate, &L->up, &L->down, &L->q,  &L->k, &L->v,
                                         &L->o,    &L->qkv, &L->z,   &L->b, &L->a, &L->out};
            for (int i = 0; i < 12; i++) cands[n++] = all[i];
        }
        for (int i = 0; i < n; i++) {
            const char *m = cands[i]->module;
            if (!m) continue;
            size_t len = strlen(m);
            if (len > best && !strncmp(name, m, len) && name[len] == '.') {
                best = len;
                found = cands[i];
            }
        }
    }
    return found;
}

int fp4rt_cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    int fp4_act = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fp4-activations")) fp4_act = 1;
        else if (!dir && argv[i][0] != '-') dir = argv[i];
        else return fp4rt_cli_unknown("DIR [--fp4-activations]", argv[i]);
    }
    if (!dir) return fp4rt_cli_bad("inspect: the checkpoint directory DIR is missing");
    fp4rt_weights *w;
    fp4rt_status st = fp4rt_weights_load(dir, &w);
    if (st) return fp4rt_cli_fail(st);
    if (fp4_act && (st = fp4rt_weights_fp4_activations(w))) {
        fp4rt_weights_free(w);
        return fp4rt_cli_fail(st);
    }
    const fp4rt_checkpoint *ck = w->ckpt;
    char b[32];
    printf("%-72s %-8s %-20s %-12s %s\n", "tensor", "dtype", "shape", "format", "bytes");
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const fp4rt_st_tensor *t = ck->tensors[i];
        char shape[64] = "[";
        size_t o = 1;
        for (int d = 0; d < t->ndim; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        snprintf(shape + o, sizeof shape - o, "]");
        const char *fmt = "BF16 other";
        if (!strncmp(t->name, "model.visual.", 13)) fmt = "vision (skip)";
        else if (!strncmp(t->name, "mtp.", 4)) fmt = "MTP (skip)";
        else {
            const fp4rt_linear *lin = owner(w, t->name);
            if (lin) fmt = fp4rt_wfmt_name(lin->fmt);
            else if (t->dtype != FP4RT_DT_BF16) fmt = fp4rt_dtype_name(t->dtype);
        }
        printf("%-72s %-8s %-20s %-12s %s\n", t->name, fp4rt_dtype_name(t->dtype), shape, fmt,
               fp4rt_cli_bytes(t->nbytes, b, sizeof b));
    }
    fp4rt_memory_plan p;
    fp4rt_format_totals tot;
    fp4rt_plan_checkpoint(w, &p, &tot);
    printf("\ntotals per format (text model):\n");
    for (int f = 0; f <= FP4RT_W_COUNT; f++) {
        if (!tot.tensors[f]) continue;
        printf("  %-12s %5llu tensors %12s\n", f == FP4RT_FMT_OTHER ? "other" : fp4rt_wfmt_name((fp4rt_wfmt)f),
               (unsigned long long)tot.tensors[f], fp4rt_cli_bytes(tot.bytes[f], b, sizeof b));
    }
    printf("  %-12s %5llu tensors %12s  (%llu bytes)\n", "total", (unsigned long long)w->n_tensors_used,
           fp4rt_cli_bytes(p.weights, b, sizeof b), (unsigned long long)p.weights);
    if (fp4_act)
        printf("  fp4-activations: on: %d NVFP4-W4A16 linears shown as W4A4 (%d with a per-row dynamic "
               "tensor scale)\n",
               w->n_fp4_act, w->n_fp4_act_dynamic);
    if (w->n_tensors_skipped)
        printf("  skipped: %llu vision / MTP tensors (recognized, not read)\n",
               (unsigned long long)w->n_tensors_skipped);
    fp4rt_weights_free(w);
    return 0;
}
