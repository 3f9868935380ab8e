/* Id queries on a loaded tokenizer. */
#include "runtime/text/tokenizer_internal.h"

int fp4rt_tokenizer_has_id(const fp4rt_tokenizer *t, int32_t id) {
    return t && id >= 0 && (uint32_t)id < t->n_ids && (t->flags[id] & FP4RT_TOKF_PRESENT);
}
