/* fp4rt_checkpoint_check (check.h). */
#include "runtime/model/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int is_scale_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && strstr(dot, "scale") != NULL;
}

/* Counts the bad elements of t; *first / what describe the first. */
static uint64_t scan(const fp4rt_st_tensor *t, uint64_t *first, char *what, size_t cap) {
    uint64_t bad = 0;
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case FP4RT_DT_BF16:
    case FP4RT_DT_F16: {
        uint16_t mask = t->dtype == FP4RT_DT_BF16 ? 0x7f80 : 0x7c00;
        for (uint64_t i = 0; i < t->nbytes / 2; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            if ((h & mask) != mask) continue;
            if (!bad++) {
                *first = i;
                int nan = (h & (uint16_t) ~(mask | 0x8000)) != 0;
                snprintf(what, cap, "%s (%s 0x%04x)",
                         nan          ? "NaN"
                         : h & 0x8000 ? "-Inf"
                                      : "Inf",
                         fp4rt_dtype_name(t->dtype), h);
            }
        }
        break;
    }
    case FP4RT_DT_F32: {
        int scale = is_scale_name(t->name) && t->nbytes == 4;
        for (uint64_t i = 0; i < t->nbytes / 4; i++) {
            float f;
            memcpy(&f, p + 4 * i, 4);
            int nonfinite = !isfinite(f);
            int range = !nonfinite && scale && (f <= 0 || !isfinite(f * 448.0f * 6.0f));
            if (!nonfinite && !range) continue;
            if (!bad++) {
                *first = i;
                if (nonfinite)
                    snprintf(what, cap, "%s (F32)", isnan(f) ? "NaN" : f > 0 ? "Inf" : "-Inf");
                else if (f <= 0)
                    snprintf(what, cap, "scale %g is not positive", (double)f);
                else
                    snprintf(what, cap, "scale %g overflows FP32 times 448 * 6", (double)f);
            }
        }
        break;
    }
    case FP4RT_DT_F8_E4M3:
        for (uint64_t i = 0; i < t->nbytes; i++) {
            if ((p[i] & 0x7f) != 0x7f) continue;
            if (!bad++) {
                *first = i;
                snprintf(what, cap, "NaN (F8_E4M3 0x%02x)", p[i]);
            }
        }
        break;
    default: /* packed FP4 and integers: every code is a number */
        break;
    }
    return bad;
}

void fp4rt_checkpoint_check(const fp4rt_checkpoint *ck, fp4rt_bad_fn fn, void *user,
                            size_t *n_bad) {
    *n_bad = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        fp4rt_bad_tensor b = {.t = ck->tensors[i]};
        b.count = scan(b.t, &b.first, b.what, sizeof b.what);
        if (!b.count) continue;
        ++*n_bad;
        if (fn && fn(&b, user)) return;
    }
}
