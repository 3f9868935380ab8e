/* The CUDA kernels around the linears (cuda/cu_basic.cu, cu_attention.cu,
 * cu_gdn.cu), compiled for the host with the emulation in tests/cu_emu/ (one
 * std::thread per CUDA thread, real barriers and warp shuffles), against the CPU
 * backend: the same ops on the same seeded inputs and states, step after step,
 * comparing the outputs and the carried state (KV cache, conv and GDN state).
 * These kernels follow the numerics contract (cuda/cu_canon.cuh) and the host
 * computes IEEE float operations exactly as the GPU does, so they must give the
 * CPU's bits (ceiling 0: every value bit-identical), RoPE included (its cos /
 * sin table is built by the backend's host function, fp4rt_cu_rope_table, at
 * positions past 100000 too). Shapes: the
 * op-test shapes (head_dim 16, dk 16 / dv 12), odd ones (head_dim 40, dv 40,
 * norm groups of 37 and 1000) and the model's (head_dim 256 with 6 query heads
 * per KV head, partial RoPE, dk = dv = 128), decode (T = 1, several of the
 * contract's splits with n_ctx > 256, empty ones included) and prefill (T > 1:
 * the tiled kernel over several query and key tiles, the chunked GDN across a
 * chunk boundary) and verify steps (fp4rt_step.decode_rows: the conv and GDN
 * at 1 .. FP4RT_DECODE_ROWS_MAX rows, the recurrent form row by row, the state
 * before each row in the checkpoint slots, compared with the CPU's slots and
 * slot 0 with the state before the step; attention at 1 .. 8 rows, each row
 * in the decode kernels with its own decode splits, across a change of the
 * span length between rows).
 * Runs without a GPU; what it cannot check (the device
 * intrinsics, timing, races between blocks) is left to test_backend_ops_cuda on
 * a GPU. */
#include "cuda/cu_ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

extern "C" {
#include "runtime/base/numfmt.h"
}

/* ---- what the CUDA backend core provides, for the emulation ---- */

static std::vector<float> g_ws;
static size_t g_ws_reserved;
static char g_err[512];

const void *fp4rt_cu_weight(const fp4rt_cu_ctx *, const void *host) { return host; }
fp4rt_status fp4rt_cu_fail(fp4rt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}
fp4rt_status fp4rt_cu_check_launch(const char *) { return FP4RT_OK; }
void *fp4rt_cu_workspace(const fp4rt_cu_step *, size_t bytes) {
    if (bytes > g_ws_reserved) return NULL;
    g_ws.assign(g_ws_reserved / sizeof(float) + 1, NAN); /* poisoned: partials must be written first */
    return g_ws.data();
}

static int failures;
static double g_worst; /* largest NMSE of the current case */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static unsigned g_seed = 1;
static float frand(float lo, float hi) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)((g_seed >> 8) & 0xffffff) / 16777216.0f;
}

/* A program of a few ops over an arena of buffers, with one attention and one
 * GDN layer's weights and state. */
struct tcase {
    const char *name;
    fp4rt_weights w;
    fp4rt_layer_weights layer;
    std::vector<fp4rt_op> ops;
    std::vector<int> width, offset;
    std::vector<float> lo, hi; /* input ranges per buffer; NaN: output (poisoned) */
    std::vector<int> qk_heads; /* per buffer: >0 normalise q | k heads (GDN input) */
    std::vector<float> conv_w, dt_bias, neg_A;
    fp4rt_program p;
    int n_ctx = 64, chunk = 8;
    fp4rt_kv_type kv = FP4RT_KV_F32;
    double ceiling = 0; /* NMSE ceiling; 0: bit-identical */

    tcase(const char *n) : name(n) {
        memset(&w, 0, sizeof w);
        memset(&layer, 0, sizeof layer);
        memset(&p, 0, sizeof p);
        layer.k_scale = layer.v_scale = 1.0f;
        w.layers = &layer;
    }
    int buf(int cols, float l, float h) {
        width.push_back(cols);
        lo.push_back(l);
        hi.push_back(h);
        qk_heads.push_back(0);
        return (int)width.size() - 1;
    }
    int out(int cols) { return buf(cols, NAN, NAN); }
    fp4rt_op &op(fp4rt_op_kind k) {
        fp4rt_op o;
        memset(&o, 0, sizeof o);
        o.kind = k;
        o.layer = 0;
        ops.push_back(o);
        return ops.back();
    }
    void layout() {
        int off = 0;
        offset.clear();
        for (int wd : width) {
            offset.push_back(off);
            off += wd + 3; /* a gap between buffers */
        }
        p.weights = &w;
        p.n_ops = (int)ops.size();
        p.ops = ops.data();
        p.n_bufs = (int)width.size();
        p.buf_width = width.data();
        p.buf_offset = offset.data();
        p.arena_width = off;
        p.n_attn_layers = 1;
        p.n_gdn_layers = 1;
    }
};

static fp4rt_view whole(int b, int cols) { return fp4rt_view{b, 0, cols}; }

/* A step of T rows from pos0 (no logits involved). */
static fp4rt_step mk(int T, int pos0) {
    fp4rt_step s;
    memset(&s, 0, sizeof s);
    s.n_tokens = T;
    s.pos0 = pos0;
    return s;
}

/* A verify step (decode_rows) of T rows from pos0. */
static fp4rt_step rows(int T, int pos0) {
    fp4rt_step s = mk(T, pos0);
    s.decode_rows = 1;
    return s;
}

/* Session state on one side (CPU backend buffers, or host memory for the
 * emulation); after a verify step, ck_conv / ck_ssm hold checkpoint slots 0 ..
 * FP4RT_DECODE_ROWS_MAX - 1 (conv.size() and ssm.size() floats each), NaN
 * where the backend wrote nothing. */
struct state {
    std::vector<float> arena, conv, ssm;
    std::vector<unsigned char> kv;
    std::vector<float> ck_conv, ck_ssm;
};

/* The checkpoint slots of a buffer laid out as backend.h says (slot r at float
 * r * (conv_floats + ssm_floats): [conv | ssm], the parts conv_floats and
 * ssm_floats long; the state's own conv / ssm sizes may be shorter) into
 * s.ck_conv / s.ck_ssm. */
static void ckpt_split(state &s, const std::vector<float> &ck, size_t conv_floats, size_t ssm_floats) {
    size_t nc = s.conv.size(), ns = s.ssm.size(), slot = conv_floats + ssm_floats;
    s.ck_conv.assign((size_t)FP4RT_DECODE_ROWS_MAX * nc, NAN);
    s.ck_ssm.assign((size_t)FP4RT_DECODE_ROWS_MAX * ns, NAN);
    for (int r = 0; r < FP4RT_DECODE_ROWS_MAX; r++) {
        if (nc) memcpy(&s.ck_conv[r * nc], &ck[r * slot], nc * sizeof(float));
        if (ns) memcpy(&s.ck_ssm[r * ns], &ck[r * slot + conv_floats], ns * sizeof(float));
    }
}

static size_t kv_elem(fp4rt_kv_type t) { return t == FP4RT_KV_F32 ? 4 : t == FP4RT_KV_FP8 ? 1 : 2; }

static float kv_value(const tcase &c, const std::vector<unsigned char> &kv, size_t i, int which) {
    if (c.kv == FP4RT_KV_F32) {
        float f;
        memcpy(&f, &kv[i * 4], 4);
        return f;
    }
    if (c.kv == FP4RT_KV_FP8) return fp4rt_e4m3_to_f32(kv[i]) * (which ? c.layer.v_scale : c.layer.k_scale);
    uint16_t h;
    memcpy(&h, &kv[i * 2], 2);
    return fp4rt_bf16_to_f32(h);
}

static void init_state(tcase &c, state &s) {
    const fp4rt_config &f = c.w.cfg;
    s.arena.assign((size_t)c.chunk * c.p.arena_width, 0.0f);
    for (int t = 0; t < c.chunk; t++)
        for (int b = 0; b < c.p.n_bufs; b++) {
            float *row = &s.arena[(size_t)t * c.p.arena_width + c.offset[b]];
            for (int i = 0; i < c.width[b]; i++) row[i] = isnan(c.lo[b]) ? NAN : frand(c.lo[b], c.hi[b]);
            if (c.qk_heads[b]) /* q and k heads of a GDN input: unit L2 norm, q then * dk^-1/2 */
                for (int h = 0; h < 2 * f.lin_k_heads; h++) {
                    float *v = row + (size_t)h * f.lin_k_dim, ss = 0;
                    for (int i = 0; i < f.lin_k_dim; i++) ss += v[i] * v[i];
                    float sc = 1.0f / sqrtf(ss) * (h < f.lin_k_heads ? 1.0f / sqrtf((float)f.lin_k_dim) : 1.0f);
                    for (int i = 0; i < f.lin_k_dim; i++) v[i] *= sc;
                }
        }
    size_t kv_n = (size_t)2 * c.n_ctx * f.n_kv_heads * f.head_dim;
    s.kv.assign(kv_n * kv_elem(c.kv), 0);
    for (size_t i = 0; i < kv_n; i++) {
        float v = frand(-1, 1);
        int which = i >= kv_n / 2;
        if (c.kv == FP4RT_KV_F32)
            memcpy(&s.kv[i * 4], &v, 4);
        else if (c.kv == FP4RT_KV_FP8)
            s.kv[i] = fp4rt_f32_to_e4m3_sat(v / (which ? c.layer.v_scale : c.layer.k_scale));
        else {
            uint16_t h = fp4rt_f32_to_bf16(v);
            memcpy(&s.kv[i * 2], &h, 2);
        }
    }
    int C = fp4rt_cfg_conv_dim(&f), K = f.conv_kernel;
    s.conv.resize((size_t)C * (K > 1 ? K - 1 : 0));
    for (float &v : s.conv) v = frand(-1, 1);
    s.ssm.resize((size_t)f.lin_v_heads * f.lin_k_dim * f.lin_v_dim);
    for (float &v : s.ssm) v = frand(-0.5f, 0.5f);
}

static fp4rt_status run_cpu(tcase &c, state &s, const fp4rt_step &step) {
    const fp4rt_backend_ops *b = &fp4rt_backend_cpu;
    void *ctx = NULL;
    fp4rt_status st = b->create(2, &ctx);
    if (st) return st;
    fp4rt_buffer *scratch = NULL, *kv = NULL, *conv = NULL, *ssm = NULL, *logits = NULL, *ckpt = NULL;
    size_t kvb = s.kv.size() ? s.kv.size() : 4, cb = s.conv.size() * 4 + 4, sb_ = s.ssm.size() * 4 + 4;
    /* a verify step: checkpoint slots, poisoned (NaN) to show what was written */
    std::vector<float> ck(step.decode_rows ? (size_t)FP4RT_DECODE_ROWS_MAX * (cb + sb_) / 4 : 0, NAN);
    st = b->buffer_alloc(ctx, s.arena.size() * 4, "arena", &scratch);
    if (!st) st = b->buffer_alloc(ctx, kvb, "kv", &kv);
    if (!st) st = b->buffer_alloc(ctx, cb, "conv", &conv);
    if (!st) st = b->buffer_alloc(ctx, sb_, "ssm", &ssm);
    if (!st) st = b->buffer_alloc(ctx, (size_t)c.chunk * 4, "logits", &logits);
    if (!st) st = b->buffer_upload(ctx, scratch, 0, s.arena.data(), s.arena.size() * 4);
    if (!st && s.kv.size()) st = b->buffer_upload(ctx, kv, 0, s.kv.data(), s.kv.size());
    if (!st && s.conv.size()) st = b->buffer_upload(ctx, conv, 0, s.conv.data(), s.conv.size() * 4);
    if (!st && s.ssm.size()) st = b->buffer_upload(ctx, ssm, 0, s.ssm.data(), s.ssm.size() * 4);
    if (!st && ck.size()) st = b->buffer_alloc(ctx, ck.size() * 4, "ckpt", &ckpt);
    if (!st && ck.size()) st = b->buffer_upload(ctx, ckpt, 0, ck.data(), ck.size() * 4);
    fp4rt_session_buffers sb = {scratch, kv, conv, ssm, logits, c.n_ctx, c.chunk, c.kv, ckpt};
    if (!st) st = b->run(ctx, &c.p, &sb, &step);
    if (!st) st = b->buffer_download(ctx, scratch, 0, s.arena.data(), s.arena.size() * 4);
    if (!st && s.kv.size()) st = b->buffer_download(ctx, kv, 0, s.kv.data(), s.kv.size());
    if (!st && s.conv.size()) st = b->buffer_download(ctx, conv, 0, s.conv.data(), s.conv.size() * 4);
    if (!st && s.ssm.size()) st = b->buffer_download(ctx, ssm, 0, s.ssm.data(), s.ssm.size() * 4);
    if (!st && ck.size()) st = b->buffer_download(ctx, ckpt, 0, ck.data(), ck.size() * 4);
    if (!st && ck.size()) ckpt_split(s, ck, cb / 4, sb_ / 4);
    fp4rt_buffer *all[] = {scratch, kv, conv, ssm, logits, ckpt};
    for (fp4rt_buffer *x : all)
        if (x) b->buffer_free(ctx, x);
    b->destroy(ctx);
    return st;
}

static fp4rt_status run_emu(tcase &c, state &s, const fp4rt_step &step) {
    fp4rt_buffer scratch = {s.arena.data(), s.arena.size() * 4, "arena"};
    fp4rt_buffer kv = {s.kv.data(), s.kv.size(), "kv"}, conv = {s.conv.data(), s.conv.size() * 4, "conv"};
    fp4rt_buffer ssm = {s.ssm.data(), s.ssm.size() * 4, "ssm"}, logits = {NULL, 0, "logits"};
    /* a verify step: checkpoint slots of the exact sizes, poisoned */
    size_t slot = s.conv.size() + s.ssm.size();
    std::vector<float> ck(step.decode_rows ? (size_t)FP4RT_DECODE_ROWS_MAX * slot : 0, NAN);
    fp4rt_buffer ckpt = {ck.data(), ck.size() * 4, "ckpt"};
    fp4rt_session_buffers sb = {&scratch, &kv, &conv, &ssm, &logits, c.n_ctx, c.chunk, c.kv, ck.size() ? &ckpt : NULL};
    /* the core reserves the most any op asks for at 1 row or a whole chunk */
    g_ws_reserved = 0;
    for (const fp4rt_op &o : c.ops)
        for (int rows : {1, c.chunk}) {
            size_t b = fp4rt_cu_attn_gdn_workspace_bytes(&c.p, &o, rows);
            if (b > g_ws_reserved) g_ws_reserved = b;
        }
    /* device copy of the step: the host view gets pos0 = -1, as while capturing */
    std::vector<int32_t> info(2 + step.n_tokens, 0);
    fp4rt_cu_step_info *d = (fp4rt_cu_step_info *)info.data();
    d->pos0 = step.pos0;
    d->n_tokens = step.n_tokens;
    fp4rt_step host = step;
    host.pos0 = -1;
    /* the rotary positions as the core copies them (cu_backend.cu cu_run) */
    std::vector<int32_t> rpos((size_t)3 * step.n_tokens);
    for (int t = 0; t < step.n_tokens; t++)
        for (int k = 0; k < 3; k++) rpos[3 * t + k] = fp4rt_step_rope_pos(&step, t, k);
    fp4rt_cu_step cs = {NULL, NULL, &c.p, &sb, &host, d, 90, NULL, 0, 0, 0, rpos.data(), NULL, NULL, 0};
    /* the RoPE table as the core uploads it (cu_backend.cu ensure_rope_table) */
    float *rope_tab = NULL;
    size_t rope_n = 0;
    fp4rt_status rst = fp4rt_cu_rope_table(&c.p, c.n_ctx, &rope_tab, &rope_n);
    if (rst) return rst;
    std::vector<float> tab(rope_tab, rope_tab + rope_n);
    free(rope_tab);
    for (const fp4rt_op &o : c.ops)
        if (o.kind == FP4RT_OP_ROPE) {
            cs.rope_tab = tab.data();
            cs.rope_ctx = c.n_ctx;
            cs.rope_dim = o.rotary_dim;
            cs.rope_theta = o.rope_theta;
            cs.rope_mode = o.rope_mode;
        }
    for (const fp4rt_op &o : c.ops) {
        fp4rt_status st;
        switch (o.kind) {
        case FP4RT_OP_RMSNORM:
        case FP4RT_OP_GATED_RMSNORM:
        case FP4RT_OP_L2NORM: st = fp4rt_cu_op_norm(&cs, &o); break;
        case FP4RT_OP_SIGMOID_GATE:
        case FP4RT_OP_SWIGLU:
        case FP4RT_OP_ADD: st = fp4rt_cu_op_eltwise(&cs, &o); break;
        case FP4RT_OP_ROPE: st = fp4rt_cu_op_rope(&cs, &o); break;
        case FP4RT_OP_KV_APPEND: st = fp4rt_cu_op_kv_append(&cs, &o); break;
        case FP4RT_OP_ATTENTION: st = fp4rt_cu_op_attention(&cs, &o); break;
        case FP4RT_OP_CONV1D_SILU: st = fp4rt_cu_op_conv(&cs, &o); break;
        case FP4RT_OP_GATED_DELTA: st = fp4rt_cu_op_gdn(&cs, &o); break;
        case FP4RT_OP_LAYERNORM: st = fp4rt_cu_op_layernorm(&cs, &o); break;
        case FP4RT_OP_BIAS:
        case FP4RT_OP_GELU: st = fp4rt_cu_op_bias_gelu(&cs, &o); break;
        case FP4RT_OP_ATTENTION_FULL: st = fp4rt_cu_op_attention_full(&cs, &o); break;
        default: return fp4rt_cu_fail(FP4RT_INTERNAL, "op %d not in this family", (int)o.kind);
        }
        if (st) return st;
    }
    if (ck.size()) ckpt_split(s, ck, s.conv.size(), s.ssm.size());
    return FP4RT_OK;
}

/* NMSE of got against ref, and the number of values whose bits differ; a
 * non-finite value on either side fails, except NaN on both (columns between
 * groups that neither side writes stay poisoned). Ceiling 0: every value must
 * have the reference's bits. */
static void compare(const char *what, const float *got, const float *ref, size_t n, size_t stride, int rows,
                    int cols, double ceiling, const char *ctx) {
    double err = 0, norm = 0;
    int bad = 0, differ = 0, first = -1;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < cols; i++) {
            float gf = got[(size_t)r * stride + i], ff = ref[(size_t)r * stride + i];
            double g = gf, f = ff;
            if (isnan(g) && isnan(f)) continue; /* a gap neither side writes (poisoned) */
            if (!isfinite(g) || !isfinite(f)) {
                bad++;
                continue;
            }
            if (memcmp(&gf, &ff, sizeof gf)) {
                if (first < 0) first = r * cols + i;
                differ++;
            }
            err += (g - f) * (g - f);
            norm += f * f;
        }
    (void)n;
    double nmse = norm > 0 ? err / norm : err;
    if (nmse > g_worst) g_worst = nmse;
    if (ceiling == 0)
        CHECK(!bad && !differ, "%s: %s: %d values differ in their bits (first: %d), NMSE %.3g, %d non-finite", ctx,
              what, differ, first, nmse, bad);
    else
        CHECK(!bad && nmse <= ceiling, "%s: %s: NMSE %.3g (ceiling %.1g), %d non-finite", ctx, what, nmse, ceiling,
              bad);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void run_case(tcase &c, const fp4rt_step *steps, int n_steps) {
    double t0 = now();
    g_worst = 0;
    c.layout();
    state cpu, emu;
    init_state(c, cpu);
    emu = cpu;
    for (int i = 0; i < n_steps; i++) {
        const fp4rt_step &st = steps[i];
        char ctx[160];
        snprintf(ctx, sizeof ctx, "%s, step %d (%s T=%d pos0=%d)", c.name, i, st.decode_rows ? "verify" : "step",
                 st.n_tokens, st.pos0);
        /* fresh inputs each step, the same on both sides; state carries over */
        state fresh;
        init_state(c, fresh);
        cpu.arena = fresh.arena;
        emu.arena = fresh.arena;
        const std::vector<float> conv0 = emu.conv, ssm0 = emu.ssm; /* the state before the step */
        fp4rt_status a = run_cpu(c, cpu, st);
        CHECK(a == FP4RT_OK, "%s: cpu: %s", ctx, fp4rt_last_error());
        g_err[0] = 0;
        fp4rt_status b = run_emu(c, emu, st);
        CHECK(b == FP4RT_OK, "%s: cuda emulation: %s", ctx, g_err);
        if (a || b) return;
        for (int k = 0; k < c.p.n_bufs; k++) {
            char what[64];
            snprintf(what, sizeof what, "buffer %d (%d cols)", k, c.width[k]);
            compare(what, emu.arena.data() + c.offset[k], cpu.arena.data() + c.offset[k], 0, c.p.arena_width,
                    st.n_tokens, c.width[k], c.ceiling, ctx);
        }
        if (cpu.kv.size()) {
            size_t n = cpu.kv.size() / kv_elem(c.kv);
            std::vector<float> x(n), y(n);
            for (size_t j = 0; j < n; j++) {
                x[j] = kv_value(c, emu.kv, j, j >= n / 2);
                y[j] = kv_value(c, cpu.kv, j, j >= n / 2);
            }
            compare("KV cache", x.data(), y.data(), n, 0, 1, (int)n, 0.0, ctx);
        }
        compare("conv state", emu.conv.data(), cpu.conv.data(), 0, 0, 1, (int)cpu.conv.size(), c.ceiling, ctx);
        compare("GDN state", emu.ssm.data(), cpu.ssm.data(), 0, 0, 1, (int)cpu.ssm.size(), c.ceiling, ctx);
        if (st.decode_rows && (c.w.cfg.lin_v_heads || c.w.cfg.conv_kernel)) {
            /* slot r: the state before row r, as the CPU keeps it; slot 0 is the
             * state before the step; the slots past the rows stay unwritten */
            int nc = (int)emu.conv.size(), ns = (int)emu.ssm.size();
            compare("conv checkpoints", emu.ck_conv.data(), cpu.ck_conv.data(), 0, nc, FP4RT_DECODE_ROWS_MAX, nc,
                    0.0, ctx);
            compare("GDN checkpoints", emu.ck_ssm.data(), cpu.ck_ssm.data(), 0, ns, FP4RT_DECODE_ROWS_MAX, ns, 0.0,
                    ctx);
            compare("conv checkpoint 0", emu.ck_conv.data(), conv0.data(), 0, 0, 1, nc, 0.0, ctx);
            compare("GDN checkpoint 0", emu.ck_ssm.data(), ssm0.data(), 0, 0, 1, ns, 0.0, ctx);
            int unwritten = 0;
            for (size_t j = (size_t)st.n_tokens * nc; j < emu.ck_conv.size(); j++) unwritten += isnan(emu.ck_conv[j]);
            for (size_t j = (size_t)st.n_tokens * ns; j < emu.ck_ssm.size(); j++) unwritten += isnan(emu.ck_ssm[j]);
            CHECK(unwritten == (FP4RT_DECODE_ROWS_MAX - st.n_tokens) * (nc + ns),
                  "%s: checkpoint slots past row %d written (%d of %d untouched)", ctx, st.n_tokens, unwritten,
                  (FP4RT_DECODE_ROWS_MAX - st.n_tokens) * (nc + ns));
        }
    }
    printf("%s: %d steps, worst NMSE %.2g (%s) (%.1f s)\n", c.name, n_steps, g_worst,
           c.ceiling == 0 ? "bits must match" : "NMSE ceiling", now() - t0);
}

/* RoPE ops of one rotary_dim / theta (the backend's table is per program):
 * groups of group_dim lanes group_stride apart, rotary_dim of them rotated;
 * one op in place and one out of place (the lanes past rotary_dim copied). */
static void case_rope(int n_groups, int group_dim, int group_stride, int rotary_dim, double theta, int n_ctx,
                      const fp4rt_step *steps, int n_steps, const char *name) {
    tcase c(name);
    c.n_ctx = n_ctx;
    int w = n_groups * group_stride;
    int x = c.buf(w, -1, 1), y = c.out(w), q = c.buf(w, -1, 1);
    fp4rt_op &a = c.op(FP4RT_OP_ROPE);
    a.x = whole(x, w);
    a.y = whole(y, w);
    a.n_groups = n_groups;
    a.group_dim = group_dim;
    a.group_stride = group_stride;
    a.rotary_dim = rotary_dim;
    a.rope_theta = theta;
    fp4rt_op in_place = a; /* (c.op may move a) */
    in_place.x = in_place.y = whole(q, w);
    c.op(FP4RT_OP_ROPE) = in_place;
    run_case(c, steps, n_steps);
}

static void cases_rope(void) {
    fp4rt_step s_small[] = {mk(1, 7), mk(5, 3), mk(8, 4000)};
    case_rope(3, 32, 40, 16, 1e7, 4096, s_small, 3, "ROPE 3x32 stride 40 rot 16 theta 1e7");
    /* the model's: partial rotary 64 of head_dim 256, 24 heads (q of the 27B, gate
     * interleaved); positions past 100000 (angles up to ~1.4e5 rad) */
    fp4rt_step s_big[] = {mk(1, 0), mk(8, 4000), mk(3, 100000), mk(5, 139995)};
    case_rope(24, 256, 512, 64, 1e7, 140000, s_big, 4, "ROPE 24x256 stride 512 rot 64 theta 1e7");
    fp4rt_step s_1e4[] = {mk(2, 1), mk(4, 123456), mk(1, 199999)};
    case_rope(4, 256, 256, 64, 1e4, 200000, s_1e4, 3, "ROPE 4x256 rot 64 theta 1e4");
    fp4rt_step s_full[] = {mk(6, 0), mk(1, 65000)};
    case_rope(2, 128, 128, 128, 1e4, 65536, s_full, 2, "ROPE 2x128 rot 128 (full) theta 1e4");
    /* one table per program: RoPE ops of different rotary_dim fail with a message */
    tcase c("ROPE rot 16 + rot 32");
    int x = c.buf(64, -1, 1);
    for (int rot : {16, 32}) {
        fp4rt_op &o = c.op(FP4RT_OP_ROPE);
        o.x = o.y = whole(x, 64);
        o.n_groups = 2;
        o.group_dim = o.group_stride = 32;
        o.rotary_dim = rot;
        o.rope_theta = 1e7;
    }
    c.layout();
    state st;
    init_state(c, st);
    g_err[0] = 0;
    CHECK(run_emu(c, st, mk(1, 3)) == FP4RT_UNSUPPORTED && strstr(g_err, "different rotary_dim"), "got '%s'",
          g_err);
}

/* The per-row ops of cu_basic.cu: the norms at odd group sizes (37 in groups 40
 * apart, 1000 > 16 chains of the sum, 24) and the element-wise ops. */
static void case_basic(void) {
    tcase c("RMSNORM / GATED_RMSNORM / L2NORM / SIGMOID_GATE / SWIGLU / ADD");
    c.chunk = 5;
    static float w1000[1000], w37[37];
    for (float &v : w1000) v = frand(0.5f, 1.5f);
    for (float &v : w37) v = frand(0.5f, 1.5f);
    int x = c.buf(1000, -2, 2), y = c.out(1000), g = c.buf(120, -3, 3), z = c.buf(120, -6, 6), gy = c.out(120);
    int l2 = c.buf(96, -1, 1), sx = c.buf(130, -2, 2), sz = c.buf(130, -9, 9), sy = c.out(130);
    fp4rt_op &a = c.op(FP4RT_OP_RMSNORM);
    a.x = whole(x, 1000);
    a.y = whole(y, 1000);
    a.w = w1000;
    a.n_groups = 1;
    a.group_dim = 1000;
    a.eps = 1e-6f;
    fp4rt_op &b = c.op(FP4RT_OP_GATED_RMSNORM);
    b.x = whole(g, 120);
    b.z = whole(z, 120);
    b.y = whole(gy, 120);
    b.w = w37;
    b.n_groups = 3;
    b.group_dim = 37;
    b.group_stride = 40;
    b.eps = 1e-6f;
    fp4rt_op &d = c.op(FP4RT_OP_L2NORM);
    d.x = d.y = whole(l2, 96); /* in place */
    d.n_groups = 4;
    d.group_dim = 24;
    d.group_stride = 24;
    d.eps = 1e-6f;
    d.scale = 0.2041241f;
    fp4rt_op &e = c.op(FP4RT_OP_SIGMOID_GATE);
    e.x = e.y = whole(g, 120); /* in place, the groups of the gated norm's input */
    e.z = whole(z, 120);
    e.n_groups = 3;
    e.group_dim = 37;
    e.group_stride = 40;
    e.z_group_stride = 40;
    fp4rt_op &f = c.op(FP4RT_OP_SWIGLU);
    f.x = whole(sx, 130);
    f.z = whole(sz, 130);
    f.y = whole(sy, 130);
    fp4rt_op &h = c.op(FP4RT_OP_ADD);
    h.x = h.y = whole(y, 1000);
    h.z = whole(x, 1000);
    fp4rt_step steps[] = {mk(1, 0), mk(5, 1)};
    run_case(c, steps, 2);
}

static void case_attention(fp4rt_kv_type kv, int nh, int nkv, int hd, int n_ctx, const fp4rt_step *steps,
                           int n_steps, const char *name) {
    tcase c(name);
    c.kv = kv;
    c.n_ctx = n_ctx;
    c.chunk = 40;
    c.w.cfg.n_heads = nh;
    c.w.cfg.n_kv_heads = nkv;
    c.w.cfg.head_dim = hd;
    if (kv == FP4RT_KV_FP8) {
        c.layer.k_scale = 0.01f;
        c.layer.v_scale = 0.004f;
    }
    int kb = c.buf(nkv * hd, -1, 1), vb = c.buf(nkv * hd, -1, 1), qb = c.buf(2 * nh * hd, -1, 1);
    int ob = c.out(nh * hd);
    fp4rt_op &a = c.op(FP4RT_OP_KV_APPEND);
    a.x = whole(kb, nkv * hd);
    a.z = whole(vb, nkv * hd);
    a.n_groups = nkv;
    a.group_dim = hd;
    fp4rt_op &b = c.op(FP4RT_OP_ATTENTION);
    b.x = whole(qb, 2 * nh * hd);
    b.y = whole(ob, nh * hd);
    b.n_groups = nh;
    b.group_dim = hd;
    b.group_stride = 2 * hd; /* query and gate interleaved per head */
    b.n_kv_heads = nkv;
    b.scale = 1.0f / sqrtf((float)hd);
    run_case(c, steps, n_steps);
}

static void case_gdn(int kh, int vh, int dk, int dv, const fp4rt_step *steps, int n_steps, const char *name) {
    tcase c(name);
    fp4rt_config &f = c.w.cfg;
    f.lin_k_heads = kh;
    f.lin_v_heads = vh;
    f.lin_k_dim = dk;
    f.lin_v_dim = dv;
    f.conv_kernel = 4;
    c.chunk = 70;
    c.n_ctx = 256;
    int C = fp4rt_cfg_conv_dim(&f), vd = fp4rt_cfg_value_dim(&f);
    c.conv_w.resize((size_t)C * 4);
    for (float &v : c.conv_w) v = frand(-0.5f, 0.5f);
    c.dt_bias.resize(vh);
    c.neg_A.resize(vh);
    for (int h = 0; h < vh; h++) {
        c.dt_bias[h] = frand(-1, 1);
        c.neg_A[h] = frand(-2, -0.1f);
    }
    c.layer.dt_bias = c.dt_bias.data();
    c.layer.neg_A = c.neg_A.data();
    int mix = c.buf(C, -1, 1);
    fp4rt_op &a = c.op(FP4RT_OP_CONV1D_SILU);
    a.x = a.y = whole(mix, C); /* in place, as the program */
    a.w = c.conv_w.data();
    a.group_dim = 4;
    int x = c.buf(C, -1, 1), zb = c.buf(vh, -3, 3), ab = c.buf(vh, -3, 3), ob = c.out(vd);
    c.qk_heads[x] = 1;
    fp4rt_op &g = c.op(FP4RT_OP_GATED_DELTA);
    g.x = whole(x, C);
    g.z = whole(zb, vh);
    g.a = whole(ab, vh);
    g.y = whole(ob, vd);
    run_case(c, steps, n_steps);
}

/* The vision ops of cu_vision.cu (issue 18) and RoPE with rotary positions:
 * LayerNorm (groups of 37 around 1000, 3 x 77 at stride 80, 1152), BIAS, GELU
 * both forms over [-8, 8] and [-1000, 1000], ATTENTION_FULL (2 heads of 72, T =
 * 7 and 70: two position tiles), text M-RoPE {11, 11, 10} and the vision 2-D
 * rotary with positions given, and M-RoPE with rope_delta. Bits must match. */
static void cases_vision(void) {
    static std::vector<float> vecs[8];
    {
        tcase c("LAYERNORM / BIAS / GELU");
        static const int dims[3][3] = {{37, 1, 37}, {77, 3, 80}, {1152, 1, 1152}};
        for (int i = 0; i < 3; i++) {
            int n = dims[i][0], w = dims[i][1] * dims[i][2];
            int x = c.buf(w, i == 0 ? 999.0f : -2.0f, i == 0 ? 1001.0f : 2.0f), y = c.out(w);
            vecs[2 * i].resize(n);
            vecs[2 * i + 1].resize(n);
            for (int k = 0; k < n; k++) vecs[2 * i][k] = frand(0.5f, 1.5f), vecs[2 * i + 1][k] = frand(-0.5f, 0.5f);
            fp4rt_op &o = c.op(FP4RT_OP_LAYERNORM);
            o.x = whole(x, w);
            o.y = whole(y, w);
            o.w = vecs[2 * i].data();
            o.b = vecs[2 * i + 1].data();
            o.n_groups = dims[i][1];
            o.group_dim = n;
            o.group_stride = dims[i][2];
            o.eps = 1e-6f;
        }
        vecs[6].resize(301);
        for (float &v : vecs[6]) v = frand(-1, 1);
        int xb = c.buf(301, -2, 2), yb = c.out(301);
        fp4rt_op &b = c.op(FP4RT_OP_BIAS);
        b.x = whole(xb, 301);
        b.y = whole(yb, 301);
        b.b = vecs[6].data();
        for (int form = 0; form < 2; form++)
            for (float r : {8.0f, 1000.0f}) {
                int gx = c.buf(301, -r, r), gy = c.out(301);
                fp4rt_op &g = c.op(FP4RT_OP_GELU);
                g.x = whole(gx, 301);
                g.y = whole(gy, 301);
                g.gelu_tanh = form;
            }
        fp4rt_step s[] = {mk(1, 0), mk(5, 0)};
        run_case(c, s, 2);
    }
    {
        tcase c("ATTENTION_FULL 2 heads hd72");
        c.chunk = 70;
        c.n_ctx = 70;
        int q = c.buf(144, -2, 2), k = c.buf(144, -2, 2), v = c.buf(149, -1, 1), y = c.out(144);
        fp4rt_op &o = c.op(FP4RT_OP_ATTENTION_FULL);
        o.x = whole(q, 144);
        o.z = whole(k, 144);
        o.a = fp4rt_view{v, 5, 144};
        o.y = whole(y, 144);
        o.n_groups = o.n_kv_heads = 2;
        o.group_dim = o.group_stride = 72;
        o.scale = 1.0f / sqrtf(72.0f);
        fp4rt_step s[] = {mk(7, 0), mk(70, 0)};
        run_case(c, s, 2);
    }
    static int32_t pos[3 * 12];
    for (int r = 0; r < 12; r++)
        pos[3 * r] = (r * 7) % 50, pos[3 * r + 1] = (r * 13) % 60, pos[3 * r + 2] = (r * 29) % 63;
    for (int mode = 0; mode < 2; mode++) {
        tcase c(mode ? "ROPE vision 2-D hd72" : "ROPE M-RoPE {11,11,10} rot 64");
        c.chunk = 12;
        int hd = mode ? 72 : 64, w = 2 * hd;
        int x = c.buf(w, -1, 1), y = c.out(w);
        fp4rt_op &o = c.op(FP4RT_OP_ROPE);
        o.x = whole(x, w);
        o.y = whole(y, w);
        o.n_groups = 2;
        o.group_dim = o.group_stride = o.rotary_dim = hd;
        o.rope_theta = mode ? 1e4 : 1e7;
        o.rope_mode = mode;
        if (!mode) o.mrope_section[0] = o.mrope_section[1] = 11, o.mrope_section[2] = 10, o.mrope_interleaved = 1;
        fp4rt_step s[] = {mk(12, 0), mk(5, 40), mk(1, 20)};
        s[0].positions = pos;
        s[1].rope_delta = -17;
        run_case(c, s, 3);
    }
}

/* argv[1] "full": also the long-context steps (18 splits of 256) and every cache type at head_dim 256. */
int fp4rt_emu_case_sample(void);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int full = argc > 1 && !strcmp(argv[1], "full");
    fp4rt_numfmt_init();
    cases_rope();
    cases_vision();
    const fp4rt_kv_type kvs[] = {FP4RT_KV_F32, FP4RT_KV_BF16, FP4RT_KV_FP8};
    const char *small[] = {"ATTENTION 6q/2kv hd16 F32", "ATTENTION 6q/2kv hd16 BF16", "ATTENTION 6q/2kv hd16 FP8"};
    const char *big[] = {"ATTENTION 6q/1kv hd256 F32", "ATTENTION 6q/1kv hd256 BF16", "ATTENTION 6q/1kv hd256 FP8"};
    /* n_ctx 4600: 18 splits. Decode at 10 keys (one span of 16, 17 empty) and 201
     * (13 spans of 16, the last one short, 5 empty); prefill over 1 and 3 query
     * tiles; full: decode at 4501 keys (18 spans of 256) */
    fp4rt_step s_small[] = {mk(1, 9), mk(4, 5), mk(33, 10), mk(1, 200),
                            mk(1, 4500)};
    /* head_dim 256, 6 query heads per KV head (the 27B's), n_ctx 600 (3 splits);
     * decode at 1 key (one non-empty split) and 131 keys (3 spans of 48, the last
     * one short), prefill of 37 rows (3 query tiles, 3 key tiles) */
    fp4rt_step s_big[] = {mk(1, 0), mk(1, 130), mk(37, 30)};
    for (int i = 0; i < 3; i++) {
        /* the cache types differ only in the KV loads and stores: one decode and one
         * prefill step each; BF16 (the default cache) gets every step */
        int n_small = full ? 5 : kvs[i] == FP4RT_KV_BF16 ? 4 : 2;
        case_attention(kvs[i], 6, 2, 16, 4600, s_small, n_small, small[i]);
        if (full || kvs[i] == FP4RT_KV_BF16) case_attention(kvs[i], 6, 1, 256, 600, s_big, 3, big[i]);
    }
    /* head_dim 40 (lanes past a warp), 5 query heads per KV head, n_ctx 300 (2
     * splits): decode at 290 keys (spans of 160 and 130), prefill of 18 rows */
    fp4rt_step s_odd[] = {mk(1, 289), mk(18, 200)};
    case_attention(FP4RT_KV_BF16, 5, 1, 40, 300, s_odd, 2, "ATTENTION 5q/1kv hd40 BF16");
    /* verify steps (decode_rows), each row with its own decode spans: n_ctx 4600
     * (18 splits); rows at 281 .. 288 see 282 .. 289 keys, and the span length
     * goes from 16 to 32 at 289 keys (rows at 286 .. 288 too); rows from 0 (one
     * key); then a decode step. BF16 8, 1 and 5 rows, and the other sizes with
     * one KV head; F32 / FP8 3 rows (the emulation runs all 256 split blocks per
     * KV head and row: ~0.5 s per row and KV head) */
    fp4rt_step s_rows[] = {rows(8, 281), rows(1, 0), rows(5, 10), mk(1, 289)};
    fp4rt_step s_rows3[] = {rows(3, 286)};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "verify: %s", small[i]);
        if (kvs[i] == FP4RT_KV_BF16)
            case_attention(kvs[i], 6, 2, 16, 4600, s_rows, 4, name);
        else
            case_attention(kvs[i], 6, 2, 16, 4600, s_rows3, 1, name);
    }
    fp4rt_step s_rows_more[] = {rows(2, 1), rows(3, 3), rows(4, 286), rows(6, 15), rows(7, 283)};
    case_attention(FP4RT_KV_BF16, 6, 1, 16, 4600, s_rows_more, 5, "verify: ATTENTION 6q/1kv hd16 BF16");
    /* head_dim 256, 6 query heads per KV head, n_ctx 600 (3 splits): rows at 140
     * .. 147 (the span length goes from 48 to 64 at 145 keys) */
    fp4rt_step s_rows_big[] = {rows(8, 140), rows(3, 300)};
    case_attention(FP4RT_KV_BF16, 6, 1, 256, 600, s_rows_big, full ? 2 : 1, "verify: ATTENTION 6q/1kv hd256 BF16");
    case_basic();
    /* decode, prefill of 70 (a chunk of 64 and one of 6), decode again, a 3-row step */
    fp4rt_step s_gdn[] = {mk(1, 4), mk(70, 5), mk(1, 75), mk(3, 76)};
    case_gdn(2, 6, 16, 12, s_gdn, 4, "CONV1D_SILU + GATED_DELTA 2k/6v dk16 dv12");
    case_gdn(1, 2, 24, 40, s_gdn, 4, "CONV1D_SILU + GATED_DELTA 1k/2v dk24 dv40");
    /* verify steps of 1 .. FP4RT_DECODE_ROWS_MAX rows, between decode and prefill
     * steps: the recurrent form row by row, the checkpoints of every row */
    static_assert(FP4RT_DECODE_ROWS_MAX == 8, "the verify steps below run 1 .. 8 rows");
    fp4rt_step s_gdn_rows[] = {rows(1, 4), rows(2, 5),  mk(1, 7),    rows(3, 8),   rows(4, 11), mk(5, 15),
                               rows(5, 20), rows(6, 25), rows(7, 31), rows(8, 38), mk(1, 46)};
    case_gdn(2, 6, 16, 12, s_gdn_rows, 11, "verify: CONV1D_SILU + GATED_DELTA 2k/6v dk16 dv12");
    fp4rt_step s_gdn_rows2[] = {rows(8, 4), mk(1, 12), rows(3, 13)};
    case_gdn(1, 2, 24, 40, s_gdn_rows2, 3, "verify: CONV1D_SILU + GATED_DELTA 1k/2v dk24 dv40");
    failures += fp4rt_emu_case_sample(); /* cu_emu_sample.cpp: top-k and argmax against the CPU sampler */
    case_gdn(2, 6, 128, 128, s_gdn, full ? 4 : 3, "CONV1D_SILU + GATED_DELTA 2k/6v dk128 dv128");
    /* the model's head dims (dk = dv = 128): a verify step of 8 rows and one of 5 */
    fp4rt_step s_gdn_rows3[] = {rows(8, 4), rows(5, 12)};
    case_gdn(2, 6, 128, 128, s_gdn_rows3, full ? 2 : 1, "verify: CONV1D_SILU + GATED_DELTA 2k/6v dk128 dv128");
    /* an unsupported shape fails with a message instead of computing */
    {
        tcase c("ATTENTION head_dim 320");
        c.w.cfg.n_kv_heads = 1;
        c.w.cfg.head_dim = 320;
        int qb = c.buf(640, -1, 1), ob = c.out(320);
        fp4rt_op &b = c.op(FP4RT_OP_ATTENTION);
        b.x = whole(qb, 640);
        b.y = whole(ob, 320);
        b.n_groups = 1;
        b.group_dim = 320;
        b.group_stride = 640;
        b.n_kv_heads = 1;
        c.layout();
        state s;
        init_state(c, s);
        fp4rt_step st = mk(1, 3);
        g_err[0] = 0;
        CHECK(run_emu(c, s, st) == FP4RT_UNSUPPORTED && strstr(g_err, "head_dim 320"), "got '%s'", g_err);
    }
    if (failures) {
        fprintf(stderr, "test_cu_emu: %d failures\n", failures);
        return 1;
    }
    printf("test_cu_emu: ok\n");
    return 0;
}
