/* Subcommands of the fp4rt command. Each returns the process exit code
 * (0 success, 1 failure with a one-line "fp4rt: error: ..." on stderr,
 * 2 usage error). argv[0] is the subcommand name. */
#ifndef FP4RT_CLI_COMMANDS_H
#define FP4RT_CLI_COMMANDS_H

int fp4rt_cmd_logits(int argc, char **argv);
int fp4rt_cmd_run(int argc, char **argv);
int fp4rt_cmd_inspect(int argc, char **argv);
int fp4rt_cmd_plan(int argc, char **argv);
int fp4rt_cmd_synth(int argc, char **argv);
int fp4rt_cmd_quantize(int argc, char **argv);
int fp4rt_cmd_bench(int argc, char **argv);
int fp4rt_cmd_devices(int argc, char **argv);
int fp4rt_cmd_tokenize(int argc, char **argv);
int fp4rt_cmd_chat(int argc, char **argv);
int fp4rt_cmd_verify(int argc, char **argv);

/* Prints "fp4rt: error: <fp4rt_last_error() or status message>" and returns 1. */
int fp4rt_cli_fail(int status);
/* Prints "fp4rt: error: <formatted>" and returns 1. */
int fp4rt_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "fp4rt <cmd>: usage: <formatted>" and returns 2. */
int fp4rt_cli_usage(const char *cmd, const char *usage);

/* Option parsing helpers: returns the value of --name (argv[i+1]) and advances *i,
 * or NULL if argv[*i] is not --name. Missing value -> prints usage error, exits 2. */
const char *fp4rt_cli_opt(int argc, char **argv, int *i, const char *name);
/* Parses a non-negative integer option value; exits 2 with a message if malformed. */
long fp4rt_cli_parse_long(const char *opt, const char *v);



#include <stddef.h>
#include <stdint.h>

/* Parses "1,2,3" (or "@FILE" holding such a list) into a malloc'ed array.
 * Returns 0, or prints an error naming the bad entry and returns 1. */
int fp4rt_cli_parse_tokens(const char *spec, int32_t **out, int *n);
/* "1.50 GiB" style, into buf. */
const char *fp4rt_cli_bytes(uint64_t bytes, char *buf, size_t n);
/* Wall-clock seconds (monotonic). */
double fp4rt_cli_now(void);

#include "fp4rt.h"

/* Options every model-running command takes. */
typedef struct fp4rt_cli_model_opts {
    const char *model;  /* --model DIR */
    const char *device; /* --device auto|cpu|vulkan:N|cuda:N */
    int threads;        /* --threads N */
    int fp4_activations; /* --fp4-activations */
    int profile;        /* --profile: per-op times logged at the end */
    fp4rt_session_params session; /* --ctx N, --chunk N, --kv bf16|f32|fp8 */
} fp4rt_cli_model_opts;

/* If argv[*i] is one of the options above, consumes it (and its value) and
 * returns 1; returns 0 otherwise. Exits 2 on a malformed value. */
int fp4rt_cli_model_opt(int argc, char **argv, int *i, fp4rt_cli_model_opts *o);
/* Loads the model and creates a session, printing the device line on stderr.
 * Returns 0, or prints the error and returns 1. */
int fp4rt_cli_open(const fp4rt_cli_model_opts *o, fp4rt_model **m, fp4rt_session **s);
/* Sampling flags: --greedy, --temp T, --top-k K, --top-p P, --min-p M,
 * --repeat-penalty R, --presence-penalty P, --frequency-penalty F, --seed S.
 * Same contract as fp4rt_cli_model_opt. */
int fp4rt_cli_sampling_opt(int argc, char **argv, int *i, fp4rt_sampling_params *p);
#define FP4RT_CLI_SAMPLING_USAGE                                                                   \
    "[--greedy] [--temp T] [--top-k K] [--top-p P] [--min-p M] [--repeat-penalty R]\n"             \
    "    [--presence-penalty P] [--frequency-penalty F] [--seed S]"
/* Prints streamed pieces: reasoning dimmed on a terminal, or left out. */
typedef struct fp4rt_cli_stream {
    int hide_reasoning, tty, in_reasoning;
} fp4rt_cli_stream;
void fp4rt_cli_stream_piece(fp4rt_cli_stream *st, const fp4rt_token_event *ev);
/* Restores the terminal's normal text attribute if a dim span is open. */
void fp4rt_cli_stream_end(fp4rt_cli_stream *st);
#define FP4RT_CLI_MODEL_USAGE "[--device auto|cpu|vulkan:N|cuda:N] [--threads N] [--ctx N] [--chunk N] [--kv bf16|f32|fp8]\n    [--fp4-activations] [--profile]"
#endif
