/* SPIR-V rewrite from SPV_NV_cooperative_matrix to SPV_KHR_cooperative_matrix.
 *
 * Debian 12's glslang compiles GL_NV_cooperative_matrix but not
 * GL_KHR_cooperative_matrix, so shaders/linear_coop.comp is written against the
 * NV extension and the Vulkan backend rewrites its SPIR-V in memory for devices
 * that have VK_KHR_cooperative_matrix (AMD, Intel, newer NVIDIA drivers). The
 * two extensions differ in:
 *   - capability CooperativeMatrixNV (5357) -> CooperativeMatrixKHR (6022), and
 *     the extension string;
 *   - the type: the KHR type has a fifth operand, its Use (0 matrix A, 1 matrix
 *     B, 2 accumulator), which the NV type lacks. A NV type used both as A and
 *     as B (the usual FP16 16 x 16) becomes two KHR types: the use of every value
 *     and variable is found by following the MulAdd operands back through
 *     OpLoad / OpStore / OpVariable / OpPhi / OpCopyObject / OpSelect, and
 *     pointer types to the NV type split the same way;
 *   - load / store: a layout id (0 row-major, 1 column-major) before the stride
 *     instead of a boolean after it;
 *   - opcodes 5358..5361 -> 4456..4459 (MulAdd without operands: float only).
 * Anything else touching a cooperative-matrix type (arrays of fragments,
 * function parameters, OpCooperativeMatrixLengthNV, conversions) is refused
 * with FP4RT_UNSUPPORTED rather than rewritten wrongly. */
#ifndef FP4RT_VK_SPIRV_COOP_H
#define FP4RT_VK_SPIRV_COOP_H

#include "fp4rt.h"

#include <stddef.h>
#include <stdint.h>

/* Rewrites n_words words of NV SPIR-V into a new allocation *out (n_out words;
 * free() it). On error *out is NULL and the message names the instruction. */
fp4rt_status fp4rt_spirv_coop_nv_to_khr(const uint32_t *in, size_t n_words, uint32_t **out,
                                        size_t *n_out);

/* SPIR-V opcodes and enumerants used by the rewrite and its test. */
enum {
    FP4RT_SPV_MAGIC = 0x07230203,
    FP4RT_SPV_OP_CAPABILITY = 17,
    FP4RT_SPV_OP_EXTENSION = 10,
    FP4RT_SPV_OP_CONSTANT = 43,
    FP4RT_SPV_OP_TYPE_POINTER = 32,
    FP4RT_SPV_CAP_COOP_NV = 5357,
    FP4RT_SPV_CAP_COOP_KHR = 6022,
    FP4RT_SPV_OP_TYPE_COOP_NV = 5358,  /* .. 5362: load, store, muladd, length */
    FP4RT_SPV_OP_TYPE_COOP_KHR = 4456, /* .. 4460 */
};

#endif
