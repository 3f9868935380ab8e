/* The HTTP side on libmicrohttpd: one thread per connection (a streaming
 * response may block its thread waiting for tokens), request bodies gathered
 * up to the body limit, API-key checks, the daemon's start and the shutdown on
 * SIGINT / SIGTERM. libmicrohttpd because it is a small C library packaged by
 * Debian (libmicrohttpd-dev), threaded, with callback-driven (chunked)
 * responses for Server-Sent Events and per-connection timeouts. */
#include "runtime/server/srv.h"

#include "runtime/base/common.h"
#include "runtime/engine/model.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int srv_reply(srv *S, struct MHD_Connection *c, int http, const char *ctype, char *body, int retry_after) {
    if (!body) {
        http = 500;
        ctype = "application/json";
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        if (!body) return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    srv_metrics_request(&S->metrics, http);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)http, r);
    MHD_destroy_response(r);
    return ok;
}

int srv_reply_error(srv *S, struct MHD_Connection *c, const srv_error *e) {
    return srv_reply(S, c, e->http, "application/json", srv_error_json(e), e->http == 503 ? 1 : 0);
}

int srv_client_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return 1;
    char ch;
    return (p.revents & POLLIN) && recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int srv_conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* A request being received. */
typedef struct conn_ctx {
    fp4rt_sbuf body;
    int too_big;
    int answered; /* a response was queued early (413 before the body) */
} conn_ctx;

/* Constant-time comparison of the Authorization header with "Bearer KEY". */
static int authorized(srv *S, struct MHD_Connection *c, const char *url) {
    if (!S->p.api_key || !strcmp(url, "/") || !strcmp(url, "/health")) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(S->p.api_key);
    unsigned diff = (unsigned)(a != b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)h[i] ^ (unsigned char)S->p.api_key[i % (b ? b : 1)];
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls) {
    srv *S = cls;
    conn_ctx *cx = *con_cls;
    srv_error e;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx) return MHD_NO;
        *con_cls = cx;
        if (!authorized(S, c, url)) {
            cx->answered = 1;
            srv_fail(&e, 401, NULL, "missing or invalid API key (send \"Authorization: Bearer KEY\")");
            return (enum MHD_Result)srv_reply_error(S, c, &e);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > S->p.max_body) {
            cx->answered = 1;
            srv_fail(&e, 413, NULL, "the request body is %s bytes; the limit is %zu (--max-body)", cl, S->p.max_body);
            return (enum MHD_Result)srv_reply_error(S, c, &e);
        }
        return MHD_YES;
    }
    if (cx->answered) { /* the rest of a refused body */
        *size = 0;
        return MHD_YES;
    }
    if (*size) {
        if (cx->body.n + *size > S->p.max_body) cx->too_big = 1;
        else fp4rt_sbuf_add(&cx->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (cx->body.oom) {
        srv_fail(&e, 500, NULL, "out of memory reading the request body");
        return (enum MHD_Result)srv_reply_error(S, c, &e);
    }
    return (enum MHD_Result)srv_route(S, c, url, method, fp4rt_sbuf_str(&cx->body), cx->body.n, cx->too_big);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode tc) {
    conn_ctx *cx = *con_cls;
    if (!cx) return;
    fp4rt_sbuf_free(&cx->body);
    free(cx);
    *con_cls = NULL;
}

/* Address to bind: host (numeric, or a name resolved once) and port. */
static int bind_addr(const char *host, int port, struct sockaddr_storage *ss, int *ipv6) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc || !res) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "--host %s: not an address of this host: %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static void resolve_params(srv *S, fp4rt_model *model, const fp4rt_server_params *p) {
    S->p = *p;
    if (!S->p.host) S->p.host = "127.0.0.1";
    if (S->p.parallel <= 0) S->p.parallel = 1;
    if (S->p.queue == 0) S->p.queue = 4 * S->p.parallel;
    if (S->p.queue < 0) S->p.queue = 0;
    if (!S->p.max_body) S->p.max_body = 8u << 20;
    if (S->p.max_json_depth <= 0) S->p.max_json_depth = 64;
    if (S->p.timeout_s <= 0) S->p.timeout_s = 60;
    if (S->p.shutdown_grace_s <= 0) S->p.shutdown_grace_s = 5;
    if (!S->p.model_name) S->p.model_name = "fp4rt";
    if (!S->p.snapshot_bytes) S->p.snapshot_bytes = (size_t)1 << 30;
    if (!S->p.snapshot_every) S->p.snapshot_every = 1024;
    S->model = model;
    S->n_slots = S->p.parallel;
    S->n_vocab = fp4rt_model_n_vocab(model);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

fp4rt_status fp4rt_server_run(fp4rt_model *model, const fp4rt_server_params *params) {
    srv *S = calloc(1, sizeof *S);
    if (!S) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "fp4rt serve: out of memory");
    fp4rt_server_params dflt = {0};
    resolve_params(S, model, params ? params : &dflt);
    pthread_mutex_init(&S->mu, NULL);
    pthread_mutex_init(&S->metrics.mu, NULL);
    fp4rt_status st = FP4RT_OK;
    struct sockaddr_storage ss;
    int ipv6 = 0;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (bind_addr(S->p.host, S->p.port, &ss, &ipv6)) {
        st = FP4RT_INVALID_ARGUMENT;
        goto done;
    }
    if (srv_slots_start(S)) {
        st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "--parallel %d: creating the slots: %s", S->n_slots,
                        fp4rt_last_error()[0] ? fp4rt_last_error() : "out of memory");
        goto done;
    }
    S->n_ctx = S->slots[0].s->sb.n_ctx /* the model's maximum may cap --ctx */;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    S->daemon = MHD_start_daemon(flags, (uint16_t)S->p.port, NULL, NULL, on_request, S, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, S, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)S->p.timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)(S->n_slots + S->p.queue + 64), MHD_OPTION_END);
    if (!S->daemon) {
        st = fp4rt_fail(FP4RT_IO, "--port %d: cannot listen on %s (the port is in use, or the address is not this host's)",
                        S->p.port, S->p.host);
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(S->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : S->p.port;
    fprintf(stderr, "fp4rt serve: %d slot%s of %d tokens, queue %d, numerics %s; listening on http://%s%s%s:%d\n",
            S->n_slots, S->n_slots == 1 ? "" : "s", S->n_ctx, S->p.queue, fp4rt_session_numerics(S->slots[0].s),
            ipv6 ? "[" : "", S->p.host, ipv6 ? "]" : "", port);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "fp4rt serve: %s: stopping (in-flight requests get %d s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            S->p.shutdown_grace_s);
    MHD_socket ls = MHD_quiesce_daemon(S->daemon);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    double t0 = now_s();
    while (srv_slots_drain(S) > 0 && now_s() - t0 < S->p.shutdown_grace_s) sleep_ms(20);
done:
    srv_slots_stop(S); /* cancels what still runs: each stops within a token (or a prefill chunk) */
    /* the streams' last chunks and [DONE] still go out (2 s at most) */
    for (double t1 = now_s(); S->daemon && atomic_load(&S->n_streams) > 0 && now_s() - t1 < 2;) sleep_ms(10);
    if (S->daemon) MHD_stop_daemon(S->daemon);
    pthread_mutex_destroy(&S->mu);
    pthread_mutex_destroy(&S->metrics.mu);
    free(S);
    if (!st) fprintf(stderr, "fp4rt serve: stopped\n");
    return st;
}
