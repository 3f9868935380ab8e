/* Helpers shared by the subcommands. */
#include "cli/commands.h"

#include "runtime/base/common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fp4rt_cli_parse_tokens(const char *spec, int32_t **out, int *n) {
    *out = NULL;
    *n = 0;
    char *text = NULL;
    if (spec[0] == '@') {
        if (fp4rt_read_file(spec + 1, 64u << 20, &text, NULL)) return fp4rt_cli_fail(1);
    } else {
        text = strdup(spec);
        if (!text) return fp4rt_cli_error("out of memory");
    }
    size_t cap = 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *p = text;
    int count = 0;
    while (ids) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == '[') p++;
        if (!*p || *p == ']') break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            fp4rt_cli_error("--tokens: entry %d ('%.20s') is not a token id", count, p);
            free(ids);
            free(text);
            return 1;
        }
        if ((size_t)count == cap) {
            int32_t *grown = realloc(ids, 2 * cap * sizeof *ids);
            if (!grown) break;
            ids = grown;
            cap *= 2;
        }
        ids[count++] = (int32_t)v;
        p = end;
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (*p == ',') p++;
    }
    free(text);
    if (!ids) return fp4rt_cli_error("out of memory parsing --tokens");
    if (count == 0) {
        free(ids);
        return fp4rt_cli_error("--tokens: no token ids given");
    }
    *out = ids;
    *n = count;
    return 0;
}

const char *fp4rt_cli_bytes(uint64_t b, char *buf, size_t n) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, n, "%.2f %s", v, units[u]);
    return buf;
}

double fp4rt_cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int fp4rt_cli_model_opt(int argc, char **argv, int *i, fp4rt_cli_model_opts *o) {
    const char *v;
    if (!strcmp(argv[*i], "--fp4-activations")) o->fp4_activations = 1;
    else if (!strcmp(argv[*i], "--profile")) o->profile = 1;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--model"))) o->model = v;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--device"))) o->device = v;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--threads"))) o->threads = (int)fp4rt_cli_parse_long("--threads", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--ctx"))) o->session.n_ctx = (int)fp4rt_cli_parse_long("--ctx", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--chunk"))) o->session.prefill_chunk = (int)fp4rt_cli_parse_long("--chunk", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--kv"))) {
        if (!strcmp(v, "bf16")) o->session.kv_type = FP4RT_KV_BF16;
        else if (!strcmp(v, "f32")) o->session.kv_type = FP4RT_KV_F32;
        else if (!strcmp(v, "fp8")) o->session.kv_type = FP4RT_KV_FP8;
        else {
            fprintf(stderr, "fp4rt: error: --kv: '%s' is not bf16, f32 or fp8\n", v);
            exit(2);
        }
    } else return 0;
    return 1;
}

#include "runtime/engine/model.h"

static float parse_float(const char *opt, const char *v) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x)) {
        fprintf(stderr, "fp4rt: error: option %s: '%s' is not a number\n", opt, v);
        exit(2);
    }
    return (float)x;
}

int fp4rt_cli_sampling_opt(int argc, char **argv, int *i, fp4rt_sampling_params *p) {
    const char *v;
    if (!strcmp(argv[*i], "--greedy")) p->greedy = 1;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--temp"))) {
        p->temperature = parse_float("--temp", v);
        if (p->temperature == 0) p->greedy = 1; /* --temp 0 means greedy, as elsewhere */
        else p->greedy = -1;
    } else if ((v = fp4rt_cli_opt(argc, argv, i, "--top-k"))) p->top_k = (int)fp4rt_cli_parse_long("--top-k", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--top-p"))) p->top_p = parse_float("--top-p", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--min-p"))) p->min_p = parse_float("--min-p", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--repeat-penalty"))) p->repetition_penalty = parse_float("--repeat-penalty", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--presence-penalty"))) p->presence_penalty = parse_float("--presence-penalty", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--frequency-penalty"))) p->frequency_penalty = parse_float("--frequency-penalty", v);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--seed"))) p->seed = (uint64_t)fp4rt_cli_parse_long("--seed", v);
    else return 0;
    if (p->temperature < 0 || p->top_p < 0 || p->top_p > 1 || p->repetition_penalty < 0) {
        fprintf(stderr, "fp4rt: error: sampling option out of range (temperature >= 0, top-p in [0, 1], repeat-penalty > 0)\n");
        exit(2);
    }
    return 1;
}

static fp4rt_model_params model_params(const fp4rt_cli_model_opts *o) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = o->device;
    mp.n_threads = o->threads;
    mp.fp4_activations = o->fp4_activations;
    mp.profile = o->profile;
    return mp;
}

/* After a load: says which device, opens the session (frees *m on failure). */
static int open_session(const fp4rt_cli_model_opts *o, fp4rt_model **m, fp4rt_session **s) {
    if (!*m) return fp4rt_cli_fail(1);
    fprintf(stderr, "fp4rt: device %s\n", (*m)->device);
    *s = fp4rt_session_create(*m, &o->session);
    if (!*s) {
        fp4rt_model_free(*m);
        *m = NULL;
        return fp4rt_cli_fail(1);
    }
    return 0;
}

int fp4rt_cli_open(const fp4rt_cli_model_opts *o, fp4rt_model **m, fp4rt_session **s) {
    fp4rt_model_params mp = model_params(o);
    *s = NULL;
    *m = fp4rt_model_load(o->model, &mp);
    return open_session(o, m, s);
}

int fp4rt_cli_open_synthetic(const fp4rt_cli_model_opts *o, const char *preset, const char *recipe, long seed,
                             fp4rt_model **m, fp4rt_session **s) {
    fp4rt_model_params mp = model_params(o);
    *s = NULL;
    *m = fp4rt_model_load_synthetic(preset, recipe, (uint64_t)seed, &mp);
    return open_session(o, m, s);
}

void fp4rt_cli_stream_piece(fp4rt_cli_stream *st, const fp4rt_token_event *ev) {
    if (ev->reasoning && st->hide_reasoning) return;
    if (st->tty && ev->reasoning != st->in_reasoning) fputs(ev->reasoning ? "\033[2m" : "\033[0m", stdout);
    st->in_reasoning = ev->reasoning;
    fwrite(ev->text, 1, ev->len, stdout);
    fflush(stdout);
}

void fp4rt_cli_stream_end(fp4rt_cli_stream *st) {
    if (st->tty && st->in_reasoning) fputs("\033[0m", stdout);
    st->in_reasoning = 0;
}
