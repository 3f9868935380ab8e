/* The fp4rt command: dispatches to the subcommands in cli/cmd_*.c. */
#include "cli/commands.h"

#include "fp4rt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fp4rt_cli_fail(int status) {
    const char *msg = fp4rt_last_error();
    fprintf(stderr, "fp4rt: error: %s\n", msg && msg[0] ? msg : fp4rt_status_message(status));
    return 1;
}

int fp4rt_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fp4rt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

const char *fp4rt_cli_cmd = "";

static void help_hint(void) {
    fprintf(stderr, "fp4rt: 'fp4rt %s --help' lists the options\n", fp4rt_cli_cmd);
}

int fp4rt_cli_usage(const char *cmd, const char *usage) {
    fprintf(stderr, "fp4rt %s: usage: fp4rt %s %s\n", cmd, cmd, usage);
    help_hint();
    return 2;
}

static void bad_v(const char *fmt, va_list ap) {
    fputs("fp4rt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    help_hint();
}

int fp4rt_cli_bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bad_v(fmt, ap);
    va_end(ap);
    return 2;
}

void fp4rt_cli_bad_exit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bad_v(fmt, ap);
    va_end(ap);
    exit(2);
}

int fp4rt_cli_unknown(const char *usage, const char *arg) {
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
        printf("usage: fp4rt %s %s\n", fp4rt_cli_cmd, usage);
        return 0;
    }
    if (arg[0] == '-') return fp4rt_cli_bad("%s: unknown option '%s'", fp4rt_cli_cmd, arg);
    return fp4rt_cli_bad("%s: unexpected argument '%s'", fp4rt_cli_cmd, arg);
}

const char *fp4rt_cli_opt(int argc, char **argv, int *i, const char *name) {
    if (strcmp(argv[*i], name) != 0) return NULL;
    if (*i + 1 >= argc) fp4rt_cli_bad_exit("%s needs a value", name);
    *i += 1;
    if (!argv[*i][0] && strcmp(name, "--prompt") && strcmp(name, "--system"))
        fp4rt_cli_bad_exit("%s: empty string", name);
    return argv[*i];
}

long fp4rt_cli_parse_range(const char *opt, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno == ERANGE || end == v || *end || x < lo || x > hi) {
        if (hi == LONG_MAX) fp4rt_cli_bad_exit("%s: '%s' is not an integer >= %ld", opt, v, lo);
        fp4rt_cli_bad_exit("%s: '%s' is not an integer in [%ld, %ld]", opt, v, lo, hi);
    }
    return x;
}

long fp4rt_cli_parse_long(const char *opt, const char *v) {
    return fp4rt_cli_parse_range(opt, v, 0, LONG_MAX);
}

double fp4rt_cli_parse_real(const char *opt, const char *v, double lo, int lo_open, double hi) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || (lo_open && x == lo) || x > hi) {
        if (isinf(hi) && isinf(lo)) fp4rt_cli_bad_exit("%s: '%s' is not a number", opt, v);
        if (isinf(hi)) fp4rt_cli_bad_exit("%s: '%s' is not a number %s %g", opt, v, lo_open ? ">" : ">=", lo);
        fp4rt_cli_bad_exit("%s: '%s' is not a number in %s%g, %g]", opt, v, lo_open ? "(" : "[", lo, hi);
    }
    return x;
}

static int g_stdout_errno;

int fp4rt_cli_stdout_failed(void) {
    errno = 0;
    if (fflush(stdout) != 0 && !g_stdout_errno) g_stdout_errno = errno ? errno : EIO;
    if (ferror(stdout) && !g_stdout_errno) g_stdout_errno = EIO;
    return g_stdout_errno != 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} k_commands[] = {
    {"run", fp4rt_cmd_run, "generate an answer to a text prompt (or ids after a prompt of ids)"},
    {"chat", fp4rt_cmd_chat, "interactive chat with the model's chat template"},
    {"serve", fp4rt_cmd_serve, "OpenAI-compatible HTTP server (chat, completions, a chat page at /)"},
    {"tokenize", fp4rt_cmd_tokenize, "text to token ids (JSON), or ids back to text"},
    {"logits", fp4rt_cmd_logits, "teacher-forced logits of a token sequence to a file"},
    {"perplexity", fp4rt_cmd_perplexity, "perplexity of a text file; save top-k log-probs, KL against saved ones"},
    {"bench", fp4rt_cmd_bench, "prefill/decode tokens/s and % of the memory-bandwidth limit"},
    {"verify", fp4rt_cmd_verify, "run every device, compare logits and greedy tokens with the CPU"},
    {"devices", fp4rt_cmd_devices, "list the devices fp4rt can use"},
    {"env", fp4rt_cmd_env, "the FP4RT_* environment knobs: type, default, current value"},
    {"plan", fp4rt_cmd_plan, "memory needed per part for a context length"},
    {"inspect", fp4rt_cmd_inspect, "tensors, formats and sizes of a checkpoint"},
    {"quantize", fp4rt_cmd_quantize, "quantize a BF16 checkpoint to NVFP4 / FP8 (ModelOpt format)"},
    {"synth", fp4rt_cmd_synth, "write a deterministic random checkpoint of a named config"},
};

static void usage(FILE *f) {
    fprintf(f, "fp4rt %s — NVFP4 runtime for Qwen3.5 / Qwen3.6\nusage: fp4rt <command> [options]\n\n",
            FP4RT_VERSION_STRING);
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fp4rt %s\n", FP4RT_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(argv[1], k_commands[i].name)) {
            fp4rt_cli_cmd = k_commands[i].name;
            int rc = k_commands[i].fn(argc - 1, argv + 1);
            /* output that did not reach stdout (a full disk, a closed pipe) is a failure */
            if (fp4rt_cli_stdout_failed() && rc == 0)
                rc = fp4rt_cli_error("writing output: %s", strerror(g_stdout_errno));
            return rc;
        }
    fprintf(stderr, "fp4rt: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
