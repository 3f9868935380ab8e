#include "loader/gen_config.h"

#include "runtime/base/common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void defaults(fp4rt_gen_config *g) {
    memset(g, 0, sizeof *g);
    g->temperature = 1.0f;
    g->top_p = 1.0f;
    g->repetition_penalty = 1.0f;
}

/* A finite number in [lo, hi] under key, or keep *v. */
static fp4rt_status number(const cJSON *o, const char *key, const char *where, double lo, double hi,
                           float *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) return FP4RT_OK;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo || it->valuedouble > hi)
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %s: expected a number in [%g, %g]", where, key, lo, hi);
    *v = (float)it->valuedouble;
    return FP4RT_OK;
}

static fp4rt_status integer(const cJSON *o, const char *key, const char *where, int *v) {
    float f = (float)*v;
    fp4rt_status st = number(o, key, where, 0, 1e9, &f);
    if (!st) *v = (int)f;
    return st;
}

fp4rt_status fp4rt_gen_config_parse(const char *json, size_t len, const char *where, fp4rt_gen_config *g) {
    defaults(g);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fp4rt_fail(FP4RT_FORMAT, "%s: not a JSON object", where);
    }
    g->present = 1;
    fp4rt_status st = FP4RT_OK;
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "do_sample");
    if (ds && !cJSON_IsNull(ds)) {
        if (!cJSON_IsBool(ds)) st = fp4rt_fail(FP4RT_FORMAT, "%s: key do_sample: expected true or false", where);
        g->do_sample = cJSON_IsTrue(ds);
    }
    if (!st) st = number(root, "temperature", where, 0, 100, &g->temperature);
    if (!st) st = integer(root, "top_k", where, &g->top_k);
    if (!st) st = number(root, "top_p", where, 0, 1, &g->top_p);
    if (!st) st = number(root, "min_p", where, 0, 1, &g->min_p);
    if (!st) st = number(root, "repetition_penalty", where, 1e-3, 100, &g->repetition_penalty);
    if (!st) st = number(root, "presence_penalty", where, -2, 2, &g->presence_penalty);
    if (!st) st = integer(root, "max_new_tokens", where, &g->max_new_tokens);
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (!st && eos && !cJSON_IsNull(eos)) {
        const cJSON *it;
        if (cJSON_IsNumber(eos)) {
            g->eos[g->n_eos++] = (int32_t)eos->valuedouble;
        } else if (cJSON_IsArray(eos)) {
            cJSON_ArrayForEach(it, eos) {
                if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > INT32_MAX) {
                    st = fp4rt_fail(FP4RT_FORMAT, "%s: key eos_token_id: expected token ids", where);
                    break;
                }
                if (g->n_eos < FP4RT_MAX_STOP_IDS) g->eos[g->n_eos++] = (int32_t)it->valuedouble;
            }
        } else {
            st = fp4rt_fail(FP4RT_FORMAT, "%s: key eos_token_id: expected an id or a list of ids", where);
        }
    }
    cJSON_Delete(root);
    return st;
}

fp4rt_status fp4rt_gen_config_load(const char *dir, fp4rt_gen_config *out) {
    defaults(out);
    char *path = fp4rt_path_join(dir, "generation_config.json");
    if (!path) return FP4RT_OUT_OF_MEMORY;
    if (access(path, F_OK) != 0) {
        free(path);
        return FP4RT_OK;
    }
    char *text;
    size_t len;
    fp4rt_status st = fp4rt_read_file(path, 1 << 20, &text, &len);
    if (!st) {
        st = fp4rt_gen_config_parse(text, len, path, out);
        free(text);
    }
    free(path);
    return st;
}
