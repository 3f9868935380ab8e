/* fp4rt logits: teacher-forced logits of a token sequence, float32 [n, vocab]
 * little-endian, written to a temporary file and renamed when complete. */
#include "cli/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_usage = "--model DIR --tokens 1,2,3|@FILE --out FILE [--decode] " FP4RT_CLI_MODEL_USAGE;

int fp4rt_cmd_logits(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    const char *tokens_spec = NULL, *out = NULL, *v;
    int decode = 0;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o)) continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--tokens"))) tokens_spec = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--out"))) out = v;
        else if (!strcmp(argv[i], "--decode")) decode = 1; /* one token per step (recurrent GDN) */
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!o.model || !tokens_spec || !out)
        return fp4rt_cli_bad("logits: %s is required", !o.model ? "--model DIR" : !tokens_spec ? "--tokens" : "--out FILE");
    if (fp4rt_cli_check_out_path("--out", out, 0)) return 1;
    int32_t *ids;
    int n;
    if (fp4rt_cli_parse_tokens(tokens_spec, &ids, &n)) return 1;
    if (o.session.n_ctx == 0) o.session.n_ctx = n;
    fp4rt_model *m;
    fp4rt_session *s;
    if (fp4rt_cli_open(&o, &m, &s)) {
        free(ids);
        return 1;
    }
    int vocab = fp4rt_model_n_vocab(m), rc = 0;
    float *logits = malloc((size_t)n * vocab * sizeof(float));
    if (!logits) {
        rc = fp4rt_cli_error("out of memory for %d x %d logits", n, vocab);
        goto done;
    }
    fp4rt_status st = FP4RT_OK;
    if (decode) {
        for (int i = 0; i < n && !st; i++)
            st = fp4rt_session_eval(s, ids + i, 1, logits + (size_t)i * vocab, 0);
    } else {
        st = fp4rt_session_eval(s, ids, n, logits, 1);
    }
    if (st) {
        rc = fp4rt_cli_fail(st);
        goto done;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", out, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(logits, sizeof(float), (size_t)n * vocab, f) == (size_t)n * vocab;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, out) != 0) {
        remove(tmp);
        rc = fp4rt_cli_error("--out %s: cannot write logits: %s", out, strerror(errno));
        goto done;
    }
    fprintf(stderr, "fp4rt: wrote %d x %d logits to %s\n", n, vocab, out);
done:
    free(logits);
    free(ids);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    return rc;
}
