/* The server's internals shared by its files: jobs (one generation request),
 * slots (a session and its worker thread), the queue and the metrics. */
#ifndef FP4RT_SERVER_SRV_H
#define FP4RT_SERVER_SRV_H

#include "runtime/server/oai_request.h"
#include "runtime/server/sbuf.h"
#include "runtime/server/server.h"
#include "runtime/server/toolcall.h"
#include "runtime/server/toolforce.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct srv_tool_call {
    char *name, *arguments; /* malloc'ed; arguments: a JSON object as text */
    char id[40];            /* "call_..." */
} srv_tool_call;

/* One generation request. Shared by the connection thread and the slot that
 * runs it: refs counts both, the last srv_job_release frees it. Fields marked
 * (mu) are read and written under mu; the output fields are the worker's until
 * done is set, then the connection's. */
typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;              /* (mu) */
    srv_request req;
    int32_t *prompt;       /* [n_prompt] the prompt's ids (images expanded) */
    size_t n_prompt;
    fp4rt_prompt *mm;      /* the prompt with its images, or NULL (text) */
    size_t image_at;       /* the index of its first image token (n_prompt: none); a slot
                              reuses no state past it (same ids, maybe other images) */
    char id[48];           /* "chatcmpl-..." / "cmpl-..." */
    long created;          /* Unix seconds */
    const char *model_name;
    int fd;                /* the client's socket (disconnect checks), -1 if unknown */
    atomic_int *n_streams; /* the server's count of open streams, decremented when this one ends */
    int keepalive_ms;      /* a stream with nothing to send this long sends an SSE comment, so that
                              a slow generation does not look like an idle connection */
    atomic_int cancel;     /* 1: stop at the next token (client gone, shutdown) */
    int done;              /* (mu) the generation ended: result, status and output final */
    fp4rt_sbuf sse;        /* (mu) SSE bytes not yet sent (stream only) */
    /* output */
    fp4rt_sbuf content, reasoning;
    fp4rt_tc_split split;
    srv_tool_call *calls;
    int n_calls;
    int sent_role;         /* the first chunk (role) is out */
    fp4rt_generate_result res;
    int n_cached;          /* prompt tokens the slot already held */
    int failed;            /* 1: err holds why the generation failed */
    srv_error err;
} srv_job;

/* A new job owning req (moved in) and prompt; refs = 2. NULL on out of memory
 * (req and prompt are then freed). */
srv_job *srv_job_new(srv_request *req, int32_t *prompt, size_t n_prompt, const char *model_name, uint64_t seq);
void srv_job_release(srv_job *j);

/* Output (oai_response.c). srv_out_piece is the generation callback's body
 * (worker thread); srv_out_finish ends the output (worker), then the caller
 * sets done. */
void srv_out_piece(srv_job *j, const fp4rt_token_event *ev);
void srv_out_finish(srv_job *j);
/* The finish_reason of a finished job: "stop", "length" or "tool_calls". */
const char *srv_finish_reason(const srv_job *j);
/* Non-streaming response body (malloc'ed JSON), for a finished job. */
char *srv_response_json(srv_job *j);
/* {"error": {...}} (malloc'ed). */
char *srv_error_json(const srv_error *e);

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests[6];      /* by status class: [0] 2xx, [1] 400, [2] 401, [3] other 4xx, [4] 503, [5] other 5xx */
    uint64_t prompt_tokens, cached_tokens, generated_tokens;
    uint64_t prefix_hits, generations;
    uint64_t snapshots, snapshot_hits; /* state snapshots taken; requests that resumed from one */
    double prefill_seconds, decode_seconds;
    double last_prefill_tps, last_decode_tps;
} srv_metrics;

void srv_metrics_request(srv_metrics *m, int http);
void srv_metrics_generation(srv_metrics *m, const srv_job *j);

/* A slot's state snapshot (prefix reuse, slots.c): the session as it was
 * after its first n_past tokens. */
#define SRV_SNAPS 16
typedef struct srv_snap {
    fp4rt_session_snapshot *snap;
    uint64_t used; /* srv.seq when last taken or restored: the least recent goes first */
} srv_snap;

typedef struct srv_slot {
    int index;
    fp4rt_session *s;
    srv_snap snaps[SRV_SNAPS]; /* written by the slot's worker; read by srv_submit while idle */
    int n_snaps;
    pthread_t thread;
    int started;
    pthread_cond_t cv;
    srv_job *job;       /* (srv.mu) the job to run, NULL when idle */
    int image_at;       /* the session's first image token (its state past it is no
                           one else's to reuse), -1: none */
    uint64_t last_used; /* (srv.mu) */
} srv_slot;

typedef struct srv {
    fp4rt_server_params p; /* defaults resolved */
    fp4rt_model *model;
    int n_vocab, n_ctx;
    struct MHD_Daemon *daemon;
    pthread_mutex_t mu;
    srv_slot *slots;
    int n_slots;
    srv_job **queue;       /* (mu) ring of waiting jobs */
    int q_head, q_len, q_cap;
    int n_running;         /* (mu) */
    int stopping;          /* (mu) no new requests */
    int quit;              /* (mu) workers exit */
    atomic_int n_streams;  /* SSE responses not yet finished (shutdown lets them drain) */
    atomic_ullong seq;
    srv_metrics metrics;
    srv_force_table *force_tab; /* forced tool calls' token tables; NULL without a tokenizer */
} srv;

/* Slots and queue (slots.c). */
int srv_slots_start(srv *S);
/* Hands the job to the idle slot whose held tokens are the longest prefix of
 * its prompt (the least recently used one when none is), else queues it.
 * Returns 0, or -1 with e filled (503: the queue is full or the server stops). */
int srv_submit(srv *S, srv_job *j, srv_error *e);
/* Stops accepting jobs and fails the queued ones; returns the running count. */
int srv_slots_drain(srv *S);
int srv_slots_running(srv *S);
void srv_slots_stop(srv *S);
/* Waiting jobs (for /metrics). */
int srv_queue_length(srv *S);

/* Routes (routes.c): the response to a complete request, queued on c. */
struct MHD_Connection;
int srv_route(srv *S, struct MHD_Connection *c, const char *url, const char *method, const char *body, size_t n,
              int too_big);

/* Replies (http.c); each returns MHD_YES / MHD_NO for the access handler.
 * srv_reply takes body (malloc'ed, freed here; NULL: out of memory, 500);
 * retry_after > 0 adds a Retry-After header. */
int srv_reply(srv *S, struct MHD_Connection *c, int http, const char *ctype, char *body, int retry_after);
int srv_reply_error(srv *S, struct MHD_Connection *c, const srv_error *e);
/* 1 when the peer of socket fd has closed its side (a disconnect). */
int srv_client_gone(int fd);
/* The connection's socket, or -1. */
int srv_conn_fd(struct MHD_Connection *c);

/* Prometheus text (metrics.c; malloc'ed). */
char *srv_metrics_text(srv *S);

/* The chat page (page.c). */
extern const unsigned char *const fp4rt_chat_page;
extern const size_t fp4rt_chat_page_len;

#endif
