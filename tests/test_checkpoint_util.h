/* Checkpoint surgery for the bad-input tests (after tests/test_util.h). */
#ifndef FP4RT_TEST_CHECKPOINT_UTIL_H
#define FP4RT_TEST_CHECKPOINT_UTIL_H

#include "loader/safetensors.h"
#include "loader/st_writer.h"
#include "tests/test_util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Copies the checkpoint in src to the new directory dst with tensor `name`'s
 * second dimension halved (its data cut to the new size) and the config and
 * tokenizer files alongside: a model whose one tensor has the wrong shape.
 * Failures are failed CHECKs. */
static inline void test_copy_with_halved_tensor(const char *src, const char *dst, const char *name) {
    CHECK(mkdir(dst, 0755) == 0);
    fp4rt_checkpoint *ck = NULL;
    CHECK(fp4rt_checkpoint_open(src, &ck) == FP4RT_OK);
    if (!ck) return;
    fp4rt_stw *w = NULL;
    CHECK(fp4rt_stw_create(dst, 0, &w) == FP4RT_OK);
    for (int pass = 0; w && pass < 2; pass++)
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const fp4rt_st_tensor *t = ck->tensors[i];
            int64_t shape[FP4RT_ST_MAX_DIMS];
            memcpy(shape, t->shape, sizeof shape);
            uint64_t nb = t->nbytes;
            if (!strcmp(t->name, name)) {
                shape[1] /= 2;
                nb /= 2;
            }
            fp4rt_status st = pass ? fp4rt_stw_write(w, t->name, t->data, nb)
                                   : fp4rt_stw_declare(w, t->name, t->dtype, t->ndim, shape);
            CHECK(st == FP4RT_OK);
        }
    CHECK(w && fp4rt_stw_finish(w) == FP4RT_OK);
    fp4rt_stw_free(w);
    fp4rt_checkpoint_close(ck);
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char a[4200], b[4200];
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        CHECK(fp4rt_copy_file(a, b) == FP4RT_OK);
    }
}

#endif
