/* The backend interface's shared helpers (backend.h). */
#include "runtime/backend/backend.h"

const char *fp4rt_kv_type_name(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? "F32" : t == FP4RT_KV_FP8 ? "FP8" : "BF16";
}
