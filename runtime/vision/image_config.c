/* preprocessor_config.json (image.h): the fields of Qwen2VLImageProcessor. */
#include "runtime/vision/image.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp4rt_image_config_default(fp4rt_image_config *cfg) {
    *cfg = (fp4rt_image_config){
        .min_pixels = 65536,
        .max_pixels = 16777216,
        .patch_size = 16,
        .temporal_patch_size = 2,
        .merge_size = 2,
        .image_mean = {0.5f, 0.5f, 0.5f},
        .image_std = {0.5f, 0.5f, 0.5f},
        .rescale_factor = 1.0 / 255.0,
        .do_resize = true,
        .do_rescale = true,
        .do_normalize = true,
    };
}

/* transformers' Qwen2VLImageProcessor class attributes: what a config that omits a
 * field gets (OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, 56*56 and 28*28*1280 pixels). */
static void class_defaults(fp4rt_image_config *cfg) {
    *cfg = (fp4rt_image_config){
        .min_pixels = 56 * 56,
        .max_pixels = 28 * 28 * 1280,
        .patch_size = 14,
        .temporal_patch_size = 2,
        .merge_size = 2,
        .image_mean = {0.48145466f, 0.4578275f, 0.40821073f},
        .image_std = {0.26862954f, 0.26130258f, 0.27577711f},
        .rescale_factor = 1.0 / 255.0,
        .do_resize = true,
        .do_rescale = true,
        .do_normalize = true,
    };
}

/* An integer field in [lo, hi]; absent: *v unchanged. */
static fp4rt_status get_int(const cJSON *o, const char *key, const char *name, int64_t lo,
                            int64_t hi, int64_t *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return FP4RT_OK;
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) ||
        j->valuedouble < (double)lo || j->valuedouble > (double)hi)
        return fp4rt_fail(FP4RT_FORMAT, "%s: \"%s\" must be an integer in [%lld, %lld]", name, key,
                          (long long)lo, (long long)hi);
    *v = (int64_t)j->valuedouble;
    return FP4RT_OK;
}

static fp4rt_status get_bool(const cJSON *o, const char *key, const char *name, bool *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return FP4RT_OK;
    if (!cJSON_IsBool(j))
        return fp4rt_fail(FP4RT_FORMAT, "%s: \"%s\" must be true or false", name, key);
    *v = cJSON_IsTrue(j);
    return FP4RT_OK;
}

/* A per-channel value: a number (all three channels) or an array of three. */
static fp4rt_status get_triple(const cJSON *o, const char *key, const char *name, float v[3]) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return FP4RT_OK;
    if (cJSON_IsNumber(j)) {
        v[0] = v[1] = v[2] = (float)j->valuedouble;
    } else if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 3) {
        for (int c = 0; c < 3; c++) {
            const cJSON *e = cJSON_GetArrayItem(j, c);
            if (!cJSON_IsNumber(e)) break;
            v[c] = (float)e->valuedouble;
            if (c == 2) return FP4RT_OK;
        }
        return fp4rt_fail(FP4RT_FORMAT, "%s: \"%s\" must hold 3 numbers", name, key);
    } else {
        return fp4rt_fail(FP4RT_FORMAT, "%s: \"%s\" must be a number or an array of 3 numbers",
                          name, key);
    }
    return FP4RT_OK;
}

static fp4rt_status parse_object(const cJSON *o, const char *name, fp4rt_image_config *cfg) {
    const int64_t PX = (int64_t)1 << 40;
    int64_t mn = cfg->min_pixels, mx = cfg->max_pixels, ps = cfg->patch_size,
            tps = cfg->temporal_patch_size, ms = cfg->merge_size, rs = 3;
    bool rgb = true;
    fp4rt_status st;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
    if (size && !cJSON_IsNull(size)) {
        if (!cJSON_IsObject(size))
            return fp4rt_fail(FP4RT_FORMAT, "%s: \"size\" must be an object", name);
        if ((st = get_int(size, "shortest_edge", name, 1, PX, &mn)) != FP4RT_OK) return st;
        if ((st = get_int(size, "longest_edge", name, 1, PX, &mx)) != FP4RT_OK) return st;
    }
    /* legacy keys override size (Qwen2VLImageProcessor.__init__) */
    if ((st = get_int(o, "min_pixels", name, 1, PX, &mn)) != FP4RT_OK) return st;
    if ((st = get_int(o, "max_pixels", name, 1, PX, &mx)) != FP4RT_OK) return st;
    if ((st = get_int(o, "patch_size", name, 1, 1024, &ps)) != FP4RT_OK) return st;
    if ((st = get_int(o, "temporal_patch_size", name, 1, 64, &tps)) != FP4RT_OK) return st;
    if ((st = get_int(o, "merge_size", name, 1, 64, &ms)) != FP4RT_OK) return st;
    if ((st = get_int(o, "resample", name, 0, 5, &rs)) != FP4RT_OK) return st;
    if (rs != 3)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: \"resample\" is %lld; only 3 (bicubic) is implemented", name,
                          (long long)rs);
    if ((st = get_bool(o, "do_convert_rgb", name, &rgb)) != FP4RT_OK) return st;
    if (!rgb)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: \"do_convert_rgb\": false is not supported",
                          name);
    if ((st = get_bool(o, "do_resize", name, &cfg->do_resize)) != FP4RT_OK) return st;
    if ((st = get_bool(o, "do_rescale", name, &cfg->do_rescale)) != FP4RT_OK) return st;
    if ((st = get_bool(o, "do_normalize", name, &cfg->do_normalize)) != FP4RT_OK) return st;
    if ((st = get_triple(o, "image_mean", name, cfg->image_mean)) != FP4RT_OK) return st;
    if ((st = get_triple(o, "image_std", name, cfg->image_std)) != FP4RT_OK) return st;
    for (int c = 0; c < 3; c++)
        if (!(cfg->image_std[c] != 0.0f) || !isfinite(cfg->image_std[c]) ||
            !isfinite(cfg->image_mean[c]))
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: image_mean / image_std must be finite and std non-zero", name);
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(o, "rescale_factor");
    if (rf && !cJSON_IsNull(rf)) {
        if (!cJSON_IsNumber(rf) || !isfinite(rf->valuedouble) || rf->valuedouble <= 0)
            return fp4rt_fail(FP4RT_FORMAT, "%s: \"rescale_factor\" must be a positive number",
                              name);
        cfg->rescale_factor = rf->valuedouble;
    }
    cfg->min_pixels = mn;
    cfg->max_pixels = mx;
    cfg->patch_size = (int)ps;
    cfg->temporal_patch_size = (int)tps;
    cfg->merge_size = (int)ms;
    return FP4RT_OK;
}

fp4rt_status fp4rt_image_config_parse(const char *json, size_t len, const char *name,
                                      fp4rt_image_config *cfg) {
    if (!name) name = "preprocessor_config.json";
    class_defaults(cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return fp4rt_fail(FP4RT_FORMAT, "%s: not valid JSON", name);
    const cJSON *o = root;
    const cJSON *nested =
        cJSON_GetObjectItemCaseSensitive(root, "image_processor"); /* processor_config.json */
    if (nested && cJSON_IsObject(nested)) o = nested;
    fp4rt_status st = cJSON_IsObject(o) ? parse_object(o, name, cfg)
                                        : fp4rt_fail(FP4RT_FORMAT, "%s: not a JSON object", name);
    cJSON_Delete(root);
    return st;
}

fp4rt_status fp4rt_image_config_load(const char *dir, fp4rt_image_config *cfg) {
    static const char *const names[] = {"preprocessor_config.json", "processor_config.json"};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(names); i++) {
        char *path = fp4rt_path_join(dir, names[i]);
        if (!path) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory for the path of %s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            free(path);
            continue;
        }
        fclose(f);
        char *buf = NULL;
        size_t len = 0;
        fp4rt_status st = fp4rt_read_file(path, 1 << 20, &buf, &len);
        if (st == FP4RT_OK) st = fp4rt_image_config_parse(buf, len, path, cfg);
        free(buf);
        free(path);
        return st;
    }
    fp4rt_image_config_default(cfg);
    return fp4rt_fail(FP4RT_IO, "%s: no preprocessor_config.json or processor_config.json", dir);
}
