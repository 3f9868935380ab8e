/* Op-level backend parity (docs/STYLE.md rule 12): every non-CPU backend present
 * (each Vulkan device, each CUDA device) runs small programs of independent ops against the CPU
 * reference backend on seeded random inputs, and each op's output is compared:
 *   - per-op NMSE ceiling, NaN/Inf check on every written lane;
 *   - guard bytes: every arena float that is not in an output buffer (inputs,
 *     the gap columns between buffers, rows past the step's T) starts as a
 *     sentinel or input value and must be bit-identical after the step, on both
 *     backends; lanes of an output buffer that the CPU leaves alone (gaps
 *     between strided groups) must be left alone by the backend too;
 *   - state buffers (KV cache, conv state, GDN state) compared whole after the
 *     step (outputs AND updated state).
 * Ceilings: FP32_NMSE (1e-7) where both sides compute in FP32 on FP32 operands
 * (norms, RoPE, gates, SwiGLU, add, embed, conv1d, gated delta, KV append +
 * attention for F32 / BF16 caches, BF16 / F16 / F32 linears, the logits);
 * FP16_NMSE (5e-4) where FP16 operands or re-quantized activations feed the math
 * (NVFP4 linears: the Vulkan kernel dequantizes weights to FP16 in registers;
 * FP8 / W4A4 linears and the FP8 KV cache: activation quantization, where a
 * one-ulp difference before rounding flips a code).
 * The Vulkan backend prepares (uploads weights for) exactly one program per
 * context, so each program gets a fresh context; each program holds several
 * independent ops (each with its own input and output buffers) rather than one,
 * to keep device creation under the time budget.
 * Any validation-layer message fails the test. Skips a backend (with the reason)
 * when there is no Vulkan device or it is not usable. */
#include "fp4rt.h"
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "runtime/backend/backend.h"
#include "runtime/backend/registry.h"
#include "runtime/base/env.h"
#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"
#include "runtime/engine/model.h"
#ifdef FP4RT_HAVE_VULKAN /* the Vulkan-only cases: fast prefill kernels, dequant */
#include "runtime/backend/vulkan/vk.h"
#define MV_EXACT_TOKENS FP4RT_VK_MV_MAX_T /* Vulkan's bit-exact matrix-vector kernel */
#else
#define MV_EXACT_TOKENS 0
#endif

#include <stdint.h>
#include <strings.h>
#include <time.h>

#define FP32_NMSE 1e-7
#define FP16_NMSE 5e-4
#define GAP 3 /* sentinel columns between arena buffers */
#define SENTINEL_BITS 0x4b5a5a5bu /* ~1.43e7: a value no op produces here */

static double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- seeded random numbers ---- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_f(float lo, float hi) { return lo + (hi - lo) * (float)(rnd_u32() & 0xffffff) / 16777216.0f; }
static float *rnd_vec(size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = rnd_f(lo, hi);
    return v;
}
static float sentinel(void) {
    float f;
    uint32_t b = SENTINEL_BITS;
    memcpy(&f, &b, 4);
    return f;
}

/* ---- a test program under construction ---- */
#define MAX_BUFS 256
#define MAX_OPS 192
typedef struct tbuf {
    char name[48];
    int width;
    int output;         /* compared; else a guarded input */
    int scratch;        /* neither: an op's in-place intermediate a device may fuse away (never compared) */
    float lo, hi;       /* input range */
    double ceiling;     /* outputs */
} tbuf;

typedef struct tcase {
    const char *name;
    fp4rt_weights w;
    fp4rt_layer_weights layer;
    fp4rt_program p;
    fp4rt_op ops[MAX_OPS];
    tbuf bufs[MAX_BUFS];
    int buf_width[MAX_BUFS], buf_offset[MAX_BUFS];
    fp4rt_linear lins[MAX_OPS];
    int n_lins;
    void *owned[4 * MAX_OPS];
    int n_owned;
    /* session */
    int chunk, n_ctx;
    fp4rt_kv_type kv_type;
    double logits_ceiling;
    double kv_ceiling;
    int exact_T; /* steps of up to this many tokens must match the CPU bit for bit (NMSE 0) */
} tcase;

static void *own(tcase *c, void *p) {
    c->owned[c->n_owned++] = p;
    return p;
}

static int add_buf(tcase *c, const char *name, int width, int output, double ceiling) {
    int i = c->p.n_bufs++;
    tbuf *b = &c->bufs[i];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->width = width;
    b->output = output;
    b->lo = -1;
    b->hi = 1;
    b->ceiling = ceiling;
    c->buf_width[i] = width;
    return i;
}

static fp4rt_op *add_op(tcase *c, fp4rt_op_kind k) {
    if (c->p.n_ops >= MAX_OPS) {
        fprintf(stderr, "test_backend_ops: case %s has more than MAX_OPS = %d ops\n", c->name, MAX_OPS);
        exit(1);
    }
    fp4rt_op *op = &c->ops[c->p.n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = k;
    op->layer = 0;
    return op;
}

static fp4rt_view view(int buf, int cols) { return (fp4rt_view){buf, 0, cols}; }

static void case_init(tcase *c, const char *name) {
    memset(c, 0, sizeof *c);
    c->name = name;
    c->w.layers = &c->layer;
    c->w.cfg.n_layers = 1;
    c->layer.k_scale = c->layer.v_scale = 1.0f;
    c->p.weights = &c->w;
    c->p.ops = c->ops;
    c->p.buf_width = c->buf_width;
    c->p.buf_offset = c->buf_offset;
    c->p.hidden_buf = -1;
    c->chunk = 5;
    c->n_ctx = 16;
    c->kv_type = FP4RT_KV_F32;
    c->logits_ceiling = FP32_NMSE;
    c->kv_ceiling = FP32_NMSE;
}

/* Lays the buffers out in the arena with GAP sentinel columns before each. */
static void case_layout(tcase *c) {
    int off = GAP;
    for (int i = 0; i < c->p.n_bufs; i++) {
        c->buf_offset[i] = off;
        off += c->buf_width[i] + GAP;
    }
    c->p.arena_width = off;
}

static void case_free(tcase *c) {
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
}

/* ---- weights ---- */
static fp4rt_linear *make_linear(tcase *c, fp4rt_wfmt fmt, int N, int K) {
    fp4rt_linear *l = &c->lins[c->n_lins++];
    size_t nk = (size_t)N * K;
    l->fmt = fmt;
    l->n_out = N;
    l->n_in = K;
    l->weight_scale = 1.0f;
    l->module = (char *)fp4rt_wfmt_name(fmt);
    switch (fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: {
        uint16_t *w = own(c, malloc(nk * 2));
        for (size_t i = 0; i < nk; i++) {
            float v = rnd_f(-0.5f, 0.5f);
            w[i] = fmt == FP4RT_W_BF16 ? fp4rt_f32_to_bf16(v) : fp4rt_f32_to_f16(v);
            /* F16 subnormals (a driver flushing FP16 denormals would zero them) */
            if (fmt == FP4RT_W_F16 && i % 13 == 5) w[i] = (uint16_t)((rnd_u32() & 0x83ffu) | 1u);
        }
        l->weight = w;
        break;
    }
    case FP4RT_W_F32:
        l->weight = own(c, rnd_vec(nk, -0.5f, 0.5f));
        break;
    case FP4RT_W_FP8: {
        uint8_t *w = own(c, malloc(nk));
        for (size_t i = 0; i < nk; i++) {
            w[i] = (uint8_t)rnd_u32();
            if ((w[i] & 0x7f) == 0x7f) w[i] ^= 1; /* no NaN codes */
        }
        l->weight = w;
        l->weight_scale = 0.003f;
        l->input_scale = 0.01f; /* |x| <= 2: x / input_scale within E4M3 range */
        break;
    }
    default: { /* NVFP4 W4A16 / W4A4 */
        uint8_t *w = own(c, malloc(nk / 2)), *s = own(c, malloc(nk / 16));
        for (size_t i = 0; i < nk / 2; i++) w[i] = (uint8_t)rnd_u32();
        for (size_t i = 0; i < nk / 16; i++) s[i] = (uint8_t)(0x20 + rnd_u32() % 0x30); /* 2^-4 .. ~2^2 */
        for (size_t i = 3; i < nk / 16; i += 7) s[i] = (uint8_t)(1 + rnd_u32() % 7); /* E4M3 subnormals */
        l->weight = w;
        l->block_scale = s;
        l->weight_scale = 0.02f;
        l->input_scale = fmt == FP4RT_W_NVFP4_W4A4 ? 0.002f : 0.0f;
        break;
    }
    }
    fp4rt_linear_set_bytes(l);
    return l;
}

/* ---- backends ---- */
/* A device from the backend registry (registry.h), or the CPU reference (reg NULL). */
typedef struct backend {
    char name[300];
    const char *kind; /* the record's name: "cpu", "vulkan", "cuda" */
    const fp4rt_backend_reg *reg;
    int index;
    int cuda, vulkan; /* the record's kind */
} backend;

static const backend cpu_reference = {.name = "cpu", .kind = "cpu"};

/* A context on b's device (the CPU reference: 2 threads) and its table. */
static fp4rt_status backend_create(const backend *b, const fp4rt_backend_ops **ops, void **ctx) {
    *ops = &fp4rt_backend_cpu;
    if (!b->reg) return fp4rt_backend_cpu.create(2, ctx);
    fp4rt_status st = b->reg->create(b->index, 2, ops, ctx);
    if (!st && !*ops) st = fp4rt_fail(FP4RT_DEVICE, "%s: no backend table", b->name);
    return st;
}

typedef struct session {
    const fp4rt_backend_ops *ops;
    void *ctx;
    fp4rt_session_buffers sb;
    size_t bytes[5]; /* scratch, kv, conv, ssm, logits */
    double last_run_s; /* process CPU time of the last step's run + synchronize */
} session;

/* The perf mode: no parity checks; the bench cases run on each device only,
 * and each step's best process CPU time of BENCH_REPS runs is printed. */
static int bench_mode;
/* -o: only cases whose program has an op of this kind (-1: every case). */
static int op_filter = -1;
#define BENCH_REPS 2

static size_t state_bytes(const tcase *c, int which) {
    const fp4rt_config *f = &c->w.cfg;
    switch (which) {
    case 0: return (size_t)c->chunk * c->p.arena_width * 4;
    case 1: return (size_t)c->p.n_attn_layers * 2 * c->n_ctx * f->n_kv_heads * f->head_dim * fp4rt_kv_elem_size(c->kv_type);
    case 2: return (size_t)c->p.n_gdn_layers * fp4rt_cfg_conv_dim(f) * (f->conv_kernel > 1 ? f->conv_kernel - 1 : 0) * 4;
    case 3: return (size_t)c->p.n_gdn_layers * f->lin_v_heads * f->lin_k_dim * f->lin_v_dim * 4;
    default: return (size_t)c->chunk * (f->vocab > 0 ? f->vocab : 1) * 4;
    }
}

static fp4rt_buffer **sb_slot(fp4rt_session_buffers *sb, int which) {
    fp4rt_buffer **s[5] = {&sb->scratch, &sb->kv, &sb->conv, &sb->ssm, &sb->logits};
    return s[which];
}

static fp4rt_status session_open(const backend *b, const tcase *c, session *s) {
    memset(s, 0, sizeof *s);
    fp4rt_status st = backend_create(b, &s->ops, &s->ctx);
    s->sb.n_ctx = c->n_ctx;
    s->sb.chunk = c->chunk;
    s->sb.kv_type = c->kv_type;
    for (int i = 0; !st && i < 5; i++) {
        s->bytes[i] = state_bytes(c, i);
        size_t n = s->bytes[i] ? s->bytes[i] : 16;
        st = s->ops->buffer_alloc(s->ctx, n, "test buffer", sb_slot(&s->sb, i));
    }
    if (!st && s->ops->prepare) st = s->ops->prepare(s->ctx, &c->p);
    return st;
}

static void session_close(session *s) {
    if (!s->ctx) return;
    for (int i = 0; i < 5; i++)
        if (*sb_slot(&s->sb, i)) s->ops->buffer_free(s->ctx, *sb_slot(&s->sb, i));
    s->ops->destroy(s->ctx);
}

/* Uploads the initial contents, runs the step, downloads everything into out[5]. */
static fp4rt_status session_step(session *s, void *const init[5], const fp4rt_program *p, const fp4rt_step *step,
                                 void *out[5]) {
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && i < 5; i++)
        if (s->bytes[i]) st = s->ops->buffer_upload(s->ctx, *sb_slot(&s->sb, i), 0, init[i], s->bytes[i]);
    double t0 = test_now();
    if (!st) st = fp4rt_backend_run(s->ops, s->ctx, p, &s->sb, step);
    if (!st && s->ops->synchronize) st = s->ops->synchronize(s->ctx);
    s->last_run_s = test_now() - t0;
    for (int i = 0; !st && i < 5; i++)
        if (s->bytes[i]) st = s->ops->buffer_download(s->ctx, *sb_slot(&s->sb, i), 0, out[i], s->bytes[i]);
    return st;
}

/* ---- comparison ---- */
static int same_bits(float a, float b) { return !memcmp(&a, &b, 4); }

typedef struct acc {
    double num, den;
    size_t n, nonfinite;
} acc;

static void acc_add(acc *a, float got, float ref) {
    double d = (double)got - ref;
    a->num += d * d;
    a->den += (double)ref * ref;
    a->n++;
    a->nonfinite += !isfinite(got) || !isfinite(ref);
}

static double acc_nmse(const acc *a) { return a->den > 0 ? a->num / a->den : a->num; }

static void report(const char *bk, const char *cs, const char *what, const char *step, const acc *a, double ceiling) {
    double e = acc_nmse(a);
    printf("  %-8s %-10s %-34s %-16s NMSE %-9.3g (%zu values)\n", bk, cs, what, step, e, a->n);
    CHECK_MSG(a->n > 0, "%s %s %s: nothing written", cs, what, step);
    CHECK_MSG(a->nonfinite == 0, "%s %s %s: %zu non-finite values", cs, what, step, a->nonfinite);
    CHECK_MSG(e <= ceiling, "%s %s %s on %s: NMSE %.3g > %.3g", cs, what, step, bk, e, ceiling);
}

/* Float state buffer (or a BF16 / FP8 KV cache decoded) as floats. */
static float *kv_floats(const void *data, size_t bytes, fp4rt_kv_type t, float scale) {
    size_t n = bytes / fp4rt_kv_elem_size(t);
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++) {
        if (t == FP4RT_KV_F32) {
            memcpy(&f[i], (const char *)data + 4 * i, 4);
        } else if (t == FP4RT_KV_FP8) {
            f[i] = fp4rt_e4m3_to_f32(((const uint8_t *)data)[i]) * scale;
        } else {
            uint16_t h;
            memcpy(&h, (const char *)data + 2 * i, 2);
            f[i] = fp4rt_bf16_to_f32(h);
        }
    }
    return f;
}

static void compare_state(const char *bk, const tcase *c, const char *what, const char *stepname, const float *got,
                          const float *ref, size_t n, double ceiling) {
    acc a = {0};
    for (size_t i = 0; i < n; i++) acc_add(&a, got[i], ref[i]);
    report(bk, c->name, what, stepname, &a, ceiling);
}

/* Runs one step of the case on the CPU and on backend b, compares. */
static void run_step(const backend *b, session *cpu, session *dev, tcase *c, const fp4rt_step *step,
                     const char *stepname) {
    int W = c->p.arena_width, R = c->chunk, T = step->n_tokens;
    size_t na = (size_t)R * W;
    void *init[5], *out_c[5], *out_d[5];
    for (int i = 0; i < 5; i++) {
        size_t n = cpu->bytes[i] ? cpu->bytes[i] : 4;
        init[i] = malloc(n);
        out_c[i] = calloc(1, n);
        out_d[i] = calloc(1, n);
    }
    /* arena: sentinel everywhere, random inputs in input buffers */
    float *arena = init[0], s = sentinel();
    for (size_t i = 0; i < na; i++) arena[i] = s;
    for (int r = 0; r < R; r++)
        for (int k = 0; k < c->p.n_bufs; k++)
            if (!c->bufs[k].output)
                for (int j = 0; j < c->buf_width[k]; j++)
                    arena[(size_t)r * W + c->buf_offset[k] + j] = rnd_f(c->bufs[k].lo, c->bufs[k].hi);
    /* state: small random values (a non-zero carried state and a filled cache) */
    if (cpu->bytes[1]) {
        size_t ne = cpu->bytes[1] / fp4rt_kv_elem_size(c->kv_type);
        for (size_t i = 0; i < ne; i++) {
            float v = rnd_f(-1, 1);
            if (c->kv_type == FP4RT_KV_F32)
                memcpy((char *)init[1] + 4 * i, &v, 4);
            else if (c->kv_type == FP4RT_KV_FP8)
                ((uint8_t *)init[1])[i] = fp4rt_f32_to_e4m3_sat(v / c->layer.k_scale);
            else {
                uint16_t h = fp4rt_f32_to_bf16(v);
                memcpy((char *)init[1] + 2 * i, &h, 2);
            }
        }
    }
    for (int k = 2; k <= 3; k++)
        for (size_t i = 0; i < cpu->bytes[k] / 4; i++) ((float *)init[k])[i] = rnd_f(-0.5f, 0.5f);
    for (size_t i = 0; i < cpu->bytes[4] / 4; i++) ((float *)init[4])[i] = s;

    if (bench_mode) {
        double best = 1e30;
        for (int rep = 0; rep < BENCH_REPS; rep++) {
            fp4rt_status sd = session_step(dev, init, &c->p, step, out_d);
            CHECK_MSG(sd == FP4RT_OK, "%s %s: %s: %s", c->name, stepname, b->name, fp4rt_last_error());
            if (dev->last_run_s < best) best = dev->last_run_s;
        }
        printf("  bench %-8s %-12s %-18s %9.1f ms CPU\n", b->kind, c->name, stepname, best * 1e3);
        for (int i = 0; i < 5; i++) {
            free(init[i]);
            free(out_c[i]);
            free(out_d[i]);
        }
        return;
    }
    fp4rt_status st = session_step(cpu, init, &c->p, step, out_c);
    CHECK_MSG(st == FP4RT_OK, "%s %s: cpu: %s", c->name, stepname, fp4rt_last_error());
    fp4rt_status sd = session_step(dev, init, &c->p, step, out_d);
    CHECK_MSG(sd == FP4RT_OK, "%s %s: %s: %s", c->name, stepname, b->name, fp4rt_last_error());
    if (!st && !sd) {
        const float *a0 = init[0], *ac = out_c[0], *ad = out_d[0];
        /* map every arena column to its buffer (-1: gap) */
        int *owner = malloc((size_t)W * sizeof *owner);
        for (int j = 0; j < W; j++) owner[j] = -1;
        for (int k = 0; k < c->p.n_bufs; k++)
            for (int j = 0; j < c->buf_width[k]; j++) owner[c->buf_offset[k] + j] = k;
        size_t guard_cpu = 0, guard_dev = 0;
        acc *per = calloc((size_t)c->p.n_bufs, sizeof *per);
        for (int r = 0; r < R; r++)
            for (int j = 0; j < W; j++) {
                size_t i = (size_t)r * W + j;
                int k = owner[j];
                if (k >= 0 && c->bufs[k].scratch) continue;
                if (k >= 0 && c->bufs[k].output && r < T) {
                    if (same_bits(ac[i], a0[i]) && same_bits(ad[i], a0[i])) continue; /* untouched lane */
                    acc_add(&per[k], ad[i], ac[i]);
                } else {
                    guard_cpu += !same_bits(ac[i], a0[i]);
                    guard_dev += !same_bits(ad[i], a0[i]);
                }
            }
        CHECK_MSG(guard_cpu == 0, "%s %s: cpu changed %zu guarded arena floats", c->name, stepname, guard_cpu);
        CHECK_MSG(guard_dev == 0, "%s %s: %s changed %zu guarded arena floats", c->name, stepname, b->name,
                  guard_dev);
        for (int k = 0; k < c->p.n_bufs; k++)
            if (c->bufs[k].output)
                report(b->kind, c->name, c->bufs[k].name, stepname, &per[k],
                       /* exact, except W4A4 with a per-row dynamic scale: its post
                        * scale (row scale x weight scale) is rounded before the product */
                       T <= c->exact_T && !strstr(c->bufs[k].name, "-dyn") ? 0.0 : c->bufs[k].ceiling);
        if (c->w.cfg.vocab > 0) {
            /* written rows: all T, only row 0 (the last token) or none; the rest stays sentinel */
            int rows = step->no_logits ? 0 : step->all_logits ? T : 1, V = c->w.cfg.vocab;
            const float *lc = out_c[4], *ld = out_d[4];
            acc a = {0};
            size_t lg_guard = 0;
            for (size_t i = 0; i < (size_t)R * V; i++) {
                if (i < (size_t)rows * V)
                    acc_add(&a, ld[i], lc[i]);
                else
                    lg_guard += !same_bits(ld[i], s) + !same_bits(lc[i], s);
            }
            if (rows) report(b->kind, c->name, "logits", stepname, &a, T <= c->exact_T ? 0.0 : c->logits_ceiling);
            CHECK_MSG(lg_guard == 0, "%s %s: %zu logits past the written rows changed", c->name, stepname, lg_guard);
        }
        if (cpu->bytes[1]) {
            float *kc = kv_floats(out_c[1], cpu->bytes[1], c->kv_type, c->layer.k_scale);
            float *kd = kv_floats(out_d[1], cpu->bytes[1], c->kv_type, c->layer.k_scale);
            char what[64];
            snprintf(what, sizeof what, "KV cache (%s)", fp4rt_kv_type_name(c->kv_type));
            compare_state(b->kind, c, what, stepname, kd, kc, cpu->bytes[1] / fp4rt_kv_elem_size(c->kv_type),
                          c->kv_ceiling);
            free(kc);
            free(kd);
        }
        if (cpu->bytes[2])
            compare_state(b->kind, c, "conv state", stepname, out_d[2], out_c[2], cpu->bytes[2] / 4, FP32_NMSE);
        if (cpu->bytes[3])
            compare_state(b->kind, c, "GDN state", stepname, out_d[3], out_c[3], cpu->bytes[3] / 4, FP32_NMSE);
        free(per);
        free(owner);
    }
    for (int i = 0; i < 5; i++) {
        free(init[i]);
        free(out_c[i]);
        free(out_d[i]);
    }
}

typedef struct step_def {
    int T, pos0, all_logits, no_logits;
    const char *name;
} step_def;

static void run_case(const backend *b, tcase *c, const step_def *steps, int n_steps) {
    int has = op_filter < 0;
    for (int i = 0; i < c->p.n_ops && !has; i++) has = (int)c->ops[i].kind == op_filter;
    if (!has) return;
    session cpu, dev;
    fp4rt_status st = session_open(&cpu_reference, c, &cpu);
    CHECK_MSG(st == FP4RT_OK, "%s: cpu session: %s", c->name, fp4rt_last_error());
    fp4rt_status sd = st ? st : session_open(b, c, &dev);
    CHECK_MSG(sd == FP4RT_OK, "%s: %s session: %s", c->name, b->name, fp4rt_last_error());
    int32_t tokens[16];
    for (int i = 0; i < 16; i++) tokens[i] = c->w.cfg.vocab > 0 ? (int32_t)(rnd_u32() % (uint32_t)c->w.cfg.vocab) : 0;
    for (int i = 0; !st && !sd && i < n_steps; i++) {
        fp4rt_step step = {.tokens = tokens, .n_tokens = steps[i].T, .pos0 = steps[i].pos0,
                           .all_logits = steps[i].all_logits, .no_logits = steps[i].no_logits};
        run_step(b, &cpu, &dev, c, &step, steps[i].name);
    }
    if (!st) session_close(&cpu);
    if (!st && !sd) session_close(&dev);
}

/* ---- the cases ---- */

/* Inputs "x K=..", one per K, values in [-2, 2]. */
static void add_x_bufs(tcase *c, const int *Ks, int nk, int *xbuf) {
    for (int k = 0; k < nk; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "x K=%d", Ks[k]);
        xbuf[k] = add_buf(c, nm, Ks[k], 0, 0);
        c->bufs[xbuf[k]].lo = -2;
        c->bufs[xbuf[k]].hi = 2;
    }
}

/* One LINEAR [N, K] in format fmt from input buffer xb into a new output held
 * to `ceiling`; dyn: W4A4 with the per-row dynamic tensor scale
 * (--fp4-activations on a layer without input_scale). */
static void add_linear(tcase *c, fp4rt_wfmt fmt, int dyn, int N, int K, int xb, double ceiling) {
    char nm[48];
    snprintf(nm, sizeof nm, "LINEAR %s%s N=%d K=%d", fp4rt_wfmt_name(fmt), dyn ? "-dyn" : "", N, K);
    int y = add_buf(c, nm, N, 1, ceiling);
    fp4rt_op *op = add_op(c, FP4RT_OP_LINEAR);
    fp4rt_linear *l = make_linear(c, fmt, N, K);
    if (dyn) {
        l->input_scale = 0;
        l->act_dynamic = 1;
    }
    op->lin = l;
    op->x = view(xb, K);
    op->y = view(y, N);
}

/* LINEAR: every format x N {1, 7, 33, 257} x K {16, 48, 96, 544, 704}; T = 1
 * and 5 (the matrix-vector kernel: 4 rows x 4 tokens per workgroup; rows of
 * 8 / 24 bytes take its scalar path, rows of whole 16-byte pieces its staged
 * uvec4 path, K = 544 NVFP4 has more pieces than lanes per row; with
 * FP4RT_VK_LINEAR=mv BF16 / FP8 / NVFP4 run linear_mvi on the decode layout:
 * 16 rows x 4 tokens per workgroup, blocks of 2 / 4 / 8 groups, x staged 32
 * groups at a time, so K = 16 .. 96 are partial blocks only, 544 (34 groups)
 * full blocks over two x steps with NVFP4's scales unaligned (the per-group
 * path), 704 (44 groups) the aligned full-block path plus NVFP4's partial last
 * block; bit-identical to the CPU: NMSE must be 0) and T = 70 (the
 * tiled kernel: 64 x 64 tiles, 257 rows and 70 tokens cross them). `name`
 * tells the variant (the caller sets FP4RT_VK_NO_SUBGROUP: the shared-memory
 * reduction). */
static void case_linear(const backend *b, const char *name, int with_mm) {
    static const fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_F16, FP4RT_W_F32, FP4RT_W_FP8, FP4RT_W_NVFP4,
                                      FP4RT_W_NVFP4_W4A4};
    static const int Ns[] = {1, 7, 33, 257}, Ks[] = {16, 48, 96, 544, 704};
    tcase *c = malloc(sizeof *c);
    case_init(c, name);
    c->chunk = with_mm ? 70 : 5;
    c->n_ctx = c->chunk;
    /* Vulkan's matrix-vector kernel reproduces the CPU's sums exactly, the
     * whole-rows kernel at any number of tokens */
    c->exact_T = b->cuda ? 0 : !strcmp(name, "linear-rows") ? 1 << 20 : MV_EXACT_TOKENS;
    int xbuf[5];
    add_x_bufs(c, Ks, 5, xbuf);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int k = 0; k < 5; k++)
            for (int n = 0; n < 4; n++)
                add_linear(c, fmts[f], 0, Ns[n], Ks[k], xbuf[k], fmts[f] <= FP4RT_W_F32 ? FP32_NMSE : FP16_NMSE);
    /* W4A4 with the per-row dynamic tensor scale (--fp4-activations on a layer
     * without input_scale) */
    for (int k = 0; k < 3; k++)
        for (int n = 1; n < 4; n++) add_linear(c, FP4RT_W_NVFP4_W4A4, 1, Ns[n], Ks[k], xbuf[k], FP16_NMSE);
    case_layout(c);
    step_def steps[] = {{1, 0, 0, 0, "T=1"}, {5, 0, 0, 0, "T=5"}, {70, 0, 0, 0, "T=70"}};
    run_case(b, c, steps, with_mm ? 3 : 2);
    case_free(c);
    free(c);
}

#ifdef FP4RT_HAVE_VULKAN
/* A SWIGLU and a SIGMOID_GATE, each in place and read only by the next op, a
 * LINEAR (BF16, NVFP4 W4A16, FP8, NVFP4 W4A4; N = 33, K = 704: x staged in two
 * steps of 32 groups, the second partial); the gate over 4 groups of 176 with
 * its operand every 2 x 176 columns (attention's q | gate rows). On Vulkan
 * under FP4RT_VK_LINEAR=mv each pair runs fused (vk_fuse_linear.c; T = 1 and
 * 5): FP32 activations inside linear_mvi's x staging (fp32_fused: the caller
 * selected linear_mvi), quantized ones inside act_quant's reads. The linears'
 * outputs must match the CPU's bit for bit, and every such pair must have been
 * fused unless FP4RT_VK_FUSE=0 (the counter); g and o are scratch (a fused
 * pair never writes them). */
static void case_fuse_linear(const backend *b, int fp32_fused) {
    static const fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_NVFP4, FP4RT_W_FP8, FP4RT_W_NVFP4_W4A4};
    tcase *c = malloc(sizeof *c);
    case_init(c, "fuse-linear");
    c->exact_T = MV_EXACT_TOKENS;
    int K = 704, gd = 176, ng = 4, pairs = 0; /* pairs to be fused per step */
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        /* SWIGLU: g = silu(g) * u, then down(g) */
        int g = add_buf(c, "swiglu g", K, 0, 0), u = add_buf(c, "swiglu u", K, 0, 0);
        c->bufs[g].scratch = 1;
        fp4rt_op *op = add_op(c, FP4RT_OP_SWIGLU);
        op->x = op->y = view(g, K);
        op->z = view(u, K);
        add_linear(c, fmts[f], 0, 33, K, g, FP16_NMSE);
        /* SIGMOID_GATE: o = o * sigmoid(qg[gate columns]), then o_proj(o) */
        int o = add_buf(c, "gate o", K, 0, 0), qg = add_buf(c, "gate qg", 2 * K, 0, 0);
        c->bufs[o].scratch = 1;
        op = add_op(c, FP4RT_OP_SIGMOID_GATE);
        op->x = op->y = view(o, K);
        op->z = (fp4rt_view){qg, gd, 2 * K - gd};
        op->n_groups = ng;
        op->group_dim = op->group_stride = gd;
        op->z_group_stride = 2 * gd;
        add_linear(c, fmts[f], 0, 33, K, o, FP16_NMSE);
        if (fp32_fused || fmts[f] == FP4RT_W_FP8 || fmts[f] == FP4RT_W_NVFP4_W4A4) pairs += 2;
    }
    case_layout(c);
    step_def steps[] = {{1, 0, 0, 0, "T=1"}, {5, 0, 0, 0, "T=5"}};
    long before = fp4rt_vk_pre_linears();
    run_case(b, c, steps, 2);
    long fused = fp4rt_vk_pre_linears() - before;
    int want = fp4rt_env_bool(FP4RT_ENV_VK_FUSE) ? 2 * pairs : 0; /* each step records every pair once */
    CHECK_MSG(fused == want, "fuse-linear: %ld linears recorded with a fused op, want %d", fused, want);
    case_free(c);
    free(c);
}

#else
static void case_fuse_linear(const backend *b, int fp32_fused) {
    (void)b;
    (void)fp32_fused;
}
#endif

/* LINEAR through the tiled matrix-matrix kernel (prefill on GPUs; the FP8 / W4A4
 * linears where the device has neither matrix units nor integer dot
 * products): every format, N {1, 7, 33, 257} x K {16, 48, 96, 544}, T = 70
 * (64 x 64 tiles crossed). */
static void case_linear_mm(const backend *b) {
    static const fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_F16, FP4RT_W_F32, FP4RT_W_NVFP4, FP4RT_W_FP8,
                                      FP4RT_W_NVFP4_W4A4};
    static const int Ns[] = {1, 7, 33, 257}, Ks[] = {16, 48, 96, 544};
    tcase *c = malloc(sizeof *c);
    case_init(c, "linear-mm");
    c->chunk = c->n_ctx = 70;
    int xbuf[4];
    add_x_bufs(c, Ks, 4, xbuf);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int k = 0; k < 4; k++)
            for (int n = 0; n < 4; n++)
                add_linear(c, fmts[f], 0, Ns[n], Ks[k], xbuf[k], fmts[f] == FP4RT_W_NVFP4 ? FP16_NMSE : FP32_NMSE);
    case_layout(c);
    step_def steps[] = {{70, 0, 0, 0, "T=70"}};
    run_case(b, c, steps, 1);
    case_free(c);
    free(c);
}

static int coop_only_mode; /* the "coop" mode */

#ifdef FP4RT_HAVE_VULKAN
/* The standalone NVFP4 -> FP16 dequantization kernel, bit-identical to the CPU:
 * random codes under every non-NaN block scale, 16 x 259 elements (crossing
 * workgroups), and a tail block. */
static void case_dequant(const backend *b) {
    void *ctx = NULL;
    const fp4rt_backend_ops *ops = NULL;
    fp4rt_status st = backend_create(b, &ops, &ctx);
    CHECK_MSG(st == FP4RT_OK, "dequant: %s", fp4rt_last_error());
    if (st) return;
    size_t n = 16 * 259;
    uint8_t *packed = malloc(n / 2), *scales = malloc(n / 16);
    uint16_t *out = malloc(n * 2);
    for (size_t i = 0; i < n / 2; i++) packed[i] = (uint8_t)rnd_u32();
    for (size_t i = 0; i < n / 16; i++) scales[i] = (uint8_t)(i % 127); /* 0x00 .. 0x7e */
    st = fp4rt_vk_dequant_nvfp4(ctx, packed, scales, n, out);
    CHECK_MSG(st == FP4RT_OK, "dequant: %s", fp4rt_last_error());
    size_t bad = 0;
    for (size_t i = 0; !st && i < n; i++) {
        uint8_t code = (packed[i / 2] >> (4 * (i & 1))) & 15;
        bad += out[i] != fp4rt_f32_to_f16(fp4rt_e2m1_to_f32(code) * fp4rt_e4m3_to_f32(scales[i / 16]));
    }
    printf("  %-8s %-10s %-34s %zu of %zu values differ\n", b->kind, "dequant", "NVFP4 -> FP16", bad, n);
    CHECK_MSG(bad == 0, "dequant: %zu of %zu values differ from the CPU", bad, n);
    ops->destroy(ctx);
    free(packed);
    free(scales);
    free(out);
}


/* LINEAR through a fast prefill kernel. i8 = 0: the cooperative-matrix kernel
 * (linear_coop.glsl: FP8 / W4A4, whose FP16 operands are exact, on the matrix
 * units; the caller sets FP4RT_VK_COOPMAT=emu on devices without them): FP8,
 * W4A4 and W4A4 with the dynamic per-row scale. i8 = 1: the integer-dot kernel
 * (linear_i8.comp, W4A4 and W4A4-dyn; FP4RT_VK_IDOT=1 set by the caller).
 * N {1, 7, 33, 257} x K {16, 48, 96, 544} (FP8 also 50: unaligned rows, a
 * partial group), T = 70 (32 x 32 / 64 x 64 tiles, 32-wide K stages crossed;
 * K = 48 and 16 end inside a stage) and T = 5 (the matrix-vector kernel).
 * Only the FP32 summation order differs from the CPU: the FP32 ceiling. The
 * kernel must have run (dispatch counters). */
static void case_linear_fast(const backend *b, int i8) {
    const char *want = getenv("FP4RT_VK_COOPMAT");
    fp4rt_vk_device_desc d;
    if (!i8 && want && (!strcmp(want, "nv") || !strcmp(want, "khr")) && !fp4rt_vk_device_get(b->index, &d) &&
        !(d.coop_kinds >> (!strcmp(want, "nv") ? FP4RT_VK_COOP_NV : FP4RT_VK_COOP_KHR) & 1)) {
        printf("%s: linear-coop: no %s cooperative matrix on this device\n", coop_only_mode ? "skipped" : "note",
               want);
        return;
    }
    static const fp4rt_wfmt fmts[] = {FP4RT_W_FP8, FP4RT_W_NVFP4_W4A4, FP4RT_W_NVFP4_W4A4};
    static const int Ns[] = {1, 7, 33, 257}, Ks[] = {16, 48, 96, 544, 50};
    tcase *c = malloc(sizeof *c);
    case_init(c, i8 ? "linear-i8" : "linear-coop");
    c->chunk = c->n_ctx = 70;
    int xbuf[5];
    add_x_bufs(c, Ks, 5, xbuf);
    int n_lin = 0;
    for (size_t f = i8 ? 1 : 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int k = 0; k < (f == 0 ? 5 : 4); k++) /* FP8 also K = 50: rows not 4-byte aligned */
            for (int n = 0; n < 4; n++, n_lin++) add_linear(c, fmts[f], f == 2, Ns[n], Ks[k], xbuf[k], FP32_NMSE);
    case_layout(c);
    long before = i8 ? fp4rt_vk_i8_dispatches() : fp4rt_vk_coop_dispatches();
    step_def steps[] = {{70, 0, 0, 0, "T=70"}, {5, 0, 0, 0, "T=5"}};
    run_case(b, c, steps, 2);
    long ran = (i8 ? fp4rt_vk_i8_dispatches() : fp4rt_vk_coop_dispatches()) - before;
    CHECK_MSG(ran >= n_lin, "%s: %ld dispatches of the kernel for %d prefill linears", c->name, ran, n_lin);
    case_free(c);
    free(c);
}

/* The fast prefill kernels: linear_coop on the device's matrix units, or the
 * emulated kernel where it has none (unless the caller's FP4RT_VK_COOPMAT says
 * which); linear_i8 wherever the device has integer dot products (forced with
 * FP4RT_VK_IDOT=1, matrix units off so W4A4 reaches it). */
static void run_fast_cases(const backend *b) {
    fp4rt_vk_device_desc d;
    const char *kind = getenv("FP4RT_VK_COOPMAT");
    int have = !fp4rt_vk_device_get(b->index, &d);
    if (!kind && have && !d.coopmat) test_set_knob("FP4RT_VK_COOPMAT", "emu");
    case_linear_fast(b, 0);
    if (!kind) test_set_knob("FP4RT_VK_COOPMAT", NULL);
    if (have && d.idot) {
        test_set_knob("FP4RT_VK_IDOT", "1");
        test_set_knob("FP4RT_VK_COOPMAT", "0");
        case_linear_fast(b, 1);
        test_set_knob("FP4RT_VK_IDOT", NULL);
        if (kind)
            test_set_knob("FP4RT_VK_COOPMAT", kind);
        else
            test_set_knob("FP4RT_VK_COOPMAT", NULL);
    } else
        printf("note: linear-i8: no integer dot product on this device\n");
}
#else
/* This build lists no Vulkan device, so these never run. */
static void case_dequant(const backend *b) { (void)b; }
static void run_fast_cases(const backend *b) { (void)b; }
#endif

/* LINEAR bound in pieces: with the binding limits lowered to 1 KiB
 * (FP4RT_VK_PIECE_RANGE for weights, FP4RT_VK_MAX_ACT_RANGE for activations, set
 * by the caller) every weight, activation window and the logits [T, vocab] are
 * cut into row and token pieces. Every format, N = 70,
 * K = 64 (uvec4 path) and the logits LINEAR (vocab 37, lm_head in `head_fmt`),
 * T = 1, 6 and 20 (both kernels), all logits and last-token logits. */
static void case_linear_pieces(const backend *b, fp4rt_wfmt head_fmt, const char *name) {
    static const fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_F16, FP4RT_W_F32, FP4RT_W_FP8, FP4RT_W_NVFP4,
                                      FP4RT_W_NVFP4_W4A4};
    tcase *c = malloc(sizeof *c);
    case_init(c, name);
    c->chunk = c->n_ctx = 20;
    c->exact_T = b->cuda ? 0 : MV_EXACT_TOKENS;
    c->w.cfg.vocab = 37; /* no embedding table (hidden stays 0): only the logits LINEAR */
    int x = add_buf(c, "x K=64", 64, 0, 0);
    c->bufs[x].lo = -2;
    c->bufs[x].hi = 2;
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        char nm[48];
        snprintf(nm, sizeof nm, "LINEAR %s N=70 K=64 pieces", fp4rt_wfmt_name(fmts[f]));
        int y = add_buf(c, nm, 70, 1, fmts[f] <= FP4RT_W_F32 ? FP32_NMSE : FP16_NMSE);
        fp4rt_op *op = add_op(c, FP4RT_OP_LINEAR);
        op->lin = make_linear(c, fmts[f], 70, 64);
        op->x = view(x, 64);
        op->y = view(y, 70);
    }
    fp4rt_linear *head = make_linear(c, head_fmt, 37, 64);
    c->w.lm_head = *head;
    c->logits_ceiling = head_fmt <= FP4RT_W_F32 ? FP32_NMSE : FP16_NMSE;
    fp4rt_op *op = add_op(c, FP4RT_OP_LINEAR);
    op->lin = &c->w.lm_head;
    op->x = view(x, 64);
    op->y = (fp4rt_view){FP4RT_BUF_LOGITS, 0, 37};
    op->is_logits = 1;
    case_layout(c);
    step_def steps[] = {{1, 0, 0, 0, "T=1"}, {6, 0, 1, 0, "T=6 all"}, {20, 0, 1, 0, "T=20 all"},
                        {20, 0, 0, 0, "T=20 last"}};
    run_case(b, c, steps, 4);
    case_free(c);
    free(c);
}

/* The measure_bandwidth slot (CUDA): a device copy figure, read + written
 * bytes per second, between 10 GB/s and 100 TB/s (any GPU the module runs on
 * lies in between; 0 or an absurd figure means a broken timing). */
static void case_bandwidth(const backend *b) {
    void *ctx = NULL;
    const fp4rt_backend_ops *ops = NULL;
    fp4rt_status st = backend_create(b, &ops, &ctx);
    CHECK_MSG(st == FP4RT_OK, "bandwidth: %s", fp4rt_last_error());
    if (st) return;
    double bw = 0;
    CHECK_MSG(ops->measure_bandwidth != NULL, "bandwidth: %s has no measure_bandwidth", b->kind);
    if (ops->measure_bandwidth) {
        st = ops->measure_bandwidth(ctx, &bw);
        CHECK_MSG(st == FP4RT_OK, "bandwidth: %s", fp4rt_last_error());
        printf("  %-8s %-10s %-34s %.1f GB/s\n", b->kind, "bandwidth", "device copy, read + written", bw / 1e9);
        CHECK_MSG(st || (bw > 1e10 && bw < 1e14), "bandwidth: %g bytes/s is implausible", bw);
    }
    ops->destroy(ctx);
}

/* Norms, RoPE, gates, SwiGLU, add, embed and the logits LINEAR. */
static void case_misc(const backend *b) {
    tcase *c = malloc(sizeof *c);
    case_init(c, "misc");
    fp4rt_config *f = &c->w.cfg;
    f->hidden = 40;
    f->vocab = 37;
    c->n_ctx = 16;
    /* embedding, BF16 [vocab, hidden]; the tied lm_head reads it */
    uint16_t *emb = own(c, malloc((size_t)f->vocab * f->hidden * 2));
    for (int i = 0; i < f->vocab * f->hidden; i++) emb[i] = fp4rt_f32_to_bf16(rnd_f(-1, 1));
    c->w.embed = emb;
    c->w.embed_dtype = FP4RT_DT_BF16;
    c->w.lm_head = (fp4rt_linear){.module = "lm_head", .fmt = FP4RT_W_BF16, .n_out = f->vocab, .n_in = f->hidden,
                                  .weight = emb, .weight_scale = 1.0f};
    fp4rt_linear_set_bytes(&c->w.lm_head);
    fp4rt_op *op = add_op(c, FP4RT_OP_EMBED);
    op->y = view(add_buf(c, "EMBED hidden=40", 40, 1, FP32_NMSE), 40);

    /* RMSNORM: 3 groups of 20, stride 24 */
    int x = add_buf(c, "rmsnorm x", 72, 0, 0);
    op = add_op(c, FP4RT_OP_RMSNORM);
    op->x = view(x, 72);
    op->y = view(add_buf(c, "RMSNORM 3x20 stride 24", 72, 1, FP32_NMSE), 72);
    op->w = own(c, rnd_vec(20, 0.5f, 1.5f));
    op->n_groups = 3;
    op->group_dim = 20;
    op->group_stride = 24;
    op->eps = 1e-6f;

    /* GATED_RMSNORM: 4 groups of 12 (the GDN output norm) */
    x = add_buf(c, "gated x", 48, 0, 0);
    int z = add_buf(c, "gated z", 48, 0, 0);
    op = add_op(c, FP4RT_OP_GATED_RMSNORM);
    op->x = view(x, 48);
    op->z = view(z, 48);
    op->y = view(add_buf(c, "GATED_RMSNORM 4x12", 48, 1, FP32_NMSE), 48);
    op->w = own(c, rnd_vec(12, 0.5f, 1.5f));
    op->n_groups = 4;
    op->group_dim = 12;
    op->group_stride = 12;
    op->eps = 1e-6f;

    /* L2NORM: 4 groups of 16 */
    x = add_buf(c, "l2 x", 64, 0, 0);
    op = add_op(c, FP4RT_OP_L2NORM);
    op->x = view(x, 64);
    op->y = view(add_buf(c, "L2NORM 4x16 scale 0.25", 64, 1, FP32_NMSE), 64);
    op->n_groups = 4;
    op->group_dim = 16;
    op->group_stride = 16;
    op->eps = 1e-6f;
    op->scale = 0.25f;

    /* ROPE: 3 heads of 32 at stride 40, rotary_dim 16 */
    x = add_buf(c, "rope x", 120, 0, 0);
    op = add_op(c, FP4RT_OP_ROPE);
    op->x = view(x, 120);
    op->y = view(add_buf(c, "ROPE 3x32 stride 40 rot 16", 120, 1, FP32_NMSE), 120);
    op->n_groups = 3;
    op->group_dim = 32;
    op->group_stride = 40;
    op->rotary_dim = 16;
    op->rope_theta = 1e7;

    /* SIGMOID_GATE: 3 groups of 20, x stride 24, z stride 40 */
    x = add_buf(c, "gate x", 72, 0, 0);
    z = add_buf(c, "gate z", 120, 0, 0);
    op = add_op(c, FP4RT_OP_SIGMOID_GATE);
    op->x = view(x, 72);
    op->z = view(z, 120);
    op->y = view(add_buf(c, "SIGMOID_GATE 3x20 str 24/40", 72, 1, FP32_NMSE), 72);
    op->n_groups = 3;
    op->group_dim = 20;
    op->group_stride = 24;
    op->z_group_stride = 40;

    /* SWIGLU and ADD over 37 lanes, on column sub-ranges of their buffers */
    x = add_buf(c, "swiglu x", 40, 0, 0);
    z = add_buf(c, "swiglu z", 40, 0, 0);
    op = add_op(c, FP4RT_OP_SWIGLU);
    op->x = (fp4rt_view){x, 2, 37};
    op->z = (fp4rt_view){z, 1, 37};
    op->y = view(add_buf(c, "SWIGLU 37", 37, 1, FP32_NMSE), 37);
    x = add_buf(c, "add x", 37, 0, 0);
    z = add_buf(c, "add z", 37, 0, 0);
    op = add_op(c, FP4RT_OP_ADD);
    op->x = view(x, 37);
    op->z = view(z, 37);
    op->y = view(add_buf(c, "ADD 37", 37, 1, FP32_NMSE), 37);

    /* ADD, then RMSNORM of its output (one group of 40): on Vulkan one fused
     * dispatch (norm.comp mode 3); both outputs checked. A RMSNORM of 2 groups
     * after an ADD stays two dispatches. */
    x = add_buf(c, "add+norm x", 40, 0, 0);
    z = add_buf(c, "add+norm z", 40, 0, 0);
    int sum = add_buf(c, "ADD+RMSNORM sum", 40, 1, FP32_NMSE);
    op = add_op(c, FP4RT_OP_ADD);
    op->x = view(x, 40);
    op->z = view(z, 40);
    op->y = view(sum, 40);
    op = add_op(c, FP4RT_OP_RMSNORM);
    op->x = view(sum, 40);
    op->y = view(add_buf(c, "ADD+RMSNORM 1x40", 40, 1, FP32_NMSE), 40);
    op->w = own(c, rnd_vec(40, 0.5f, 1.5f));
    op->n_groups = 1;
    op->group_dim = 40;
    op->eps = 1e-6f;

    /* logits LINEAR (BF16 tied head, vocab 37) */
    x = add_buf(c, "logits x", 40, 0, 0);
    op = add_op(c, FP4RT_OP_LINEAR);
    op->lin = &c->w.lm_head;
    op->x = view(x, 40);
    op->y = (fp4rt_view){FP4RT_BUF_LOGITS, 0, f->vocab};
    op->is_logits = 1;
    case_layout(c);
    step_def steps[] = {{1, 7, 0, 0, "T=1 pos0=7"},
                        {5, 3, 1, 0, "T=5 pos0=3 all"},
                        {5, 3, 0, 0, "T=5 pos0=3 last"},
                        {4, 2, 0, 1, "T=4 no logits"}};
    run_case(b, c, steps, 4);
    case_free(c);
    free(c);
}

/* CONV1D_SILU and GATED_DELTA with a non-zero carried state: kh key heads, vh
 * value heads of dk x dv, the steps given (T = 1: the recurrent form; T > 1: the
 * CPU's chunked form, chunks of FP4RT_GDN_CHUNK tokens, against Vulkan's
 * chunked form, or its recurrent form under FP4RT_VK_GDN_CHUNKED=0). */
static void case_gdn(const backend *b, const char *name, int kh, int vh, int dk, int dv, int chunk,
                     const step_def *steps, int n_steps) {
    tcase *c = malloc(sizeof *c);
    case_init(c, name);
    fp4rt_config *f = &c->w.cfg;
    f->lin_k_heads = kh;
    f->lin_v_heads = vh;
    f->lin_k_dim = dk;
    f->lin_v_dim = dv;
    f->conv_kernel = 4;
    c->chunk = chunk;
    c->n_ctx = chunk + 16;
    c->p.n_gdn_layers = 1;
    int C = fp4rt_cfg_conv_dim(f), vd = fp4rt_cfg_value_dim(f);
    c->layer.dt_bias = own(c, rnd_vec((size_t)vh, -1, 1));
    c->layer.neg_A = own(c, rnd_vec((size_t)vh, -2, -0.1f));
    char what[2][48];
    snprintf(what[0], sizeof what[0], "CONV1D_SILU C=%d K=4", C);
    snprintf(what[1], sizeof what[1], "GATED_DELTA %dk/%dv dk%d dv%d", kh, vh, dk, dv);

    int x = add_buf(c, "conv x", C, 0, 0);
    fp4rt_op *op = add_op(c, FP4RT_OP_CONV1D_SILU);
    op->x = view(x, C);
    op->y = view(add_buf(c, what[0], C, 1, FP32_NMSE), C);
    op->w = own(c, rnd_vec((size_t)C * 4, -0.5f, 0.5f));
    op->group_dim = 4;
    op->slot = 0;

    /* q, k scaled down as after the L2 norm (|q|, |k| ~ 0.5) */
    float qk = 0.8f / sqrtf((float)dk);
    x = add_buf(c, "gdn qkv", C, 0, 0);
    c->bufs[x].lo = -qk;
    c->bufs[x].hi = qk;
    int zb = add_buf(c, "gdn b", vh, 0, 0), ab = add_buf(c, "gdn a", vh, 0, 0);
    op = add_op(c, FP4RT_OP_GATED_DELTA);
    op->x = view(x, C);
    op->z = view(zb, vh);
    op->a = view(ab, vh);
    op->y = view(add_buf(c, what[1], vd, 1, FP32_NMSE), vd);
    op->slot = 0;
    case_layout(c);
    run_case(b, c, steps, n_steps);
    case_free(c);
    free(c);
}

/* KV_APPEND then ATTENTION: nh query heads over nkv KV heads of hd, a random
 * filled cache of n_ctx positions, the steps given. max_range > 0 lowers the
 * Vulkan binding limit (FP4RT_VK_MAX_RANGE) so the cache is bound in pieces. */
typedef struct attn_def {
    const char *name;
    fp4rt_kv_type kv;
    int nh, nkv, hd, gate, chunk, n_ctx;
    const char *max_range;
} attn_def;

static void case_attention(const backend *b, const attn_def *d, const step_def *steps, int n_steps) {
    tcase *c = malloc(sizeof *c);
    case_init(c, d->name);
    fp4rt_config *f = &c->w.cfg;
    int nh = d->nh, nkv = d->nkv, hd = d->hd, qs = d->gate ? 2 * hd : hd;
    f->n_heads = nh;
    f->n_kv_heads = nkv;
    f->head_dim = hd;
    c->chunk = d->chunk;
    c->n_ctx = d->n_ctx;
    c->p.n_attn_layers = 1;
    c->kv_type = d->kv;
    if (d->kv == FP4RT_KV_FP8) {
        c->layer.k_scale = c->layer.v_scale = 0.01f;
        c->kv_ceiling = FP16_NMSE;
    }
    char what[48];
    snprintf(what, sizeof what, "ATTENTION %dq/%dkv hd%d", nh, nkv, hd);
    int kb = add_buf(c, "k", nkv * hd, 0, 0), vb = add_buf(c, "v", nkv * hd, 0, 0);
    int qb = add_buf(c, "q|gate", nh * qs, 0, 0);
    fp4rt_op *op = add_op(c, FP4RT_OP_KV_APPEND);
    op->x = view(kb, nkv * hd);
    op->z = view(vb, nkv * hd);
    op->n_groups = nkv;
    op->group_dim = hd;
    op->slot = 0;
    op = add_op(c, FP4RT_OP_ATTENTION);
    op->x = view(qb, nh * qs);
    op->y = view(add_buf(c, what, nh * hd, 1, d->kv == FP4RT_KV_FP8 ? FP16_NMSE : FP32_NMSE), nh * hd);
    op->n_groups = nh;
    op->group_dim = hd;
    op->group_stride = qs; /* with a gate: query and gate interleaved per head */
    op->n_kv_heads = nkv;
    op->scale = 1.0f / sqrtf((float)hd);
    op->slot = 0;
    case_layout(c);
    if (d->max_range) test_set_knob("FP4RT_VK_MAX_RANGE", d->max_range);
    run_case(b, c, steps, n_steps);
    if (d->max_range) test_set_knob("FP4RT_VK_MAX_RANGE", NULL);
    case_free(c);
    free(c);
}

static void cases_attention(const backend *b) {
    /* one piece, one split: the direct path; GQA 3 */
    static const step_def small[] = {{1, 9, 0, 0, "T=1 pos0=9"}, {4, 5, 0, 0, "T=4 pos0=5"}};
    static const attn_def d_small[] = {{"attn-f32", FP4RT_KV_F32, 6, 2, 16, 1, 4, 16, NULL},
                                       {"attn-bf16", FP4RT_KV_BF16, 6, 2, 16, 1, 4, 16, NULL},
                                       {"attn-fp8", FP4RT_KV_FP8, 6, 2, 16, 1, 4, 16, NULL}};
    for (int i = 0; i < 3; i++) case_attention(b, &d_small[i], small, 2);
    /* decode split over the context (700 positions: 3 splits) and a merge; GQA 4,
     * head_dim 36; prefill rows crossing KV tiles and query blocks */
    static const step_def split[] = {{1, 0, 0, 0, "T=1 pos0=0"},
                                     {1, 300, 0, 0, "T=1 pos0=300"},
                                     {1, 699, 0, 0, "T=1 pos0=699"},
                                     {19, 283, 0, 0, "T=19 pos0=283"}};
    static const attn_def d_split = {"attn-split", FP4RT_KV_BF16, 8, 2, 36, 0, 19, 700, NULL};
    case_attention(b, &d_split, split, 4);
    /* the cache in pieces under a 48 KiB binding limit (the arena, 8 rows, stays
     * under it): F32 9 pieces of 112 positions, BF16 4 of 240, FP8 2 of 496, the
     * softmax state carried from piece to piece; decode in 4 splits that straddle
     * pieces; GQA 5 (query blocks of 8 straddle rows); prefill rows straddling a
     * piece boundary */
    static const step_def pieces[] = {{1, 0, 0, 0, "T=1 pos0=0"},     {1, 240, 0, 0, "T=1 pos0=240"},
                                      {1, 899, 0, 0, "T=1 pos0=899"}, {8, 108, 0, 0, "T=8 pos0=108"},
                                      {8, 236, 0, 0, "T=8 pos0=236"}, {8, 492, 0, 0, "T=8 pos0=492"}};
    static const attn_def d_pieces[] = {{"attn-pc-f32", FP4RT_KV_F32, 10, 2, 48, 0, 8, 900, "49152"},
                                        {"attn-pc-bf16", FP4RT_KV_BF16, 10, 2, 48, 0, 8, 900, "49152"},
                                        {"attn-pc-fp8", FP4RT_KV_FP8, 10, 2, 48, 0, 8, 900, "49152"}};
    for (int i = 0; i < 3; i++) case_attention(b, &d_pieces[i], pieces, 6);
    /* prefill rows over 6 000 positions (on lavapipe one dispatch over all of
     * them ran past gallivm's 65 535 loop iterations per invocation: software
     * devices bind the cache in pieces of 256 positions) */
    static const step_def lng[] = {{8, 6000, 0, 0, "T=8 pos0=6000"}, {1, 6390, 0, 0, "T=1 pos0=6390"}};
    static const attn_def d_long = {"attn-long", FP4RT_KV_BF16, 4, 2, 64, 0, 8, 6400, NULL};
    case_attention(b, &d_long, lng, 2);
    /* past 32 decode splits (the former cap): n_ctx 12000 gives 47 */
    static const step_def vlng[] = {{1, 11990, 0, 0, "T=1 pos0=11990"}};
    static const attn_def d_vlong = {"attn-47-splits", FP4RT_KV_BF16, 4, 2, 64, 0, 8, 12000, NULL};
    case_attention(b, &d_vlong, vlng, 1);
}

/* The perf mode's cases, timed on realistic shapes (-o picks one family):
 * the LINEARs of Qwen3.5-0.8B's MLP (NVFP4, 1024 -> 3584 and back) at decode
 * and prefill of 128 rows; its GDN (16 / 16 heads of 128 x 128) at prefill
 * T = 128 and decode; its attention (8 / 2 heads of 256, BF16 cache of 2048)
 * at decode and prefill of 128 rows. */
static void bench_ops(const backend *b) {
    static const int Ks[] = {1024, 3584};
    tcase *c = malloc(sizeof *c);
    case_init(c, "bench-linear");
    c->chunk = c->n_ctx = 128;
    int xbuf[2];
    add_x_bufs(c, Ks, 2, xbuf);
    add_linear(c, FP4RT_W_NVFP4, 0, 3584, 1024, xbuf[0], FP16_NMSE);
    add_linear(c, FP4RT_W_NVFP4, 0, 1024, 3584, xbuf[1], FP16_NMSE);
    case_layout(c);
    static const step_def ls[] = {{1, 0, 0, 0, "linear T=1"}, {128, 0, 0, 0, "linear T=128"}};
    run_case(b, c, ls, 2);
    case_free(c);
    free(c);
    static const step_def gs[] = {{1, 100, 0, 0, "gdn T=1"}, {128, 0, 0, 0, "gdn T=128"}};
    case_gdn(b, "bench-gdn", 16, 16, 128, 128, 128, gs, 2);
    static const step_def as[] = {{1, 2000, 0, 0, "attn T=1 @2000"}, {1, 500, 0, 0, "attn T=1 @500"},
                                  {128, 0, 0, 0, "attn T=128 @0"}, {128, 1024, 0, 0, "attn T=128 @1024"}};
    static const attn_def ad = {"bench-attn", FP4RT_KV_BF16, 8, 2, 256, 1, 128, 2048, NULL};
    case_attention(b, &ad, as, 4);
}

/* The parity cases on one device. */
static void test_ops(const backend *b) {
    printf("%s vs cpu\n", b->name);
    if (coop_only_mode) {
        if (b->vulkan && (op_filter < 0 || op_filter == FP4RT_OP_LINEAR)) run_fast_cases(b);
        return;
    }
    case_linear(b, "linear", 1);
    if (b->vulkan) {
        /* Vulkan: both decode layouts whatever the device's default (whole rows
         * per invocation on software devices, linear_mv elsewhere), the tiled
         * matrix-matrix kernel (only without whole rows), the shared-memory
         * fallback, pieces, the dequant kernel */
        test_set_knob("FP4RT_VK_LINEAR", "rows");
        case_linear(b, "linear-rows", 1);
        /* the whole-rows kernels stage nothing: only act_quant fuses */
        if (op_filter < 0 || op_filter == FP4RT_OP_LINEAR) case_fuse_linear(b, 0);
        test_set_knob("FP4RT_VK_LINEAR", "mv");
        case_linear(b, "linear-mv", 0);
        if (op_filter < 0 || op_filter == FP4RT_OP_LINEAR) case_fuse_linear(b, 1);
        case_linear_mm(b);
        test_set_knob("FP4RT_VK_NO_SUBGROUP", "1");
        case_linear(b, "linear-shm", 0);
        test_set_knob("FP4RT_VK_NO_SUBGROUP", NULL);
        test_set_knob("FP4RT_VK_LINEAR", NULL);
        test_set_knob("FP4RT_VK_PIECE_RANGE", "1024");
        test_set_knob("FP4RT_VK_MAX_ACT_RANGE", "1024");
        case_linear_pieces(b, FP4RT_W_BF16, "pieces-bf");
        case_linear_pieces(b, FP4RT_W_NVFP4, "pieces-nv");
        test_set_knob("FP4RT_VK_LINEAR", "mv"); /* the decode layout in pieces */
        case_linear_pieces(b, FP4RT_W_BF16, "pieces-bf-mv");
        case_linear_pieces(b, FP4RT_W_NVFP4, "pieces-nv-mv");
        test_set_knob("FP4RT_VK_LINEAR", NULL);
        test_set_knob("FP4RT_VK_PIECE_RANGE", NULL);
        test_set_knob("FP4RT_VK_MAX_ACT_RANGE", NULL);
        /* the dequant kernel, and the device's matrix units, else the emulated
         * kernel (the dispatch counters need the LINEARs to run) */
        if (op_filter < 0 || op_filter == FP4RT_OP_LINEAR) {
            case_dequant(b);
            run_fast_cases(b);
            test_set_knob("FP4RT_VK_LINEAR", "mv"); /* the same on weights in the decode layout */
            run_fast_cases(b);
            test_set_knob("FP4RT_VK_LINEAR", NULL);
        }
    } else
        case_linear_mm(b);
    if (b->cuda && op_filter < 0) case_bandwidth(b);
    case_misc(b);
    static const step_def gs[] = {{1, 4, 0, 0, "T=1"}, {3, 4, 0, 0, "T=3"}};
    case_gdn(b, "gdn", 2, 6, 16, 12, 3, gs, 2);
    /* chunk boundaries: T = 64 (one full chunk), 150 (64 + 64 + 22); dv = 40
     * crosses the 16- and 32-column blocks of the kernels; GQA 3 */
    static const step_def gl[] = {{1, 7, 0, 0, "T=1"}, {64, 0, 0, 0, "T=64"}, {150, 9, 0, 0, "T=150"}};
    case_gdn(b, "gdn-long", 1, 3, 24, 40, 150, gl, 3);
    /* the real key head size 128 over 4 chunks (T = 256: on lavapipe one
     * dispatch for all chunks ran past gallivm's 65 535 loop iterations per
     * invocation and returned garbage) */
    static const step_def g4[] = {{256, 0, 0, 0, "T=256"}, {1, 3, 0, 0, "T=1"}};
    case_gdn(b, "gdn-dk128", 1, 1, 128, 32, 256, g4, 2);
    /* the same with prefill in the recurrent form (FP4RT_VK_GDN_CHUNKED=0;
     * a device short of shared memory uses it) */
    test_set_knob("FP4RT_VK_GDN_CHUNKED", "0");
    case_gdn(b, "gdn-rec", 2, 6, 16, 12, 3, gs, 2);
    case_gdn(b, "gdn-rec", 1, 3, 24, 40, 150, gl, 3);
    case_gdn(b, "gdn-rec-dk128", 1, 1, 128, 32, 256, g4, 2);
    test_set_knob("FP4RT_VK_GDN_CHUNKED", NULL);
    cases_attention(b);
}

static const char *k_help =
    "usage: test_backend_ops [test|perf|coop] [-b BACKEND[:N]] [-o OP]\n"
    "  test      (default) each device's ops against the CPU reference\n"
    "  perf      no checks: the bench cases (LINEAR, GATED_DELTA, ATTENTION on\n"
    "            Qwen3.5-0.8B shapes) timed on each device\n"
    "  coop      only the Vulkan fast prefill cases (cooperative matrix of the kind\n"
    "            FP4RT_VK_COOPMAT picks, integer dot product)\n"
    "  -b NAME   only this backend (\"vulkan\", \"cuda\": each of its devices) or device\n"
    "            (\"vulkan:0\"); exits 77 (skipped) when it has no usable device\n"
    "  -o OP     only cases with an op of this kind (the program's op enum:\n"
    "            LINEAR, ATTENTION, GATED_DELTA, RMSNORM, ..., in any case)\n"
    "  --help    this text\n";

/* Parses the command line; 0 on success, else the exit status. */
static int parse_args(int argc, char **argv, const char **only) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return -1;
        } else if (!strcmp(a, "test")) {
        } else if (!strcmp(a, "perf")) {
            bench_mode = 1;
        } else if (!strcmp(a, "coop")) {
            coop_only_mode = 1;
        } else if (!strcmp(a, "-b") && i + 1 < argc) {
            *only = argv[++i];
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            const char *op = argv[++i];
            for (int k = 0; k < FP4RT_OP_COUNT; k++)
                if (!strcasecmp(op, fp4rt_op_name((fp4rt_op_kind)k))) op_filter = k;
            if (op_filter < 0) {
                fprintf(stderr, "test_backend_ops: -o %s: not an op kind (see --help)\n", op);
                return 2;
            }
        } else {
            fprintf(stderr, "test_backend_ops: unknown argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    return 0;
}

/* The devices -b selects (every registry device but the CPU when none). */
static int list_devices(const char *only, backend *list, int max, int *n) {
    const fp4rt_backend_reg *want = NULL;
    int want_index = -1;
    if (only && strchr(only, ':')) {
        fp4rt_device_ref ref;
        if (fp4rt_registry_parse(only, &ref)) {
            fprintf(stderr, "test_backend_ops: -b %s: %s\n", only, fp4rt_last_error());
            return 2;
        }
        want = ref.reg, want_index = ref.index;
    } else if (only && !(want = fp4rt_registry_find(only))) {
        fprintf(stderr, "test_backend_ops: -b %s: no such backend (see fp4rt devices)\n", only);
        return 2;
    }
    for (int r = 0; r < fp4rt_registry_count(); r++) {
        const fp4rt_backend_reg *reg = fp4rt_registry_get(r);
        if (reg->kind == FP4RT_DEVICE_CPU || (want && reg != want)) continue;
        int nd = fp4rt_registry_device_count(reg);
        if (nd == 0)
            printf("skipped: %s: no %s device (%s)\n", reg->name, reg->label,
                   reg->not_built ? reg->not_built : reg->unavailable_reason());
        for (int i = 0; i < nd && *n < max; i++) {
            if (want_index >= 0 && i != want_index) continue;
            fp4rt_device_desc d;
            if (fp4rt_registry_device(reg, i, &d)) {
                printf("skipped: %s:%d: %s\n", reg->name, i, fp4rt_last_error());
                fp4rt_clear_error();
                continue;
            }
            if (!d.usable) {
                printf("skipped: %s %s: not usable (%s)\n", d.name, d.title, d.reason);
                continue;
            }
            backend *b = &list[(*n)++];
            memset(b, 0, sizeof *b);
            snprintf(b->name, sizeof b->name, "%s (%.200s)", d.name, d.title);
            b->kind = reg->name;
            b->reg = reg;
            b->index = i;
            b->cuda = reg->kind == FP4RT_DEVICE_CUDA;
            b->vulkan = reg->kind == FP4RT_DEVICE_VULKAN;
            printf("backend %s\n", b->name);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *only = NULL;
    int rc = parse_args(argc, argv, &only);
    if (rc) return rc < 0 ? 0 : rc;
    fp4rt_numfmt_init();
    backend list[16] = {0};
    int n = 0;
    printf("backend cpu: reference\n");
    if ((rc = list_devices(only, list, 16, &n))) return rc;
    if (only && n == 0) return 77;
    int n_vk = 0;
    for (int i = 0; i < n; i++) {
        n_vk += list[i].vulkan;
        if (bench_mode)
            bench_ops(&list[i]);
        else
            test_ops(&list[i]);
    }
    if (n_vk) {
        long msgs = fp4rt_registry_message_count();
        CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    }
    return test_summary("test_backend_ops");
}
