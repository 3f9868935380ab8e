/* libFuzzer target: arbitrary bytes as a safetensors file image. The parser must
 * return a status (never crash, leak or read outside the buffer); on success every
 * tensor must lie inside the buffer and be found by name. */
#include "loader/safetensors.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fp4rt_st_file f;
    if (fp4rt_st_parse("fuzz.safetensors", data, size, &f) != FP4RT_OK) return 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        const fp4rt_st_tensor *t = &f.tensors[i];
        if (fp4rt_st_find(&f, t->name) != t) abort();
        if (t->file_offset > size || t->nbytes > size - t->file_offset) abort();
        volatile uint8_t sink = 0;
        if (t->nbytes) sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
        (void)sink;
    }
    fp4rt_st_release(&f);
    return 0;
}
