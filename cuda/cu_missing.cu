/* TEMPORARY (delete at merge): weak stand-ins for the op-family recorders this
 * branch does not build (cu_linear.cu, cu_fp4_mma.cu), so that the module links and loads on its own. Each fails
 * cleanly with UNSUPPORTED; a family's real (strong) definition replaces its
 * stand-in at link time. */
#include "cu_ops.h"

#define CU_MISSING(fn, file)                                                                                \
    __attribute__((weak)) fp4rt_status fn(const fp4rt_cu_step *s, const fp4rt_op *op) {                  \
        (void)s;                                                                                            \
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: %s (layer %d) is not built (" file " missing)", #fn, \
                             op->layer);                                                                    \
    }

CU_MISSING(fp4rt_cu_op_linear, "cu_linear.cu")
CU_MISSING(fp4rt_cu_op_linear_w4a4, "cu_fp4_mma.cu")

/* Until every family that needs workspace reports it here: the attention family
 * (cu_attention.cu: decode partials) is the only one. */
__attribute__((weak)) size_t fp4rt_cu_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk) {
    return fp4rt_cu_attn_gdn_workspace_bytes(p, op, chunk);
}
