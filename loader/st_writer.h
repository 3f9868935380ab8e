/* safetensors writer: sharded output with an index, written to a temporary
 * directory that is renamed into place only when everything is complete.
 *
 * Use: create -> declare every tensor (name, dtype, shape) -> write each tensor's
 * bytes in the declared order -> finish. Shards are cut at shard_bytes of
 * payload (a tensor larger than that gets a shard of its own); with one shard
 * the file is model.safetensors and no index is written, otherwise
 * model-0000k-of-0000n.safetensors plus model.safetensors.index.json. Tensor data
 * is streamed: peak memory is one tensor, held by the caller. */
#ifndef FP4RT_ST_WRITER_H
#define FP4RT_ST_WRITER_H

#include "loader/safetensors.h"

typedef struct fp4rt_stw fp4rt_stw;

/* dir: an existing directory (normally the temporary output directory).
 * shard_bytes: 0 = 4 GiB. */
fp4rt_status fp4rt_stw_create(const char *dir, uint64_t shard_bytes, fp4rt_stw **out);
fp4rt_status fp4rt_stw_declare(fp4rt_stw *w, const char *name, fp4rt_dtype dt, int ndim,
                               const int64_t *shape);
/* nbytes must equal the declared size; tensors must come in declared order. */
fp4rt_status fp4rt_stw_write(fp4rt_stw *w, const char *name, const void *data, uint64_t nbytes);
/* Flushes, fsyncs and closes every shard and writes the index. */
fp4rt_status fp4rt_stw_finish(fp4rt_stw *w);
/* Frees (also after a failure; files already written stay in dir). */
void fp4rt_stw_free(fp4rt_stw *w);

/* Atomic output directories (fp4rt_outdir_*). */
#include "loader/outdir.h"

/* Writes a small text file atomically (tmp + rename) */
fp4rt_status fp4rt_write_text_file(const char *path, const char *text);
/* Copies a file byte for byte. */
fp4rt_status fp4rt_copy_file(const char *src, const char *dst);

#endif
