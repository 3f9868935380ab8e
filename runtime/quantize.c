/* The checkpoint quantizer (see quantize.h): validate, scan, then stream tensor by
 * tensor into a ModelOpt-format checkpoint. Peak memory is one quantized tensor
 * plus one row of floats; source tensors are read from the mmapped files. */
#include "quantize.h"

#include "common.h"
#include "loader/config.h"
#include "loader/quant_config.h"
#include "loader/safetensors.h"
#include "loader/st_writer.h"
#include "numfmt.h"
#include "nvfp4.h"
#include "schema.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Default activation range when no calibration data is given: activations are
 * assumed to reach |x| = 32, which covers the synthesized test models (RMS-normed
 * inputs of about unit scale, MLP products up to ~10) with room to spare. Then
 *   FP8 input_scale   = 32 / 448        (x / input_scale saturates at |x| = 32),
 *   NVFP4 input_scale = 32 / (6 * 448)  (ModelOpt's amax / (6 * 448)).
 * W4A16 modules carry the NVFP4 value too (unused by W4A16 math, present as in
 * NVIDIA's checkpoints). Real models need calibrated values. */
#define DEFAULT_ACT_AMAX 32.0f

static float default_input_scale(fp4rt_qalgo algo) {
    return algo == FP4RT_Q_FP8 ? DEFAULT_ACT_AMAX / FP4RT_E4M3_MAX
                               : DEFAULT_ACT_AMAX / (FP4RT_E2M1_MAX * FP4RT_E4M3_MAX);
}

static const char *const k_producer_version = "0.45.0-fp4rt";

/* One output item: a schema tensor (spec != NULL) or a copied-through tensor. */
typedef struct qjob {
    const fp4rt_st_tensor *src;
    const fp4rt_tensor_spec *spec;
    fp4rt_qalgo algo;
    float amax; /* largest |W| of the tensor, then of its fused group (quantized only) */
} qjob;

typedef struct qctx {
    const char *in_dir;
    const char *recipe;
    fp4rt_config cfg;
    fp4rt_checkpoint *ck;
    fp4rt_tensor_spec *specs;
    size_t n_specs;
    qjob *jobs;
    size_t n_jobs;
    int has_visual, has_mtp;
} qctx;

static int is_passthrough(const char *name) {
    return !strncmp(name, "model.visual.", 13) || !strncmp(name, "mtp.", 4);
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks presence, dtype and shape of every schema tensor and that nothing else
 * (apart from vision / MTP tensors) is in the checkpoint; builds the job list. */
static fp4rt_status plan_jobs(qctx *q) {
    q->jobs = fp4rt_calloc(q->n_specs + q->ck->n_tensors, sizeof *q->jobs, "quantize job list");
    const char **names = fp4rt_malloc(q->n_specs * sizeof *names, "quantize name index");
    fp4rt_status st = FP4RT_OK;
    if (!q->jobs || !names) {
        free(names);
        return FP4RT_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < q->n_specs && st == FP4RT_OK; i++) {
        const fp4rt_tensor_spec *sp = &q->specs[i];
        const fp4rt_st_tensor *t = fp4rt_checkpoint_find(q->ck, sp->name);
        char want[96], got[96];
        shape_str(want, sizeof want, sp->ndim, sp->shape);
        names[i] = sp->name;
        if (!t) {
            st = fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s is missing (expected %s)", q->in_dir,
                            sp->name, want);
            break;
        }
        if (t->dtype != FP4RT_DT_BF16 && t->dtype != FP4RT_DT_F16 && t->dtype != FP4RT_DT_F32) {
            st = fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has dtype %s, expected BF16, F16 or F32",
                            t->file_path, sp->name, fp4rt_dtype_name(t->dtype));
            break;
        }
        int same = t->ndim == sp->ndim;
        for (int d = 0; same && d < sp->ndim; d++) same = t->shape[d] == sp->shape[d];
        if (!same) {
            shape_str(got, sizeof got, t->ndim, t->shape);
            st = fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s has shape %s, expected %s", t->file_path,
                            sp->name, got, want);
            break;
        }
        qjob *j = &q->jobs[q->n_jobs++];
        j->src = t;
        j->spec = sp;
        j->algo = fp4rt_recipe_algo(q->recipe, sp);
        if ((j->algo == FP4RT_Q_NVFP4_W4A16 || j->algo == FP4RT_Q_NVFP4_W4A4) &&
            sp->shape[1] % FP4RT_NVFP4_BLOCK != 0)
            st = fp4rt_fail(FP4RT_UNSUPPORTED,
                            "%s: tensor %s: input dimension %lld is not a multiple of %d (NVFP4)",
                            t->file_path, sp->name, (long long)sp->shape[1], FP4RT_NVFP4_BLOCK);
    }
    if (st == FP4RT_OK) qsort(names, q->n_specs, sizeof *names, cmp_name);
    for (size_t i = 0; i < q->ck->n_tensors && st == FP4RT_OK; i++) {
        const fp4rt_st_tensor *t = q->ck->tensors[i];
        if (is_passthrough(t->name)) {
            q->has_visual |= !strncmp(t->name, "model.visual.", 13);
            q->has_mtp |= !strncmp(t->name, "mtp.", 4);
            qjob *j = &q->jobs[q->n_jobs++];
            j->src = t;
            j->algo = FP4RT_Q_NONE;
        } else if (!bsearch(&t->name, names, q->n_specs, sizeof *names, cmp_name)) {
            st = fp4rt_fail(FP4RT_FORMAT,
                            "%s: unexpected tensor %s (not part of a %d-layer %s text model)",
                            t->file_path, t->name, q->cfg.n_layers, q->cfg.architecture);
        }
    }
    free(names);
    return st;
}

/* Drops the pages of a source tensor from this process once it has been read, so
 * that resident memory stays at one tensor on checkpoints larger than RAM (the
 * mapping is read-only; touching the data again faults it back in). */
static void release_pages(const fp4rt_st_tensor *t) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->nbytes == 0) return;
    uintptr_t lo = (uintptr_t)t->data & ~(uintptr_t)(page - 1);
    uintptr_t hi = (uintptr_t)t->data + t->nbytes;
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Scans a tensor once: index of the first NaN/Inf (or -1) and the largest |x|. */
static int64_t scan_tensor(const fp4rt_st_tensor *t, float *amax) {
    size_t n = t->nbytes / fp4rt_dtype_size(t->dtype);
    uint32_t maxbits = 0;
    if (t->dtype == FP4RT_DT_F32) {
        const uint32_t *p = t->data;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = p[i] & 0x7fffffffu;
            if (u >= 0x7f800000u) return (int64_t)i;
            if (u > maxbits) maxbits = u; /* finite magnitudes order like their bits */
        }
        memcpy(amax, &maxbits, 4);
        return -1;
    }
    const uint16_t *p = t->data;
    uint16_t m = 0, expmask = t->dtype == FP4RT_DT_BF16 ? 0x7f80 : 0x7c00;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = p[i] & 0x7fff;
        if ((h & expmask) == expmask) return (int64_t)i;
        if (h > m) m = h;
    }
    *amax = t->dtype == FP4RT_DT_BF16 ? fp4rt_bf16_to_f32(m) : fp4rt_f16_to_f32(m);
    return -1;
}

/* The fused group of a linear (modules reading the same input), or NULL. */
static const char *fusion_group(const fp4rt_tensor_spec *sp) {
    static const char *const groups[][5] = {
        {"qkv", "q_proj", "k_proj", "v_proj", NULL},
        {"gate_up", "gate_proj", "up_proj", NULL, NULL},
        {"gdn_in", "in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a"},
    };
    const char *dot = strrchr(sp->module, '.');
    const char *leaf = dot ? dot + 1 : sp->module;
    for (size_t g = 0; g < FP4RT_ARRAY_LEN(groups); g++)
        for (int i = 1; i < 5 && groups[g][i]; i++)
            if (!strcmp(leaf, groups[g][i])) return groups[g][0];
    return NULL;
}

/* Refuses non-finite weights; computes every quantized tensor's amax, then
 * unifies it over fused groups of the same format within a layer. */
static fp4rt_status scan_jobs(qctx *q) {
    for (size_t i = 0; i < q->n_jobs; i++) {
        qjob *j = &q->jobs[i];
        if (!j->spec) continue;
        float amax = 0;
        int64_t bad = scan_tensor(j->src, &amax);
        release_pages(j->src);
        if (bad >= 0)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: element %lld is NaN or infinite",
                              j->src->file_path, j->src->name, (long long)bad);
        j->amax = amax;
    }
    /* Group maxima from the tensors' own maxima (O(n^2) over ~1000 jobs at most). */
    float *gmax = fp4rt_malloc(q->n_jobs * sizeof *gmax, "quantize group amax");
    if (!gmax) return FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; i < q->n_jobs; i++) {
        const qjob *a = &q->jobs[i];
        const char *ga = a->spec && a->algo != FP4RT_Q_NONE ? fusion_group(a->spec) : NULL;
        gmax[i] = a->amax;
        for (size_t k = 0; ga && k < q->n_jobs; k++) {
            const qjob *b = &q->jobs[k];
            if (!b->spec || b->spec->layer != a->spec->layer || b->algo != a->algo) continue;
            const char *gb = fusion_group(b->spec);
            if (gb && !strcmp(ga, gb)) gmax[i] = FP4RT_MAX(gmax[i], b->amax);
        }
    }
    for (size_t i = 0; i < q->n_jobs; i++) q->jobs[i].amax = gmax[i];
    free(gmax);
    return FP4RT_OK;
}

/* Converts n elements starting at element `first` of t to float. */
static void load_f32(const fp4rt_st_tensor *t, size_t first, size_t n, float *out) {
    if (t->dtype == FP4RT_DT_F32) {
        memcpy(out, (const float *)t->data + first, n * sizeof *out);
    } else if (t->dtype == FP4RT_DT_BF16) {
        const uint16_t *p = (const uint16_t *)t->data + first;
        for (size_t i = 0; i < n; i++) out[i] = fp4rt_bf16_to_f32(p[i]);
    } else {
        const uint16_t *p = (const uint16_t *)t->data + first;
        for (size_t i = 0; i < n; i++) out[i] = fp4rt_f16_to_f32(p[i]);
    }
}

static int is_nvfp4(fp4rt_qalgo a) { return a == FP4RT_Q_NVFP4_W4A16 || a == FP4RT_Q_NVFP4_W4A4; }

static fp4rt_status declare(fp4rt_stw *w, const char *module, const char *suffix, fp4rt_dtype dt,
                            int ndim, int64_t d0, int64_t d1, uint64_t *bytes) {
    char name[160];
    int64_t shape[2] = {d0, d1};
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    uint64_t n = fp4rt_dtype_size(dt);
    for (int d = 0; d < ndim; d++) n *= (uint64_t)shape[d];
    *bytes += n;
    return fp4rt_stw_declare(w, name, dt, ndim, shape);
}

static fp4rt_status declare_all(qctx *q, fp4rt_stw *w, fp4rt_quantize_summary *sum) {
    fp4rt_status st = FP4RT_OK;
    for (size_t i = 0; i < q->n_jobs && st == FP4RT_OK; i++) {
        const qjob *j = &q->jobs[i];
        const char *m = j->spec ? j->spec->module : NULL;
        int64_t N = j->spec ? j->spec->shape[0] : 0, K = j->spec ? j->spec->shape[1] : 0;
        if (is_nvfp4(j->algo)) {
            st = declare(w, m, "weight", FP4RT_DT_U8, 2, N, K / 2, &sum->bytes);
            if (!st) st = declare(w, m, "weight_scale", FP4RT_DT_F8_E4M3, 2, N, K / 16, &sum->bytes);
            if (!st) st = declare(w, m, "weight_scale_2", FP4RT_DT_F32, 0, 0, 0, &sum->bytes);
            if (!st) st = declare(w, m, "input_scale", FP4RT_DT_F32, 0, 0, 0, &sum->bytes);
            sum->n_tensors += 4;
            sum->n_nvfp4++;
        } else if (j->algo == FP4RT_Q_FP8) {
            st = declare(w, m, "weight", FP4RT_DT_F8_E4M3, 2, N, K, &sum->bytes);
            if (!st) st = declare(w, m, "weight_scale", FP4RT_DT_F32, 0, 0, 0, &sum->bytes);
            if (!st) st = declare(w, m, "input_scale", FP4RT_DT_F32, 0, 0, 0, &sum->bytes);
            sum->n_tensors += 3;
            sum->n_fp8++;
        } else {
            st = fp4rt_stw_declare(w, j->src->name, j->src->dtype, j->src->ndim, j->src->shape);
            sum->bytes += j->src->nbytes;
            sum->n_tensors++;
            if (j->spec)
                sum->n_kept++;
            else
                sum->n_copied++;
        }
    }
    return st;
}

static fp4rt_status write_scalar(fp4rt_stw *w, const char *module, const char *suffix, float v) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    return fp4rt_stw_write(w, name, &v, sizeof v);
}

/* Quantizes one linear [N, K] and writes its tensors in declared order. */
static fp4rt_status write_quantized(fp4rt_stw *w, const qjob *j) {
    const char *m = j->spec->module;
    size_t N = (size_t)j->spec->shape[0], K = (size_t)j->spec->shape[1];
    int nv = is_nvfp4(j->algo);
    size_t wbytes = nv ? N * K / 2 : N * K, sbytes = nv ? N * K / 16 : 0;
    uint8_t *wq = fp4rt_malloc(wbytes + sbytes, "quantized weight");
    float *row = fp4rt_malloc(K * sizeof *row, "quantize row");
    fp4rt_status st = FP4RT_OUT_OF_MEMORY;
    char name[160];
    if (!wq || !row) goto done;
    float scale = nv ? fp4rt_nvfp4_weight_tensor_scale(j->amax) : fp4rt_fp8_weight_scale(j->amax);
    for (size_t r = 0; r < N; r++) {
        load_f32(j->src, r * K, K, row);
        if (nv)
            fp4rt_nvfp4_quantize_row(row, K, scale, wq + r * K / 2, wq + wbytes + r * K / 16);
        else
            fp4rt_fp8_quantize_row(row, K, scale, wq + r * K);
    }
    snprintf(name, sizeof name, "%s.weight", m);
    if ((st = fp4rt_stw_write(w, name, wq, wbytes)) != FP4RT_OK) goto done;
    if (nv) {
        snprintf(name, sizeof name, "%s.weight_scale", m);
        if ((st = fp4rt_stw_write(w, name, wq + wbytes, sbytes)) != FP4RT_OK) goto done;
        if ((st = write_scalar(w, m, "weight_scale_2", scale)) != FP4RT_OK) goto done;
    } else {
        if ((st = write_scalar(w, m, "weight_scale", scale)) != FP4RT_OK) goto done;
    }
    st = write_scalar(w, m, "input_scale", default_input_scale(j->algo));
done:
    free(wq);
    free(row);
    return st;
}

/* ---- configuration files --------------------------------------------------- */

/* The "quantization" object of hf_quant_config.json (ModelOpt's layout). */
static cJSON *quant_object(const qctx *q) {
    int mixed = fp4rt_recipe_known(q->recipe) == 0;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    fp4rt_qalgo single = fp4rt_recipe_known(q->recipe) == 2 ? FP4RT_Q_NVFP4_W4A4
                                                            : FP4RT_Q_NVFP4_W4A16;
    cJSON_AddStringToObject(o, "quant_algo", mixed ? "MIXED_PRECISION" : fp4rt_qalgo_name(single));
    cJSON_AddNullToObject(o, "kv_cache_quant_algo");
    if (mixed) {
        cJSON *layers = cJSON_AddObjectToObject(o, "quantized_layers");
        for (size_t i = 0; i < q->n_jobs && layers; i++) {
            const qjob *j = &q->jobs[i];
            if (j->algo == FP4RT_Q_NONE) continue;
            cJSON *e = cJSON_AddObjectToObject(layers, j->spec->module);
            cJSON_AddStringToObject(e, "quant_algo", fp4rt_qalgo_name(j->algo));
            if (is_nvfp4(j->algo)) cJSON_AddNumberToObject(e, "group_size", FP4RT_NVFP4_BLOCK);
        }
    } else {
        cJSON_AddNumberToObject(o, "group_size", FP4RT_NVFP4_BLOCK);
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
 * convert_hf_quant_config_format gives it (exclude_modules becomes "ignore"). */
static cJSON *config_quant_object(const qctx *q, const cJSON *quant) {
    cJSON *c = cJSON_Duplicate(quant, 1);
    if (!c) return NULL;
    cJSON_AddStringToObject(c, "quant_method", "modelopt");
    cJSON_AddItemToObject(c, "producer", producer());
    cJSON *ex = cJSON_DetachItemFromObject(c, "exclude_modules");
    cJSON_AddItemToObject(c, "ignore", ex ? ex : cJSON_CreateArray());
    if (!cJSON_GetObjectItem(c, "quantized_layers")) {
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

static fp4rt_status write_configs(const qctx *q, const char *tmp) {
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
static fp4rt_status copy_aux_files(const char *in_dir, const char *tmp) {
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

/* ---- driver ---------------------------------------------------------------- */

fp4rt_status fp4rt_quantize(const char *in_dir, const char *out_dir, const char *recipe, int force,
                            const fp4rt_quantize_opts *opts, fp4rt_quantize_summary *summary) {
    fp4rt_quantize_summary sum = {0};
    fp4rt_quantize_opts o = {0};
    if (opts) o = *opts;
    if (!in_dir || !out_dir || fp4rt_recipe_known(recipe) < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "quantize: unknown recipe '%s' (known: nvidia-mixed, nvfp4-all, "
                          "nvfp4-w4a4)",
                          recipe ? recipe : "(null)");
    qctx *q = fp4rt_calloc(1, sizeof *q, "quantize context");
    if (!q) return FP4RT_OUT_OF_MEMORY;
    q->in_dir = in_dir;
    q->recipe = recipe;
    char *tmp = NULL;
    fp4rt_stw *w = NULL;
    fp4rt_status st = fp4rt_config_load(in_dir, &q->cfg);
    if (st == FP4RT_OK) st = fp4rt_checkpoint_open(in_dir, &q->ck);
    if (st == FP4RT_OK) {
        q->n_specs = fp4rt_schema_tensors(&q->cfg, &q->specs);
        if (!q->n_specs) st = FP4RT_OUT_OF_MEMORY;
    }
    if (st == FP4RT_OK) st = plan_jobs(q);
    if (st == FP4RT_OK) st = scan_jobs(q);
    if (st == FP4RT_OK) st = fp4rt_outdir_begin(out_dir, force, &tmp);
    if (st == FP4RT_OK) st = fp4rt_stw_create(tmp, o.shard_bytes, &w);
    if (st == FP4RT_OK) st = declare_all(q, w, &sum);
    for (size_t i = 0; i < q->n_jobs && st == FP4RT_OK; i++) {
        const qjob *j = &q->jobs[i];
        if (j->algo != FP4RT_Q_NONE)
            st = write_quantized(w, j);
        else
            st = fp4rt_stw_write(w, j->src->name, j->src->data, j->src->nbytes);
        release_pages(j->src);
    }
    if (st == FP4RT_OK) st = fp4rt_stw_finish(w);
    if (st == FP4RT_OK) st = write_configs(q, tmp);
    if (st == FP4RT_OK) st = copy_aux_files(in_dir, tmp);
    if (w) fp4rt_stw_free(w);
    if (st == FP4RT_OK) st = fp4rt_outdir_commit(tmp, out_dir);
    if (st != FP4RT_OK && tmp) fp4rt_outdir_abort(tmp);

    sum.default_input_scale = sum.n_nvfp4 + sum.n_fp8 > 0;
    sum.assumed_act_amax = DEFAULT_ACT_AMAX;
    if (summary && st == FP4RT_OK) *summary = sum;
    free(tmp);
    if (q->ck) fp4rt_checkpoint_close(q->ck);
    free(q->specs);
    free(q->jobs);
    free(q);
    return st;
}
