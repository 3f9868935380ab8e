/* safetensors reading: one file (mmapped, validated) and a checkpoint directory
 * (a single model.safetensors or shards listed in model.safetensors.index.json).
 *
 * File layout: u64 little-endian header length N, N bytes of JSON header
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the payload; offsets are relative to the payload start (8 + N).
 *
 * Validation done at open (each failure is a FORMAT error naming file and tensor,
 * except a dtype outside fp4rt_dtype, which is UNSUPPORTED): header length within
 * the file and at most FP4RT_ST_MAX_HEADER bytes; JSON well-formed (nesting
 * bounded), followed only by whitespace padding; every entry has a dtype, a shape
 * of at most FP4RT_ST_MAX_DIMS dims and data_offsets [begin, end], all numbers
 * exact non-negative integers below 2^53; begin <= end inside the payload; byte
 * length == product(shape) * dtype size (no overflow); no two tensors overlap;
 * duplicate names rejected; "__metadata__" must map strings to strings. Gaps
 * between tensors are tolerated. Tensor data is not necessarily aligned. */
#ifndef FP4RT_SAFETENSORS_H
#define FP4RT_SAFETENSORS_H

#include "fp4rt.h"

#include <stddef.h>
#include <stdint.h>

#define FP4RT_ST_MAX_HEADER (100u << 20) /* 100 MiB, as the reference reader allows */
#define FP4RT_ST_MAX_DIMS 8

typedef enum fp4rt_dtype {
    FP4RT_DT_BF16,
    FP4RT_DT_F16,
    FP4RT_DT_F32,
    FP4RT_DT_F8_E4M3,
    FP4RT_DT_U8,
    FP4RT_DT_I8,
    FP4RT_DT_I32,
    FP4RT_DT_I64,
    FP4RT_DT_COUNT
} fp4rt_dtype;

/* "BF16" ... ; and bytes per element. */
const char *fp4rt_dtype_name(fp4rt_dtype dt);
size_t fp4rt_dtype_size(fp4rt_dtype dt);
/* Returns 0 and sets *dt for a known safetensors dtype string, -1 otherwise. */
int fp4rt_dtype_parse(const char *s, fp4rt_dtype *dt);

typedef struct fp4rt_st_tensor {
    char *name;
    fp4rt_dtype dtype;
    int ndim;
    int64_t shape[FP4RT_ST_MAX_DIMS];
    uint64_t nbytes;
    uint64_t file_offset;  /* absolute byte offset in the file */
    const void *data;      /* into the read-only mapping */
    const char *file_path; /* owned by the file */
} fp4rt_st_tensor;

typedef struct fp4rt_st_file {
    char *path;
    void *map;       /* read-only mmap of the whole file */
    size_t size;     /* file size in bytes */
    size_t n_tensors;
    fp4rt_st_tensor *tensors; /* sorted by name */
} fp4rt_st_file;

/* Opens, maps and validates path. */
fp4rt_status fp4rt_st_open(const char *path, fp4rt_st_file **out);
/* Validates an in-memory file image (used by fp4rt_st_open and by the fuzz target).
 * Overwrites *f: on success sets f->path (a copy of `path`, used in messages), f->size and
 * f->tensors (data pointing into `data`, which must outlive f); f->map stays NULL.
 * Release with fp4rt_st_release. On failure *f is left zeroed. */
fp4rt_status fp4rt_st_parse(const char *path, const void *data, size_t size, fp4rt_st_file *f);
/* Frees what f holds (tensor table, path, mapping if any) and zeroes it; not f itself. */
void fp4rt_st_release(fp4rt_st_file *f);
/* Releases and frees a file from fp4rt_st_open. NULL is ignored. */
void fp4rt_st_close(fp4rt_st_file *f);
const fp4rt_st_tensor *fp4rt_st_find(const fp4rt_st_file *f, const char *name);

/* A checkpoint directory. */
typedef struct fp4rt_checkpoint {
    char *dir;
    size_t n_files;
    fp4rt_st_file **files;
    size_t n_tensors;
    const fp4rt_st_tensor **tensors; /* all tensors of all files, sorted by name */
} fp4rt_checkpoint;

/* Opens DIR/model.safetensors.index.json (every listed shard must exist, every
 * tensor in the weight_map must be in the shard it names, and no tensor may be in
 * two shards) or else DIR/model.safetensors, or a single *.safetensors file. */
fp4rt_status fp4rt_checkpoint_open(const char *dir, fp4rt_checkpoint **out);
void fp4rt_checkpoint_close(fp4rt_checkpoint *c);
const fp4rt_st_tensor *fp4rt_checkpoint_find(const fp4rt_checkpoint *c, const char *name);

#endif
