/* Which descriptor bindings a compute shader may write, read from its SPIR-V:
 * a storage-buffer variable is written unless it, or every member of its block,
 * is decorated NonWritable (GLSL `readonly`). Several variables may alias one
 * binding (typed views of one buffer): the binding is written if any of them
 * is writable. The recorder (vk_dispatch.c) orders dispatches with this. */
#include "runtime/backend/vulkan/vk_spirv_access.h"

#include <stdlib.h>
#include <string.h>

enum {
    OP_TYPE_STRUCT = 30,
    OP_TYPE_POINTER = 32,
    OP_VARIABLE = 59,
    OP_DECORATE = 71,
    OP_MEMBER_DECORATE = 72,
    DEC_BUFFER_BLOCK = 3,
    DEC_NON_WRITABLE = 24,
    DEC_BINDING = 33,
    SC_UNIFORM = 2,
    SC_STORAGE_BUFFER = 12,
};

typedef struct id_info {
    int binding;          /* -1: none */
    uint8_t non_writable; /* the id (variable) is NonWritable */
    uint8_t buffer_block; /* the id (struct) is a BufferBlock (storage buffer in the Uniform class) */
    uint32_t members, members_nw; /* struct: member count (from OpTypeStruct), NonWritable members */
    uint32_t pointee;     /* pointer type: the pointee */
} id_info;

fp4rt_status fp4rt_spirv_written_bindings(const uint32_t *w, size_t n, uint32_t *mask) {
    *mask = 0xffffffffu; /* unknown: every binding may be written */
    if (n < 5 || w[0] != 0x07230203u) return FP4RT_INVALID_ARGUMENT;
    uint32_t bound = w[3];
    if (bound == 0 || bound > (1u << 22)) return FP4RT_INVALID_ARGUMENT;
    id_info *ids = calloc(bound, sizeof *ids);
    if (!ids) return FP4RT_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < bound; i++) ids[i].binding = -1;
    /* pass 1: decorations, types */
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xffffu;
        if (wc == 0 || i + wc > n) goto bad;
        const uint32_t *a = w + i + 1;
        if (op == OP_DECORATE && wc >= 3 && a[0] < bound) {
            if (a[1] == DEC_BINDING && wc >= 4) ids[a[0]].binding = (int)a[2];
            if (a[1] == DEC_NON_WRITABLE) ids[a[0]].non_writable = 1;
            if (a[1] == DEC_BUFFER_BLOCK) ids[a[0]].buffer_block = 1;
        } else if (op == OP_MEMBER_DECORATE && wc >= 4 && a[0] < bound && a[2] == DEC_NON_WRITABLE) {
            ids[a[0]].members_nw++;
        } else if (op == OP_TYPE_STRUCT && wc >= 2 && a[0] < bound) {
            ids[a[0]].members = wc - 2;
        } else if (op == OP_TYPE_POINTER && wc >= 4 && a[0] < bound) {
            ids[a[0]].pointee = a[2];
        }
        i += wc;
    }
    /* pass 2: the buffer variables */
    uint32_t m = 0;
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xffffu;
        const uint32_t *a = w + i + 1;
        if (op == OP_VARIABLE && wc >= 4 && a[0] < bound && a[1] < bound) {
            uint32_t sc = a[2], st = ids[a[0]].pointee;
            const id_info *v = &ids[a[1]], *s = st < bound ? &ids[st] : NULL;
            int buffer = sc == SC_STORAGE_BUFFER || (sc == SC_UNIFORM && s && s->buffer_block);
            if (buffer && v->binding >= 0 && v->binding < 32) {
                int readonly = v->non_writable || (s && s->members > 0 && s->members_nw >= s->members);
                if (!readonly) m |= 1u << v->binding;
            } else if (buffer && v->binding >= 32) {
                goto bad;
            }
        }
        i += wc;
    }
    free(ids);
    *mask = m;
    return FP4RT_OK;
bad:
    free(ids);
    return FP4RT_INVALID_ARGUMENT;
}
