/* The NV -> KHR cooperative-matrix SPIR-V rewrite (runtime/backend/vulkan/vk_spirv_coop.c) on
 * the embedded linear_coop shader, checked structurally (no device here runs
 * either extension, and Debian 12's spirv-val predates the KHR one):
 *   - no NV capability, extension, type or instruction is left; the KHR
 *     capability and extension string are there; the bound covers every id;
 *   - three KHR types: FP32 accumulator (use 2), FP16 A (use 0) and FP16 B
 *     (use 1), all 16 x 16, subgroup scope;
 *   - every MulAdd takes an A, a B and an accumulator and gives an accumulator;
 *   - loads of A are row-major, loads of B and every store column-major (the
 *     shader's layouts), with the stride and memory operands kept;
 *   - every OpLoad / OpStore of a matrix variable agrees with the variable's
 *     pointer type (the split pointer types);
 * and damaged input (truncated, bad magic, zero word counts, a huge bound,
 * random corruption) gives an error, never a crash (ASan / UBSan builds). */
#include "tests/test_util.h"

#include "runtime/base/common.h"
#include "runtime/backend/vulkan/vk_shaders.h"
#include "runtime/backend/vulkan/vk_spirv_coop.h"

#include <stdlib.h>
#include <string.h>

enum { OP_LOAD = 61, OP_STORE = 62, OP_VARIABLE = 59, OP_TYPE_FLOAT = 22 };

typedef struct {
    uint32_t bound;
    uint32_t *const_val;  /* OpConstant value + 1 (0: not a constant) */
    uint32_t *coop_use;   /* KHR type: use + 1 */
    uint32_t *coop_comp;  /* KHR type: component type id */
    uint32_t *pointee;    /* pointer types */
    uint32_t *type_of;    /* results: their type */
    uint32_t *float_bits; /* OpTypeFloat: width */
} module;

static int use_of_value(const module *m, uint32_t id) {
    uint32_t t = id < m->bound ? m->type_of[id] : 0;
    return t && t < m->bound && m->coop_use[t] ? (int)m->coop_use[t] - 1 : -1;
}

static void check_rewrite(const uint32_t *w, size_t n) {
    CHECK(n > 5 && w[0] == FP4RT_SPV_MAGIC);
    if (n <= 5) return;
    module m = {.bound = w[3]};
    m.const_val = calloc(m.bound, 4);
    m.coop_use = calloc(m.bound, 4);
    m.coop_comp = calloc(m.bound, 4);
    m.pointee = calloc(m.bound, 4);
    m.type_of = calloc(m.bound, 4);
    m.float_bits = calloc(m.bound, 4);
    int cap_khr = 0, ext_khr = 0, nv_left = 0, n_types = 0, n_muladd = 0, n_load_a = 0,
        n_load_b = 0, n_store = 0;
    int bad_ids = 0, well_formed = 1;
    for (size_t i = 5; i < n;) {
        uint32_t op = w[i] & 0xffff, wc = w[i] >> 16;
        if (wc == 0 || wc > n - i) {
            well_formed = 0;
            break;
        }
        const uint32_t *in = w + i;
        if (op == FP4RT_SPV_OP_CAPABILITY && in[1] == FP4RT_SPV_CAP_COOP_KHR) cap_khr = 1;
        if (op == FP4RT_SPV_OP_CAPABILITY && in[1] == FP4RT_SPV_CAP_COOP_NV) nv_left++;
        if (op == FP4RT_SPV_OP_EXTENSION &&
            !strcmp((const char *)(in + 1), "SPV_KHR_cooperative_matrix"))
            ext_khr = 1;
        if (op == FP4RT_SPV_OP_EXTENSION && strstr((const char *)(in + 1), "_NV_cooperative"))
            nv_left++;
        if (op >= FP4RT_SPV_OP_TYPE_COOP_NV && op <= FP4RT_SPV_OP_TYPE_COOP_NV + 4) nv_left++;
        if (op == FP4RT_SPV_OP_CONSTANT && wc == 4 && in[2] < m.bound)
            m.const_val[in[2]] = in[3] + 1;
        if (op == OP_TYPE_FLOAT && in[1] < m.bound) m.float_bits[in[1]] = in[2];
        if (op == FP4RT_SPV_OP_TYPE_POINTER && in[1] < m.bound) m.pointee[in[1]] = in[3];
        if (op == FP4RT_SPV_OP_TYPE_COOP_KHR) {
            n_types++;
            CHECK_EQ_INT(wc, 7);
            if (wc == 7 && in[1] < m.bound && in[6] < m.bound) {
                m.coop_use[in[1]] = m.const_val[in[6]];
                m.coop_comp[in[1]] = in[2];
                CHECK_EQ_INT(m.const_val[in[3]], 3 + 1);  /* subgroup scope */
                CHECK_EQ_INT(m.const_val[in[4]], 16 + 1); /* rows */
                CHECK_EQ_INT(m.const_val[in[5]], 16 + 1); /* columns */
            }
        }
        /* result ids below the bound; the types of results */
        if ((op == OP_LOAD || op == OP_VARIABLE || op == 4457 || op == 4459) && wc >= 3) {
            if (in[2] >= m.bound || in[1] >= m.bound)
                bad_ids++;
            else
                m.type_of[in[2]] = in[1];
        }
        if (op == 4459) {
            n_muladd++;
            CHECK_EQ_INT(wc, 6);
            CHECK_EQ_INT(m.coop_use[in[1]], 2 + 1);
            CHECK_EQ_INT(use_of_value(&m, in[3]), 0);
            CHECK_EQ_INT(use_of_value(&m, in[4]), 1);
            CHECK_EQ_INT(use_of_value(&m, in[5]), 2);
        }
        if (op == 4457) { /* type, result, pointer, layout, stride, memory operands */
            int use = in[1] < m.bound ? (int)m.coop_use[in[1]] - 1 : -1;
            uint32_t layout = in[4] < m.bound ? m.const_val[in[4]] - 1 : 99;
            CHECK_MSG((use == 0 && layout == 0) || (use == 1 && layout == 1),
                      "load of use %d, layout %u", use, layout);
            CHECK_MSG(wc >= 6 && in[5] < m.bound && m.const_val[in[5]] == 40 + 1,
                      "load stride (LDS 40)");
            n_load_a += use == 0;
            n_load_b += use == 1;
        }
        if (op == 4458) { /* pointer, object, layout, stride, memory operands */
            n_store++;
            CHECK_EQ_INT(use_of_value(&m, in[2]), 2);
            CHECK_EQ_INT(in[3] < m.bound ? m.const_val[in[3]] : 0, 1 + 1);
            CHECK_MSG(wc >= 5 && in[4] < m.bound && m.const_val[in[4]] == 36 + 1,
                      "store stride (CST 36)");
        }
        if (op == OP_LOAD && wc >= 4 && in[3] < m.bound && in[1] < m.bound && m.coop_use[in[1]]) {
            uint32_t pt = m.type_of[in[3]];
            CHECK_MSG(pt < m.bound && m.pointee[pt] == in[1],
                      "OpLoad %%%u: type %%%u, variable of %%%u", in[2], in[1],
                      pt < m.bound ? m.pointee[pt] : 0);
        }
        if (op == OP_STORE && wc >= 3 && in[1] < m.bound && in[2] < m.bound) {
            uint32_t ot = m.type_of[in[2]], pt = m.type_of[in[1]];
            if (ot && ot < m.bound && m.coop_use[ot])
                CHECK_MSG(pt < m.bound && m.pointee[pt] == ot,
                          "OpStore of %%%u (%%%u) to a variable of %%%u", in[2], ot,
                          pt < m.bound ? m.pointee[pt] : 0);
        }
        i += wc;
    }
    CHECK(well_formed);
    CHECK(cap_khr);
    CHECK(ext_khr);
    CHECK_EQ_INT(nv_left, 0);
    CHECK_EQ_INT(bad_ids, 0);
    CHECK_EQ_INT(n_types, 3);
    CHECK_EQ_INT(n_muladd, 4);
    CHECK_EQ_INT(n_load_a, 2);
    CHECK_EQ_INT(n_load_b, 2);
    CHECK_EQ_INT(n_store, 4);
    /* the accumulator is FP32, A and B FP16 */
    for (uint32_t id = 0; id < m.bound; id++)
        if (m.coop_use[id]) {
            uint32_t bits = m.coop_comp[id] < m.bound ? m.float_bits[m.coop_comp[id]] : 0;
            CHECK_EQ_INT(bits, m.coop_use[id] == 3 ? 32 : 16);
        }
    free(m.const_val);
    free(m.coop_use);
    free(m.coop_comp);
    free(m.pointee);
    free(m.type_of);
    free(m.float_bits);
}

static void check_rejects(const char *what, const uint32_t *w, size_t n) {
    uint32_t *out = (uint32_t *)1;
    size_t no = 1;
    fp4rt_status st = fp4rt_spirv_coop_nv_to_khr(w, n, &out, &no);
    CHECK_MSG(st != FP4RT_OK, "%s: accepted", what);
    CHECK_MSG(out == NULL && no == 0, "%s: output left set", what);
    CHECK_MSG(strlen(fp4rt_last_error()) > 0, "%s: no message", what);
    fp4rt_clear_error();
}

int main(void) {
    const fp4rt_vk_shader *sh = &fp4rt_vk_shaders[FP4RT_VK_SHADER_LINEAR_COOP];
    CHECK_MSG(sh->bytes >= 20 && !strcmp(sh->name, "linear_coop"), "linear_coop is not embedded");
    size_t n = sh->bytes / 4;
    uint32_t *out = NULL;
    size_t no = 0;
    fp4rt_status st = fp4rt_spirv_coop_nv_to_khr(sh->code, n, &out, &no);
    CHECK_MSG(st == FP4RT_OK, "rewrite: %s", fp4rt_last_error());
    if (!st) {
        check_rewrite(out, no);
        /* a KHR module has nothing NV left to rewrite: it comes back the same */
        uint32_t *again = NULL;
        size_t na = 0;
        st = fp4rt_spirv_coop_nv_to_khr(out, no, &again, &na);
        CHECK_MSG(st == FP4RT_OK && na == no && !memcmp(again, out, no * 4),
                  "KHR input not returned unchanged");
        free(again);
        free(out);
    }

    /* damaged input */
    uint32_t *w = malloc(sh->bytes);
    memcpy(w, sh->code, sh->bytes);
    check_rejects("4 words", w, 4);
    check_rejects("truncated by 3 words", w, n - 3);
    w[0] = 0x12345678;
    check_rejects("bad magic", w, n);
    w[0] = FP4RT_SPV_MAGIC;
    w[3] = 0xffffffffu;
    check_rejects("bound 2^32-1", w, n);
    w[3] = ((const uint32_t *)sh->code)[3];
    w[5] &= 0xffff; /* word count 0 */
    check_rejects("zero word count", w, n);
    /* random corruption: any result, never a crash or a read out of bounds */
    uint32_t seed = 7;
    int accepted = 0;
    for (int trial = 0; trial < 300; trial++) {
        memcpy(w, sh->code, sh->bytes);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t at = 5 + (seed >> 8) % (n - 5);
            seed = seed * 1664525u + 1013904223u;
            w[at] = trial % 2 ? w[at] ^ (1u << (seed >> 27)) : seed;
        }
        st = fp4rt_spirv_coop_nv_to_khr(w, n, &out, &no);
        if (!st) {
            accepted++;
            free(out);
        }
        fp4rt_clear_error();
    }
    printf("random corruption: %d of 300 accepted, none crashed\n", accepted);
    free(w);
    return test_summary("test_vk_spirv_coop");
}
