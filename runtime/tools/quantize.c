/* The checkpoint quantizer (see quantize.h): validate, scan, calibrate, then
 * stream tensor by tensor into a ModelOpt-format checkpoint. Peak memory is one
 * quantized tensor plus per-row statistics and one row of floats per thread;
 * source tensors are read from the mmapped files. */
#include "runtime/tools/quant_internal.h"

#include "runtime/base/common.h"
#include "loader/st_writer.h"
#include "runtime/base/numfmt.h"
#include "runtime/tools/nvfp4.h"
#include "runtime/base/threadpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
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

void fp4rt_quant_group_max(const qctx *q, float *vals) {
    /* O(n^2) over ~1000 jobs at most; reads the original values only. */
    float *gmax = fp4rt_malloc(q->n_jobs * sizeof *gmax, "quantize group max");
    if (!gmax) return; /* leaves the per-tensor values: still valid, only not shared */
    for (size_t i = 0; i < q->n_jobs; i++) {
        const qjob *a = &q->jobs[i];
        const char *ga = a->spec && a->algo != FP4RT_Q_NONE ? fusion_group(a->spec) : NULL;
        gmax[i] = vals[i];
        for (size_t k = 0; ga && k < q->n_jobs; k++) {
            const qjob *b = &q->jobs[k];
            if (!b->spec || b->spec->layer != a->spec->layer || b->algo != a->algo) continue;
            const char *gb = fusion_group(b->spec);
            if (gb && !strcmp(ga, gb)) gmax[i] = FP4RT_MAX(gmax[i], vals[k]);
        }
    }
    memcpy(vals, gmax, q->n_jobs * sizeof *vals);
    free(gmax);
}

/* Refuses non-finite weights; computes every quantized tensor's amax, then
 * unifies it over fused groups of the same format within a layer. */
static fp4rt_status scan_jobs(qctx *q) {
    float *amax = fp4rt_calloc(q->n_jobs, sizeof *amax, "quantize amax");
    if (!amax) return FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; i < q->n_jobs; i++) {
        qjob *j = &q->jobs[i];
        if (!j->spec) continue;
        int64_t bad = scan_tensor(j->src, &amax[i]);
        release_pages(j->src);
        if (bad >= 0) {
            free(amax);
            return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: element %lld is NaN or infinite",
                              j->src->file_path, j->src->name, (long long)bad);
        }
    }
    fp4rt_quant_group_max(q, amax);
    for (size_t i = 0; i < q->n_jobs; i++) {
        q->jobs[i].amax = amax[i];
        q->jobs[i].input_scale = default_input_scale(q->jobs[i].algo);
    }
    free(amax);
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
        if (fp4rt_q_is_nvfp4(j->algo)) {
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

/* Rows of one tensor quantized in parallel; per-row error sums are kept so
 * that the totals do not depend on the thread count. */
typedef struct rowjob {
    const qjob *j;
    size_t K;
    float scale;        /* s2 (NVFP4) or weight_scale (FP8) */
    float s2_absmax;    /* NVFP4: the absmax tensor scale, for the comparison */
    fp4rt_scale_strategy strategy;
    fp4rt_err_metric metric;
    uint8_t *wq, *sq;   /* codes [N, K/2] or [N, K]; NVFP4 block scales [N, K/16] */
    float *scratch;     /* per thread: [3K] floats + [K/2 + K/16] bytes, see rows_run */
    size_t scratch_stride; /* floats per thread */
    double *row_stats;  /* [N][3]: err, err_absmax, energy */
} rowjob;

static double sq_diff(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        e += d * d;
    }
    return e;
}

static void rows_run(void *arg, long begin, long end, int thread) {
    rowjob *r = arg;
    size_t K = r->K;
    float *row = r->scratch + (size_t)thread * r->scratch_stride, *deq = row + K;
    uint8_t *tp = (uint8_t *)(deq + K), *ts = tp + K / 2;
    int nv = fp4rt_q_is_nvfp4(r->j->algo);
    for (long n = begin; n < end; n++) {
        double *st = r->row_stats + 3 * n;
        load_f32(r->j->src, (size_t)n * K, K, row);
        st[2] = 0;
        for (size_t i = 0; i < K; i++) st[2] += (double)row[i] * row[i];
        if (nv) {
            uint8_t *pk = r->wq + (size_t)n * K / 2, *sc = r->sq + (size_t)n * K / 16;
            fp4rt_nvfp4_quantize_row_with(row, K, r->scale, r->strategy, r->metric,
                                          r->j->importance, pk, sc);
            fp4rt_nvfp4_dequantize_row(pk, sc, K, r->scale, deq);
            st[0] = sq_diff(deq, row, K);
            if (r->strategy == FP4RT_SCALE_ABSMAX) {
                st[1] = st[0];
            } else {
                fp4rt_nvfp4_quantize_row(row, K, r->s2_absmax, tp, ts);
                fp4rt_nvfp4_dequantize_row(tp, ts, K, r->s2_absmax, deq);
                st[1] = sq_diff(deq, row, K);
            }
        } else {
            uint8_t *q = r->wq + (size_t)n * K;
            fp4rt_fp8_quantize_row(row, K, r->scale, q);
            for (size_t i = 0; i < K; i++) deq[i] = fp4rt_e4m3_to_f32(q[i]) * r->scale;
            st[0] = st[1] = sq_diff(deq, row, K);
        }
    }
}

/* Quantizes one linear [N, K] on the pool and writes its tensors in declared
 * order; adds its error statistics to j. */
static fp4rt_status write_quantized(const qctx *q, fp4rt_pool *pool, fp4rt_stw *w, qjob *j) {
    const char *m = j->spec->module;
    size_t N = (size_t)j->spec->shape[0], K = (size_t)j->spec->shape[1];
    int nv = fp4rt_q_is_nvfp4(j->algo), T = fp4rt_pool_threads(pool);
    size_t wbytes = nv ? N * K / 2 : N * K, sbytes = nv ? N * K / 16 : 0;
    size_t stride = 2 * K + (K / 2 + K / 16 + 3) / 4 + 16; /* floats; keeps rows aligned */
    rowjob r = {.j = j, .K = K, .strategy = q->o.scale, .metric = q->o.err,
                .scratch_stride = stride};
    r.wq = fp4rt_malloc(wbytes + sbytes, "quantized weight");
    r.scratch = fp4rt_malloc((size_t)T * stride * sizeof(float), "quantize rows");
    r.row_stats = fp4rt_malloc(N * 3 * sizeof(double), "quantize row statistics");
    fp4rt_status st = FP4RT_OUT_OF_MEMORY;
    char name[160];
    if (!r.wq || !r.scratch || !r.row_stats) goto done;
    r.sq = r.wq + wbytes;
    r.scale = nv ? fp4rt_nvfp4_tensor_scale_for(q->o.scale, j->amax) : fp4rt_fp8_weight_scale(j->amax);
    r.s2_absmax = fp4rt_nvfp4_weight_tensor_scale(j->amax);
    fp4rt_pool_for(pool, (long)N, 4, rows_run, &r);
    j->err = j->err_absmax = j->energy = 0;
    for (size_t n = 0; n < N; n++) {
        j->err += r.row_stats[3 * n];
        j->err_absmax += r.row_stats[3 * n + 1];
        j->energy += r.row_stats[3 * n + 2];
    }
    snprintf(name, sizeof name, "%s.weight", m);
    if ((st = fp4rt_stw_write(w, name, r.wq, wbytes)) != FP4RT_OK) goto done;
    if (nv) {
        snprintf(name, sizeof name, "%s.weight_scale", m);
        if ((st = fp4rt_stw_write(w, name, r.sq, sbytes)) != FP4RT_OK) goto done;
        if ((st = write_scalar(w, m, "weight_scale_2", r.scale)) != FP4RT_OK) goto done;
    } else {
        if ((st = write_scalar(w, m, "weight_scale", r.scale)) != FP4RT_OK) goto done;
    }
    st = write_scalar(w, m, "input_scale", j->input_scale);
done:
    free(r.wq);
    free(r.scratch);
    free(r.row_stats);
    return st;
}

/* ---- driver ---------------------------------------------------------------- */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Streams every job into the writer; fills the weight counts and timing. */
static fp4rt_status write_all(qctx *q, fp4rt_pool *pool, fp4rt_stw *w, fp4rt_quantize_summary *sum) {
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < q->n_jobs; i++) total += q->jobs[i].src->nbytes;
    double t0 = now_seconds();
    fp4rt_status st = FP4RT_OK;
    for (size_t i = 0; i < q->n_jobs && st == FP4RT_OK; i++) {
        qjob *j = &q->jobs[i];
        if (q->o.progress && q->o.progress(total ? (float)((double)done / total) : 0, j->src->name,
                                           q->o.progress_user))
            return fp4rt_fail(FP4RT_CANCELLED, "quantize: cancelled at tensor %s", j->src->name);
        if (j->algo != FP4RT_Q_NONE) {
            st = write_quantized(q, pool, w, j);
            sum->n_weights += (uint64_t)j->spec->shape[0] * (uint64_t)j->spec->shape[1];
            if (fp4rt_q_is_nvfp4(j->algo)) {
                sum->nvfp4_err += j->err;
                sum->nvfp4_err_absmax += j->err_absmax;
                sum->nvfp4_energy += j->energy;
            }
        } else {
            st = fp4rt_stw_write(w, j->src->name, j->src->data, j->src->nbytes);
        }
        release_pages(j->src);
        done += j->src->nbytes;
    }
    sum->quant_seconds = now_seconds() - t0;
    if (st == FP4RT_OK && q->o.progress) q->o.progress(1.0f, "done", q->o.progress_user);
    return st;
}

fp4rt_status fp4rt_quantize(const char *in_dir, const char *out_dir, const char *recipe, int force,
                            const fp4rt_quantize_opts *opts, fp4rt_quantize_summary *summary) {
    fp4rt_quantize_summary sum = {0};
    fp4rt_quantize_opts o = {0};
    if (opts) o = *opts;
    if (!in_dir || !out_dir || fp4rt_recipe_known(recipe) < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "quantize: unknown recipe '%s' (known: nvidia-mixed, nvfp4-all, "
                          "nvfp4-w4a4, fp8)",
                          recipe ? recipe : "(null)");
    if (!fp4rt_scale_strategy_name(o.scale) || (o.err != FP4RT_ERR_MSE && o.err != FP4RT_ERR_MAE))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "quantize: unknown scale strategy %d or metric %d",
                          (int)o.scale, (int)o.err);
    if (o.n_threads <= 0) o.n_threads = (int)FP4RT_MAX(1, sysconf(_SC_NPROCESSORS_ONLN));
    qctx *q = fp4rt_calloc(1, sizeof *q, "quantize context");
    if (!q) return FP4RT_OUT_OF_MEMORY;
    q->in_dir = in_dir;
    q->recipe = recipe;
    q->o = o;
    char *tmp = NULL;
    fp4rt_stw *w = NULL;
    fp4rt_pool *pool = NULL;
    fp4rt_status st = fp4rt_config_load(in_dir, &q->cfg);
    if (st == FP4RT_OK) st = fp4rt_checkpoint_open(in_dir, &q->ck);
    if (st == FP4RT_OK) {
        q->n_specs = fp4rt_schema_tensors(&q->cfg, &q->specs);
        if (!q->n_specs) st = FP4RT_OUT_OF_MEMORY;
    }
    if (st == FP4RT_OK) st = plan_jobs(q);
    if (st == FP4RT_OK) st = scan_jobs(q);
    if (st == FP4RT_OK && o.calib_path) st = fp4rt_quant_calibrate(q);
    if (st == FP4RT_OK) st = fp4rt_pool_create(o.n_threads, &pool);
    if (st == FP4RT_OK) st = fp4rt_outdir_begin(out_dir, force, &tmp);
    if (st == FP4RT_OK) st = fp4rt_stw_create(tmp, o.shard_bytes, &w);
    if (st == FP4RT_OK) st = declare_all(q, w, &sum);
    if (st == FP4RT_OK) st = write_all(q, pool, w, &sum);
    if (st == FP4RT_OK) st = fp4rt_stw_finish(w);
    if (st == FP4RT_OK) st = fp4rt_quant_write_configs(q, tmp);
    if (st == FP4RT_OK) st = fp4rt_quant_copy_aux_files(in_dir, tmp);
    if (w) fp4rt_stw_free(w);
    if (pool) fp4rt_pool_free(pool);

    sum.scale = o.scale;
    sum.calib_tokens = q->calib_tokens;
    for (size_t i = 0; i < q->n_jobs; i++)
        sum.n_uncalibrated += q->jobs[i].algo != FP4RT_Q_NONE && q->jobs[i].rows_seen == 0;
    sum.default_input_scale = sum.n_nvfp4 + sum.n_fp8 > 0 && !q->calib_tokens;
    sum.assumed_act_amax = DEFAULT_ACT_AMAX;
    /* The evaluation and the report run before the rename, so that a failure in
     * either leaves nothing behind under the final name. */
    if (st == FP4RT_OK && o.eval_path)
        st = fp4rt_quant_eval(in_dir, tmp, o.eval_path, o.eval_tokens, o.n_threads, &sum.kl,
                              &sum.ppl_source, &sum.ppl_quant, &sum.eval_tokens);
    if (st == FP4RT_OK) {
        sum.text = fp4rt_quant_summary_text(q, &sum);
        if (!sum.text) st = FP4RT_OUT_OF_MEMORY;
    }
    if (st == FP4RT_OK && o.report_path) st = fp4rt_quant_write_report(q, &sum, o.report_path);
    if (st == FP4RT_OK) st = fp4rt_outdir_commit(tmp, out_dir);
    if (st != FP4RT_OK && tmp) fp4rt_outdir_abort(tmp);

    if (summary && st == FP4RT_OK)
        *summary = sum;
    else
        free(sum.text);
    free(tmp);
    if (q->ck) fp4rt_checkpoint_close(q->ck);
    for (size_t i = 0; q->jobs && i < q->n_jobs; i++) {
        free(q->jobs[i].sumsq);
        free(q->jobs[i].importance);
    }
    free(q->specs);
    free(q->jobs);
    free(q);
    return st;
}
