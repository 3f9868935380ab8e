/* fp4rt inspect: every tensor of a checkpoint with its dtype, shape, role
 * (the format of the linear it belongs to) and size, then totals per format.
 * --check: instead, read every value of every tensor and report those no
 * computation can use (NaN / Inf codes, out-of-range scales); exit 1 if any. */
#include "cli/commands.h"

#include "runtime/engine/model.h"
#include "runtime/model/check.h"
#include "runtime/model/plan.h"

#include <stdio.h>
#include <string.h>

/* The linear whose module is a prefix of `name` ("<module>.weight", ".weight_scale"...). */
static const fp4rt_linear *owner(const fp4rt_weights *w, const char *name) {
    const fp4rt_linear *found = NULL;
    size_t best = 0;
    for (int l = -1; l < w->cfg.n_layers + w->n_mtp_layers; l++) { /* MTP layers follow the text model's */
        const fp4rt_linear *cands[12];
        int n = 0;
        if (l < 0) {
            cands[n++] = &w->lm_head;
            cands[n++] = &w->mtp_fc;
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

static int print_bad(const fp4rt_bad_tensor *b, void *user) {
    (void)user;
    printf("%s: tensor %s (%s): element %llu: %s; %llu bad value%s\n", b->t->file_path, b->t->name,
           fp4rt_dtype_name(b->t->dtype), (unsigned long long)b->first, b->what, (unsigned long long)b->count,
           b->count == 1 ? "" : "s");
    return 0;
}

/* --check: the checkpoint's files are opened, not resolved as a model, so a
 * checkpoint the loader refuses can still be scanned. */
static int check(const char *dir) {
    fp4rt_checkpoint *ck;
    fp4rt_status st = fp4rt_checkpoint_open(dir, &ck);
    if (st) return fp4rt_cli_fail(st);
    size_t n_bad;
    fp4rt_checkpoint_check(ck, print_bad, NULL, &n_bad);
    printf("check: %zu tensors read, %zu with bad values\n", ck->n_tensors, n_bad);
    fp4rt_checkpoint_close(ck);
    if (n_bad) return fp4rt_cli_error("%s: %zu tensors have values no computation can use (listed above)", dir, n_bad);
    return 0;
}

int fp4rt_cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    int fp4_act = 0, do_check = 0;
    static const char usage[] = "DIR [--fp4-activations] | --check DIR";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fp4-activations")) fp4_act = 1;
        else if (!strcmp(argv[i], "--check")) do_check = 1;
        else if (!dir && argv[i][0] != '-') dir = argv[i];
        else return fp4rt_cli_unknown(usage, argv[i]);
    }
    if (!dir) return fp4rt_cli_bad("inspect: the checkpoint directory DIR is missing");
    if (do_check && fp4_act) return fp4rt_cli_bad("inspect: --check does not take --fp4-activations");
    if (do_check) return check(dir);
    fp4rt_weights *w;
    fp4rt_status st = fp4rt_weights_load(dir, &w);
    if (st) return fp4rt_cli_fail(st);
    if (fp4_act && (st = fp4rt_weights_fp4_activations(w))) {
        fp4rt_weights_free(w);
        return fp4rt_cli_fail(st);
    }
    const fp4rt_checkpoint *ck = w->ckpt;
    char b[32], b2[32];
    printf("%-72s %-8s %-20s %-12s %s\n", "tensor", "dtype", "shape", "format", "bytes");
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const fp4rt_st_tensor *t = ck->tensors[i];
        char shape[64] = "[";
        size_t o = 1;
        for (int d = 0; d < t->ndim; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        snprintf(shape + o, sizeof shape - o, "]");
        const char *fmt = "BF16 other";
        if (!strncmp(t->name, "model.visual.", 13)) fmt = w->vision ? "vision" : "vision (skip)";
        else if (!strncmp(t->name, "mtp.", 4) && !w->n_mtp_layers) fmt = "MTP (skip)";
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
    printf("  %-12s %5llu tensors %12s  (%llu bytes)\n", "total",
           (unsigned long long)(w->n_tensors_used - w->n_tensors_mtp - p.vision_tensors),
           fp4rt_cli_bytes(p.weights, b, sizeof b), (unsigned long long)p.weights);
    if (fp4_act)
        printf("  fp4-activations: on: %d NVFP4-W4A16 linears shown as W4A4 (%d with a per-row dynamic "
               "tensor scale)\n",
               w->n_fp4_act, w->n_fp4_act_dynamic);
    if (w->n_mtp_layers)
        printf("  mtp head: %llu tensors %12s  (%d layers; not in the total)\n", (unsigned long long)p.mtp_tensors,
               fp4rt_cli_bytes(p.mtp_weights, b, sizeof b), w->n_mtp_layers);
    if (w->vision)
        printf("  vision tower: %llu tensors %12s  (depth %d; not in the total) + per image %s (a %d-patch image)\n",
               (unsigned long long)p.vision_tensors, fp4rt_cli_bytes(p.vision_weights, b, sizeof b),
               w->cfg.vision.depth, fp4rt_cli_bytes(p.vision_image, b2, sizeof b2), FP4RT_VISION_MAX_PATCHES);
    if (w->n_tensors_skipped)
        printf("  skipped: %llu vision / MTP tensors (recognized, not read)\n",
               (unsigned long long)w->n_tensors_skipped);
    fp4rt_weights_free(w);
    return 0;
}
