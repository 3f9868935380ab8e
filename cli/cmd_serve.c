/* fp4rt serve: an OpenAI-compatible HTTP server (runtime/server/). This file
 * parses the flags, loads the model and hands over to fp4rt_server_run, which
 * returns on SIGINT / SIGTERM (exit 0). */
#include "cli/commands.h"

#include "runtime/engine/model.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifdef FP4RT_HAVE_SERVER
#include "runtime/server/server.h"
#endif

static const char *k_usage =
    "--model DIR [--host ADDR] [--port N] [--api-key KEY] [--parallel N] [--queue N] [--model-name NAME]\n"
    "    [--max-body BYTES] [--timeout S] [--shutdown-grace S] [--snapshot-mb M] [--snapshot-every N]\n"
    "    " FP4RT_CLI_MODEL_USAGE;

#ifdef FP4RT_HAVE_SERVER
/* The directory's last component, the default model id. */
static const char *base_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    static char buf[256];
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - b), dir + b);
    return buf;
}

int fp4rt_cmd_serve(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    fp4rt_server_params sp = {0};
    const char *v;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o)) continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--host"))) sp.host = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--port"))) sp.port = (int)fp4rt_cli_parse_range("--port", v, 0, 65535);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--api-key"))) sp.api_key = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--parallel")))
            sp.parallel = (int)fp4rt_cli_parse_range("--parallel", v, 1, 256);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--queue"))) {
            sp.queue = (int)fp4rt_cli_parse_range("--queue", v, 0, 65536);
            if (sp.queue == 0) sp.queue = -1; /* the flag's 0 is "no queue" */
        } else if ((v = fp4rt_cli_opt(argc, argv, &i, "--model-name"))) sp.model_name = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--max-body")))
            sp.max_body = (size_t)fp4rt_cli_parse_range("--max-body", v, 1024, 1L << 30);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--timeout")))
            sp.timeout_s = (int)fp4rt_cli_parse_range("--timeout", v, 1, 86400);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--snapshot-mb"))) {
            sp.snapshot_bytes = (size_t)fp4rt_cli_parse_range("--snapshot-mb", v, 0, 1L << 20) << 20;
            sp.no_snapshots = sp.snapshot_bytes == 0; /* the flag's 0 is "none" */
        }
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--snapshot-every")))
            sp.snapshot_every = (int)fp4rt_cli_parse_range("--snapshot-every", v, 64, 1L << 24);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--shutdown-grace")))
            sp.shutdown_grace_s = (int)fp4rt_cli_parse_range("--shutdown-grace", v, 1, 3600);
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!o.model) return fp4rt_cli_bad("serve: --model DIR is required");
    if (!sp.model_name) sp.model_name = base_name(o.model);
    /* SIGINT / SIGTERM go to fp4rt_server_run's sigwait: blocked before any thread
     * starts (the model's workers, the server's) so that none of them receives them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    fp4rt_model *m;
    fp4rt_session *s;
    if (fp4rt_cli_open(&o, &m, &s)) return 1;
    sp.session = o.session;
    sp.session.n_ctx = s->sb.n_ctx; /* --ctx as resolved (capped at the model's maximum) */
    fp4rt_session_free(s); /* the check that one session fits; the server makes its own */
    fp4rt_status st = fp4rt_server_run(m, &sp);
    fp4rt_model_free(m);
    return st ? fp4rt_cli_fail(st) : 0;
}
#else
int fp4rt_cmd_serve(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fp4rt_cli_unknown(k_usage, argv[i]);
    return fp4rt_cli_error("serve: this fp4rt was built without libmicrohttpd (apt-get install libmicrohttpd-dev, "
                           "then configure again)");
}
#endif
