/* SPV_NV_cooperative_matrix -> SPV_KHR_cooperative_matrix (see vk_spirv_coop.h).
 *
 * Three passes over the instruction stream: collect the NV types, the pointer
 * types to them and the values / variables of those types; join every value
 * with the values it is loaded from, stored to, selected or copied from (union
 * find) and give each class the use its MulAdds ask (A, B, accumulator); then
 * write the module again with one KHR type (and pointer type) per NV type and
 * use, three new integer constants (0, 1, 2: the uses and the layouts), and the
 * KHR forms of load, store and MulAdd. */
#include "runtime/backend/vulkan/vk_spirv_coop.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

enum {
    OP_UNDEF = 1,
    OP_SOURCE = 3,
    OP_SOURCE_EXT = 4,
    OP_NAME = 5,
    OP_MEMBER_NAME = 6,
    OP_STRING = 7,
    OP_LINE = 8,
    OP_EXT_IMPORT = 11,
    OP_MEMORY_MODEL = 14,
    OP_ENTRY_POINT = 15,
    OP_EXEC_MODE = 16,
    OP_CONST_TRUE = 41,
    OP_CONST_FALSE = 42,
    OP_CONST_COMPOSITE = 44,
    OP_CONST_NULL = 46,
    OP_SPEC_CONST = 50,
    OP_VARIABLE = 59,
    OP_LOAD = 61,
    OP_STORE = 62,
    OP_DECORATE = 71,
    OP_MEMBER_DECORATE = 72,
    OP_COMPOSITE_CONSTRUCT = 80,
    OP_COPY_OBJECT = 83,
    OP_SELECT = 169,
    OP_LOOP_MERGE = 246,
    OP_SELECTION_MERGE = 247,
    OP_SWITCH = 251,
    OP_PHI = 245,
    OP_NO_LINE = 317,
    OP_MODULE_PROCESSED = 330,
    OP_COOP_LOAD_NV = 5359,
    OP_COOP_STORE_NV = 5360,
    OP_COOP_MULADD_NV = 5361,
    OP_COOP_LENGTH_NV = 5362,
};
enum { USE_A, USE_B, USE_ACC, N_USES };
#define MAX_BOUND (1u << 20)

typedef struct {
    const uint32_t *w;
    size_t n;
    uint32_t bound, next;
    uint8_t *kind;     /* 1: a NV matrix type, 2: a pointer type to one */
    uint32_t *pointee; /* kind 2: the NV type */
    uint32_t *vtype;   /* values / variables: their NV (pointer) type, else 0 */
    uint32_t *parent;  /* union find over ids */
    uint8_t *uses;     /* bit u: the class is used as use u */
    uint32_t *ctype;   /* OpConstant: its type */
    uint8_t *boolc;    /* 1 OpConstantFalse, 2 OpConstantTrue */
    uint32_t *variant; /* [id * 3 + use]: the KHR type (or pointer type) of NV type id for use */
    uint32_t uconst[N_USES]; /* integer constants 0, 1, 2 */
    uint32_t int_type;
} rw;

static uint32_t find(rw *r, uint32_t a) {
    while (r->parent[a] != a)
        a = r->parent[a] = r->parent[r->parent[a]];
    return a;
}

static void join(rw *r, uint32_t a, uint32_t b) {
    if (a >= r->bound || b >= r->bound || !r->vtype[a] || !r->vtype[b]) return;
    a = find(r, a);
    b = find(r, b);
    if (a != b) r->parent[a] = b;
}

static int has_result_type(uint32_t op) {
    switch (op) {
    case OP_UNDEF:
    case OP_CONST_COMPOSITE:
    case OP_CONST_NULL:
    case OP_VARIABLE:
    case OP_LOAD:
    case OP_COMPOSITE_CONSTRUCT:
    case OP_COPY_OBJECT:
    case OP_SELECT:
    case OP_PHI:
    case OP_COOP_LOAD_NV:
    case OP_COOP_MULADD_NV:
        return 1;
    default:
        return 0;
    }
}

/* Instructions whose operands are literals or names, never a matrix value. */
static int literal_only(uint32_t op) {
    switch (op) {
    case OP_SOURCE:
    case OP_SOURCE_EXT:
    case OP_NAME:
    case OP_MEMBER_NAME:
    case OP_STRING:
    case OP_LINE:
    case OP_NO_LINE:
    case OP_MODULE_PROCESSED:
    case OP_EXT_IMPORT:
    case OP_MEMORY_MODEL:
    case OP_ENTRY_POINT:
    case OP_EXEC_MODE:
    case FP4RT_SPV_OP_CAPABILITY:
    case FP4RT_SPV_OP_EXTENSION:
    case FP4RT_SPV_OP_CONSTANT:
    case OP_SPEC_CONST:
    case OP_DECORATE:
    case OP_MEMBER_DECORATE:
    case OP_LOOP_MERGE:
    case OP_SELECTION_MERGE:
    case OP_SWITCH:
        return 1;
    default:
        return 0;
    }
}

static int is_matrix_id(const rw *r, uint32_t id) {
    return id < r->bound && (r->kind[id] || r->vtype[id]);
}

/* Pass 1: types, constants and the values / variables of matrix types. */
static fp4rt_status collect(rw *r) {
    for (size_t i = 5; i < r->n; i += r->w[i] >> 16) {
        const uint32_t *in = r->w + i;
        uint32_t op = in[0] & 0xffff, wc = in[0] >> 16;
        /* the ids the passes index the tables with: result type and result
         * (a pointer type: result and pointee) */
        int indexed = op == FP4RT_SPV_OP_TYPE_COOP_NV || op == FP4RT_SPV_OP_TYPE_POINTER ||
                      op == FP4RT_SPV_OP_CONSTANT || op == OP_CONST_TRUE || op == OP_CONST_FALSE ||
                      has_result_type(op);
        uint32_t second = op == FP4RT_SPV_OP_TYPE_POINTER ? 3 : 2;
        if (indexed && ((wc > 1 && in[1] >= r->bound) || (wc > second && in[second] >= r->bound)))
            return fp4rt_fail(FP4RT_FORMAT,
                              "spirv: instruction %u at word %zu: an id past the bound %u", op, i,
                              r->bound);
        if (op == FP4RT_SPV_OP_TYPE_COOP_NV) {
            if (wc != 6)
                return fp4rt_fail(FP4RT_FORMAT,
                                  "spirv: OpTypeCooperativeMatrixNV at word %zu: %u words", i, wc);
            r->kind[in[1]] = 1;
        } else if (op == FP4RT_SPV_OP_TYPE_POINTER && wc == 4 && r->kind[in[3]] == 1) {
            r->kind[in[1]] = 2;
            r->pointee[in[1]] = in[3];
        } else if (op == FP4RT_SPV_OP_CONSTANT && wc >= 3) {
            r->ctype[in[2]] = in[1];
        } else if ((op == OP_CONST_TRUE || op == OP_CONST_FALSE) && wc == 3) {
            r->boolc[in[2]] = op == OP_CONST_TRUE ? 2 : 1;
        } else if (has_result_type(op) && wc >= 3 && r->kind[in[1]]) {
            r->vtype[in[2]] = in[1];
        }
    }
    return FP4RT_OK;
}

/* Pass 2: classes of values and their uses; anything unknown that touches a
 * matrix is refused. */
static fp4rt_status classify(rw *r) {
    for (size_t i = 5; i < r->n; i += r->w[i] >> 16) {
        const uint32_t *in = r->w + i;
        uint32_t op = in[0] & 0xffff, wc = in[0] >> 16;
        switch (op) {
        case OP_LOAD:
            if (r->vtype[in[2]]) join(r, in[2], in[3]);
            continue;
        case OP_STORE:
            join(r, in[1], in[2]);
            continue;
        case OP_VARIABLE:
            if (wc == 5) join(r, in[2], in[4]);
            continue;
        case OP_COPY_OBJECT:
            join(r, in[2], in[3]);
            continue;
        case OP_SELECT:
            join(r, in[2], in[4]);
            join(r, in[2], in[5]);
            continue;
        case OP_PHI:
            for (uint32_t j = 3; j + 1 < wc; j += 2)
                join(r, in[2], in[j]);
            continue;
        case OP_COOP_MULADD_NV:
            if (wc != 6)
                return fp4rt_fail(FP4RT_FORMAT,
                                  "spirv: OpCooperativeMatrixMulAddNV at word %zu: %u words", i,
                                  wc);
            join(r, in[2], in[5]);
            continue;
        case OP_COOP_LOAD_NV:
        case OP_COOP_STORE_NV:
        case OP_CONST_COMPOSITE:
        case OP_CONST_NULL:
        case OP_UNDEF:
        case OP_COMPOSITE_CONSTRUCT:
        case FP4RT_SPV_OP_TYPE_COOP_NV:
            continue;
        case OP_COOP_LENGTH_NV:
            return fp4rt_fail(FP4RT_UNSUPPORTED,
                              "spirv: OpCooperativeMatrixLengthNV at word %zu is not rewritten", i);
        default:
            break;
        }
        if (op == FP4RT_SPV_OP_TYPE_POINTER && r->kind[in[1]] == 2) continue;
        if (literal_only(op)) continue;
        for (uint32_t j = 1; j < wc; j++)
            if (is_matrix_id(r, in[j]))
                return fp4rt_fail(
                    FP4RT_UNSUPPORTED,
                    "spirv: instruction %u at word %zu uses cooperative matrix %%%u in a way the "
                    "NV -> KHR rewrite does not follow",
                    op, i, in[j]);
    }
    /* the MulAdds give the uses */
    for (size_t i = 5; i < r->n; i += r->w[i] >> 16) {
        const uint32_t *in = r->w + i;
        if ((in[0] & 0xffff) != OP_COOP_MULADD_NV) continue;
        static const int use_of[4] = {USE_ACC, USE_A, USE_B, USE_ACC}; /* result, a, b, c */
        for (int k = 0; k < 4; k++) {
            uint32_t id = in[2 + k];
            if (id >= r->bound || !r->vtype[id])
                return fp4rt_fail(FP4RT_FORMAT,
                                  "spirv: MulAdd at word %zu: operand %%%u is not a matrix", i, id);
            r->uses[find(r, id)] |= (uint8_t)(1u << use_of[k]);
        }
    }
    return FP4RT_OK;
}

/* The use of value / variable id: its class's (the accumulator when unused). */
static fp4rt_status use_of(rw *r, uint32_t id, int *use) {
    uint8_t u = r->uses[find(r, id)];
    if (u & (u - 1))
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "spirv: cooperative matrix %%%u is used as more than one of A, B, C", id);
    *use = u == 1 << USE_A ? USE_A : u == 1 << USE_B ? USE_B : USE_ACC;
    return FP4RT_OK;
}

/* Pass 3 plan: which (type, use) and (pointer type, use) variants exist. */
static fp4rt_status plan(rw *r) {
    for (uint32_t id = 0; id < r->bound; id++) {
        if (!r->vtype[id]) continue;
        int u = USE_ACC;
        fp4rt_status st = use_of(r, id, &u);
        if (st) return st;
        uint32_t t = r->vtype[id];
        if (r->kind[t] == 2) {
            if (!r->variant[(size_t)t * 3 + u]) r->variant[(size_t)t * 3 + u] = r->next++;
            t = r->pointee[t];
        }
        if (!r->variant[(size_t)t * 3 + u]) r->variant[(size_t)t * 3 + u] = r->next++;
    }
    /* types nobody uses keep their id as an accumulator type (still valid KHR) */
    for (uint32_t id = 0; id < r->bound; id++) {
        if (!r->kind[id]) continue;
        uint32_t *v = r->variant + (size_t)id * 3;
        if (!v[0] && !v[1] && !v[2]) v[USE_ACC] = id;
        if (r->kind[id] == 2) /* a pointer variant needs its pointee's variant */
            for (int u = 0; u < N_USES; u++)
                if (v[u] && !r->variant[(size_t)r->pointee[id] * 3 + u])
                    r->variant[(size_t)r->pointee[id] * 3 + u] = r->next++;
    }
    for (int u = 0; u < N_USES; u++)
        r->uconst[u] = r->next++;
    return r->next > MAX_BOUND
               ? fp4rt_fail(FP4RT_UNSUPPORTED, "spirv: id bound %u after the rewrite", r->next)
               : FP4RT_OK;
}

typedef struct {
    uint32_t *w;
    size_t n, cap;
} outbuf;

static void put(outbuf *o, uint32_t v) {
    if (o->n < o->cap) o->w[o->n] = v;
    o->n++;
}

static uint32_t layout_const(const rw *r, uint32_t col_id, int *ok) {
    if (col_id >= r->bound || !r->boolc[col_id]) {
        *ok = 0;
        return 0;
    }
    return r->uconst[r->boolc[col_id] == 2 ? 1 : 0]; /* ColumnMajorKHR 1, RowMajorKHR 0 */
}

static fp4rt_status emit(rw *r, outbuf *o) {
    for (int k = 0; k < 5; k++)
        put(o, r->w[k]);
    int consts_done = 0;
    for (size_t i = 5; i < r->n; i += r->w[i] >> 16) {
        const uint32_t *in = r->w + i;
        uint32_t op = in[0] & 0xffff, wc = in[0] >> 16;
        if (op == FP4RT_SPV_OP_CAPABILITY && wc == 2 && in[1] == FP4RT_SPV_CAP_COOP_NV) {
            put(o, in[0]);
            put(o, FP4RT_SPV_CAP_COOP_KHR);
        } else if (op == FP4RT_SPV_OP_EXTENSION && wc >= 2 &&
                   !strncmp((const char *)(in + 1), "SPV_NV_cooperative_matrix", (wc - 1) * 4)) {
            static const char ext[] =
                "SPV_KHR_cooperative_matrix"; /* 27 bytes with the NUL: 7 words */
            uint32_t words[7] = {0};
            memcpy(words, ext, sizeof ext);
            put(o, (8u << 16) | FP4RT_SPV_OP_EXTENSION);
            for (int k = 0; k < 7; k++)
                put(o, words[k]);
        } else if (op == FP4RT_SPV_OP_TYPE_COOP_NV) {
            if (!consts_done) { /* the use / layout constants, of the rows operand's integer type */
                uint32_t it = in[4] < r->bound ? r->ctype[in[4]] : 0;
                if (!it)
                    return fp4rt_fail(FP4RT_FORMAT,
                                      "spirv: matrix type %%%u: rows is not a constant", in[1]);
                for (uint32_t u = 0; u < N_USES; u++) {
                    put(o, (4u << 16) | FP4RT_SPV_OP_CONSTANT);
                    put(o, it);
                    put(o, r->uconst[u]);
                    put(o, u);
                }
                consts_done = 1;
            }
            for (int u = 0; u < N_USES; u++) {
                uint32_t v = r->variant[(size_t)in[1] * 3 + u];
                if (!v) continue;
                put(o, (7u << 16) | FP4RT_SPV_OP_TYPE_COOP_KHR);
                put(o, v);
                for (int k = 2; k < 6; k++)
                    put(o, in[k]);
                put(o, r->uconst[u]);
            }
        } else if (op == FP4RT_SPV_OP_TYPE_POINTER && wc == 4 && r->kind[in[1]] == 2) {
            for (int u = 0; u < N_USES; u++) {
                uint32_t v = r->variant[(size_t)in[1] * 3 + u];
                if (!v) continue;
                put(o, in[0]);
                put(o, v);
                put(o, in[2]);
                put(o, r->variant[(size_t)in[3] * 3 + u]);
            }
        } else if (op == OP_COOP_LOAD_NV && (wc < 3 || !r->vtype[in[2]])) {
            return fp4rt_fail(FP4RT_FORMAT,
                              "spirv: cooperative-matrix load at word %zu of a non-matrix type", i);
        } else if (op == OP_COOP_LOAD_NV || op == OP_COOP_STORE_NV) {
            /* NV load: type, result, pointer, stride, column-major, [memory]
             * KHR load: type, result, pointer, layout, stride, [memory];
             * store: the same without type / result, pointer and object first */
            int ok = wc >= (op == OP_COOP_LOAD_NV ? 6u : 5u);
            uint32_t s = op == OP_COOP_LOAD_NV ? 4 : 3; /* the stride operand */
            uint32_t layout = ok ? layout_const(r, in[s + 1], &ok) : 0;
            if (!ok)
                return fp4rt_fail(
                    FP4RT_UNSUPPORTED,
                    "spirv: cooperative-matrix load / store at word %zu: the layout is not a "
                    "boolean constant",
                    i);
            put(o, (wc << 16) | (op == OP_COOP_LOAD_NV ? 4457u : 4458u));
            for (uint32_t k = 1; k < s; k++) {
                uint32_t v = in[k];
                if (k == 1 && op == OP_COOP_LOAD_NV) {
                    int u = USE_ACC;
                    fp4rt_status st = use_of(r, in[2], &u);
                    if (st) return st;
                    v = r->variant[(size_t)in[1] * 3 + u];
                }
                put(o, v);
            }
            put(o, layout);
            put(o, in[s]);
            for (uint32_t k = s + 2; k < wc; k++)
                put(o, in[k]);
        } else if (has_result_type(op) && wc >= 3 && in[2] < r->bound && r->vtype[in[2]]) {
            int u = USE_ACC;
            fp4rt_status st = use_of(r, in[2], &u);
            if (st) return st;
            put(o, (wc << 16) | (op == OP_COOP_MULADD_NV ? 4459u : op));
            put(o, r->variant[(size_t)in[1] * 3 + u]);
            for (uint32_t k = 2; k < wc; k++)
                put(o, in[k]);
        } else {
            for (uint32_t k = 0; k < wc; k++)
                put(o, in[k]);
        }
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_spirv_coop_nv_to_khr(const uint32_t *in, size_t n_words, uint32_t **out,
                                        size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!in || n_words < 5 || in[0] != FP4RT_SPV_MAGIC)
        return fp4rt_fail(FP4RT_FORMAT, "spirv: not a SPIR-V module (%zu words)", n_words);
    if (in[3] == 0 || in[3] > MAX_BOUND)
        return fp4rt_fail(FP4RT_FORMAT, "spirv: id bound %u", in[3]);
    for (size_t i = 5; i < n_words;) {
        uint32_t wc = in[i] >> 16;
        if (wc == 0 || wc > n_words - i)
            return fp4rt_fail(FP4RT_FORMAT,
                              "spirv: instruction at word %zu: %u words past the end (%zu)", i, wc,
                              n_words);
        i += wc;
    }
    rw r = {.w = in, .n = n_words, .bound = in[3], .next = in[3]};
    size_t b = r.bound;
    r.kind = calloc(b, 1);
    r.pointee = calloc(b, 4);
    r.vtype = calloc(b, 4);
    r.parent = malloc(b * 4);
    r.uses = calloc(b, 1);
    r.ctype = calloc(b, 4);
    r.boolc = calloc(b, 1);
    r.variant = calloc(b * 3, 4);
    fp4rt_status st = FP4RT_OK;
    if (!r.kind || !r.pointee || !r.vtype || !r.parent || !r.uses || !r.ctype || !r.boolc ||
        !r.variant)
        st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "spirv: rewrite tables for %zu ids", b);
    if (!st) {
        for (uint32_t i = 0; i < r.bound; i++)
            r.parent[i] = i;
        st = collect(&r);
    }
    int any_nv = 0;
    for (uint32_t i = 0; !st && i < r.bound && !any_nv; i++)
        any_nv = r.kind[i] == 1;
    if (!st) st = classify(&r);
    if (!st && any_nv) st = plan(&r);
    outbuf o = {0};
    if (!st) {
        o.cap = n_words + 16 + (size_t)(r.next - r.bound) * 8;
        o.w = malloc(o.cap * 4);
        if (!o.w) st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "spirv: %zu words", o.cap);
    }
    if (!st && any_nv)
        st = emit(&r, &o);
    else if (!st) { /* nothing NV: the module as it is */
        memcpy(o.w, in, n_words * 4);
        o.n = n_words;
    }
    if (!st && o.n > o.cap)
        st = fp4rt_fail(FP4RT_INTERNAL, "spirv: rewrite overran %zu words", o.cap);
    if (!st) {
        o.w[3] = r.next;
        *out = o.w;
        *n_out = o.n;
    } else
        free(o.w);
    free(r.kind);
    free(r.pointee);
    free(r.vtype);
    free(r.parent);
    free(r.uses);
    free(r.ctype);
    free(r.boolc);
    free(r.variant);
    return st;
}
