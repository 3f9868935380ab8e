/* Configuration and auxiliary files of a quantized checkpoint, in ModelOpt's
 * layout: hf_quant_config.json, config.json with "quantization_config", and the
 * tokenizer / generation files copied from the source (quant_internal.h). */
#include "runtime/tools/quant_internal.h"

#include "runtime/base/common.h"
#include "loader/st_writer.h"
#include "runtime/tools/nvfp4.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_producer_version = "0.45.0-fp4rt";

/* The single quant_algo of a one-format recipe (nvfp4-all, nvfp4-w4a4, fp8);
 * FP4RT_Q_MIXED for nvidia-mixed. */
static fp4rt_qalgo recipe_top_algo(const char *recipe) {
    switch (fp4rt_recipe_known(recipe)) {
    case 1: return FP4RT_Q_NVFP4_W4A16;
    case 2: return FP4RT_Q_NVFP4_W4A4;
    case 3: return FP4RT_Q_FP8;
    default: return FP4RT_Q_MIXED;
    }
}

/* The "quantization" object of hf_quant_config.json (ModelOpt's layout; FP8 has
 * no group_size, as ModelOpt writes it). */
static cJSON *quant_object(const qctx *q) {
    fp4rt_qalgo top = recipe_top_algo(q->recipe);
    int mixed = top == FP4RT_Q_MIXED;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "quant_algo", fp4rt_qalgo_name(top));
    cJSON_AddNullToObject(o, "kv_cache_quant_algo");
    if (mixed) {
        cJSON *layers = cJSON_AddObjectToObject(o, "quantized_layers");
        for (size_t i = 0; i < q->n_jobs && layers; i++) {
            const qjob *j = &q->jobs[i];
            if (j->algo == FP4RT_Q_NONE) continue;
            cJSON *e = cJSON_AddObjectToObject(layers, j->spec->module);
            cJSON_AddStringToObject(e, "quant_algo", fp4rt_qalgo_name(j->algo));
            if (fp4rt_q_is_nvfp4(j->algo)) cJSON_AddNumberToObject(e, "group_size", FP4RT_NVFP4_BLOCK);
        }
    } else {
        if (top != FP4RT_Q_FP8) cJSON_AddNumberToObject(o, "group_size", FP4RT_NVFP4_BLOCK);
        cJSON *ex = cJSON_AddArrayToObject(o, "exclude_modules");
        for (size_t i = 0; i < q->n_jobs && ex; i++) {
            const qjob *j = &q->jobs[i];
            if (j->spec && j->spec->role == FP4RT_ROLE_LINEAR && j->algo == FP4RT_Q_NONE)
                cJSON_AddItemToArray(ex, cJSON_CreateString(j->spec->module));
        }
        if (q->has_visual) cJSON_AddItemToArray(ex, cJSON_CreateString("model.visual*"));
        if (q->has_mtp) cJSON_AddItemToArray(ex, cJSON_CreateString("mtp*"));
    }
    return o;
}

static cJSON *producer(void) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", "modelopt");
    cJSON_AddStringToObject(p, "version", k_producer_version);
    return p;
}

/* config.json's quantization_config, in the shape ModelOpt's
 * convert_hf_quant_config_format gives it (exclude_modules becomes "ignore"; FP8:
 * weights and input_activations {dynamic: false, num_bits: 8, type: float}). */
static cJSON *config_quant_object(const qctx *q, const cJSON *quant) {
    cJSON *c = cJSON_Duplicate(quant, 1);
    if (!c) return NULL;
    cJSON_AddStringToObject(c, "quant_method", "modelopt");
    cJSON_AddItemToObject(c, "producer", producer());
    cJSON *ex = cJSON_DetachItemFromObject(c, "exclude_modules");
    cJSON_AddItemToObject(c, "ignore", ex ? ex : cJSON_CreateArray());
    if (recipe_top_algo(q->recipe) == FP4RT_Q_FP8) {
        cJSON *g0 = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "config_groups"), "group_0");
        const char *which[2] = {"input_activations", "weights"};
        for (int i = 0; i < 2; i++) {
            cJSON *e = cJSON_AddObjectToObject(g0, which[i]);
            cJSON_AddBoolToObject(e, "dynamic", 0);
            cJSON_AddNumberToObject(e, "num_bits", 8);
            cJSON_AddStringToObject(e, "type", "float");
        }
        cJSON_AddItemToArray(cJSON_AddArrayToObject(g0, "targets"), cJSON_CreateString("Linear"));
    } else if (!cJSON_GetObjectItem(c, "quantized_layers")) {
        int w4a4 = fp4rt_recipe_known(q->recipe) == 2;
        cJSON *groups = cJSON_AddObjectToObject(c, "config_groups");
        cJSON *g0 = cJSON_AddObjectToObject(groups, "group_0");
        cJSON *targets = cJSON_AddArrayToObject(g0, "targets");
        cJSON_AddItemToArray(targets, cJSON_CreateString("Linear"));
        const char *which[2] = {"weights", "input_activations"};
        for (int i = 0; i < 1 + w4a4; i++) {
            cJSON *wq = cJSON_AddObjectToObject(g0, which[i]);
            cJSON_AddNumberToObject(wq, "num_bits", 4);
            cJSON_AddStringToObject(wq, "type", "float");
            cJSON_AddNumberToObject(wq, "group_size", FP4RT_NVFP4_BLOCK);
            cJSON_AddStringToObject(wq, "strategy", "tensor_group");
            if (i == 0)
                cJSON_AddBoolToObject(wq, "dynamic", 0);
            else
                cJSON_AddStringToObject(wq, "dynamic", "local");
        }
    }
    return c;
}

static fp4rt_status write_cjson(const char *dir, const char *name, cJSON *obj) {
    char *text = obj ? cJSON_Print(obj) : NULL;
    char *path = fp4rt_path_join(dir, name);
    fp4rt_status st = text && path ? fp4rt_write_text_file(path, text)
                                   : fp4rt_fail(FP4RT_OUT_OF_MEMORY, "quantize: building %s", name);
    free(text);
    free(path);
    return st;
}

fp4rt_status fp4rt_quant_write_configs(const qctx *q, const char *tmp) {
    fp4rt_status st;
    char *path = fp4rt_path_join(q->in_dir, "config.json"), *text = NULL;
    size_t len = 0;
    if (!path) return FP4RT_OUT_OF_MEMORY;
    st = fp4rt_read_file(path, 64u << 20, &text, &len);
    cJSON *cfg = st == FP4RT_OK ? cJSON_ParseWithLength(text, len) : NULL;
    if (st == FP4RT_OK && !cfg) st = fp4rt_fail(FP4RT_FORMAT, "%s: not valid JSON", path);
    free(text);
    free(path);
    if (st != FP4RT_OK) return st;

    cJSON *quant = quant_object(q);
    cJSON *hf = cJSON_CreateObject();
    cJSON_AddItemToObject(hf, "producer", producer());
    cJSON_AddItemToObject(hf, "quantization", quant);
    st = write_cjson(tmp, "hf_quant_config.json", hf);
    if (st == FP4RT_OK) {
        cJSON_DeleteItemFromObject(cfg, "quantization_config");
        cJSON_AddItemToObject(cfg, "quantization_config", config_quant_object(q, quant));
        st = write_cjson(tmp, "config.json", cfg);
    }
    cJSON_Delete(hf);
    cJSON_Delete(cfg);
    return st;
}

/* Copies tokenizer files, generation_config.json and the chat template. */
fp4rt_status fp4rt_quant_copy_aux_files(const char *in_dir, const char *tmp) {
    static const char *const extra[] = {"generation_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "chat_template.jinja",
                                        "chat_template.json", "preprocessor_config.json",
                                        "video_preprocessor_config.json"};
    DIR *d = opendir(in_dir);
    if (!d) return fp4rt_fail(FP4RT_IO, "%s: cannot list the directory", in_dir);
    fp4rt_status st = FP4RT_OK;
    struct dirent *e;
    while (st == FP4RT_OK && (e = readdir(d))) {
        int want = !strncmp(e->d_name, "tokenizer", 9);
        for (size_t i = 0; i < FP4RT_ARRAY_LEN(extra) && !want; i++)
            want = !strcmp(e->d_name, extra[i]);
        if (!want) continue;
        char *src = fp4rt_path_join(in_dir, e->d_name), *dst = fp4rt_path_join(tmp, e->d_name);
        st = src && dst ? fp4rt_copy_file(src, dst) : FP4RT_OUT_OF_MEMORY;
        free(src);
        free(dst);
    }
    closedir(d);
    return st;
}
