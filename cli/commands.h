/* Subcommands of the fp4rt command. Each returns the process exit code
 * (0 success, 1 failure with a one-line "fp4rt: error: ..." on stderr,
 * 2 usage error). argv[0] is the subcommand name. */
#ifndef FP4RT_CLI_COMMANDS_H
#define FP4RT_CLI_COMMANDS_H

int fp4rt_cmd_logits(int argc, char **argv);
int fp4rt_cmd_perplexity(int argc, char **argv);
int fp4rt_cmd_run(int argc, char **argv);
int fp4rt_cmd_inspect(int argc, char **argv);
int fp4rt_cmd_plan(int argc, char **argv);
int fp4rt_cmd_synth(int argc, char **argv);
int fp4rt_cmd_quantize(int argc, char **argv);
int fp4rt_cmd_bench(int argc, char **argv);
int fp4rt_cmd_devices(int argc, char **argv);
int fp4rt_cmd_env(int argc, char **argv);
int fp4rt_cmd_tokenize(int argc, char **argv);
int fp4rt_cmd_chat(int argc, char **argv);
int fp4rt_cmd_verify(int argc, char **argv);
int fp4rt_cmd_serve(int argc, char **argv);

/* Prints "fp4rt: error: <fp4rt_last_error() or status message>" and returns 1. */
int fp4rt_cli_fail(int status);
/* Prints "fp4rt: error: <formatted>" and returns 1. */
int fp4rt_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "fp4rt <cmd>: usage: <formatted>" and the --help hint; returns 2. */
int fp4rt_cli_usage(const char *cmd, const char *usage);
/* The subcommand being run (set by main), named in the --help hint. */
extern const char *fp4rt_cli_cmd;
/* Usage error: prints "fp4rt: error: <formatted>" and a hint to `fp4rt <cmd>
 * --help` (a line without "error:"); returns 2. */
int fp4rt_cli_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, then exit(2): for the option parsers. */
_Noreturn void fp4rt_cli_bad_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An argument no option matched: "--help"/"-h" prints "usage: fp4rt <cmd>
 * <usage>" on stdout and returns 0; anything else is a usage error naming it (2). */
int fp4rt_cli_unknown(const char *usage, const char *arg);

/* Option parsing helpers: returns the value of --name (argv[i+1]) and advances *i,
 * or NULL if argv[*i] is not --name. A missing or empty value is a usage error
 * (exit 2); --prompt and --system may be empty (their commands decide). */
const char *fp4rt_cli_opt(int argc, char **argv, int *i, const char *name);
/* Parses a non-negative integer option value (at most LONG_MAX); exits 2 if malformed. */
long fp4rt_cli_parse_long(const char *opt, const char *v);
/* Parses an integer in [lo, hi]; exits 2 naming the option and the range otherwise. */
long fp4rt_cli_parse_range(const char *opt, const char *v, long lo, long hi);
/* Parses a finite number x with lo <= x <= hi (lo < x when lo_open); exits 2
 * naming the option and the range otherwise. */
double fp4rt_cli_parse_real(const char *opt, const char *v, double lo, int lo_open, double hi);
/* Checks, before any work, that the file (is_dir 0: not an existing directory)
 * or directory `path` (given as `opt`) can be created: its parent exists, is a
 * directory and is writable. Prints
 * "fp4rt: error: <opt> <path>: <what>: <errno text>" and returns 1 otherwise. */
int fp4rt_cli_check_out_path(const char *opt, const char *path, int is_dir);
/* For a command writing an output directory --out (quantize: its input --in,
 * else NULL): fp4rt_cli_check_out_path, then loader/outdir.h's
 * fp4rt_outdir_check (exists without --force, foreign files, --out = --in,
 * stale temporary directories). Returns 0, or prints the error and returns 1. */
int fp4rt_cli_check_out_dir(const char *out, const char *in, int force);
/* From here on SIGINT, SIGTERM and SIGHUP remove the output directory in
 * progress (fp4rt_outdir_interrupted) and end the process as the signal would.
 * Call before any thread starts (the signals stay blocked in every thread but
 * the watcher). Returns 0, or prints the error and returns 1. */
int fp4rt_cli_clean_on_signal(void);
/* Flushes stdout; returns 1 when it has failed (now or before), remembering
 * the errno of the first failure for main's "writing output" error. Streaming
 * paths call it after each piece and stop early. */
int fp4rt_cli_stdout_failed(void);
/* Most threads a --threads option accepts. */
#define FP4RT_CLI_MAX_THREADS 1024



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
    fp4rt_session_params session; /* --ctx N, --chunk N, --kv bf16|f32|fp8, --exact (the exact
                                     numerics mode, docs/NUMERICS.md "Modes") */
} fp4rt_cli_model_opts;

/* If argv[*i] is one of the options above, consumes it (and its value) and
 * returns 1; returns 0 otherwise. Exits 2 on a malformed value. */
int fp4rt_cli_model_opt(int argc, char **argv, int *i, fp4rt_cli_model_opts *o);
/* Loads the model and creates a session, printing the device line on stderr.
 * Returns 0, or prints the error and returns 1. */
int fp4rt_cli_open(const fp4rt_cli_model_opts *o, fp4rt_model **m, fp4rt_session **s);
/* The same for `bench --synthetic`: preset shapes, the recipe's formats, weights
 * generated by the backend (backend.h prepare_synthetic). */
int fp4rt_cli_open_synthetic(const fp4rt_cli_model_opts *o, const char *preset, const char *recipe, long seed,
                             fp4rt_model **m, fp4rt_session **s);
/* Images one run / one chat message takes at most (--image, /image). */
#define FP4RT_CLI_MAX_IMAGES 16
/* fp4rt bench's "where the time goes" lines (bench_attribution.c): the arithmetic
 * peak against the prefill's linear work, and the per-op-kind shares of a
 * profiled prefill of ids and n_gen greedy decode steps on a new session of sp
 * (t_prefill: the timed prefill's seconds; keep_profile: leave per-op timing on).
 * Returns 0 or 1 after printing the error. */
int fp4rt_cli_bench_attribution(fp4rt_model *m, const fp4rt_session_params *sp, const int32_t *ids, int n_prompt,
                                int n_gen, double t_prefill, int keep_profile);
/* Sampling flags: --greedy, --temp T, --top-k K, --top-p P, --min-p M,
 * --repeat-penalty R, --presence-penalty P, --frequency-penalty F, --seed S.
 * Same contract as fp4rt_cli_model_opt. */
int fp4rt_cli_sampling_opt(int argc, char **argv, int *i, fp4rt_sampling_params *p);
#define FP4RT_CLI_SAMPLING_USAGE                                                                   \
    "[--greedy] [--temp T] [--top-k K] [--top-p P] [--min-p M] [--repeat-penalty R]\n"             \
    "    [--presence-penalty P] [--frequency-penalty F] [--seed S] [--spec mtp[:K]]"
/* --spec mtp[:K]: speculative decoding with the checkpoint's MTP head, K drafts
 * per verify step (1 .. FP4RT_SPEC_MAX_DRAFTS, default FP4RT_CLI_SPEC_K, the
 * best K of bench/RESULTS.md); sets gp->spec_drafts and session->mtp. Same
 * contract as fp4rt_cli_model_opt. */
#define FP4RT_CLI_SPEC_K 3
int fp4rt_cli_spec_opt(int argc, char **argv, int *i, fp4rt_generate_params *gp, fp4rt_session_params *session);
/* "; MTP K=3: 87 verify steps, 212 of 261 drafts accepted (81.2%), 3.44 tokens per step, per draft
 * position 95% 81% 68%" for a speculative result (empty otherwise), into buf. */
const char *fp4rt_cli_spec_stats(const fp4rt_generate_result *r, int k, char *buf, size_t n);
/* Prints streamed pieces: reasoning dimmed on a terminal, or left out. */
typedef struct fp4rt_cli_stream {
    int hide_reasoning, tty, in_reasoning;
} fp4rt_cli_stream;
/* Returns 1 when stdout has failed (the caller stops generating). */
int fp4rt_cli_stream_piece(fp4rt_cli_stream *st, const fp4rt_token_event *ev);
/* Warns on stderr (naming --ctx) when n_ctx is above the model's maximum
 * context, and returns the context to ask for: n_ctx, capped there. A cap is
 * never silent. */
int fp4rt_cli_check_ctx(const fp4rt_model *m, int n_ctx);
/* Restores the terminal's normal text attribute if a dim span is open. */
void fp4rt_cli_stream_end(fp4rt_cli_stream *st);
#define FP4RT_CLI_MODEL_USAGE "[--device auto|cpu|vulkan:N|cuda:N] [--threads N] [--ctx N] [--chunk N] [--kv bf16|f32|fp8]\n    [--fp4-activations] [--exact] [--profile]"
#endif
