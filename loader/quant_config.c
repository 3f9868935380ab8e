/* ModelOpt quantization config (hf_quant_config.json or config.json's
 * quantization_config) and per-module lookup; see quant_config.h. */
#include "loader/quant_config.h"

#include "runtime/base/common.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QCFG_MAX_BYTES ((size_t)64 << 20)

const char *fp4rt_qalgo_name(fp4rt_qalgo a) {
    switch (a) {
    case FP4RT_Q_NONE:
        return "none";
    case FP4RT_Q_FP8:
        return "FP8";
    case FP4RT_Q_NVFP4_W4A16:
        return "W4A16_NVFP4";
    case FP4RT_Q_NVFP4_W4A4:
        return "NVFP4";
    case FP4RT_Q_MIXED:
        return "MIXED_PRECISION";
    }
    return "?";
}

static const cJSON *item(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* quant_algo value -> algo; returns -1 for anything unrecognized. */
static int algo_parse(const char *s, fp4rt_qalgo *a) {
    static const struct {
        const char *name;
        fp4rt_qalgo algo;
    } k[] = {{"NVFP4", FP4RT_Q_NVFP4_W4A4},
             {"W4A16_NVFP4", FP4RT_Q_NVFP4_W4A16},
             {"FP8", FP4RT_Q_FP8},
             {"MIXED_PRECISION", FP4RT_Q_MIXED}};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(k); i++) {
        if (strcmp(s, k[i].name) == 0) {
            *a = k[i].algo;
            return 0;
        }
    }
    return -1;
}

/* Reads obj.quant_algo (+ group_size) into *a; `key` names obj in messages. */
static fp4rt_status parse_algo(const char *where, const char *key, const cJSON *obj,
                               int allow_mixed, fp4rt_qalgo *a, int *group_size) {
    const cJSON *v = item(obj, "quant_algo");
    *a = FP4RT_Q_NONE;
    if (!v) return FP4RT_OK; /* e.g. only the KV cache is quantized */
    if (!cJSON_IsString(v))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %squant_algo: expected a string", where, key);
    if (algo_parse(v->valuestring, a) != 0 || (!allow_mixed && *a == FP4RT_Q_MIXED))
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: key %squant_algo: \"%s\" is not supported (expected NVFP4, "
                          "W4A16_NVFP4, FP8%s)",
                          where, key, v->valuestring, allow_mixed ? " or MIXED_PRECISION" : "");
    const cJSON *g = item(obj, "group_size");
    if (g && !cJSON_IsNumber(g))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %sgroup_size: expected an integer", where, key);
    if (*a == FP4RT_Q_NVFP4_W4A4 || *a == FP4RT_Q_NVFP4_W4A16) {
        if (g && g->valuedouble != 16)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: key %sgroup_size: %g is not supported for %s (expected 16)",
                              where, key, g->valuedouble, v->valuestring);
        if (group_size) *group_size = 16;
    }
    return FP4RT_OK;
}

static int cmp_layer(const void *a, const void *b) {
    return strcmp(((const fp4rt_quant_layer *)a)->module, ((const fp4rt_quant_layer *)b)->module);
}

static fp4rt_status parse_layers(const char *where, const cJSON *ql, fp4rt_quant_config *q) {
    char key[600];
    if (!cJSON_IsObject(ql))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key quantized_layers: expected an object", where);
    size_t n = (size_t)cJSON_GetArraySize(ql);
    if (!(q->layers = fp4rt_calloc(n + 1, sizeof *q->layers, "quantized_layers")))
        return FP4RT_OUT_OF_MEMORY;
    for (const cJSON *e = ql->child; e; e = e->next) {
        snprintf(key, sizeof key, "quantized_layers.%s.", e->string);
        if (!cJSON_IsObject(e))
            return fp4rt_fail(FP4RT_FORMAT, "%s: key quantized_layers.%s: expected an object",
                              where, e->string);
        fp4rt_qalgo a;
        fp4rt_status st = parse_algo(where, key, e, 0, &a, NULL);
        if (st != FP4RT_OK) return st;
        if (a == FP4RT_Q_NONE)
            return fp4rt_fail(FP4RT_FORMAT, "%s: key %squant_algo: missing", where, key);
        fp4rt_quant_layer *l = &q->layers[q->n_layers];
        if (!(l->module = fp4rt_strdup(e->string))) return FP4RT_OUT_OF_MEMORY;
        l->algo = a;
        q->n_layers++;
    }
    qsort(q->layers, q->n_layers, sizeof *q->layers, cmp_layer);
    for (size_t i = 1; i < q->n_layers; i++)
        if (strcmp(q->layers[i - 1].module, q->layers[i].module) == 0)
            return fp4rt_fail(FP4RT_FORMAT, "%s: key quantized_layers.%s: listed twice", where,
                              q->layers[i].module);
    return FP4RT_OK;
}

static fp4rt_status parse_excludes(const char *where, const char *key, const cJSON *list,
                                   fp4rt_quant_config *q) {
    if (!cJSON_IsArray(list))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %s: expected a list of module patterns", where,
                          key);
    size_t n = (size_t)cJSON_GetArraySize(list);
    char **ex = realloc(q->exclude, (q->n_exclude + n + 1) * sizeof *ex);
    if (!ex) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory for %s", where, key);
    q->exclude = ex;
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e))
            return fp4rt_fail(FP4RT_FORMAT, "%s: key %s[%d]: expected a string", where, key, i);
        if (!(q->exclude[q->n_exclude] = fp4rt_strdup(e->valuestring))) return FP4RT_OUT_OF_MEMORY;
        q->n_exclude++;
    }
    return FP4RT_OK;
}

/* KV cache: kv_cache_quant_algo "FP8" (or null), or compressed-tensors style
 * kv_cache_scheme {"num_bits": 8, "type": "float"}. */
static fp4rt_status parse_kv(const char *where, const cJSON *qo, fp4rt_quant_config *q) {
    const cJSON *v = item(qo, "kv_cache_quant_algo");
    if (v) {
        if (!cJSON_IsString(v))
            return fp4rt_fail(FP4RT_FORMAT, "%s: key kv_cache_quant_algo: expected a string",
                              where);
        if (strcmp(v->valuestring, "FP8") != 0)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: key kv_cache_quant_algo: \"%s\" is not supported (expected "
                              "FP8 or null)",
                              where, v->valuestring);
        q->kv_cache_fp8 = 1;
        return FP4RT_OK;
    }
    if ((v = item(qo, "kv_cache_scheme"))) {
        const cJSON *bits = cJSON_IsObject(v) ? item(v, "num_bits") : NULL;
        const cJSON *type = cJSON_IsObject(v) ? item(v, "type") : NULL;
        if (!cJSON_IsNumber(bits) || !cJSON_IsString(type))
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: key kv_cache_scheme: expected an object with num_bits and type",
                              where);
        if (bits->valuedouble != 8 || strcmp(type->valuestring, "float") != 0)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: key kv_cache_scheme: %g-bit %s is not supported (expected "
                              "8-bit float)",
                              where, bits->valuedouble, type->valuestring);
        q->kv_cache_fp8 = 1;
    }
    return FP4RT_OK;
}

/* qo: the "quantization" object of hf_quant_config.json, or quantization_config. */
static fp4rt_status parse_quant_object(const char *where, const cJSON *qo, int is_config,
                                       fp4rt_quant_config *q) {
    if (!cJSON_IsObject(qo))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %s: expected an object", where,
                          is_config ? "quantization_config" : "quantization");
    if (is_config) {
        const cJSON *m = item(qo, "quant_method");
        if (!cJSON_IsString(m))
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: key quantization_config.quant_method: expected a "
                              "string",
                              where);
        if (strcmp(m->valuestring, "modelopt") != 0)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: key quantization_config.quant_method: \"%s\" is not supported "
                              "(expected \"modelopt\")",
                              where, m->valuestring);
    }
    q->group_size = 16;
    fp4rt_status st = parse_algo(where, "", qo, 1, &q->algo, &q->group_size);
    if (st != FP4RT_OK) return st;
    const cJSON *v;
    if (q->algo == FP4RT_Q_MIXED) {
        if (!(v = item(qo, "quantized_layers")))
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: key quantized_layers: missing (required with MIXED_PRECISION)",
                              where);
        if ((st = parse_layers(where, v, q)) != FP4RT_OK) return st;
    }
    static const char *const ex_keys[] = {"exclude_modules", "ignore"};
    for (int i = 0; i < 2; i++)
        if ((v = item(qo, ex_keys[i])) &&
            (st = parse_excludes(where, ex_keys[i], v, q)) != FP4RT_OK)
            return st;
    return parse_kv(where, qo, q);
}

fp4rt_status fp4rt_quant_config_parse(const char *json, size_t len, const char *where,
                                      fp4rt_quant_config *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->source, sizeof out->source, "%s", where);
    out->group_size = 16;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return fp4rt_fail(FP4RT_FORMAT, "%s: not valid JSON", where);
    fp4rt_status st;
    const cJSON *v;
    if (!cJSON_IsObject(root))
        st = fp4rt_fail(FP4RT_FORMAT, "%s: expected a JSON object", where);
    else if ((v = cJSON_GetObjectItemCaseSensitive(root, "quantization")))
        st = parse_quant_object(where, v, 0, out); /* whole hf_quant_config.json */
    else if ((v = cJSON_GetObjectItemCaseSensitive(root, "quantization_config")))
        st = parse_quant_object(where, v, 1, out); /* whole config.json */
    else if (item(root, "quant_method"))
        st = parse_quant_object(where, root, 1, out); /* the quantization_config object */
    else if (item(root, "quant_algo"))
        st = parse_quant_object(where, root, 0, out); /* the "quantization" object */
    else
        st = fp4rt_fail(FP4RT_FORMAT,
                        "%s: key quantization: missing (expected \"quantization\", "
                        "\"quantization_config\" or \"quant_algo\")",
                        where);
    cJSON_Delete(root);
    if (st != FP4RT_OK) fp4rt_quant_config_free(out);
    return st;
}

fp4rt_status fp4rt_quant_config_load(const char *dir, fp4rt_quant_config *out) {
    memset(out, 0, sizeof *out);
    out->group_size = 16;
    char *hpath = fp4rt_path_join(dir, "hf_quant_config.json");
    char *cpath = fp4rt_path_join(dir, "config.json");
    char *text = NULL;
    size_t len = 0;
    fp4rt_status st = FP4RT_OUT_OF_MEMORY;
    struct stat sb;
    if (!hpath || !cpath) goto done;
    if (stat(hpath, &sb) == 0) {
        if ((st = fp4rt_read_file(hpath, QCFG_MAX_BYTES, &text, &len)) == FP4RT_OK)
            st = fp4rt_quant_config_parse(text, len, hpath, out);
        goto done;
    }
    if ((st = fp4rt_read_file(cpath, QCFG_MAX_BYTES, &text, &len)) != FP4RT_OK) goto done;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        st = fp4rt_fail(FP4RT_FORMAT, "%s: not valid JSON", cpath);
        goto done;
    }
    int has = cJSON_IsObject(root) && item(root, "quantization_config");
    cJSON_Delete(root);
    if (has)
        st = fp4rt_quant_config_parse(text, len, cpath, out);
    else
        st = FP4RT_OK; /* unquantized checkpoint: algo NONE, source "" */
done:
    free(text);
    free(hpath);
    free(cpath);
    return st;
}

void fp4rt_quant_config_free(fp4rt_quant_config *q) {
    if (!q) return;
    for (size_t i = 0; i < q->n_layers; i++)
        free(q->layers[i].module);
    free(q->layers);
    for (size_t i = 0; i < q->n_exclude; i++)
        free(q->exclude[i]);
    free(q->exclude);
    q->layers = NULL;
    q->exclude = NULL;
    q->n_layers = q->n_exclude = 0;
}

/* pattern matches module itself or one of its ancestors ("a.b" for "a.b.c"). */
static int pattern_covers(const char *pattern, const char *module) {
    if (fnmatch(pattern, module, 0) == 0) return 1;
    size_t n = strlen(module);
    char *prefix = malloc(n + 1);
    if (!prefix) return 0;
    int hit = 0;
    for (size_t i = 0; i < n && !hit; i++) {
        if (module[i] != '.') continue;
        memcpy(prefix, module, i);
        prefix[i] = 0;
        hit = fnmatch(pattern, prefix, 0) == 0;
    }
    free(prefix);
    return hit;
}

fp4rt_qalgo fp4rt_quant_algo_for(const fp4rt_quant_config *q, const char *module) {
    if (q->algo == FP4RT_Q_NONE) return FP4RT_Q_NONE;
    if (q->algo == FP4RT_Q_MIXED) {
        size_t lo = 0, hi = q->n_layers;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(q->layers[mid].module, module);
            if (c == 0) return q->layers[mid].algo;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return FP4RT_Q_NONE;
    }
    for (size_t i = 0; i < q->n_exclude; i++)
        if (pattern_covers(q->exclude[i], module)) return FP4RT_Q_NONE;
    return q->algo;
}
