/* Helpers shared by the subcommands. */
#include "cli/commands.h"

#include "runtime/base/common.h"

#include "loader/outdir.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fp4rt_cli_parse_tokens(const char *spec, int32_t **out, int *n) {
    *out = NULL;
    *n = 0;
    char *text = NULL;
    if (spec[0] == '@') {
        struct stat sb;
        if (stat(spec + 1, &sb) == 0 && S_ISDIR(sb.st_mode))
            return fp4rt_cli_error("--tokens %s: %s is a directory, not a file of token ids", spec, spec + 1);
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
    else if (!strcmp(argv[*i], "--exact")) o->session.exact = 1;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--model"))) o->model = v;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--device"))) o->device = v;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--threads")))
        o->threads = (int)fp4rt_cli_parse_range("--threads", v, 0, FP4RT_CLI_MAX_THREADS);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--ctx"))) o->session.n_ctx = (int)fp4rt_cli_parse_range("--ctx", v, 1, INT_MAX);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--chunk")))
        o->session.prefill_chunk = (int)fp4rt_cli_parse_range("--chunk", v, 1, INT_MAX);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--kv"))) {
        if (!strcmp(v, "bf16")) o->session.kv_type = FP4RT_KV_BF16;
        else if (!strcmp(v, "f32")) o->session.kv_type = FP4RT_KV_F32;
        else if (!strcmp(v, "fp8")) o->session.kv_type = FP4RT_KV_FP8;
        else fp4rt_cli_bad_exit("--kv: '%s' is not bf16, f32 or fp8", v);
    } else return 0;
    return 1;
}

#include "runtime/engine/model.h"

int fp4rt_cli_sampling_opt(int argc, char **argv, int *i, fp4rt_sampling_params *p) {
    const char *v;
    if (!strcmp(argv[*i], "--greedy")) p->greedy = 1;
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--temp"))) {
        p->temperature = (float)fp4rt_cli_parse_real("--temp", v, 0, 0, INFINITY);
        if (p->temperature == 0) p->greedy = 1; /* --temp 0 means greedy, as elsewhere */
        else p->greedy = -1;
    } else if ((v = fp4rt_cli_opt(argc, argv, i, "--top-k"))) p->top_k = (int)fp4rt_cli_parse_range("--top-k", v, 0, INT_MAX);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--top-p"))) p->top_p = (float)fp4rt_cli_parse_real("--top-p", v, 0, 1, 1);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--min-p"))) {
        p->min_p = (float)fp4rt_cli_parse_real("--min-p", v, 0, 0, 1);
        if (p->min_p == 0) p->min_p = -1; /* the API's 0 is "default"; the user's 0 is off */
    } else if ((v = fp4rt_cli_opt(argc, argv, i, "--repeat-penalty")))
        p->repetition_penalty = (float)fp4rt_cli_parse_real("--repeat-penalty", v, 0, 1, INFINITY);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--presence-penalty")))
        p->presence_penalty = (float)fp4rt_cli_parse_real("--presence-penalty", v, -INFINITY, 0, INFINITY);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--frequency-penalty")))
        p->frequency_penalty = (float)fp4rt_cli_parse_real("--frequency-penalty", v, -INFINITY, 0, INFINITY);
    else if ((v = fp4rt_cli_opt(argc, argv, i, "--seed"))) p->seed = (uint64_t)fp4rt_cli_parse_long("--seed", v);
    else return 0;
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

int fp4rt_cli_check_ctx(const fp4rt_model *m, int n_ctx) {
    int max = m && m->weights ? m->weights->cfg.max_positions : 0;
    if (max <= 0 || n_ctx <= max) return n_ctx;
    fprintf(stderr, "fp4rt: warning: --ctx %d is above the model's maximum context %d; using %d\n", n_ctx, max, max);
    return max;
}

/* After a load: says which device, opens the session (frees *m on failure). */
static int open_session(const fp4rt_cli_model_opts *o, fp4rt_model **m, fp4rt_session **s) {
    if (!*m) return fp4rt_cli_fail(1);
    fprintf(stderr, "fp4rt: device %s\n", (*m)->device);
    fp4rt_session_params sp = o->session;
    sp.n_ctx = fp4rt_cli_check_ctx(*m, sp.n_ctx);
    *s = fp4rt_session_create(*m, &sp);
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

int fp4rt_cli_stream_piece(fp4rt_cli_stream *st, const fp4rt_token_event *ev) {
    if (ev->reasoning && st->hide_reasoning) return 0;
    if (st->tty && ev->reasoning != st->in_reasoning) fputs(ev->reasoning ? "\033[2m" : "\033[0m", stdout);
    st->in_reasoning = ev->reasoning;
    fwrite(ev->text, 1, ev->len, stdout);
    return fp4rt_cli_stdout_failed();
}

void fp4rt_cli_stream_end(fp4rt_cli_stream *st) {
    if (st->tty && st->in_reasoning) fputs("\033[0m", stdout);
    st->in_reasoning = 0;
}

int fp4rt_cli_check_out_dir(const char *out, const char *in, int force) {
    if (fp4rt_cli_check_out_path("--out", out, 1)) return 1;
    fp4rt_status st = fp4rt_outdir_check(out, in, force);
    return st ? fp4rt_cli_fail(st) : 0;
}

/* Waits for SIGINT / SIGTERM / SIGHUP (blocked in every other thread), removes
 * the output directory in progress and dies of the signal. */
static void *signal_watch(void *arg) {
    sigset_t *set = arg;
    int sig = 0;
    if (sigwait(set, &sig) != 0) return NULL;
    if (fp4rt_outdir_interrupted())
        fprintf(stderr, "%sfp4rt: interrupted; the unfinished output was removed\n",
                isatty(STDERR_FILENO) ? "\r\033[K" : ""); /* over a progress bar */
    signal(sig, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, set, NULL);
    raise(sig);
    _exit(128 + sig);
}

int fp4rt_cli_clean_on_signal(void) {
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_t t;
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 || pthread_create(&t, NULL, signal_watch, &set) != 0)
        return fp4rt_cli_error("cannot watch for signals: %s", strerror(errno));
    pthread_detach(t);
    return 0;
}

int fp4rt_cli_check_out_path(const char *opt, const char *path, int is_dir) {
    if (!path[0]) return fp4rt_cli_error("%s: empty path", opt);
    char *copy = strdup(path);
    if (!copy) return fp4rt_cli_error("out of memory");
    size_t l = strlen(copy);
    while (l > 1 && copy[l - 1] == '/') copy[--l] = 0; /* "out/" names out */
    char *slash = strrchr(copy, '/');
    const char *parent = ".";
    if (slash == copy) parent = "/";
    else if (slash) {
        *slash = 0;
        parent = copy;
    }
    struct stat sb;
    int rc = 0;
    if (stat(parent, &sb) != 0)
        rc = fp4rt_cli_error("%s %s: directory %s: %s", opt, path, parent, strerror(errno));
    else if (!S_ISDIR(sb.st_mode))
        rc = fp4rt_cli_error("%s %s: %s: %s", opt, path, parent, strerror(ENOTDIR));
    else if (access(parent, W_OK | X_OK) != 0)
        rc = fp4rt_cli_error("%s %s: directory %s: %s", opt, path, parent, strerror(errno));
    else if (!is_dir && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        rc = fp4rt_cli_error("%s %s: %s", opt, path, strerror(EISDIR));
    free(copy);
    return rc;
}

int fp4rt_cli_spec_opt(int argc, char **argv, int *i, fp4rt_generate_params *gp, fp4rt_session_params *session) {
    const char *v = fp4rt_cli_opt(argc, argv, i, "--spec");
    if (!v) return 0;
    if (strncmp(v, "mtp", 3) || (v[3] && v[3] != ':'))
        fp4rt_cli_bad_exit("--spec: '%s' is not mtp or mtp:K (the checkpoint's MTP head drafts)", v);
    gp->spec_drafts = v[3] ? (int)fp4rt_cli_parse_range("--spec mtp:K", v + 4, 1, FP4RT_SPEC_MAX_DRAFTS)
                           : FP4RT_CLI_SPEC_K;
    session->mtp = 1;
    return 1;
}

const char *fp4rt_cli_spec_stats(const fp4rt_generate_result *r, int k, char *buf, size_t n) {
    buf[0] = 0;
    if (k <= 0 || n < 2) return buf;
    size_t u = (size_t)snprintf(buf, n, "; MTP K=%d: %d verify steps, %d of %d drafts accepted (%.1f%%), %.2f tokens "
                                "per step, per draft position", k, r->spec_steps, r->spec_accepted, r->spec_drafted,
                                r->spec_drafted ? 100.0 * r->spec_accepted / r->spec_drafted : 0.0,
                                r->spec_steps ? r->spec_accept_len : 0.0);
    for (int j = 0; j < k && j < FP4RT_SPEC_MAX_DRAFTS && u < n; j++)
        u += (size_t)snprintf(buf + u, n - u, " %.0f%%",
                              r->spec_drafted_at[j] ? 100.0 * r->spec_accepted_at[j] / r->spec_drafted_at[j] : 0.0);
    return buf;
}
