/* fp4rt run: greedy generation from a prompt of token ids (text prompts come
 * with the tokenizer). Prints the generated ids, comma-separated, on stdout. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_usage = "--model DIR --tokens 1,2,3|@FILE [-n N] " FP4RT_CLI_MODEL_USAGE;

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int fp4rt_cmd_run(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    const char *tokens_spec = NULL, *v;
    long n_gen = 16;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o)) continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--tokens"))) tokens_spec = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "-n"))) n_gen = fp4rt_cli_parse_long("-n", v);
        else return fp4rt_cli_usage("run", k_usage);
    }
    if (!o.model || !tokens_spec) return fp4rt_cli_usage("run", k_usage);
    int32_t *ids;
    int n;
    if (fp4rt_cli_parse_tokens(tokens_spec, &ids, &n)) return 1;
    if (o.session.n_ctx == 0) o.session.n_ctx = n + (int)n_gen;
    fp4rt_model *m;
    fp4rt_session *s;
    if (fp4rt_cli_open(&o, &m, &s)) {
        free(ids);
        return 1;
    }
    int vocab = fp4rt_model_n_vocab(m), rc = 0;
    float *logits = malloc((size_t)vocab * sizeof(float));
    fp4rt_status st = logits ? fp4rt_session_eval(s, ids, n, logits, 0) : FP4RT_OUT_OF_MEMORY;
    for (long g = 0; g < n_gen && !st; g++) {
        int32_t next = argmax(logits, vocab);
        printf("%s%d", g ? "," : "", next);
        fflush(stdout);
        if (g + 1 < n_gen) st = fp4rt_session_eval(s, &next, 1, logits, 0);
    }
    if (n_gen > 0 && !st) printf("\n");
    if (st) rc = fp4rt_cli_fail(st);
    free(logits);
    free(ids);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    return rc;
}
