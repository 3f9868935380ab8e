/* vision_config and the image token ids of a Qwen3.5 / Qwen3.6 config.json
 * (config.h, fp4rt_config_parse_vision). Field names and defaults follow
 * transformers' Qwen3VLVisionConfig / Qwen3_5VisionConfig. */
#include "loader/config.h"

#include "runtime/base/common.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <string.h>

static const cJSON *item(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* An integer >= min at obj.key; absent: def (def < 0: required). */
static fp4rt_status vint(const cJSON *obj, const char *where, const char *prefix, const char *key, int def, int min,
                         int *out) {
    const cJSON *v = item(obj, key);
    if (!v) {
        if (def < 0) return fp4rt_fail(FP4RT_FORMAT, "%s: key %s%s: missing (required)", where, prefix, key);
        *out = def;
        return FP4RT_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)min && d <= (double)INT_MAX) || d != floor(d))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %s%s: expected an integer >= %d", where, prefix, key, min);
    *out = (int)d;
    return FP4RT_OK;
}

fp4rt_status fp4rt_config_parse_vision(const struct cJSON *root, const char *where, fp4rt_config *out) {
    fp4rt_status st;
    static const char *const ids[] = {"image_token_id", "video_token_id", "vision_start_token_id",
                                      "vision_end_token_id"};
    int *dst[] = {&out->image_token_id, &out->video_token_id, &out->vision_start_token_id,
                  &out->vision_end_token_id};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(ids); i++) {
        *dst[i] = -1;
        if (item(root, ids[i]) && (st = vint(root, where, "", ids[i], 0, 0, dst[i]))) return st;
    }
    memset(&out->vision, 0, sizeof out->vision);
    const cJSON *vc = out->nested ? item(root, "vision_config") : NULL;
    if (!vc) return FP4RT_OK;
    const char *px = "vision_config.";
    if (!cJSON_IsObject(vc)) return fp4rt_fail(FP4RT_FORMAT, "%s: key vision_config: expected an object", where);
    fp4rt_vision_config *v = &out->vision;
    /* absent keys: Qwen3VLVisionConfig's defaults, as transformers fills them */
    struct {
        const char *key;
        int *dst, def, min;
    } f[] = {
        {"depth", &v->depth, 27, 1},
        {"hidden_size", &v->hidden, 1152, 1},
        {"num_heads", &v->n_heads, 16, 1},
        {"intermediate_size", &v->intermediate, 4304, 1},
        {"in_channels", &v->in_channels, 3, 1},
        {"patch_size", &v->patch, 16, 1},
        {"temporal_patch_size", &v->temporal_patch, 2, 1},
        {"spatial_merge_size", &v->merge, 2, 1},
        {"num_position_embeddings", &v->n_pos, 2304, 1},
        {"out_hidden_size", &v->out_hidden, 3584, 1},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(f); i++)
        if ((st = vint(vc, where, px, f[i].key, f[i].def, f[i].min, f[i].dst))) return st;
    if (v->hidden % v->n_heads || (v->hidden / v->n_heads) % 4)
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %snum_heads: hidden_size %d / num_heads %d is not a head size "
                          "that is a multiple of 4 (the 2-D rotary splits it in quarters)",
                          where, px, v->hidden, v->n_heads);
    int side = fp4rt_vcfg_grid_side(v);
    if (side * side != v->n_pos || side < 2)
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %snum_position_embeddings: %d is not the square of a side >= 2",
                          where, px, v->n_pos);
    if (v->in_channels != 3)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: key %sin_channels: %d (images are RGB: 3)", where, px,
                          v->in_channels);
    if ((int64_t)fp4rt_vcfg_patch_dim(v) > INT_MAX / 4 || (int64_t)v->hidden * v->merge * v->merge > INT_MAX / 4)
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %spatch_size: patches of %d x %d x %d are too large", where, px,
                          v->patch, v->patch, v->temporal_patch);
    v->gelu_tanh = 1;
    const cJSON *a = item(vc, "hidden_act");
    if (a) {
        if (!cJSON_IsString(a))
            return fp4rt_fail(FP4RT_FORMAT, "%s: key %shidden_act: expected a string", where, px);
        if (!strcmp(a->valuestring, "gelu"))
            v->gelu_tanh = 0;
        else if (strcmp(a->valuestring, "gelu_pytorch_tanh"))
            return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: key %shidden_act: \"%s\" is not supported (expected "
                              "\"gelu_pytorch_tanh\" or \"gelu\")", where, px, a->valuestring);
    }
    const cJSON *ds = item(vc, "deepstack_visual_indexes");
    if (ds && (!cJSON_IsArray(ds) || cJSON_GetArraySize(ds) != 0))
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: key %sdeepstack_visual_indexes: DeepStack feature injection is "
                          "not supported (Qwen3.5 / 3.6 have none: expected [])", where, px);
    v->rope_theta = 10000.0;
    const cJSON *rp = item(vc, "rope_parameters");
    const cJSON *th = cJSON_IsObject(rp) ? item(rp, "rope_theta") : NULL;
    if (th) {
        if (!cJSON_IsNumber(th) || !(th->valuedouble > 0) || !isfinite(th->valuedouble))
            return fp4rt_fail(FP4RT_FORMAT, "%s: key %srope_parameters.rope_theta: expected a positive number",
                              where, px);
        v->rope_theta = th->valuedouble;
    }
    return FP4RT_OK;
}
