/* Building programs, for the files of runtime/model that build one besides
 * program.c (program_vision.c). Not a public interface. */
#ifndef FP4RT_PROGRAM_BUILDER_H
#define FP4RT_PROGRAM_BUILDER_H

#include "runtime/model/program.h"

typedef struct fp4rt_pbuilder {
    fp4rt_program *p;
    int cap_ops, cap_bufs;
    fp4rt_status st; /* the first failure; later calls do nothing */
} fp4rt_pbuilder;

/* A new activation buffer of `width` floats per row; its index. */
int fp4rt_pb_buf(fp4rt_pbuilder *b, int width);
/* Appends an op of `kind` (every field zero, buffers -1, slot -1); never NULL
 * (a dummy after a failure). */
fp4rt_op *fp4rt_pb_emit(fp4rt_pbuilder *b, fp4rt_op_kind kind, int layer);
/* Plans the arena of a complete program (p->hidden_buf lives throughout). */
fp4rt_status fp4rt_pb_plan(fp4rt_program *p);

/* Views: all columns of buffer buf (none after a failure), or columns [col, col + n). */
static inline fp4rt_view fp4rt_pb_whole(const fp4rt_pbuilder *b, int buf) {
    fp4rt_view v = {buf, 0, b->st ? 0 : b->p->buf_width[buf]};
    return v;
}

static inline fp4rt_view fp4rt_pb_cols(int buf, int col, int n) {
    fp4rt_view v = {buf, col, n};
    return v;
}

#endif
