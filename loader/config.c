/* config.json parsing for Qwen3.5 / Qwen3.6 dense text models; see config.h.
 * Every error names the file and the key, with its "text_config." prefix when the
 * value is nested. */
#include "loader/config.h"

#include "runtime/base/common.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES ((size_t)16 << 20)

/* Where a value comes from, for messages. */
typedef struct cfg_ctx {
    const char *where;  /* file name */
    const char *prefix; /* "text_config." or "" */
} cfg_ctx;

static const cJSON *item(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v; /* null counts as absent */
}

static fp4rt_status key_fail(const cfg_ctx *c, const char *key, const char *what) {
    return fp4rt_fail(FP4RT_FORMAT, "%s: key %s%s: %s", c->where, c->prefix, key, what);
}

/* Integer >= min. Absent: FORMAT if required, else *out = def. */
static fp4rt_status get_int(const cfg_ctx *c, const cJSON *obj, const char *key, int required,
                            int def, int min, int *out) {
    const cJSON *v = item(obj, key);
    if (!v) {
        if (required) return key_fail(c, key, "missing (required)");
        *out = def;
        return FP4RT_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)min && d <= (double)INT_MAX) || d != floor(d))
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %s%s: expected an integer >= %d", c->where,
                          c->prefix, key, min);
    *out = (int)d;
    return FP4RT_OK;
}

/* Positive finite number. */
static fp4rt_status get_pos_number(const cfg_ctx *c, const cJSON *v, const char *key, double *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble))
        return key_fail(c, key, "expected a positive number");
    *out = v->valuedouble;
    return FP4RT_OK;
}

static fp4rt_status get_bool(const cfg_ctx *c, const cJSON *v, const char *key, int *out) {
    if (!cJSON_IsBool(v)) return key_fail(c, key, "expected true or false");
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return FP4RT_OK;
}

/* A rope field from, in order, rope_parameters.NAME, NAME, rope_scaling.NAME; the
 * key it came from goes to keybuf. NULL if absent everywhere. */
static const cJSON *rope_item(const cJSON *fields, const char *name, char *keybuf, size_t n) {
    static const char *const parents[] = {"rope_parameters", NULL, "rope_scaling"};
    for (int i = 0; i < 3; i++) {
        const cJSON *obj = parents[i] ? item(fields, parents[i]) : fields;
        const cJSON *v = cJSON_IsObject(obj) ? item(obj, name) : NULL;
        if (v) {
            snprintf(keybuf, n, "%s%s%s", parents[i] ? parents[i] : "", parents[i] ? "." : "",
                     name);
            return v;
        }
    }
    return NULL;
}

/* mrope_section / mrope_interleaved (config.h); needs rotary_dim. */
static fp4rt_status parse_mrope(const cfg_ctx *c, const cJSON *fields, fp4rt_config *o) {
    char key[96];
    static const int def[3] = {11, 11, 10}; /* transformers' Qwen3_5TextRotaryEmbedding default */
    memcpy(o->mrope_section, def, sizeof def);
    o->mrope_interleaved = 1;
    const cJSON *v = rope_item(fields, "mrope_section", key, sizeof key);
    int explicit_section = v != NULL;
    if (v) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
            return key_fail(c, key, "expected a list of 3 integers (t, h, w)");
        int sum = 0;
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
            if (!(d >= 0 && d <= 65536) || d != floor(d))
                return key_fail(c, key, "expected a list of 3 integers >= 0");
            o->mrope_section[i] = (int)d;
            sum += (int)d;
        }
        if (sum > o->rotary_dim / 2)
            return fp4rt_fail(FP4RT_FORMAT, "%s: key %s%s: the sections sum to %d, more than rotary_dim / 2 = %d",
                              c->where, c->prefix, key, sum, o->rotary_dim / 2);
    }
    v = rope_item(fields, "mrope_interleaved", key, sizeof key);
    if (v) {
        fp4rt_status st = get_bool(c, v, key, &o->mrope_interleaved);
        if (st != FP4RT_OK) return st;
    }
    /* the chunked layout (Qwen2-VL's [t.. h.. w..]) moves slots unless h and w are empty */
    if (!o->mrope_interleaved && explicit_section && (o->mrope_section[1] || o->mrope_section[2]))
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "%s: key %s%s: mrope_interleaved false with mrope_section [%d, %d, %d] (the "
                          "non-interleaved M-RoPE layout) is not supported; Qwen3.5 / 3.6 interleave",
                          c->where, c->prefix, key, o->mrope_section[0], o->mrope_section[1],
                          o->mrope_section[2]);
    return FP4RT_OK;
}

static fp4rt_status parse_rope(const cfg_ctx *c, const cJSON *fields, fp4rt_config *o) {
    char key[96];
    /* Only plain RoPE (mrope is plain RoPE for text-only positions). */
    static const char *const objs[] = {"rope_parameters", "rope_scaling"};
    static const char *const type_keys[] = {"rope_type", "type"};
    for (int i = 0; i < 2; i++) {
        const cJSON *obj = item(fields, objs[i]);
        if (!obj) continue;
        if (!cJSON_IsObject(obj)) return key_fail(c, objs[i], "expected an object");
        for (int j = 0; j < 2; j++) {
            const cJSON *t = item(obj, type_keys[j]);
            if (!t) continue;
            snprintf(key, sizeof key, "%s.%s", objs[i], type_keys[j]);
            if (!cJSON_IsString(t)) return key_fail(c, key, "expected a string");
            if (strcmp(t->valuestring, "default") != 0 && strcmp(t->valuestring, "mrope") != 0)
                return fp4rt_fail(FP4RT_UNSUPPORTED,
                                  "%s: key %s%s: rope type \"%s\" is not supported (expected "
                                  "\"default\")",
                                  c->where, c->prefix, key, t->valuestring);
        }
    }
    const cJSON *v = rope_item(fields, "rope_theta", key, sizeof key);
    if (!v)
        return key_fail(c, "rope_parameters.rope_theta",
                        "missing (also looked for rope_theta and rope_scaling.rope_theta)");
    fp4rt_status st = get_pos_number(c, v, key, &o->rope_theta);
    if (st != FP4RT_OK) return st;
    double factor = 0.25; /* HF default when the key is absent everywhere */
    v = rope_item(fields, "partial_rotary_factor", key, sizeof key);
    if (v && (st = get_pos_number(c, v, key, &factor)) != FP4RT_OK) return st;
    if (factor > 1.0) return key_fail(c, key, "expected a factor in (0, 1]");
    o->partial_rotary = (float)factor;
    o->rotary_dim = (int)(o->head_dim * factor);
    if (o->rotary_dim <= 0 || o->rotary_dim % 2 != 0 || o->rotary_dim > o->head_dim)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: key %s%s: head_dim %d x %g gives rotary dim %d, expected an even "
                          "number in [2, head_dim]",
                          c->where, c->prefix, v ? key : "partial_rotary_factor", o->head_dim,
                          factor, o->rotary_dim);
    return parse_mrope(c, fields, o);
}

static fp4rt_status parse_layer_types(const cfg_ctx *c, const cJSON *fields, fp4rt_config *o) {
    const cJSON *lt = item(fields, "layer_types");
    if (lt) {
        if (!cJSON_IsArray(lt)) return key_fail(c, "layer_types", "expected a list of strings");
        int n = cJSON_GetArraySize(lt);
        if (n != o->n_layers)
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: key %slayer_types: has %d entries, expected %d "
                              "(num_hidden_layers)",
                              c->where, c->prefix, n, o->n_layers);
        int i = 0;
        for (const cJSON *e = lt->child; e; e = e->next, i++) {
            const char *s = cJSON_IsString(e) ? e->valuestring : "";
            if (strcmp(s, "linear_attention") == 0)
                o->layer_kind[i] = FP4RT_LAYER_GDN;
            else if (strcmp(s, "full_attention") == 0)
                o->layer_kind[i] = FP4RT_LAYER_ATTENTION;
            else
                return fp4rt_fail(FP4RT_FORMAT,
                                  "%s: key %slayer_types[%d]: expected \"linear_attention\" or "
                                  "\"full_attention\"",
                                  c->where, c->prefix, i);
        }
        return FP4RT_OK;
    }
    int interval = 0;
    fp4rt_status st = get_int(c, fields, "full_attention_interval", 0, 0, 1, &interval);
    if (st != FP4RT_OK) return st;
    if (!interval)
        return key_fail(c, "layer_types", "missing, and no full_attention_interval either");
    for (int i = 0; i < o->n_layers; i++)
        o->layer_kind[i] = (i + 1) % interval == 0 ? FP4RT_LAYER_ATTENTION : FP4RT_LAYER_GDN;
    return FP4RT_OK;
}

/* Adds eos ids from obj.eos_token_id (int or list) to o, without duplicates. */
static fp4rt_status add_eos(const cfg_ctx *c, const cJSON *obj, fp4rt_config *o) {
    const cJSON *v = item(obj, "eos_token_id");
    if (!v) return FP4RT_OK;
    const cJSON *first = cJSON_IsArray(v) ? v->child : v;
    for (const cJSON *e = first; e; e = cJSON_IsArray(v) ? e->next : NULL) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(d >= 0 && d <= INT_MAX) || d != floor(d))
            return key_fail(c, "eos_token_id", "expected a token id or a list of token ids");
        int id = (int)d, seen = 0;
        for (int i = 0; i < o->n_eos; i++)
            seen |= o->eos[i] == id;
        if (seen) continue;
        if (o->n_eos == FP4RT_MAX_EOS) return key_fail(c, "eos_token_id", "more than 8 ids");
        o->eos[o->n_eos++] = id;
    }
    return FP4RT_OK;
}

static fp4rt_status parse_fields(const cfg_ctx *c, const cJSON *root, const cJSON *fields,
                                 fp4rt_config *o) {
    fp4rt_status st;
    struct {
        const char *key;
        int *dst;
    } sizes[] = {
        {"hidden_size", &o->hidden},
        {"num_hidden_layers", &o->n_layers},
        {"intermediate_size", &o->intermediate},
        {"vocab_size", &o->vocab},
        {"num_attention_heads", &o->n_heads},
        {"num_key_value_heads", &o->n_kv_heads},
        {"head_dim", &o->head_dim},
        {"linear_num_key_heads", &o->lin_k_heads},
        {"linear_num_value_heads", &o->lin_v_heads},
        {"linear_key_head_dim", &o->lin_k_dim},
        {"linear_value_head_dim", &o->lin_v_dim},
        {"linear_conv_kernel_dim", &o->conv_kernel},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(sizes); i++)
        if ((st = get_int(c, fields, sizes[i].key, 1, 0, 1, sizes[i].dst)) != FP4RT_OK) return st;
    if (o->n_layers > FP4RT_MAX_LAYERS)
        return fp4rt_fail(FP4RT_FORMAT, "%s: key %snum_hidden_layers: %d, at most %d supported",
                          c->where, c->prefix, o->n_layers, FP4RT_MAX_LAYERS);
    if (o->n_heads % o->n_kv_heads != 0)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: key %snum_key_value_heads: %d does not divide "
                          "num_attention_heads %d",
                          c->where, c->prefix, o->n_kv_heads, o->n_heads);
    if (o->lin_v_heads % o->lin_k_heads != 0)
        return fp4rt_fail(FP4RT_FORMAT,
                          "%s: key %slinear_num_value_heads: %d is not a multiple "
                          "of linear_num_key_heads %d",
                          c->where, c->prefix, o->lin_v_heads, o->lin_k_heads);
    if (o->head_dim % 2 != 0) return key_fail(c, "head_dim", "expected an even number");
    if ((st = get_int(c, fields, "max_position_embeddings", 0, 0, 0, &o->max_positions)) ||
        (st = get_int(c, fields, "mtp_num_hidden_layers", 0, 0, 0, &o->mtp_layers)))
        return st;

    const cJSON *v = item(fields, "rms_norm_eps");
    double eps = 0;
    if (!v) return key_fail(c, "rms_norm_eps", "missing (required)");
    if ((st = get_pos_number(c, v, "rms_norm_eps", &eps)) != FP4RT_OK) return st;
    o->rms_eps = (float)eps;

    o->attn_output_gate = 1;
    if ((v = item(fields, "attn_output_gate"))) {
        if ((st = get_bool(c, v, "attn_output_gate", &o->attn_output_gate)) != FP4RT_OK) return st;
        if (!o->attn_output_gate)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: key %sattn_output_gate: false is not supported (Qwen3.5 "
                              "attention is gated)",
                              c->where, c->prefix);
    }
    if ((v = item(fields, "hidden_act"))) {
        if (!cJSON_IsString(v)) return key_fail(c, "hidden_act", "expected a string");
        if (strcmp(v->valuestring, "silu") != 0)
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "%s: key %shidden_act: \"%s\" is not supported (expected \"silu\")",
                              c->where, c->prefix, v->valuestring);
    }
    /* tie_word_embeddings: text_config wins over the top level; default false. */
    o->tie_embeddings = 0;
    if ((v = item(fields, "tie_word_embeddings"))) {
        if ((st = get_bool(c, v, "tie_word_embeddings", &o->tie_embeddings)) != FP4RT_OK) return st;
    } else if (fields != root && (v = item(root, "tie_word_embeddings"))) {
        cfg_ctx top = {c->where, ""};
        if ((st = get_bool(&top, v, "tie_word_embeddings", &o->tie_embeddings)) != FP4RT_OK)
            return st;
    }
    if ((st = parse_rope(c, fields, o)) != FP4RT_OK) return st;
    if ((st = parse_layer_types(c, fields, o)) != FP4RT_OK) return st;
    /* eos: the text config's ids, then the top level's (both stop generation). */
    if ((st = add_eos(c, fields, o)) != FP4RT_OK) return st;
    if (fields != root) {
        cfg_ctx top = {c->where, ""};
        if ((st = add_eos(&top, root, o)) != FP4RT_OK) return st;
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_config_parse(const char *json, size_t len, const char *where,
                                fp4rt_config *out) {
    memset(out, 0, sizeof *out);
    cfg_ctx c = {where, ""};
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return fp4rt_fail(FP4RT_FORMAT, "%s: not valid JSON", where);
    fp4rt_status st = FP4RT_OK;
    if (!cJSON_IsObject(root)) {
        st = fp4rt_fail(FP4RT_FORMAT, "%s: expected a JSON object", where);
        goto done;
    }
    /* Architecture from architectures[0], else from model_type. */
    const char *arch = NULL, *akey = "architectures";
    const cJSON *v = item(root, "architectures");
    if (v) {
        if (!cJSON_IsArray(v) || !cJSON_IsString(v->child)) {
            st = key_fail(&c, "architectures", "expected a list of strings");
            goto done;
        }
        arch = v->child->valuestring;
    } else if ((v = item(root, "model_type"))) {
        akey = "model_type";
        if (!cJSON_IsString(v)) {
            st = key_fail(&c, "model_type", "expected a string");
            goto done;
        }
        if (strcmp(v->valuestring, "qwen3_5_text") == 0)
            arch = "Qwen3_5ForCausalLM";
        else if (strcmp(v->valuestring, "qwen3_5") == 0)
            arch = "Qwen3_5ForConditionalGeneration";
        else
            arch = v->valuestring;
    } else {
        st = key_fail(&c, "architectures", "missing (and no model_type)");
        goto done;
    }
    const cJSON *fields = root;
    if (strcmp(arch, "Qwen3_5ForConditionalGeneration") == 0) {
        fields = item(root, "text_config");
        if (!cJSON_IsObject(fields)) {
            st = key_fail(&c, "text_config", "missing or not an object");
            goto done;
        }
        out->nested = 1;
        c.prefix = "text_config.";
        snprintf(out->tensor_prefix, sizeof out->tensor_prefix, "model.language_model.");
    } else if (strcmp(arch, "Qwen3_5ForCausalLM") == 0) {
        snprintf(out->tensor_prefix, sizeof out->tensor_prefix, "model.");
    } else {
        int by_type = strcmp(akey, "model_type") == 0;
        st = fp4rt_fail(FP4RT_UNSUPPORTED, "%s: key %s: \"%s\" is not supported (expected %s)",
                        where, akey, arch,
                        by_type ? "qwen3_5 or qwen3_5_text"
                                : "Qwen3_5ForConditionalGeneration or Qwen3_5ForCausalLM");
        goto done;
    }
    snprintf(out->architecture, sizeof out->architecture, "%s", arch);
    st = parse_fields(&c, root, fields, out);
    if (!st) st = fp4rt_config_parse_vision(root, where, out);
done:
    cJSON_Delete(root);
    return st;
}

fp4rt_status fp4rt_config_load(const char *dir, fp4rt_config *out) {
    char *path = fp4rt_path_join(dir, "config.json");
    if (!path) return FP4RT_OUT_OF_MEMORY;
    char *text = NULL;
    size_t len = 0;
    fp4rt_status st = fp4rt_read_file(path, CONFIG_MAX_BYTES, &text, &len);
    if (st == FP4RT_OK) st = fp4rt_config_parse(text, len, path, out);
    free(text);
    free(path);
    return st;
}

int fp4rt_cfg_n_attention_layers(const fp4rt_config *c) {
    int n = 0;
    for (int i = 0; i < c->n_layers; i++)
        n += c->layer_kind[i] == FP4RT_LAYER_ATTENTION;
    return n;
}
