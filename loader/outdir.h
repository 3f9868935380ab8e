/* Atomic output directories: a command writes into "<OUT>.tmp-<pid>" beside
 * OUT and renames it into place when complete, so OUT is either the old output
 * or the complete new one. */
#ifndef FP4RT_OUTDIR_H
#define FP4RT_OUTDIR_H

#include "runtime/base/common.h"

/* 1 when `name` is a file an fp4rt checkpoint writer produces (safetensors
 * shards and index, config.json, hf_quant_config.json, and the tokenizer,
 * generation and template files quantize copies); --force replaces only
 * directories holding nothing else. */
int fp4rt_outdir_owns(const char *name);

/* The checks begin makes, for a caller that wants them before its work starts:
 * an existing final_dir needs force, must be a directory, must not be `keep`
 * (the input, compared by realpath; NULL: none) and may hold only files
 * fp4rt_outdir_owns; the error names the others. Temporary directories
 * "<final_dir>.tmp-<pid>" / ".old-<pid>" left by runs that no longer exist are
 * reported (a warning) or, with force, removed. */
fp4rt_status fp4rt_outdir_check(const char *final_dir, const char *keep, int force);

/* begin: fp4rt_outdir_check, then creates "<final_dir>.tmp-<pid>" (final_dir
 * made absolute: "out/" and "." work) and returns its path (caller frees). The
 * temporary directory is registered for fp4rt_outdir_interrupted until commit
 * or abort.
 * commit: renames tmp to final_dir. An existing final_dir (force) is moved
 * aside first and removed after, or, when it is the working directory, emptied
 * and refilled in place.
 * abort: removes tmp and everything in it. */
fp4rt_status fp4rt_outdir_begin(const char *final_dir, int force, char **tmp_dir);
fp4rt_status fp4rt_outdir_commit(const char *tmp_dir, const char *final_dir);
void fp4rt_outdir_abort(const char *tmp_dir);

/* Removes the temporary directory of a begin not yet committed or aborted, if
 * any, and returns 1 (0: none). For a signal-watching thread (not a signal
 * handler): serialized with commit, so a directory is never removed after its
 * rename into place. */
int fp4rt_outdir_interrupted(void);

#endif
