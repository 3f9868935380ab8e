/* generation_config.json: the model's sampling defaults and stop ids. */
#ifndef FP4RT_GEN_CONFIG_H
#define FP4RT_GEN_CONFIG_H

#include "fp4rt.h"

#define FP4RT_MAX_STOP_IDS 16

typedef struct fp4rt_gen_config {
    int present;             /* the file existed */
    int do_sample;           /* 0: greedy by default */
    float temperature;       /* 1 if absent */
    int top_k;               /* 0 = off */
    float top_p;             /* 1 = off */
    float min_p;             /* 0 = off */
    float repetition_penalty; /* 1 = off */
    float presence_penalty;  /* 0 = off */
    int max_new_tokens;      /* 0 = none given */
    int n_eos;
    int32_t eos[FP4RT_MAX_STOP_IDS]; /* eos_token_id (int or list) */
} fp4rt_gen_config;

/* Defaults (do_sample 0, temperature 1, no filters) when DIR/generation_config.json
 * is absent; FORMAT error naming the file and key when it is malformed. */
fp4rt_status fp4rt_gen_config_load(const char *dir, fp4rt_gen_config *out);
fp4rt_status fp4rt_gen_config_parse(const char *json, size_t len, const char *where, fp4rt_gen_config *out);

#endif
