/* fp4rt serve: an OpenAI-compatible HTTP server over one loaded model
 * (layer 6.5, between the tools and the CLI). Built on libmicrohttpd, one thread
 * per connection; N slots (sessions of the model), each with a worker thread;
 * requests beyond the free slots wait in a bounded queue (503 + Retry-After
 * when it is full). Endpoints and shapes: docs/CLI.md "fp4rt serve". */
#ifndef FP4RT_SERVER_H
#define FP4RT_SERVER_H

#include "fp4rt.h"

#include <stddef.h>

/* Zero value = defaults. */
typedef struct fp4rt_server_params {
    const char *host;        /* address to bind; NULL = "127.0.0.1" (loopback only) */
    int port;                /* 0 = a free port chosen by the system (printed) */
    const char *api_key;     /* NULL = no authentication; else every endpoint but / and
                                /health needs "Authorization: Bearer KEY" (401 otherwise) */
    int parallel;            /* slots (concurrent generations); 0 = 1 */
    int queue;               /* requests that may wait for a slot; 0 = 4 * slots; -1 = none */
    size_t max_body;         /* request body limit in bytes (413 above); 0 = 8 MiB */
    int max_json_depth;      /* nesting limit of request JSON (400 above); 0 = 64 */
    int timeout_s;           /* idle connection timeout (slow clients); 0 = 60 */
    int shutdown_grace_s;    /* on SIGINT / SIGTERM, in-flight requests may finish this long,
                                then are cancelled; 0 = 5 */
    const char *model_name;  /* id in /v1/models and responses; NULL = "fp4rt" */
    size_t snapshot_bytes;   /* host memory for session state snapshots (prefix reuse), over all
                                slots; 0 = 1 GiB; the least recently used go first */
    int no_snapshots;        /* 1: no snapshots (a slot reuses only a prompt that extends what it holds) */
    int snapshot_every;      /* also snapshot every this many prompt tokens (rounded up to whole
                                prefill chunks); 0 = 1024; < 0 = only at the end of prompts */
    fp4rt_session_params session; /* each slot's session (n_ctx, chunk, KV type) */
} fp4rt_server_params;

/* Serves `model` until SIGINT or SIGTERM, then stops accepting, lets in-flight
 * requests finish within shutdown_grace_s (cancelling them after), frees the
 * slots and returns OK. The caller must have blocked SIGINT and SIGTERM in every
 * thread (pthread_sigmask before loading the model) so that this thread receives
 * them with sigwait. Prints "fp4rt serve: listening on http://HOST:PORT" on stderr
 * once it accepts connections. The model stays the caller's. Errors (the port
 * taken, a session that does not fit) return a status with the last error set. */
fp4rt_status fp4rt_server_run(fp4rt_model *model, const fp4rt_server_params *params);

#endif
