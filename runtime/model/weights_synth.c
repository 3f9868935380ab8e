/* Synthetic weights (fp4rt bench --synthetic): a preset config with the recipe's
 * formats and no checkpoint. The big tensors get distinct addresses inside one
 * PROT_NONE, MAP_NORESERVE reservation (no memory behind them) and a region
 * record saying what they hold; backends fill them on the device from
 * fp4rt_weights_synth_bytes (or, on the CPU, fp4rt_weights_materialize makes the
 * reservation host memory and fills it). */
#include "runtime/model/weights.h"

#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"
#include "runtime/model/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef enum synth_kind {
    SYNTH_E2M1,  /* packed NVFP4 nibbles: any byte */
    SYNTH_SCALE, /* E4M3 block scales: codes 0x30 .. 0x37 (0.5 .. 0.9375) */
    SYNTH_FP8,   /* E4M3 weights: exponent field <= 7 (|x| < 2), never NaN */
    SYNTH_BF16   /* BF16: |x| in [2^-7, 2^-3) */
} synth_kind;

struct fp4rt_synth_region {
    size_t offset, bytes;
    synth_kind kind;
};

#define SYNTH_ALIGN 256

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The 8 bytes at reservation offset o (a multiple of 8) of a region of `kind`. */
static void synth_word(synth_kind kind, uint64_t seed, size_t o, unsigned char b[8]) {
    uint64_t h = mix64(seed * 0xD1B54A32D192ED03ull ^ (uint64_t)(o >> 3));
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(h >> (8 * i));
    switch (kind) {
    case SYNTH_E2M1: break;
    case SYNTH_SCALE:
        for (int i = 0; i < 8; i++) b[i] = (unsigned char)(0x30 + (b[i] & 7));
        break;
    case SYNTH_FP8:
        for (int i = 0; i < 8; i++) b[i] = (unsigned char)((b[i] & 0x80) | (b[i] & 0x3f));
        break;
    case SYNTH_BF16:
        for (int i = 0; i < 8; i += 2) {
            unsigned v = (unsigned)b[i] | (unsigned)b[i + 1] << 8;
            v = (v & 0x8000u) | ((120u + ((v >> 8) & 3u)) << 7) | (v & 0x7fu);
            b[i] = (unsigned char)v;
            b[i + 1] = (unsigned char)(v >> 8);
        }
        break;
    }
}

int fp4rt_weights_is_placeholder(const fp4rt_weights *w, const void *ptr) {
    const unsigned char *p = ptr;
    return w && w->synth_base && !w->synth_materialized && p >= w->synth_base && p < w->synth_base + w->synth_bytes;
}

/* The region holding reservation offset o (regions are sorted); NULL in padding. */
static const fp4rt_synth_region *find_region(const fp4rt_weights *w, size_t o) {
    size_t lo = 0, hi = w->n_synth_regions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const fp4rt_synth_region *r = &w->synth_regions[mid];
        if (o < r->offset) hi = mid;
        else if (o >= r->offset + r->bytes) lo = mid + 1;
        else return r;
    }
    return NULL;
}

void fp4rt_weights_synth_bytes(const fp4rt_weights *w, const void *ptr, size_t n, uint64_t seed, void *dst) {
    unsigned char *out = dst;
    size_t o = (size_t)((const unsigned char *)ptr - w->synth_base);
    while (n > 0) {
        const fp4rt_synth_region *r = find_region(w, o);
        size_t end = r ? r->offset + r->bytes : o + 1; /* padding: zero bytes */
        size_t len = end - o < n ? end - o : n;
        if (!r) {
            memset(out, 0, len);
        } else {
            for (size_t i = 0; i < len;) {
                size_t word = (o + i) & ~(size_t)7, in = (o + i) - word;
                unsigned char b[8];
                synth_word(r->kind, seed, word, b);
                size_t k = 8 - in < len - i ? 8 - in : len - i;
                memcpy(out + i, b + in, k);
                i += k;
            }
        }
        out += len;
        o += len;
        n -= len;
    }
}

static uint64_t meminfo_kb(const char *key);

uint64_t fp4rt_host_mem_available(void) {
    uint64_t kb = meminfo_kb("MemAvailable");
    if (kb) return kb * 1024;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

static uint64_t meminfo_kb(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && sscanf(line + k, ": %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

fp4rt_status fp4rt_host_mem_check(uint64_t need, const char *what) {
    uint64_t avail = fp4rt_host_mem_available(), total = meminfo_kb("MemTotal") * 1024;
    /* leave a quarter of the machine (at least 2 GiB) to the session and everything else */
    uint64_t margin = total / 4 > (2ull << 30) ? total / 4 : (2ull << 30);
    if (avail && need + margin > avail)
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY,
                          "%s: out of memory: %.2f GiB needed, %.2f GiB of host memory available (%.2f GiB kept free)",
                          what, need / 1073741824.0, avail / 1073741824.0, margin / 1073741824.0);
    return FP4RT_OK;
}

fp4rt_status fp4rt_weights_materialize(fp4rt_weights *w, uint64_t seed) {
    if (!w->synth_base || w->synth_materialized) return FP4RT_OK;
    fp4rt_status st = fp4rt_host_mem_check(w->synth_bytes, "synthetic weights in host memory");
    if (st) return st;
    if (mprotect(w->synth_base, w->synth_bytes, PROT_READ | PROT_WRITE))
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synthetic weights: cannot map %zu bytes of host memory",
                          w->synth_bytes);
    for (size_t i = 0; i < w->n_synth_regions; i++) {
        const fp4rt_synth_region *r = &w->synth_regions[i];
        fp4rt_weights_synth_bytes(w, w->synth_base + r->offset, r->bytes, seed, w->synth_base + r->offset);
    }
    w->synth_materialized = 1;
    return FP4RT_OK;
}

void fp4rt_weights_synth_release(fp4rt_weights *w) {
    if (w->synth_base) munmap(w->synth_base, w->synth_bytes);
    w->synth_base = NULL;
    free(w->synth_regions);
    w->synth_regions = NULL;
}

/* ---- building ------------------------------------------------------------- */

typedef struct builder {
    fp4rt_weights *w;
    size_t cap;
    uint64_t rng;
} builder;

/* Reserves `bytes` of kind at the next aligned offset; returns its placeholder
 * address (synth_base is set once the total is known: offsets are kept until then
 * as base-relative values and rebased by rebase()). */
static const void *reserve(builder *b, size_t bytes, synth_kind kind, fp4rt_status *st) {
    fp4rt_weights *w = b->w;
    if (w->n_synth_regions == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        fp4rt_synth_region *r = realloc(w->synth_regions, cap * sizeof *r);
        if (!r) {
            *st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synthetic weights: out of memory for regions");
            return NULL;
        }
        w->synth_regions = r;
        b->cap = cap;
    }
    fp4rt_synth_region *r = &w->synth_regions[w->n_synth_regions++];
    r->offset = w->synth_bytes;
    r->bytes = bytes;
    r->kind = kind;
    w->synth_bytes += (bytes + SYNTH_ALIGN - 1) / SYNTH_ALIGN * SYNTH_ALIGN;
    return (const void *)(uintptr_t)(r->offset + 1); /* rebased later; +1 keeps it non-NULL */
}

static const void *rebase(const fp4rt_weights *w, const void *rel) {
    return rel ? w->synth_base + ((uintptr_t)rel - 1) : NULL;
}

static float uniform(builder *b) { /* [0, 1) */
    b->rng = mix64(b->rng);
    return (float)(b->rng >> 40) / 16777216.0f;
}

/* A real FP32 vector: base + spread * (uniform - 0.5). */
static float *vec(builder *b, int64_t n, float base, float spread, fp4rt_status *st) {
    float *v = fp4rt_malloc((size_t)n * sizeof(float), "synthetic vector");
    if (!v) {
        *st = FP4RT_OUT_OF_MEMORY;
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) v[i] = base + spread * (uniform(b) - 0.5f);
    return v;
}

static fp4rt_status make_linear(builder *b, const char *recipe, const fp4rt_tensor_spec *sp, fp4rt_linear *l) {
    fp4rt_status st = FP4RT_OK;
    memset(l, 0, sizeof *l);
    l->module = fp4rt_strdup(sp->module);
    if (!l->module) return FP4RT_OUT_OF_MEMORY;
    int n = (int)sp->shape[0], k = (int)sp->shape[1];
    size_t nk = (size_t)n * (size_t)k;
    l->n_out = n;
    l->n_in = k;
    float rk = 1.0f / sqrtf((float)k);
    fp4rt_qalgo a = fp4rt_recipe_algo(recipe, sp);
    switch (a) {
    case FP4RT_Q_FP8:
        l->fmt = FP4RT_W_FP8;
        l->weight = reserve(b, nk, SYNTH_FP8, &st);
        l->weight_scale = 1.6f * rk;          /* codes have rms ~0.6 */
        l->input_scale = 8.0f / 448.0f;       /* activations up to ~8 */
        break;
    case FP4RT_Q_NVFP4_W4A16:
    case FP4RT_Q_NVFP4_W4A4:
        if (k % 16)
            return fp4rt_fail(FP4RT_UNSUPPORTED, "synthetic: module %s has %d inputs, not a multiple of 16",
                              sp->module, k);
        l->fmt = a == FP4RT_Q_NVFP4_W4A4 ? FP4RT_W_NVFP4_W4A4 : FP4RT_W_NVFP4;
        l->weight = reserve(b, nk / 2, SYNTH_E2M1, &st);
        if (!st) l->block_scale = reserve(b, nk / 16, SYNTH_SCALE, &st);
        l->weight_scale = rk / 2.1f; /* E2M1 rms ~2.9, block scales ~0.72 */
        if (a == FP4RT_Q_NVFP4_W4A4) l->input_scale = 8.0f / (6.0f * 448.0f);
        break;
    default:
        l->fmt = FP4RT_W_BF16;
        l->weight = reserve(b, nk * 2, SYNTH_BF16, &st);
        l->weight_scale = 1.0f;
        break;
    }
    fp4rt_linear_set_bytes(l);
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Plausible values for a small vector (norms ~1, conv small, dt_bias ~0, neg_A in [-16, -1)). */
static fp4rt_status make_vector(builder *b, const fp4rt_tensor_spec *sp, fp4rt_layer_weights *L) {
    fp4rt_status st = FP4RT_OK;
    int64_t n = 1;
    for (int i = 0; i < sp->ndim; i++) n *= sp->shape[i];
    fp4rt_weights *w = b->w;
    if (sp->role == FP4RT_ROLE_NORM) {
        float **dst = !L                                                  ? &w->final_norm
                      : ends_with(sp->name, "input_layernorm.weight")          ? &L->input_norm
                      : ends_with(sp->name, "post_attention_layernorm.weight") ? &L->post_norm
                      : ends_with(sp->name, "q_norm.weight")                   ? &L->q_norm
                                                                               : &L->k_norm;
        *dst = vec(b, n, 1.0f, 0.1f, &st);
    } else if (sp->role == FP4RT_ROLE_NORM_PLAIN) {
        L->gdn_norm = vec(b, n, 1.0f, 0.1f, &st);
    } else if (sp->role == FP4RT_ROLE_CONV) {
        L->conv_w = vec(b, n, 0.0f, 0.6f, &st);
    } else if (ends_with(sp->name, "dt_bias")) {
        L->dt_bias = vec(b, n, 0.0f, 1.0f, &st);
    } else if (ends_with(sp->name, "A_log")) {
        L->neg_A = vec(b, n, -8.5f, 15.0f, &st);
    } else {
        st = fp4rt_fail(FP4RT_INTERNAL, "synthetic: no slot for tensor %s", sp->name);
    }
    return st;
}

static void rebase_linear(const fp4rt_weights *w, fp4rt_linear *l) {
    l->weight = rebase(w, l->weight);
    l->block_scale = rebase(w, l->block_scale);
}

/* The vision tower of the preset (BF16 linears as NVIDIA's files and fp4rt quantize
 * keep it; LayerNorm weights ~1, biases ~0, the position table ~N(0, 0.3^2)). */
static fp4rt_status make_vision(builder *b) {
    fp4rt_weights *w = b->w;
    const fp4rt_vision_config *vc = &w->cfg.vision;
    fp4rt_tensor_spec *specs = NULL;
    size_t n = fp4rt_schema_vision_tensors(&w->cfg, &specs);
    if (!n) return vc->depth > 0 ? FP4RT_OUT_OF_MEMORY : FP4RT_OK;
    fp4rt_status st = FP4RT_OK;
    fp4rt_vision_weights *v = fp4rt_calloc(1, sizeof *v, "vision weights");
    if (v) v->blocks = fp4rt_calloc((size_t)vc->depth, sizeof *v->blocks, "vision blocks");
    w->vision = v;
    if (!v || !v->blocks) st = FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; !st && i < n; i++) {
        const fp4rt_tensor_spec *sp = &specs[i];
        fp4rt_vision_block *B = sp->layer >= 0 ? &v->blocks[sp->layer] : NULL;
        const char *nm = sp->name + strlen("model.visual.");
        int64_t numel = 1;
        for (int d = 0; d < sp->ndim; d++) numel *= sp->shape[d];
        v->n_tensors++;
        v->bytes += (uint64_t)numel * 2;
        if (sp->role == FP4RT_ROLE_VLINEAR) {
            fp4rt_linear *l = !B ? (!strcmp(nm, "patch_embed.proj.weight") ? &v->patch
                                    : ends_with(nm, "linear_fc1.weight") ? &v->merger_fc1 : &v->merger_fc2)
                              : ends_with(nm, "attn.qkv.weight") ? &B->qkv
                              : ends_with(nm, "attn.proj.weight") ? &B->proj
                              : ends_with(nm, "linear_fc1.weight") ? &B->fc1 : &B->fc2;
            l->module = fp4rt_strdup(sp->module);
            if (!l->module) st = FP4RT_OUT_OF_MEMORY;
            l->fmt = FP4RT_W_BF16;
            l->n_out = (int)sp->shape[0];
            l->n_in = (int)(numel / sp->shape[0]);
            l->weight_scale = 1.0f;
            if (!st) l->weight = reserve(b, (size_t)numel * 2, SYNTH_BF16, &st);
            fp4rt_linear_set_bytes(l);
            continue;
        }
        float **dst = !B ? (!strcmp(nm, "patch_embed.proj.bias") ? &v->patch_b
                            : !strcmp(nm, "pos_embed.weight") ? &v->pos_embed
                            : !strcmp(nm, "merger.norm.weight") ? &v->merger_norm_w
                            : !strcmp(nm, "merger.norm.bias") ? &v->merger_norm_b
                            : !strcmp(nm, "merger.linear_fc1.bias") ? &v->merger_fc1_b : &v->merger_fc2_b)
                         : ends_with(nm, "norm1.weight") ? &B->norm1_w
                         : ends_with(nm, "norm1.bias") ? &B->norm1_b
                         : ends_with(nm, "norm2.weight") ? &B->norm2_w
                         : ends_with(nm, "norm2.bias") ? &B->norm2_b
                         : ends_with(nm, "attn.qkv.bias") ? &B->qkv_b
                         : ends_with(nm, "attn.proj.bias") ? &B->proj_b
                         : ends_with(nm, "linear_fc1.bias") ? &B->fc1_b : &B->fc2_b;
        *dst = sp->role == FP4RT_ROLE_VNORM_W ? vec(b, numel, 1.0f, 0.2f, &st)
               : sp->role == FP4RT_ROLE_VPOS  ? vec(b, numel, 0.0f, 1.0f, &st)
                                              : vec(b, numel, 0.0f, 0.04f, &st);
    }
    free(specs);
    return st;
}

static void rebase_vision(const fp4rt_weights *w) {
    fp4rt_vision_weights *v = w->vision;
    if (!v) return;
    rebase_linear(w, &v->patch);
    rebase_linear(w, &v->merger_fc1);
    rebase_linear(w, &v->merger_fc2);
    for (int i = 0; i < w->cfg.vision.depth; i++) {
        fp4rt_vision_block *B = &v->blocks[i];
        rebase_linear(w, &B->qkv);
        rebase_linear(w, &B->proj);
        rebase_linear(w, &B->fc1);
        rebase_linear(w, &B->fc2);
    }
}

fp4rt_status fp4rt_weights_synthetic(const char *preset, const char *recipe, fp4rt_weights **out) {
    *out = NULL;
    if (!recipe) recipe = "nvidia-mixed";
    if (fp4rt_recipe_known(recipe) < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "unknown recipe '%s' (nvidia-mixed, nvfp4-all, nvfp4-w4a4, fp8)",
                          recipe);
    fp4rt_numfmt_init();
    fp4rt_weights *w = fp4rt_calloc(1, sizeof *w, "weights");
    if (!w) return FP4RT_OUT_OF_MEMORY;
    w->synthetic = 1;
    snprintf(w->synth_recipe, sizeof w->synth_recipe, "%s", recipe);
    fp4rt_tensor_spec *specs = NULL;
    builder b = {w, 0, 0x5EED};
    fp4rt_status st = fp4rt_config_preset(preset, 0, &w->cfg);
    size_t n_specs = 0;
    if (!st) {
        n_specs = fp4rt_schema_tensors(&w->cfg, &specs);
        if (!n_specs) st = FP4RT_OUT_OF_MEMORY;
    }
    if (!st) w->layers = fp4rt_calloc((size_t)w->cfg.n_layers, sizeof *w->layers, "layers");
    if (!st && !w->layers) st = FP4RT_OUT_OF_MEMORY;
    for (int i = 0; !st && i < w->cfg.n_layers; i++) {
        w->layers[i].kind = w->cfg.layer_kind[i];
        w->layers[i].k_scale = w->layers[i].v_scale = 1.0f;
    }
    for (size_t i = 0; !st && i < n_specs; i++) {
        const fp4rt_tensor_spec *sp = &specs[i];
        fp4rt_layer_weights *L = sp->layer >= 0 ? &w->layers[sp->layer] : NULL;
        if (sp->role == FP4RT_ROLE_LINEAR) {
            fp4rt_linear *slot = L ? fp4rt_weights_linear_slot(L, sp->module) : &w->lm_head;
            st = slot ? make_linear(&b, recipe, sp, slot)
                      : fp4rt_fail(FP4RT_INTERNAL, "synthetic: no slot for module %s", sp->module);
        } else if (sp->role == FP4RT_ROLE_EMBED) {
            w->embed_dtype = FP4RT_DT_BF16;
            w->embed = reserve(&b, (size_t)sp->shape[0] * (size_t)sp->shape[1] * 2, SYNTH_BF16, &st);
        } else {
            st = make_vector(&b, sp, L);
        }
        w->n_tensors_used++;
    }
    free(specs);
    if (!st) st = make_vision(&b);
    if (!st) {
        void *base = mmap(NULL, w->synth_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
            st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synthetic weights: cannot reserve %zu bytes of address space",
                            w->synth_bytes);
        else
            w->synth_base = base;
    }
    if (!st) {
        w->embed = rebase(w, w->embed);
        rebase_vision(w);
        for (int i = 0; i < w->cfg.n_layers; i++) {
            fp4rt_layer_weights *L = &w->layers[i];
            fp4rt_linear *lins[] = {&L->gate, &L->up, &L->down, &L->q, &L->k,  &L->v,
                                    &L->o,    &L->qkv, &L->z,   &L->b, &L->a, &L->out};
            for (size_t j = 0; j < FP4RT_ARRAY_LEN(lins); j++) rebase_linear(w, lins[j]);
        }
        if (w->cfg.tie_embeddings) {
            fp4rt_linear *l = &w->lm_head;
            l->module = fp4rt_strdup("lm_head (tied to embed_tokens)");
            if (!l->module) st = FP4RT_OUT_OF_MEMORY;
            l->fmt = FP4RT_W_BF16;
            l->n_out = w->cfg.vocab;
            l->n_in = w->cfg.hidden;
            l->weight = w->embed;
            l->weight_scale = 1.0f;
            fp4rt_linear_set_bytes(l);
        } else {
            rebase_linear(w, &w->lm_head);
        }
    }
    if (st) {
        fp4rt_weights_free(w);
        return st;
    }
    *out = w;
    return FP4RT_OK;
}
