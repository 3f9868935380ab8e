/* Header-only parsing of the environment knobs (runtime/base/env_knobs.h):
 * the knob ids, their descriptions and the value parser, in C and C++ so the
 * CUDA module (cuda/, built by nvcc, linking nothing of libfp4rt) parses its
 * knobs exactly as the library does. The library reads the knobs through
 * runtime/base/env.h (parsed once, warnings included); the CUDA module calls
 * fp4rt_env_read(), which parses one variable now and never warns. */
#ifndef FP4RT_ENV_PARSE_H
#define FP4RT_ENV_PARSE_H

#include "runtime/base/env_knobs.h"

#include <stdlib.h>
#include <string.h>

typedef enum fp4rt_env_type {
    FP4RT_ENV_BOOL,
    FP4RT_ENV_INT,
    FP4RT_ENV_SIZE,
    FP4RT_ENV_STRING,
    FP4RT_ENV_ENUM
} fp4rt_env_type;

#define FP4RT_ENV_ID_(name, type, def, choices, doc) FP4RT_ENV_##name,
typedef enum fp4rt_env_id { FP4RT_ENV_KNOBS(FP4RT_ENV_ID_) FP4RT_ENV_COUNT } fp4rt_env_id;
#undef FP4RT_ENV_ID_

typedef struct fp4rt_env_knob {
    const char *name; /* "FP4RT_VK_EXACT" */
    fp4rt_env_type type;
    const char *def;     /* default value as text; "" = unset */
    const char *choices; /* ENUM: "a|b|c"; else "" */
    const char *doc;     /* one line */
} fp4rt_env_knob;

/* A parsed value: BOOL and INT in i, SIZE in u, STRING in s, ENUM in s and
 * the choice's index in i. set is 0 when the value is unset (empty default). */
typedef struct fp4rt_env_value {
    int set;
    long long i;
    unsigned long long u;
    const char *s;
} fp4rt_env_value;

/* The table (FP4RT_ENV_COUNT rows, in the order of env_knobs.h). */
static inline const fp4rt_env_knob *fp4rt_env_table(void) {
#define FP4RT_ENV_ROW_(name, type, def, choices, doc) {"FP4RT_" #name, FP4RT_ENV_##type, def, choices, doc},
    static const fp4rt_env_knob rows[] = {FP4RT_ENV_KNOBS(FP4RT_ENV_ROW_)};
#undef FP4RT_ENV_ROW_
    return rows;
}

static inline const char *fp4rt_env_type_name(fp4rt_env_type t) {
    switch (t) {
    case FP4RT_ENV_BOOL: return "bool";
    case FP4RT_ENV_INT: return "int";
    case FP4RT_ENV_SIZE: return "size";
    case FP4RT_ENV_STRING: return "string";
    case FP4RT_ENV_ENUM: return "enum";
    }
    return "?";
}

/* Index of s among the '|'-separated choices, or -1. */
static inline int fp4rt_env_choice(const char *choices, const char *s) {
    size_t n = strlen(s);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, s, n)) return idx;
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

/* Parses text s (not NULL) as a value of knob k into *out; an empty s is the
 * unset value (out->set = 0). Returns 0, or -1 when s is malformed (*out is
 * then unspecified). out->s points into s. */
static inline int fp4rt_env_parse_value(const fp4rt_env_knob *k, const char *s, fp4rt_env_value *out) {
    memset(out, 0, sizeof *out);
    out->s = s;
    if (!s[0]) return 0;
    out->set = 1;
    char *end = NULL;
    switch (k->type) {
    case FP4RT_ENV_BOOL: {
        static const char *const t[] = {"1", "true", "yes", "on"}, *const f[] = {"0", "false", "no", "off"};
        for (int j = 0; j < 4; j++) {
            if (!strcmp(s, t[j]) || !strcmp(s, f[j])) {
                out->i = !strcmp(s, t[j]);
                return 0;
            }
        }
        return -1;
    }
    case FP4RT_ENV_INT:
        out->i = strtoll(s, &end, 10);
        return end != s && !*end ? 0 : -1;
    case FP4RT_ENV_SIZE: {
        if (s[0] < '0' || s[0] > '9') return -1;
        unsigned long long v = strtoull(s, &end, 10);
        int shift = 0;
        if (*end == 'k' || *end == 'K') shift = 10;
        if (*end == 'm' || *end == 'M') shift = 20;
        if (*end == 'g' || *end == 'G') shift = 30;
        if (shift) end++;
        if (*end || (shift && v > (~0ull >> shift))) return -1;
        out->u = v << shift;
        return 0;
    }
    case FP4RT_ENV_STRING: return 0;
    case FP4RT_ENV_ENUM: out->i = fp4rt_env_choice(k->choices, s); return out->i >= 0 ? 0 : -1;
    }
    return -1;
}

/* The default of knob id, parsed. */
static inline fp4rt_env_value fp4rt_env_read_default(fp4rt_env_id id) {
    fp4rt_env_value v;
    fp4rt_env_parse_value(&fp4rt_env_table()[id], fp4rt_env_table()[id].def, &v);
    return v;
}

/* Reads knob id from the environment now: its value, else (unset, empty or
 * malformed) its default. No warning: for the CUDA module; the library uses
 * the getters of runtime/base/env.h. */
static inline fp4rt_env_value fp4rt_env_read(fp4rt_env_id id) {
    const fp4rt_env_knob *k = &fp4rt_env_table()[id];
    const char *s = getenv(k->name);
    fp4rt_env_value v;
    if (!s || fp4rt_env_parse_value(k, s, &v) || !v.set) v = fp4rt_env_read_default(id);
    return v;
}

#endif
