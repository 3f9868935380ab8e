/* The fp4rt command: dispatches to the subcommands in cli/cmd_*.c. */
#include "cli/commands.h"

#include "fp4rt.h"

#include <errno.h>
#include <limits.h>
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

int fp4rt_cli_usage(const char *cmd, const char *usage) {
    fprintf(stderr, "fp4rt %s: usage: fp4rt %s %s\n", cmd, cmd, usage);
    return 2;
}

const char *fp4rt_cli_opt(int argc, char **argv, int *i, const char *name) {
    if (strcmp(argv[*i], name) != 0) return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fp4rt: error: option %s needs a value\n", name);
        exit(2);
    }
    *i += 1;
    return argv[*i];
}

long fp4rt_cli_parse_long(const char *opt, const char *v) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 0) {
        fprintf(stderr, "fp4rt: error: option %s: '%s' is not a non-negative integer\n", opt, v);
        exit(2);
    }
    return x;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} k_commands[] = {
    {"run", fp4rt_cmd_run, "generate an answer to a text prompt (or ids after a prompt of ids)"},
    {"chat", fp4rt_cmd_chat, "interactive chat with the model's chat template"},
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
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fp4rt: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
