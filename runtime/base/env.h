/* The environment knobs (the table: runtime/base/env_knobs.h). The library
 * reads every FP4RT_* variable through these getters, never with getenv: the
 * process environment is parsed once (thread-safe, on the first call), a
 * malformed value is warned about once (fp4rt_log, WARN, naming the knob) and
 * its default is used, and FP4RT_* variables that are neither knobs nor the
 * build / test harness's (FP4RT_ENV_OTHER_NAMES) are warned about once, as
 * likely typos. Later changes of the environment are not seen. */
#ifndef FP4RT_ENV_H
#define FP4RT_ENV_H

#include "runtime/base/env_parse.h"

#include <stddef.h>

/* Typed getters of the process's knobs; each asks for a knob of its type. */
int fp4rt_env_bool(fp4rt_env_id id);
long long fp4rt_env_int(fp4rt_env_id id);
unsigned long long fp4rt_env_size(fp4rt_env_id id);
/* STRING: the value, or NULL when unset (empty default). */
const char *fp4rt_env_str(fp4rt_env_id id);
/* ENUM: the index of the value among the knob's choices, or -1 when unset. */
int fp4rt_env_enum(fp4rt_env_id id);
/* Whether the knob has a value (given, or a non-empty default). */
int fp4rt_env_is_set(fp4rt_env_id id);
/* The variable's text as found in the environment (NULL when absent), even
 * when malformed: for `fp4rt env`. */
const char *fp4rt_env_raw(fp4rt_env_id id);

/* Test hook: parses the process environment again (tests that change knobs
 * with setenv between device opens). Not while other threads read knobs. */
void fp4rt_env_reload(void);

/* Whether the variable name (n characters, not NUL-terminated) is a knob or
 * one of FP4RT_ENV_OTHER_NAMES. */
int fp4rt_env_known(const char *name, size_t n);

/* A parsed environment, for tests and for fp4rt_env_* above. */
typedef struct fp4rt_env_state {
    fp4rt_env_value v[FP4RT_ENV_COUNT];
    char *raw[FP4RT_ENV_COUNT]; /* owned copies; NULL when absent */
    int malformed[FP4RT_ENV_COUNT];
    int n_unknown; /* FP4RT_* variables that are no knob */
} fp4rt_env_state;

/* Parses envp ("NAME=value" strings, NULL-terminated) into *st, warning (when
 * warn) about each malformed knob and unknown FP4RT_* variable. Release with
 * fp4rt_env_state_clear. */
void fp4rt_env_parse(char *const *envp, fp4rt_env_state *st, int warn);
void fp4rt_env_state_clear(fp4rt_env_state *st);

#endif
