/* The environment knobs: parsed once from the process environment. */
#include "runtime/base/env.h"

#include "runtime/base/common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const other_names[] = {FP4RT_ENV_OTHER_NAMES};

/* Whether the FP4RT_* variable `name` (length n) is the harness's. */
static int is_other(const char *name, size_t n) {
    for (size_t j = 0; j < sizeof other_names / sizeof *other_names; j++) {
        size_t len = strlen(other_names[j]);
        int prefix = other_names[j][len - 1] == '_';
        if ((prefix ? n >= len : n == len) && !strncmp(name, other_names[j], len)) return 1;
    }
    return 0;
}

static int knob_of(const char *name, size_t n) {
    const fp4rt_env_knob *t = fp4rt_env_table();
    for (int id = 0; id < FP4RT_ENV_COUNT; id++)
        if (strlen(t[id].name) == n && !strncmp(name, t[id].name, n)) return id;
    return -1;
}

int fp4rt_env_known(const char *name, size_t n) { return knob_of(name, n) >= 0 || is_other(name, n); }

void fp4rt_env_parse(char *const *envp, fp4rt_env_state *st, int warn) {
    memset(st, 0, sizeof *st);
    const fp4rt_env_knob *t = fp4rt_env_table();
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || strncmp(*e, "FP4RT_", 6)) continue;
        size_t n = (size_t)(eq - *e);
        int id = knob_of(*e, n);
        if (id < 0) {
            if (is_other(*e, n)) continue;
            st->n_unknown++;
            if (warn)
                fp4rt_log(FP4RT_LOG_WARN, "unknown environment variable %.*s ignored (`fp4rt env` lists the knobs)",
                          (int)(n > 200 ? 200 : n), *e);
            continue;
        }
        if (!st->raw[id]) st->raw[id] = fp4rt_strdup(eq + 1); /* a repeated name: the first, as getenv */
    }
    for (int id = 0; id < FP4RT_ENV_COUNT; id++) {
        const char *s = st->raw[id];
        if (s && fp4rt_env_parse_value(&t[id], s, &st->v[id])) {
            st->malformed[id] = 1;
            if (warn)
                fp4rt_log(FP4RT_LOG_WARN, "%s=%.200s is not a valid %s%s%s; using the default (%s)", t[id].name, s,
                          fp4rt_env_type_name(t[id].type), t[id].choices[0] ? " of " : "", t[id].choices,
                          t[id].def[0] ? t[id].def : "unset");
            s = NULL;
        }
        if (!s || !s[0]) fp4rt_env_parse_value(&t[id], t[id].def, &st->v[id]);
    }
}

void fp4rt_env_state_clear(fp4rt_env_state *st) {
    for (int id = 0; id < FP4RT_ENV_COUNT; id++) free(st->raw[id]);
    memset(st, 0, sizeof *st);
}

static fp4rt_env_state g_env;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void parse_process(void) { fp4rt_env_parse(environ, &g_env, 1); }

static const fp4rt_env_value *get(fp4rt_env_id id) {
    pthread_once(&g_once, parse_process);
    return &g_env.v[id];
}

int fp4rt_env_bool(fp4rt_env_id id) { return (int)get(id)->i; }
long long fp4rt_env_int(fp4rt_env_id id) { return get(id)->i; }
unsigned long long fp4rt_env_size(fp4rt_env_id id) { return get(id)->u; }
const char *fp4rt_env_str(fp4rt_env_id id) { return get(id)->set ? get(id)->s : NULL; }
int fp4rt_env_enum(fp4rt_env_id id) { return get(id)->set ? (int)get(id)->i : -1; }
int fp4rt_env_is_set(fp4rt_env_id id) { return get(id)->set; }

void fp4rt_env_reload(void) {
    pthread_once(&g_once, parse_process);
    fp4rt_env_state_clear(&g_env);
    fp4rt_env_parse(environ, &g_env, 0);
}

const char *fp4rt_env_raw(fp4rt_env_id id) {
    pthread_once(&g_once, parse_process);
    return g_env.raw[id];
}
