/* The vision encoder's ops and the step fields of issue 18 on every backend:
 * LAYERNORM, BIAS, GELU (erf, tanh), ATTENTION_FULL, ROPE with positions (text
 * M-RoPE interleaved, the vision 2-D rotary, rope_delta) and the EMBED override
 * rows. Each backend's outputs are held against a naive double-precision
 * reference written in this file (the RoPE ones straight from transformers'
 * formulas: Qwen3_5TextRotaryEmbedding's interleaved recomposition, Qwen3VL's
 * VisionRotaryEmbedding, rotate_half) with per-op tolerances; a device (Vulkan)
 * must also give exactly the CPU's bits (docs/NUMERICS.md), and every arena
 * float outside the written outputs must keep its bits. Several steps run on one
 * session with different positions / overrides (a device must take each step's
 * fields, not the first one's). Then the bad-step checks of fp4rt_backend_run.
 *
 * Usage: test_vision_ops [-b cpu|vulkan|cuda]   (-b cpu: the CPU reference only;
 * a device backend with no usable device exits 77). */
#include "fp4rt.h"
#include "tests/test_util.h"

#include "runtime/backend/backend.h"
#include "runtime/backend/registry.h"
#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"

#include <stdint.h>

#define SENTINEL_BITS 0x4b5a5a5bu
#define GAP 3
#define MAXB 32
#define MAXO 16

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rnd_f(float lo, float hi) { return lo + (hi - lo) * (float)(rnd_u32() & 0xffffff) / 16777216.0f; }

typedef struct vcase {
    const char *name;
    fp4rt_weights w;
    fp4rt_layer_weights layer;
    fp4rt_program p;
    fp4rt_op ops[MAXO];
    int bw[MAXB], bo[MAXB], out[MAXB];
    float lo[MAXB], hi[MAXB];
    char bname[MAXB][48];
    double atol[MAXO], rtol[MAXO]; /* per op: |got - ref| <= atol + rtol |ref| */
    int chunk, n_ctx;
    void *owned[64];
    int n_owned;
} vcase;

static void *own(vcase *c, void *p) { return c->owned[c->n_owned++] = p; }
static float *rnd_vec(vcase *c, int n, float lo, float hi) {
    float *v = own(c, malloc((size_t)n * sizeof *v));
    for (int i = 0; i < n; i++) v[i] = rnd_f(lo, hi);
    return v;
}

static void case_init(vcase *c, const char *name, int chunk) {
    memset(c, 0, sizeof *c);
    c->name = name;
    c->w.layers = &c->layer;
    c->w.cfg.n_layers = 1;
    c->p.weights = &c->w;
    c->p.ops = c->ops;
    c->p.buf_width = c->bw;
    c->p.buf_offset = c->bo;
    c->p.hidden_buf = -1;
    c->chunk = chunk;
    c->n_ctx = chunk > 64 ? chunk : 64;
}

static int add_buf(vcase *c, const char *name, int width, int out, float lo, float hi) {
    int i = c->p.n_bufs++;
    snprintf(c->bname[i], sizeof c->bname[i], "%s", name);
    c->bw[i] = width;
    c->out[i] = out;
    c->lo[i] = lo;
    c->hi[i] = hi;
    return i;
}

static fp4rt_op *add_op(vcase *c, fp4rt_op_kind k, double atol, double rtol) {
    int i = c->p.n_ops++;
    fp4rt_op *op = &c->ops[i];
    memset(op, 0, sizeof *op);
    op->kind = k;
    c->atol[i] = atol;
    c->rtol[i] = rtol;
    return op;
}

static fp4rt_view view(int buf, int cols) { return (fp4rt_view){buf, 0, cols}; }

static void case_layout(vcase *c) {
    int off = GAP;
    for (int i = 0; i < c->p.n_bufs; i++) {
        c->bo[i] = off;
        off += c->bw[i] + GAP;
    }
    c->p.arena_width = off;
}

static void case_free(vcase *c) {
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
}

/* ---- the double references (each op reads only input buffers) ---- */
static const float *in_row(const vcase *c, const float *a, fp4rt_view v, int t) {
    return a + (size_t)t * c->p.arena_width + c->bo[v.buf] + v.col;
}
static size_t out_idx(const vcase *c, fp4rt_view v, int t, int i) {
    return (size_t)t * c->p.arena_width + c->bo[v.buf] + v.col + i;
}

static double d_gelu(double x, int tanh_form) {
    /* 0.5 x (1 + tanh(u)) written as x / (1 + e^(-2u)), the same function without
     * double's cancellation for large negative x */
    if (tanh_form) return x / (1.0 + exp(-2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

/* transformers: emb[d] of a row (d < rotary_dim): cat(freqs, freqs) after the
 * mode's recomposition; apply: q * cos(emb) + rotate_half(q) * sin(emb). */
static void ref_rope_angles(const fp4rt_op *op, const int pos[3], double *emb) {
    int dim = op->rotary_dim, half = dim / 2;
    double f[512];
    if (op->rope_mode == FP4RT_ROPE_VISION_2D) {
        /* Qwen3VLVisionRotaryEmbedding: spatial_dim = head_dim / 2, inv_freq over
         * arange(0, spatial_dim, 2) / spatial_dim; freqs (h, w) concatenated */
        int sd = dim / 2, q = sd / 2;
        for (int i = 0; i < q; i++) {
            double inv = 1.0 / pow(op->rope_theta, (double)(2 * i) / sd);
            f[i] = pos[1] * inv;
            f[q + i] = pos[2] * inv;
        }
    } else {
        /* Qwen3_5TextRotaryEmbedding: freqs of t, then idx = slice(offset, 3 *
         * mrope_section[dim], 3) taken from h (offset 1) and w (offset 2) */
        double ft[512], fh[512], fw[512];
        for (int j = 0; j < half; j++) {
            double inv = 1.0 / pow(op->rope_theta, (double)(2 * j) / dim);
            ft[j] = pos[0] * inv, fh[j] = pos[1] * inv, fw[j] = pos[2] * inv;
            f[j] = ft[j];
        }
        for (int j = 1; j < 3 * op->mrope_section[1] && j < half; j += 3) f[j] = fh[j];
        for (int j = 2; j < 3 * op->mrope_section[2] && j < half; j += 3) f[j] = fw[j];
    }
    for (int j = 0; j < half; j++) emb[j] = emb[j + half] = f[j];
}

/* want[i]: the expected value of arena float i (NaN: keeps its initial bits);
 * tol[i]: its allowed error. */
static void reference(const vcase *c, const fp4rt_step *st, const float *a, double *want, double *tol) {
    int T = st->n_tokens;
    for (int oi = 0; oi < c->p.n_ops; oi++) {
        const fp4rt_op *op = &c->ops[oi];
        double at = c->atol[oi], rt = c->rtol[oi];
#define SET(t, i, v)                                                                                                  \
    do {                                                                                                              \
        size_t k_ = out_idx(c, op->y, t, i);                                                                          \
        want[k_] = (v);                                                                                               \
        tol[k_] = at + rt * fabs(want[k_]);                                                                           \
    } while (0)
        for (int t = 0; t < T; t++) {
            const float *x = in_row(c, a, op->x, t);
            switch (op->kind) {
            case FP4RT_OP_LAYERNORM:
                for (int g = 0; g < op->n_groups; g++) {
                    const float *xg = x + (size_t)g * op->group_stride;
                    double m = 0, v = 0;
                    for (int i = 0; i < op->group_dim; i++) m += xg[i];
                    m /= op->group_dim;
                    for (int i = 0; i < op->group_dim; i++) v += (xg[i] - m) * (xg[i] - m);
                    v /= op->group_dim;
                    for (int i = 0; i < op->group_dim; i++)
                        SET(t, g * op->group_stride + i, (xg[i] - m) / sqrt(v + op->eps) * op->w[i] + op->b[i]);
                }
                break;
            case FP4RT_OP_BIAS:
                for (int i = 0; i < op->x.cols; i++) SET(t, i, (double)x[i] + op->b[i]);
                break;
            case FP4RT_OP_GELU:
                for (int i = 0; i < op->x.cols; i++) SET(t, i, d_gelu(x[i], op->gelu_tanh));
                break;
            case FP4RT_OP_ROPE: {
                int pos[3];
                for (int k = 0; k < 3; k++) pos[k] = st->positions ? st->positions[3 * t + k] : st->pos0 + t + st->rope_delta;
                double emb[1024];
                ref_rope_angles(op, pos, emb);
                int d = op->rotary_dim, h = d / 2;
                for (int g = 0; g < op->n_groups; g++) {
                    const float *q = x + (size_t)g * op->group_stride;
                    for (int i = 0; i < d; i++) {
                        double rot = i < h ? -(double)q[i + h] : (double)q[i - h]; /* rotate_half */
                        SET(t, g * op->group_stride + i, q[i] * cos(emb[i]) + rot * sin(emb[i]));
                    }
                    for (int i = d; i < op->group_dim; i++) SET(t, g * op->group_stride + i, q[i]);
                }
                break;
            }
            case FP4RT_OP_ATTENTION_FULL: {
                int hd = op->group_dim;
                double *s = malloc((size_t)T * sizeof *s);
                for (int h = 0; h < op->n_groups; h++) {
                    const float *q = x + (size_t)h * hd;
                    double mx = -INFINITY, l = 0;
                    for (int p = 0; p < T; p++) {
                        const float *k = in_row(c, a, op->z, p) + (size_t)h * hd;
                        double d = 0;
                        for (int e = 0; e < hd; e++) d += (double)q[e] * k[e];
                        s[p] = d * op->scale;
                        if (s[p] > mx) mx = s[p];
                    }
                    for (int p = 0; p < T; p++) l += exp(s[p] - mx);
                    for (int e = 0; e < hd; e++) {
                        double o = 0;
                        for (int p = 0; p < T; p++) o += exp(s[p] - mx) / l * in_row(c, a, op->a, p)[(size_t)h * hd + e];
                        SET(t, h * hd + e, o);
                    }
                }
                free(s);
                break;
            }
            case FP4RT_OP_EMBED: {
                int hid = c->w.cfg.hidden;
                for (int i = 0; i < hid; i++) {
                    double v;
                    if (st->embed_rows && st->embed_rows[t])
                        v = st->input_embeds[(size_t)t * hid + i];
                    else
                        v = fp4rt_bf16_to_f32(((const uint16_t *)c->w.embed)[(size_t)st->tokens[t] * hid + i]);
                    SET(t, i, v);
                }
                break;
            }
            default: break;
            }
        }
#undef SET
    }
}

/* ---- backends ---- */
typedef struct backend {
    char name[300];
    const fp4rt_backend_reg *reg; /* NULL: the CPU reference */
    int index;
} backend;

typedef struct session {
    const fp4rt_backend_ops *ops;
    void *ctx;
    fp4rt_session_buffers sb;
} session;

static fp4rt_status session_open(const backend *b, const vcase *c, session *s) {
    memset(s, 0, sizeof *s);
    s->ops = &fp4rt_backend_cpu;
    fp4rt_status st = b->reg ? b->reg->create(b->index, 2, &s->ops, &s->ctx) : fp4rt_backend_cpu.create(2, &s->ctx);
    s->sb.n_ctx = c->n_ctx;
    s->sb.chunk = c->chunk;
    s->sb.kv_type = FP4RT_KV_F32;
    fp4rt_buffer **slot[5] = {&s->sb.scratch, &s->sb.kv, &s->sb.conv, &s->sb.ssm, &s->sb.logits};
    size_t arena = (size_t)c->chunk * c->p.arena_width * 4;
    for (int i = 0; !st && i < 5; i++) st = s->ops->buffer_alloc(s->ctx, i ? 64 : arena, "test", slot[i]);
    if (!st && s->ops->prepare) st = s->ops->prepare(s->ctx, &c->p);
    return st;
}

static void session_close(session *s) {
    fp4rt_buffer *bufs[5] = {s->sb.scratch, s->sb.kv, s->sb.conv, s->sb.ssm, s->sb.logits};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) s->ops->buffer_free(s->ctx, bufs[i]);
    if (s->ctx) s->ops->destroy(s->ctx);
}

static fp4rt_status session_run(session *s, const vcase *c, const float *in, const fp4rt_step *st, float *out) {
    size_t bytes = (size_t)c->chunk * c->p.arena_width * 4;
    fp4rt_status e = s->ops->buffer_upload(s->ctx, s->sb.scratch, 0, in, bytes);
    if (!e) e = fp4rt_backend_run(s->ops, s->ctx, &c->p, &s->sb, st);
    if (!e && s->ops->synchronize) e = s->ops->synchronize(s->ctx);
    if (!e) e = s->ops->buffer_download(s->ctx, s->sb.scratch, 0, out, bytes);
    return e;
}

/* One step of the case: inputs, the CPU's (and the device's) run, the checks. */
static void run_step(const backend *b, session *cpu, session *dev, const vcase *c, const fp4rt_step *st,
                     const char *stepname) {
    size_t n = (size_t)c->chunk * c->p.arena_width;
    float *in = malloc(n * 4), *oc = malloc(n * 4), *od = dev ? malloc(n * 4) : NULL, s;
    double *want = malloc(n * sizeof *want), *tol = malloc(n * sizeof *tol);
    uint32_t sb = SENTINEL_BITS;
    memcpy(&s, &sb, 4);
    for (size_t i = 0; i < n; i++) in[i] = s, want[i] = NAN;
    for (int r = 0; r < c->chunk; r++)
        for (int k = 0; k < c->p.n_bufs; k++)
            if (!c->out[k])
                for (int j = 0; j < c->bw[k]; j++)
                    in[(size_t)r * c->p.arena_width + c->bo[k] + j] = rnd_f(c->lo[k], c->hi[k]);
    reference(c, st, in, want, tol);
    fp4rt_status e = session_run(cpu, c, in, st, oc);
    CHECK_MSG(e == FP4RT_OK, "%s %s: cpu: %s", c->name, stepname, fp4rt_last_error());
    if (!e && dev) {
        e = session_run(dev, c, in, st, od);
        CHECK_MSG(e == FP4RT_OK, "%s %s: %s: %s", c->name, stepname, b->name, fp4rt_last_error());
    }
    const float *got = dev ? od : oc;
    if (!e) {
        size_t bad = 0, guard = 0, diff = 0, checked = 0;
        double worst = 0;
        size_t wi = 0;
        for (size_t i = 0; i < n; i++) {
            if (isnan(want[i])) {
                guard += memcmp(&got[i], &in[i], 4) != 0;
                continue;
            }
            checked++;
            double err = fabs((double)got[i] - want[i]);
            if (!(err <= tol[i])) bad++;
            double rel = err / (tol[i] > 0 ? tol[i] : 1e-300);
            if (!(rel <= worst)) worst = rel, wi = i;
            if (dev && b->reg->kind == FP4RT_DEVICE_VULKAN) diff += memcmp(&got[i], &oc[i], 4) != 0;
        }
        int col = (int)(wi % (size_t)c->p.arena_width), wb = 0;
        for (int k = 0; k < c->p.n_bufs; k++)
            if (col >= c->bo[k] && col < c->bo[k] + c->bw[k]) wb = k;
        printf("  %-7s %-14s %-22s %7zu values, worst %.3g of the tolerance (%s)%s\n", dev ? "device" : "cpu", c->name,
               stepname, checked, worst, c->bname[wb], dev && b->reg->kind == FP4RT_DEVICE_VULKAN && !diff ? ", = cpu bits" : "");
        CHECK_MSG(checked > 0, "%s %s: nothing to check", c->name, stepname);
        CHECK_MSG(bad == 0, "%s %s on %s: %zu values outside the tolerance (worst: float %zu, got %.9g want %.9g)",
                  c->name, stepname, b->name, bad, wi, got[wi], want[wi]);
        CHECK_MSG(guard == 0, "%s %s on %s: %zu arena floats outside the outputs changed", c->name, stepname, b->name,
                  guard);
        CHECK_MSG(diff == 0, "%s %s on %s: %zu values differ from the CPU's bits", c->name, stepname, b->name, diff);
    }
    free(in), free(oc), free(od), free(want), free(tol);
}

typedef struct sdef {
    int T, pos0, rope_delta;
    int positions; /* 0: NULL; 1: random (t, h, w) in [0, n_ctx); 2: a vision grid */
    int embeds;    /* 1: override rows (a third, drawn); 2: every row */
    const char *name;
} sdef;

static void run_case(const backend *b, vcase *c, const sdef *steps, int ns) {
    session cpu, dev;
    fp4rt_status e = session_open(&(backend){.name = "cpu"}, c, &cpu);
    CHECK_MSG(e == FP4RT_OK, "%s: cpu: %s", c->name, fp4rt_last_error());
    fp4rt_status ed = e || !b->reg ? e : session_open(b, c, &dev);
    CHECK_MSG(ed == FP4RT_OK, "%s: %s: %s", c->name, b->name, fp4rt_last_error());
    int32_t *tok = malloc((size_t)c->chunk * 4), *pos = malloc((size_t)c->chunk * 12);
    uint8_t *rows = malloc((size_t)c->chunk);
    int hid = c->w.cfg.hidden > 0 ? c->w.cfg.hidden : 1;
    float *emb = malloc((size_t)c->chunk * hid * 4);
    for (int i = 0; !e && !ed && i < ns; i++) {
        const sdef *d = &steps[i];
        fp4rt_step st = {.tokens = tok, .n_tokens = d->T, .pos0 = d->pos0, .rope_delta = d->rope_delta, .no_logits = 1};
        for (int r = 0; r < d->T; r++) {
            tok[r] = c->w.cfg.vocab > 0 ? (int32_t)(rnd_u32() % (uint32_t)c->w.cfg.vocab) : 0;
            rows[r] = (uint8_t)(d->embeds == 2 || rnd_u32() % 3 == 0);
            for (int k = 0; k < 3; k++) pos[3 * r + k] = (int32_t)(rnd_u32() % (uint32_t)c->n_ctx);
            if (d->positions == 2) /* a 6-wide grid of patches: t = 0, h = r / 6, w = r % 6 */
                pos[3 * r] = 0, pos[3 * r + 1] = r / 6, pos[3 * r + 2] = r % 6;
        }
        for (size_t k = 0; k < (size_t)d->T * hid; k++) emb[k] = rnd_f(-3, 3);
        if (d->positions) st.positions = pos;
        if (d->embeds) st.embed_rows = rows, st.input_embeds = emb;
        run_step(b, &cpu, b->reg ? &dev : NULL, c, &st, d->name);
    }
    free(tok), free(pos), free(rows), free(emb);
    if (!e) session_close(&cpu);
    if (!e && !ed && b->reg) session_close(&dev);
}

/* ---- the cases ---- */
static void case_layernorm(const backend *b) {
    vcase *c = malloc(sizeof *c);
    case_init(c, "layernorm", 5);
    /* one group of 37 around 1000 (the mean's rounding is the error), three of
     * 77 at stride 80, one of 1152 (the vision hidden size) */
    static const struct { int n, g, stride; float lo, hi; double atol; } d[] = {
        {37, 1, 37, 999.0f, 1001.0f, 2e-3}, {77, 3, 80, -2.0f, 3.0f, 2e-6}, {1152, 1, 1152, -1.0f, 1.0f, 4e-6}};
    for (int i = 0; i < 3; i++) {
        char nm[48];
        snprintf(nm, sizeof nm, "LAYERNORM %dx%d", d[i].g, d[i].n);
        int w = d[i].g * d[i].stride;
        int x = add_buf(c, "ln x", w, 0, d[i].lo, d[i].hi);
        fp4rt_op *op = add_op(c, FP4RT_OP_LAYERNORM, d[i].atol, 2e-6);
        op->x = view(x, w);
        op->y = view(add_buf(c, nm, w, 1, 0, 0), w);
        op->w = rnd_vec(c, d[i].n, 0.5f, 1.5f);
        op->b = rnd_vec(c, d[i].n, -0.5f, 0.5f);
        op->n_groups = d[i].g;
        op->group_dim = d[i].n;
        op->group_stride = d[i].stride;
        op->eps = 1e-6f;
    }
    /* BIAS: exact (one rounding of x + b) */
    int x = add_buf(c, "bias x", 41, 0, -2, 2);
    fp4rt_op *op = add_op(c, FP4RT_OP_BIAS, 0, 0x1p-24);
    op->x = (fp4rt_view){x, 2, 39};
    op->y = view(add_buf(c, "BIAS 39", 39, 1, 0, 0), 39);
    op->b = rnd_vec(c, 39, -1, 1);
    case_layout(c);
    static const sdef s[] = {{1, 0, 0, 0, 0, "T=1"}, {5, 3, 0, 0, 0, "T=5"}};
    run_case(b, c, s, 2);
    case_free(c);
    free(c);
}

/* GELU: inputs over [-8, 8] and over [-1e3, 1e3] (far tails: 0 and x). erf form
 * to 1e-6 relative (5 ulp measured, tests/base/test_canon_math.c); tanh form to
 * 2e-5 relative plus 1e-30 (e^(-2u) of a rounded large argument below x = -1). */
static void case_gelu(const backend *b) {
    vcase *c = malloc(sizeof *c);
    case_init(c, "gelu", 6);
    static const float range[2] = {8.0f, 1000.0f};
    for (int form = 0; form < 2; form++)
        for (int r = 0; r < 2; r++) {
            char nm[48];
            snprintf(nm, sizeof nm, "GELU %s |x|<%g", form ? "tanh" : "erf", range[r]);
            int x = add_buf(c, "gelu x", 301, 0, -range[r], range[r]);
            fp4rt_op *op = add_op(c, FP4RT_OP_GELU, 1e-30, form ? 2e-5 : 1e-6);
            op->x = view(x, 301);
            op->y = view(add_buf(c, nm, 301, 1, 0, 0), 301);
            op->gelu_tanh = form;
        }
    case_layout(c);
    static const sdef s[] = {{1, 0, 0, 0, 0, "T=1"}, {6, 0, 0, 0, 0, "T=6"}};
    run_case(b, c, s, 2);
    case_free(c);
    free(c);
}

/* ATTENTION_FULL: 2 heads of hd, T = 1, 7, 64, 300 rows. */
static void case_attention_full(const backend *b, int hd) {
    vcase *c = malloc(sizeof *c);
    case_init(c, hd == 64 ? "attn-full-64" : hd == 72 ? "attn-full-72" : "attn-full-80", 300);
    int w = 2 * hd;
    int q = add_buf(c, "q", w, 0, -2, 2), k = add_buf(c, "k", w, 0, -2, 2), v = add_buf(c, "v", w + 5, 0, -1, 1);
    fp4rt_op *op = add_op(c, FP4RT_OP_ATTENTION_FULL, 2e-6, 2e-5);
    op->x = view(q, w);
    op->z = view(k, w);
    op->a = (fp4rt_view){v, 5, w};
    op->y = view(add_buf(c, "ATTENTION_FULL 2 heads", w, 1, 0, 0), w);
    op->n_groups = op->n_kv_heads = 2;
    op->group_dim = hd;
    op->group_stride = hd;
    op->scale = 1.0f / sqrtf((float)hd);
    case_layout(c);
    static const sdef s[] = {{1, 0, 0, 0, 0, "T=1"}, {7, 0, 0, 0, 0, "T=7"}, {64, 0, 0, 0, 0, "T=64"},
                             {300, 0, 0, 0, 0, "T=300"}};
    run_case(b, c, s, 4);
    case_free(c);
    free(c);
}

/* ROPE, one op per layout: text M-RoPE interleaved {2,1,1} (rotary 16 of 32, 3
 * heads at stride 40) and {11,11,10} (rotary 64 of 64), plain 1-D (rotary 16),
 * the vision 2-D rotary (head_dim 72 and 64, 2 heads). Angles reach n_ctx
 * (~100 rad): float positions times float inv_freq, libm cos / sin: 2e-5. */
static fp4rt_op *add_rope(vcase *c, const char *name, int heads, int hd, int stride, int rot, int mode, int s0,
                          int s1, int s2, double theta) {
    int w = heads * stride;
    int x = add_buf(c, "rope x", w, 0, -1, 1);
    fp4rt_op *op = add_op(c, FP4RT_OP_ROPE, 2e-5, 0);
    op->x = view(x, w);
    op->y = view(add_buf(c, name, w, 1, 0, 0), w);
    op->n_groups = heads;
    op->group_dim = hd;
    op->group_stride = stride;
    op->rotary_dim = rot;
    op->rope_theta = theta;
    op->rope_mode = mode;
    op->mrope_section[0] = s0, op->mrope_section[1] = s1, op->mrope_section[2] = s2;
    op->mrope_interleaved = s0 | s1 | s2 ? 1 : 0;
    return op;
}

/* One program per RoPE layout (a device keeps one cos / sin table per program). */
static void rope_case(const backend *b, const char *name, int chunk, int heads, int hd, int stride, int rot, int mode,
                      int s0, int s1, int s2, double theta, const sdef *steps, int ns) {
    vcase *c = malloc(sizeof *c);
    case_init(c, name, chunk);
    c->n_ctx = 100;
    char nm[48];
    snprintf(nm, sizeof nm, "ROPE %dx%d rot %d", heads, hd, rot);
    add_rope(c, nm, heads, hd, stride, rot, mode, s0, s1, s2, theta);
    case_layout(c);
    run_case(b, c, steps, ns);
    case_free(c);
    free(c);
}

static void case_rope(const backend *b) {
    static const sdef s[] = {{1, 7, 0, 0, 0, "T=1 pos0=7"},
                             {9, 20, 0, 1, 0, "T=9 positions"},
                             {5, 40, -13, 0, 0, "T=5 delta -13"},
                             {9, 90, 0, 0, 0, "T=9 pos0=90"},
                             {4, 3, 0, 1, 0, "T=4 positions"},
                             /* decode steps in a row: a device replays the first one's
                              * recording and must read each step's positions afresh */
                             {1, 30, -13, 0, 0, "T=1 pos0=30 delta -13"},
                             {1, 31, -5, 0, 0, "T=1 pos0=31 delta -5"},
                             {1, 32, 0, 1, 0, "T=1 positions"},
                             {1, 33, 0, 0, 0, "T=1 pos0=33"}};
    rope_case(b, "mrope-211-r16", 9, 3, 32, 40, 16, FP4RT_ROPE_TEXT, 2, 1, 1, 1e7, s, 9);
    rope_case(b, "mrope-11-r64", 9, 2, 64, 64, 64, FP4RT_ROPE_TEXT, 11, 11, 10, 1e7, s, 9);
    rope_case(b, "rope-1d-r16", 9, 2, 32, 32, 16, FP4RT_ROPE_TEXT, 0, 0, 0, 1e4, s, 9);
    static const sdef sv[] = {{36, 0, 0, 2, 0, "T=36 6x6 grid"}, {24, 0, 0, 1, 0, "T=24 positions"},
                              {12, 0, 0, 2, 0, "T=12 2x6 grid"}};
    rope_case(b, "rope-vis-72", 36, 2, 72, 72, 72, FP4RT_ROPE_VISION_2D, 0, 0, 0, 1e4, sv, 3);
    rope_case(b, "rope-vis-64", 36, 2, 64, 64, 64, FP4RT_ROPE_VISION_2D, 0, 0, 0, 1e4, sv, 3);
}

/* EMBED with override rows (a third of the rows, drawn per step) and without. */
static void case_embed(const backend *b) {
    vcase *c = malloc(sizeof *c);
    case_init(c, "embed", 7);
    c->w.cfg.hidden = 40;
    c->w.cfg.vocab = 37;
    uint16_t *e = own(c, malloc(37 * 40 * 2));
    for (int i = 0; i < 37 * 40; i++) e[i] = fp4rt_f32_to_bf16(rnd_f(-1, 1));
    c->w.embed = e;
    c->w.embed_dtype = FP4RT_DT_BF16;
    fp4rt_op *op = add_op(c, FP4RT_OP_EMBED, 0, 0);
    op->y = view(add_buf(c, "EMBED hidden=40", 40, 1, 0, 0), 40);
    case_layout(c);
    /* the T = 1 steps in a row: a device replays the first one's recording */
    static const sdef s[] = {{7, 0, 0, 0, 1, "T=7 overrides"}, {7, 0, 0, 0, 0, "T=7 tokens"},
                             {1, 5, 0, 0, 2, "T=1 override"},  {1, 6, 0, 0, 0, "T=1 token"},
                             {1, 7, 0, 0, 2, "T=1 override"},  {6, 9, 0, 0, 1, "T=6 overrides"}};
    run_case(b, c, s, 6);
    case_free(c);
    free(c);
}

/* fp4rt_backend_run refuses bad steps and ops with one line naming the field. */
static void bad_steps(void) {
    vcase *c = malloc(sizeof *c);
    case_init(c, "bad", 4);
    c->n_ctx = 16;
    fp4rt_op *rope = add_rope(c, "rope", 1, 16, 16, 16, FP4RT_ROPE_TEXT, 0, 0, 0, 1e4);
    int q = add_buf(c, "q", 16, 0, -1, 1);
    fp4rt_op *af = add_op(c, FP4RT_OP_ATTENTION_FULL, 0, 0);
    af->x = af->z = af->a = view(q, 16);
    af->y = view(q, 16); /* overlaps q */
    af->n_groups = 1;
    af->group_dim = 16;
    case_layout(c);
    session s;
    fp4rt_status e = session_open(&(backend){.name = "cpu"}, c, &s);
    CHECK(e == FP4RT_OK);
    int32_t tok[4] = {0}, pos[12] = {0};
    float emb[4] = {0};
    uint8_t rows[4] = {1, 0, 0, 0};
    struct {
        const char *what, *needle;
        fp4rt_step st;
        int mode;
    } bad[] = {
        {"embed_rows without input_embeds", "input_embeds", {.tokens = tok, .n_tokens = 2, .embed_rows = rows}, 0},
        {"input_embeds without embed_rows", "embed_rows", {.tokens = tok, .n_tokens = 2, .input_embeds = emb}, 0},
        {"negative rope position", "rotary position -3", {.tokens = tok, .n_tokens = 2, .pos0 = 1, .rope_delta = -4}, 0},
        {"position past n_ctx", "rotary position 16", {.tokens = tok, .n_tokens = 1, .positions = pos}, -1},
        {"rope mode 7", "rope_mode", {.tokens = tok, .n_tokens = 1}, 7},
        {"overlapping attention output", "overlaps", {.tokens = tok, .n_tokens = 1}, 0},
    };
    for (size_t i = 0; !e && i < sizeof bad / sizeof bad[0]; i++) {
        pos[1] = bad[i].mode == -1 ? 16 : 0;
        rope->rope_mode = bad[i].mode > 0 ? bad[i].mode : 0;
        fp4rt_clear_error();
        fp4rt_status r = fp4rt_backend_run(s.ops, s.ctx, &c->p, &s.sb, &bad[i].st);
        const char *msg = fp4rt_last_error();
        printf("  bad step: %-34s -> %s\n", bad[i].what, msg);
        CHECK_MSG(r != FP4RT_OK && strstr(msg, bad[i].needle) && !strchr(msg, '\n'), "%s: status %d, '%s'",
                  bad[i].what, (int)r, msg);
    }
    rope->rope_mode = 0;
    if (!e) session_close(&s);
    case_free(c);
    free(c);
}

static void test_backend(const backend *b) {
    printf("%s\n", b->name);
    case_layernorm(b);
    case_gelu(b);
    case_attention_full(b, 64);
    case_attention_full(b, 72);
    case_attention_full(b, 80);
    case_rope(b);
    case_embed(b);
}

int main(int argc, char **argv) {
    const char *only = argc > 2 && !strcmp(argv[1], "-b") ? argv[2] : NULL;
    fp4rt_numfmt_init();
    int n_dev = 0;
    if (!only || !strcmp(only, "cpu")) {
        test_backend(&(backend){.name = "cpu (against the double reference)"});
        bad_steps();
    }
    for (int r = 0; r < fp4rt_registry_count(); r++) {
        const fp4rt_backend_reg *reg = fp4rt_registry_get(r);
        if (reg->kind == FP4RT_DEVICE_CPU || (only && strcmp(only, reg->name))) continue;
        int nd = fp4rt_registry_device_count(reg);
        for (int i = 0; i < nd; i++) {
            fp4rt_device_desc d;
            if (fp4rt_registry_device(reg, i, &d) || !d.usable) {
                fp4rt_clear_error();
                continue;
            }
            backend b = {.reg = reg, .index = i};
            snprintf(b.name, sizeof b.name, "%s (%.200s): against the reference and the CPU's bits", d.name, d.title);
            test_backend(&b);
            n_dev++;
        }
        if (reg->kind == FP4RT_DEVICE_VULKAN && nd) {
            long msgs = fp4rt_registry_message_count();
            CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
        }
    }
    if (only && strcmp(only, "cpu") && n_dev == 0) {
        printf("skipped: no usable %s device\n", only);
        return 77;
    }
    return test_summary("test_vision_ops");
}
