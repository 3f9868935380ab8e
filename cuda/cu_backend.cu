/* The CUDA backend's table (runtime/backend/backend.h): a context on one device with
 * one stream; buffers (cudaMalloc); uploads and downloads through a bounded
 * pinned staging buffer (two halves used in turn, so host memory during the
 * weight upload stays near its size); prepare (every tensor the program reads,
 * once per host pointer, streamed from the mmapped checkpoint into one device
 * allocation); run (the op recorders in program order on the stream; decode
 * steps captured once into a CUDA graph and replayed with only the device step
 * info changing; verify steps, fp4rt_step.decode_rows, likewise); synchronize;
 * describe. Per (program, chunk, n_ctx), before a step is recorded: the op
 * workspace and the RoPE table (ensure_workspace).
 *
 * Ordering: everything goes through c->stream, so uploads, clears, steps and
 * downloads happen in call order; run returns without waiting, a download or
 * synchronize waits. */
#include "cuda/cu_internal.h"
#include "runtime/base/env_parse.h"

#include <algorithm>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CU_WEIGHT_ALIGN 256

static fp4rt_status ck(cudaError_t e, const char *what) { return e == cudaSuccess ? FP4RT_OK : fp4rt_cu_error(e, what); }

static const char *op_name(fp4rt_op_kind k) {
    static const char *names[FP4RT_OP_COUNT] = {"EMBED", "RMSNORM", "GATED_RMSNORM", "L2NORM", "LINEAR",
                                                "ROPE", "KV_APPEND", "ATTENTION", "SIGMOID_GATE", "CONV1D_SILU",
                                                "GATED_DELTA", "SWIGLU", "ADD", "LAYERNORM", "BIAS", "GELU",
                                                "ATTENTION_FULL"};
    return (unsigned)k < FP4RT_OP_COUNT ? names[k] : "?";
}

/* ---- context ---- */

static void cu_destroy(void *vc) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    if (!c) return;
    cudaSetDevice(c->device);
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->graph) cudaGraphExecDestroy(c->graph);
    fp4rt_cu_sample_free(c);
    cudaFree(c->weights);
    cudaFree(c->workspace);
    cudaFree(c->rope_tab);
    cudaFree(c->d_step);
    cudaFree(c->d_embeds);
    cudaFreeHost(c->staging);
    for (int i = 0; i < 2; i++)
        if (c->staging_done[i]) cudaEventDestroy(c->staging_done[i]);
    for (int i = 0; i < CU_STEP_SLOTS; i++) {
        cudaFreeHost(c->h_step[i]);
        if (c->h_step_done[i]) cudaEventDestroy(c->h_step_done[i]);
    }
    if (c->stream) cudaStreamDestroy(c->stream);
    cudaGetLastError();
    free(c->tensors);
    free(c);
}

fp4rt_status fp4rt_cu_backend_create(int index, void **out) {
    *out = NULL;
    fp4rt_cuda_device_desc d;
    fp4rt_status st = fp4rt_cu_device_desc(index, &d);
    if (st) return st;
    if (!d.usable) return fp4rt_cu_fail(FP4RT_DEVICE, "cuda:%d (%s) is not usable: %s", index, d.name, d.reason);
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)calloc(1, sizeof *c);
    if (!c) return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "out of memory creating the CUDA backend");
    c->device = index;
    c->desc = d;
    c->sm = d.cc_major * 10 + d.cc_minor;
    c->use_graphs = (int)fp4rt_env_read(FP4RT_ENV_CUDA_GRAPHS).i;
    long long kb = fp4rt_env_read(FP4RT_ENV_CUDA_STAGING_KB).i;
    if (kb <= 0 || kb > (1ll << 30)) kb = fp4rt_env_read_default(FP4RT_ENV_CUDA_STAGING_KB).i;
    size_t staging = (size_t)kb << 10;
    c->staging_half = staging / 2;
    st = ck(cudaSetDevice(index), "selecting the device");
    if (!st) st = ck(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "creating the stream");
    if (!st) st = ck(cudaHostAlloc((void **)&c->staging, staging, cudaHostAllocDefault), "allocating pinned staging");
    for (int i = 0; !st && i < 2; i++)
        st = ck(cudaEventCreateWithFlags(&c->staging_done[i], cudaEventDisableTiming), "creating an event");
    for (int i = 0; !st && i < CU_STEP_SLOTS; i++)
        st = ck(cudaEventCreateWithFlags(&c->h_step_done[i], cudaEventDisableTiming), "creating an event");
    if (st) {
        fp4rt_cu_host->fail_context(st, "cuda: starting the backend");
        cu_destroy(c);
        return st;
    }
    *out = c;
    return FP4RT_OK;
}

static fp4rt_status cu_create(int n_threads, void **out) {
    (void)n_threads;
    return fp4rt_cu_backend_create(0, out);
}

/* ---- buffers and copies ---- */

static fp4rt_status cu_buffer_alloc(void *vc, size_t bytes, const char *what, fp4rt_buffer **out) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    *out = NULL;
    cudaSetDevice(c->device);
    fp4rt_buffer *b = (fp4rt_buffer *)calloc(1, sizeof *b);
    if (!b) return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "out of memory allocating %s", what);
    cudaError_t e = cudaMalloc(&b->dev, bytes ? bytes : 1);
    if (e) {
        free(b);
        cudaGetLastError();
        return fp4rt_cu_fail(e == cudaErrorMemoryAllocation ? FP4RT_OUT_OF_MEMORY : FP4RT_DEVICE,
                             "cuda:%d: allocating %zu bytes for %s: %s", c->device, bytes, what, cudaGetErrorString(e));
    }
    b->bytes = bytes;
    b->what = what;
    *out = b;
    return FP4RT_OK;
}

static void cu_buffer_free(void *vc, fp4rt_buffer *b) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    if (!b) return;
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream); /* no step still reads it */
    cudaFree(b->dev);
    cudaGetLastError();
    free(b);
}

/* Host -> device through the staging halves: the source is copied into a half
 * (after the half's previous copy finished) and sent asynchronously. */
static fp4rt_status upload(fp4rt_cu_ctx *c, void *dev, const void *src, size_t n) {
    size_t done = 0;
    while (done < n) {
        int h = c->staging_next;
        c->staging_next ^= 1;
        fp4rt_status st = ck(cudaEventSynchronize(c->staging_done[h]), "upload");
        if (st) return st;
        size_t k = std::min(n - done, c->staging_half);
        unsigned char *buf = c->staging + (size_t)h * c->staging_half;
        memcpy(buf, (const unsigned char *)src + done, k);
        st = ck(cudaMemcpyAsync((unsigned char *)dev + done, buf, k, cudaMemcpyHostToDevice, c->stream), "upload");
        if (!st) st = ck(cudaEventRecord(c->staging_done[h], c->stream), "upload");
        if (st) return st;
        done += k;
    }
    return FP4RT_OK;
}

static fp4rt_status download(fp4rt_cu_ctx *c, const void *dev, void *dst, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t k = std::min(n - done, c->staging_half);
        fp4rt_status st = ck(cudaMemcpyAsync(c->staging, (const unsigned char *)dev + done, k, cudaMemcpyDeviceToHost,
                                             c->stream), "download");
        if (!st) st = ck(cudaStreamSynchronize(c->stream), "download (waiting for the device)");
        if (st) return st;
        memcpy((unsigned char *)dst + done, c->staging, k);
        done += k;
    }
    return FP4RT_OK;
}

static fp4rt_status range_check(const fp4rt_buffer *b, size_t off, size_t n, const char *what) {
    if (off > b->bytes || n > b->bytes - off)
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: %s of %zu bytes at offset %zu is outside %s (%zu bytes)", what,
                             n, off, b->what ? b->what : "the buffer", b->bytes);
    return FP4RT_OK;
}

static fp4rt_status cu_buffer_upload(void *vc, fp4rt_buffer *b, size_t off, const void *src, size_t n) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    fp4rt_status st = range_check(b, off, n, "upload");
    if (st) return st;
    cudaSetDevice(c->device);
    return upload(c, (unsigned char *)b->dev + off, src, n);
}

static fp4rt_status cu_buffer_download(void *vc, fp4rt_buffer *b, size_t off, void *dst, size_t n) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    fp4rt_status st = range_check(b, off, n, "download");
    if (st) return st;
    cudaSetDevice(c->device);
    return download(c, (const unsigned char *)b->dev + off, dst, n);
}

static fp4rt_status cu_buffer_clear(void *vc, fp4rt_buffer *b) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    cudaSetDevice(c->device);
    return ck(cudaMemsetAsync(b->dev, 0, b->bytes, c->stream), "clearing a buffer");
}

static fp4rt_status cu_buffer_copy(void *vc, fp4rt_buffer *dst, size_t dst_off, fp4rt_buffer *src, size_t src_off,
                                   size_t n) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    fp4rt_status st = range_check(src, src_off, n, "copy source");
    if (!st) st = range_check(dst, dst_off, n, "copy destination");
    if (st) return st;
    cudaSetDevice(c->device);
    return ck(cudaMemcpyAsync((unsigned char *)dst->dev + dst_off, (const unsigned char *)src->dev + src_off, n,
                              cudaMemcpyDeviceToDevice, c->stream),
              "copying a buffer");
}

/* ---- weights ---- */

typedef struct tensor_list {
    cu_tensor *t;
    int n, cap;
    fp4rt_dtype embed_dtype;
} tensor_list;

/* What a tensor's bytes hold, for synthetic weights (prepare_synthetic). */
enum { CU_FILL_BYTES, CU_FILL_SCALE, CU_FILL_FP8, CU_FILL_BF16, CU_FILL_F16, CU_FILL_F32 };

static int fill_of_linear(const fp4rt_linear *l) {
    switch (l->fmt) {
    case FP4RT_W_BF16: return CU_FILL_BF16;
    case FP4RT_W_F16: return CU_FILL_F16;
    case FP4RT_W_F32: return CU_FILL_F32;
    case FP4RT_W_FP8: return CU_FILL_FP8;
    default: return CU_FILL_BYTES; /* packed E2M1 codes: any byte is valid */
    }
}

/* Lists one program tensor with what its bytes hold (fp4rt_program_tensors' callback). */
static fp4rt_status add_tensor(void *user, const fp4rt_program_tensor *pt) {
    tensor_list *l = (tensor_list *)user;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        cu_tensor *t = (cu_tensor *)realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "out of memory listing tensors");
        l->t = t;
        l->cap = cap;
    }
    int fill = pt->kind == FP4RT_PT_WEIGHT        ? fill_of_linear(pt->lin)
               : pt->kind == FP4RT_PT_BLOCK_SCALE ? CU_FILL_SCALE
               : pt->kind != FP4RT_PT_EMBED       ? CU_FILL_F32
               : l->embed_dtype == FP4RT_DT_F16   ? CU_FILL_F16
               : l->embed_dtype == FP4RT_DT_F32   ? CU_FILL_F32
                                                  : CU_FILL_BF16;
    l->t[l->n++] = cu_tensor{pt->host, (size_t)pt->bytes, 0, pt->name, fill};
    return FP4RT_OK;
}

/* Every tensor the program reads (tied weights appear once: same host pointer). */
static fp4rt_status list_tensors(const fp4rt_program *p, tensor_list *l) {
    l->embed_dtype = p->weights->embed_dtype;
    fp4rt_status st = fp4rt_program_tensors(p, add_tensor, l);
    if (st) return st;
    /* sorted by host pointer, duplicates merged (the larger size wins) */
    std::sort(l->t, l->t + l->n, [](const cu_tensor &a, const cu_tensor &b) {
        return (uintptr_t)a.host < (uintptr_t)b.host;
    });
    int m = 0;
    for (int i = 0; i < l->n; i++) {
        if (m > 0 && l->t[m - 1].host == l->t[i].host)
            l->t[m - 1].bytes = std::max(l->t[m - 1].bytes, l->t[i].bytes);
        else
            l->t[m++] = l->t[i];
    }
    l->n = m;
    return FP4RT_OK;
}

/* Deterministic valid values for synthetic weights, generated on the device
 * (bench --synthetic): a hash of (seed, byte offset in the tensor) per element.
 * E2M1 bytes: any; E4M3 block scales 0.5 .. 0.9375 (codes 0x30..0x37); FP8
 * weights |x| < 2, never NaN; BF16 / F16 / F32 |x| < 0.125. */
__device__ static uint64_t synth_hash(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

__global__ static void synth_fill(unsigned char *dst, size_t n, int fill, uint64_t seed) {
    size_t es = fill == CU_FILL_F32 ? 4 : fill == CU_FILL_BF16 || fill == CU_FILL_F16 ? 2 : 1;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n / es; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t h = synth_hash(seed ^ (i * es));
        uint32_t sign = (uint32_t)(h >> 63), m = (uint32_t)h;
        switch (fill) {
        case CU_FILL_BYTES: dst[i] = (unsigned char)h; break;
        case CU_FILL_SCALE: dst[i] = (unsigned char)(0x30 | (m & 7)); break;
        case CU_FILL_FP8: dst[i] = (unsigned char)(sign << 7 | (m & 0x3f)); break; /* exponent <= 7: |x| < 2 */
        case CU_FILL_BF16: ((uint16_t *)dst)[i] = (uint16_t)(sign << 15 | (116 + (m >> 7) % 8) << 7 | (m & 0x7f)); break;
        case CU_FILL_F16: ((uint16_t *)dst)[i] = (uint16_t)(sign << 15 | (5 + (m >> 10) % 7) << 10 | (m & 0x3ff)); break;
        default: ((uint32_t *)dst)[i] = sign << 31 | (116 + (m >> 23) % 8) << 23 | (m & 0x7fffff); break;
        }
    }
}

static int is_placeholder(const fp4rt_weights *w, const void *ptr) {
    return w->synthetic && (const unsigned char *)ptr >= w->synth_base &&
           (const unsigned char *)ptr < w->synth_base + w->synth_bytes;
}

static fp4rt_status cu_prepare_impl(void *vc, const fp4rt_program *p, int synthetic, uint64_t seed) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    if (c->prepared == p) return FP4RT_OK;
    if (c->prepared) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: the backend is already prepared for a program");
    cudaSetDevice(c->device);
    tensor_list l = {NULL, 0, 0};
    fp4rt_status st = list_tensors(p, &l);
    size_t total = 0;
    for (int i = 0; !st && i < l.n; i++) {
        total = (total + CU_WEIGHT_ALIGN - 1) / CU_WEIGHT_ALIGN * CU_WEIGHT_ALIGN;
        l.t[i].offset = total;
        total += l.t[i].bytes;
    }
    if (!st) {
        cudaError_t e = cudaMalloc(&c->weights, total ? total : 1);
        if (e) {
            cudaGetLastError();
            c->weights = NULL;
            st = fp4rt_cu_fail(e == cudaErrorMemoryAllocation ? FP4RT_OUT_OF_MEMORY : FP4RT_DEVICE,
                               "cuda:%d: the weights need %.2f GiB of device memory: %s", c->device, total / 1073741824.0,
                               cudaGetErrorString(e));
        }
    }
    for (int i = 0; !st && i < l.n; i++) {
        unsigned char *dst = (unsigned char *)c->weights + l.t[i].offset;
        if (synthetic && is_placeholder(p->weights, l.t[i].host)) {
            size_t off = (size_t)((const unsigned char *)l.t[i].host - p->weights->synth_base);
            synth_fill<<<1024, 256, 0, c->stream>>>(dst, l.t[i].bytes, l.t[i].fill, seed ^ ((uint64_t)off << 20));
            st = fp4rt_cu_check_launch("synth_fill");
        } else {
            st = upload(c, dst, l.t[i].host, l.t[i].bytes);
        }
        if (st) fp4rt_cu_host->fail_context(st, l.t[i].name ? l.t[i].name : "tensor");
    }
    if (!st) st = ck(cudaStreamSynchronize(c->stream), "uploading the weights");
    if (st) {
        cudaFree(c->weights);
        c->weights = NULL;
        free(l.t);
        return fp4rt_cu_host->fail_context(st, "cuda: uploading the weights");
    }
    c->tensors = l.t;
    c->n_tensors = l.n;
    c->weights_bytes = total;
    c->prepared = p;
    fp4rt_cu_log(FP4RT_LOG_DEBUG, "cuda:%d: %d tensors, %.3f GiB uploaded through %zu KiB of pinned staging", c->device,
                 l.n, total / 1073741824.0, 2 * c->staging_half >> 10);
    return FP4RT_OK;
}

static fp4rt_status cu_prepare(void *vc, const fp4rt_program *p) { return cu_prepare_impl(vc, p, 0, 0); }

static fp4rt_status cu_prepare_synthetic(void *vc, const fp4rt_program *p, uint64_t seed) {
    return cu_prepare_impl(vc, p, 1, seed);
}

const void *fp4rt_cu_weight(const fp4rt_cu_ctx *c, const void *host) {
    int lo = 0, hi = c->n_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uintptr_t h = (uintptr_t)c->tensors[mid].host;
        if (h == (uintptr_t)host) return (const unsigned char *)c->weights + c->tensors[mid].offset;
        if (h < (uintptr_t)host)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* ---- per-session state: workspace, step info ---- */

/* The workspace an op needs: each family reports its own part; ops run one
 * after another on the stream, so one area of the largest need serves all. */
size_t fp4rt_cu_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk) {
    size_t need = fp4rt_cu_linear_workspace_bytes(p, op, chunk);
    need = std::max(need, fp4rt_cu_w4a4_workspace_bytes(op, chunk));
    need = std::max(need, fp4rt_cu_attn_gdn_workspace_bytes(p, op, chunk));
    return need;
}

void *fp4rt_cu_workspace(const fp4rt_cu_step *s, size_t bytes) {
    if (bytes > s->c->workspace_bytes) {
        fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: an op asked for %zu bytes of workspace, %zu reserved "
                                              "(fp4rt_cu_workspace_bytes under-reports)", bytes, s->c->workspace_bytes);
        return NULL;
    }
    return s->c->workspace;
}

/* The program's RoPE table for n_ctx positions (fp4rt_cu_rope_table), built on
 * the host and uploaded once per (program, n_ctx): never while a graph is
 * captured, never per step. A table of as many positions or more is kept. */
static fp4rt_status ensure_rope_table(fp4rt_cu_ctx *c, const fp4rt_program *p, int n_ctx) {
    if (c->rope_program == p && c->rope_ctx >= n_ctx) return FP4RT_OK;
    float *tab = NULL;
    size_t n = 0;
    fp4rt_status st = fp4rt_cu_rope_table(p, n_ctx, &tab, &n);
    if (st) return st;
    cudaStreamSynchronize(c->stream); /* no step still reads the old table */
    cudaFree(c->rope_tab);
    c->rope_tab = NULL;
    c->rope_program = NULL;
    c->rope_ctx = c->rope_dim = 0;
    if (tab) {
        cudaError_t e = cudaMalloc((void **)&c->rope_tab, n * sizeof(float));
        if (e) {
            cudaGetLastError();
            c->rope_tab = NULL;
            free(tab);
            return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "cuda:%d: RoPE table of %zu bytes: %s", c->device,
                                 n * sizeof(float), cudaGetErrorString(e));
        }
        st = upload(c, c->rope_tab, tab, n * sizeof(float)); /* copied to staging before it returns */
        free(tab);
        if (st) return fp4rt_cu_host->fail_context(st, "cuda: uploading the RoPE table");
        for (int i = 0; i < p->n_ops; i++) /* fp4rt_cu_rope_table checked that all agree */
            if (p->ops[i].kind == FP4RT_OP_ROPE) {
                c->rope_dim = p->ops[i].rotary_dim;
                c->rope_theta = p->ops[i].rope_theta;
                c->rope_mode = p->ops[i].rope_mode;
                break;
            }
        c->rope_ctx = n_ctx;
    }
    c->rope_program = p;
    return FP4RT_OK;
}

static fp4rt_status ensure_workspace(fp4rt_cu_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb) {
    int chunk = sb->chunk;
    if (c->workspace && c->ws_program == p && c->ws_chunk == chunk && c->ws_n_ctx == sb->n_ctx)
        return FP4RT_OK; /* every step: no op walk */
    c->ws_program = NULL; /* set once everything below succeeded */
    fp4rt_status st = ensure_rope_table(c, p, sb->n_ctx);
    if (st) return st;
    size_t need = 0;
    for (int i = 0; i < p->n_ops; i++) {
        need = std::max(need, fp4rt_cu_workspace_bytes(p, &p->ops[i], chunk));
        need = std::max(need, fp4rt_cu_workspace_bytes(p, &p->ops[i], 1));
    }
    if (need > c->workspace_bytes) {
        need = (need + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        cudaStreamSynchronize(c->stream);
        cudaFree(c->workspace);
        c->workspace = NULL;
        c->workspace_bytes = 0;
        cudaError_t e = cudaMalloc(&c->workspace, need);
        if (e) {
            cudaGetLastError();
            c->workspace = NULL;
            return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "cuda:%d: workspace of %zu bytes: %s", c->device, need,
                                 cudaGetErrorString(e));
        }
        c->workspace_bytes = need;
    }
    c->ws_program = p;
    c->ws_chunk = chunk;
    c->ws_n_ctx = sb->n_ctx;
    return FP4RT_OK;
}

/* The rotary positions and the override flags after the tokens of a step info of cap tokens. */
static int32_t *step_rpos(fp4rt_cu_step_info *i, int cap) { return i->tokens + cap; }
static uint8_t *step_flags(fp4rt_cu_step_info *i, int cap) { return (uint8_t *)(i->tokens + 4 * (size_t)cap); }

static fp4rt_status ensure_step_info(fp4rt_cu_ctx *c, int chunk) {
    if (chunk <= c->step_cap) return FP4RT_OK;
    size_t bytes = sizeof(fp4rt_cu_step_info) + (size_t)chunk * (4 * sizeof(int32_t) + 1);
    cudaStreamSynchronize(c->stream);
    cudaFree(c->d_step);
    c->d_step = NULL;
    c->step_cap = 0;
    fp4rt_status st = ck(cudaMalloc((void **)&c->d_step, bytes), "allocating the step info");
    for (int i = 0; !st && i < CU_STEP_SLOTS; i++) {
        cudaFreeHost(c->h_step[i]);
        c->h_step[i] = NULL;
        st = ck(cudaHostAlloc((void **)&c->h_step[i], bytes, cudaHostAllocDefault), "allocating the step info");
    }
    if (!st) c->step_cap = chunk;
    return st;
}

/* ---- the step ---- */

static fp4rt_status record_op(const fp4rt_cu_step *s, const fp4rt_op *op) {
    switch (op->kind) {
    case FP4RT_OP_EMBED: return fp4rt_cu_op_embed(s, op);
    case FP4RT_OP_RMSNORM:
    case FP4RT_OP_GATED_RMSNORM:
    case FP4RT_OP_L2NORM: return fp4rt_cu_op_norm(s, op);
    case FP4RT_OP_SIGMOID_GATE:
    case FP4RT_OP_SWIGLU:
    case FP4RT_OP_ADD: return fp4rt_cu_op_eltwise(s, op);
    case FP4RT_OP_LINEAR:
        return op->lin->fmt == FP4RT_W_NVFP4_W4A4 ? fp4rt_cu_op_linear_w4a4(s, op) : fp4rt_cu_op_linear(s, op);
    case FP4RT_OP_ROPE: return fp4rt_cu_op_rope(s, op);
    case FP4RT_OP_KV_APPEND: return fp4rt_cu_op_kv_append(s, op);
    case FP4RT_OP_ATTENTION: return fp4rt_cu_op_attention(s, op);
    case FP4RT_OP_CONV1D_SILU: return fp4rt_cu_op_conv(s, op);
    case FP4RT_OP_GATED_DELTA: return fp4rt_cu_op_gdn(s, op);
    case FP4RT_OP_LAYERNORM: return fp4rt_cu_op_layernorm(s, op);
    case FP4RT_OP_BIAS:
    case FP4RT_OP_GELU: return fp4rt_cu_op_bias_gelu(s, op);
    case FP4RT_OP_ATTENTION_FULL: return fp4rt_cu_op_attention_full(s, op);
    default: return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: op kind %d", (int)op->kind);
    }
}

static fp4rt_status record_ops(const fp4rt_cu_step *s) {
    for (int i = 0; i < s->p->n_ops; i++) {
        const fp4rt_op *op = &s->p->ops[i];
        fp4rt_status st = record_op(s, op);
        if (!st) st = fp4rt_cu_check_launch(op_name(op->kind));
        if (st) {
            char where[96];
            snprintf(where, sizeof where, "op %d (%s, layer %d)", i, op_name(op->kind), op->layer);
            return fp4rt_cu_host->fail_context(st, where);
        }
    }
    return FP4RT_OK;
}

/* A decode step (one token) or a verify step (decode_rows: the same kernels for
 * each row, the checkpoints written by the GDN kernels): replays the graph
 * captured for the same buffers, shape and flags, else captures one. The host
 * view of the step given to the recorders during capture has pos0 = -1 and no
 * tokens: they must come from d_step. */
static fp4rt_status run_graph(fp4rt_cu_ctx *c, fp4rt_cu_step *s) {
    cu_graph_key k;
    memset(&k, 0, sizeof k);
    const fp4rt_session_buffers *sb = s->sb;
    k.p = s->p;
    k.bufs[0] = sb->scratch ? sb->scratch->dev : NULL;
    k.bufs[1] = sb->kv ? sb->kv->dev : NULL;
    k.bufs[2] = sb->conv ? sb->conv->dev : NULL;
    k.bufs[3] = sb->ssm ? sb->ssm->dev : NULL;
    k.bufs[4] = sb->logits ? sb->logits->dev : NULL;
    k.bufs[5] = sb->ckpt && s->step->decode_rows ? sb->ckpt->dev : NULL;
    k.n_ctx = sb->n_ctx;
    k.chunk = sb->chunk;
    k.kv_type = (int)sb->kv_type;
    k.all_logits = s->step->all_logits;
    k.no_logits = s->step->no_logits;
    k.n_tokens = s->step->n_tokens;
    k.decode_rows = s->step->decode_rows;
    k.logits_rows = s->step->logits_rows;
    k.workspace = c->workspace;
    k.workspace_bytes = c->workspace_bytes;
    k.d_step = c->d_step;
    k.rope_tab = c->rope_tab;
    k.d_embeds = c->d_embeds;
    if (!c->graph || memcmp(&k, &c->graph_key, sizeof k)) {
        if (c->graph) cudaGraphExecDestroy(c->graph);
        c->graph = NULL;
        fp4rt_step hv = *s->step;
        hv.pos0 = -1;
        hv.tokens = NULL;
        fp4rt_cu_step cs = *s;
        cs.step = &hv;
        fp4rt_status st = ck(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal), "starting graph capture");
        if (st) return st;
        st = record_ops(&cs);
        cudaGraph_t g = NULL;
        cudaError_t e = cudaStreamEndCapture(c->stream, &g);
        if (!st && e) st = fp4rt_cu_error(e, "capturing the step (an op did something a graph cannot hold)");
        if (!st) st = ck(cudaGraphInstantiate(&c->graph, g, 0), "instantiating the step graph");
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
        if (st) {
            c->graph = NULL;
            return st;
        }
        c->graph_key = k;
        c->graph_captures++;
        fp4rt_cu_log(FP4RT_LOG_DEBUG, "cuda:%d: %s step of %d rows captured as a CUDA graph (capture %ld)",
                     c->device, k.decode_rows ? "verify" : "decode", k.n_tokens, c->graph_captures);
    }
    c->graph_launches++;
    return ck(cudaGraphLaunch(c->graph, c->stream), "launching the step graph");
}

static fp4rt_status cu_run(void *vc, const fp4rt_program *p, const fp4rt_session_buffers *sb, const fp4rt_step *step) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc; /* the step was checked by fp4rt_backend_run (backend.h) */
    cudaSetDevice(c->device);
    fp4rt_status st = cu_prepare(c, p);
    if (!st) st = ensure_workspace(c, p, sb);
    if (!st) st = ensure_step_info(c, sb->chunk);
    if (st) return st;
    /* the step info, through a pinned slot whose previous copy has finished */
    int slot = c->step_slot;
    c->step_slot = (slot + 1) % CU_STEP_SLOTS;
    st = ck(cudaEventSynchronize(c->h_step_done[slot]), "step info");
    if (st) return st;
    fp4rt_cu_step_info *h = c->h_step[slot];
    int n = step->n_tokens, cap = c->step_cap;
    h->pos0 = step->pos0;
    h->n_tokens = n;
    memcpy(h->tokens, step->tokens, (size_t)n * sizeof(int32_t));
    int32_t *rpos = step_rpos(h, cap);
    for (int t = 0; t < n; t++)
        for (int k = 0; k < 3; k++) rpos[3 * t + k] = fp4rt_step_rope_pos(step, t, k);
    uint8_t *flags = step_flags(h, cap);
    if (step->embed_rows)
        memcpy(flags, step->embed_rows, (size_t)n);
    else
        memset(flags, 0, (size_t)n);
    st = ck(cudaMemcpyAsync(c->d_step, h, sizeof *h + (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice, c->stream),
            "copying the step info");
    if (!st)
        st = ck(cudaMemcpyAsync(step_rpos(c->d_step, cap), rpos, (size_t)n * 3 * sizeof(int32_t),
                                cudaMemcpyHostToDevice, c->stream), "copying the rotary positions");
    if (!st)
        st = ck(cudaMemcpyAsync(step_flags(c->d_step, cap), flags, (size_t)n, cudaMemcpyHostToDevice, c->stream),
                "copying the embedding overrides");
    if (!st) st = ck(cudaEventRecord(c->h_step_done[slot], c->stream), "step info");
    size_t hidden = (size_t)p->weights->cfg.hidden, ne = (size_t)sb->chunk * hidden;
    if (!st && step->input_embeds && c->embeds_cap < ne) { /* grown to a whole chunk, once */
        cudaStreamSynchronize(c->stream);
        cudaFree(c->d_embeds);
        c->embeds_cap = 0;
        st = ck(cudaMalloc((void **)&c->d_embeds, ne * sizeof(float)), "allocating the embedding overrides");
        if (st) c->d_embeds = NULL;
        else c->embeds_cap = ne;
    }
    if (!st && step->input_embeds) /* pageable source: returns once the copy is staged */
        st = ck(cudaMemcpyAsync(c->d_embeds, step->input_embeds, (size_t)n * hidden * sizeof(float),
                                cudaMemcpyHostToDevice, c->stream), "copying the embedding overrides");
    if (st) return st;
    fp4rt_cu_step s = {c,      c->stream,   p,           sb,          step, c->d_step,
                       c->sm,  c->rope_tab, c->rope_ctx, c->rope_dim, c->rope_theta,
                       step_rpos(c->d_step, cap), step_flags(c->d_step, cap), c->d_embeds, c->rope_mode};
    st = (step->n_tokens == 1 || step->decode_rows) && c->use_graphs ? run_graph(c, &s) : record_ops(&s);
    if (!st && step->argmax_out) { /* after the step (a graph replay too), a launch of its own; waits */
        int vocab = p->weights->cfg.vocab;
        size_t row = step->all_logits ? (size_t)(step->n_tokens - 1) * vocab : 0;
        st = fp4rt_cu_pick(c, (const float *)sb->logits->dev + row, vocab, step->argmax_valid, step->argmax_out);
    }
    return st;
}

static fp4rt_status cu_synchronize(void *vc) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    cudaSetDevice(c->device);
    return ck(cudaStreamSynchronize(c->stream), "waiting for the device");
}

static void cu_describe(void *vc, char *buf, size_t n) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    const char *path = c->desc.fp4_path == FP4RT_CUDA_FP4_NATIVE    ? "native FP4 MMA"
                       : c->desc.fp4_path == FP4RT_CUDA_FP4_DEQUANT ? "in-register dequant"
                                                                    : "in-register dequant (tcgen05 FP4 not implemented yet)";
    snprintf(buf, n, "cuda:%d: %s (sm_%d, %.0f GiB, %.0f GB/s), FP32 math, NVFP4 %s%s", c->device, c->desc.name, c->sm,
             c->desc.memory_bytes / 1073741824.0, c->desc.bandwidth_gbs, path,
             c->use_graphs ? ", decode and verify steps as CUDA graphs" : "");
}

const fp4rt_backend_ops fp4rt_cu_backend_ops = {
    "cuda",
    cu_create,
    cu_destroy,
    cu_buffer_alloc,
    cu_buffer_free,
    cu_buffer_upload,
    cu_buffer_download,
    cu_buffer_clear,
    cu_prepare,
    cu_run,
    cu_synchronize,
    cu_describe,
    NULL,                       /* set_observer */
    fp4rt_cu_measure_bandwidth, /* cu_bandwidth.cu */
    NULL,                       /* max_chunk */
    NULL,                       /* set_profile */
    fp4rt_cu_argmax,            /* cu_sample.cu */
    cu_prepare_synthetic,
    fp4rt_cu_top_k,             /* cu_sample.cu */
    cu_buffer_copy,
    1, /* decode_rows: verify steps in one step (cu_gdn.cu, cu_attention.cu) */
};
