/* Internal helpers shared by the library: error reporting, logging, allocation.
 * Not part of the public API; every non-static internal symbol is prefixed fp4rt_. */
#ifndef FP4RT_COMMON_H
#define FP4RT_COMMON_H

#include "fp4rt.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define FP4RT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FP4RT_PRINTF(fmt, args)
#endif

/* Records a one-line message for fp4rt_last_error() and returns s, so callers can
 * write `return fp4rt_fail(FP4RT_FORMAT, "%s: tensor %s: ...", path, name);`.
 * The message should say what failed, where (file, tensor, key, offset) and what
 * was expected. */
fp4rt_status fp4rt_fail(fp4rt_status s, const char *fmt, ...) FP4RT_PRINTF(2, 3);
/* Prefixes the current last-error message with "where: ". Returns s. */
fp4rt_status fp4rt_fail_context(fp4rt_status s, const char *fmt, ...) FP4RT_PRINTF(2, 3);
void fp4rt_clear_error(void);

void fp4rt_log(fp4rt_log_level level, const char *fmt, ...) FP4RT_PRINTF(2, 3);

/* Allocation that records FP4RT_OUT_OF_MEMORY (with the size and purpose) on failure.
 * Returns NULL on failure. `what` names the allocation for the message. */
void *fp4rt_malloc(size_t n, const char *what);
void *fp4rt_calloc(size_t n, size_t size, const char *what);
/* Aligned (64 bytes) allocation, freed with fp4rt_free_aligned. */
void *fp4rt_malloc_aligned(size_t n, const char *what);
void fp4rt_free_aligned(void *p);
char *fp4rt_strdup(const char *s);

/* Test hook: fail the n-th allocation from now (n >= 1); 0 disables. */
void fp4rt_debug_fail_alloc_after(long n);

/* Reads a whole (small) file into a NUL-terminated buffer; *len excludes the NUL.
 * max_bytes bounds the size (FORMAT error if larger). */
fp4rt_status fp4rt_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* Joins dir and name into a new string ("dir/name"). NULL on OOM. */
char *fp4rt_path_join(const char *dir, const char *name);

#define FP4RT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FP4RT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FP4RT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
