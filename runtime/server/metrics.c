/* Counters for /metrics, in Prometheus' text exposition format (version 0.0.4). */
#include "runtime/server/srv.h"

#include <stdlib.h>

void srv_metrics_request(srv_metrics *m, int http) {
    int k = http < 400 ? 0 : http == 400 ? 1 : http == 401 ? 2 : http < 500 ? 3 : http == 503 ? 4 : 5;
    pthread_mutex_lock(&m->mu);
    m->requests[k]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_generation(srv_metrics *m, const srv_job *j) {
    const fp4rt_generate_result *r = &j->res;
    pthread_mutex_lock(&m->mu);
    m->generations++;
    m->prompt_tokens += j->n_prompt;
    m->cached_tokens += (uint64_t)j->n_cached;
    m->prefix_hits += j->n_cached > 0;
    m->generated_tokens += (uint64_t)r->n_generated;
    m->prefill_seconds += r->prefill_seconds;
    m->decode_seconds += r->decode_seconds;
    if (r->prefill_seconds > 0) m->last_prefill_tps = r->n_prompt / r->prefill_seconds;
    if (r->decode_seconds > 0) m->last_decode_tps = r->n_generated / r->decode_seconds; /* as fp4rt run reports it */
    pthread_mutex_unlock(&m->mu);
}

char *srv_metrics_text(srv *S) {
    int running = srv_slots_running(S), waiting = srv_queue_length(S);
    srv_metrics *m = &S->metrics;
    fp4rt_sbuf b = {0};
    static const char *classes[6] = {"2xx", "400", "401", "4xx", "503", "5xx"};
    pthread_mutex_lock(&m->mu);
    fp4rt_sbuf_puts(&b, "# HELP fp4rt_requests_total HTTP requests answered, by status (2xx, 400, 401, other 4xx, "
                        "503, other 5xx).\n# TYPE fp4rt_requests_total counter\n");
    for (int i = 0; i < 6; i++)
        fp4rt_sbuf_printf(&b, "fp4rt_requests_total{status=\"%s\"} %llu\n", classes[i],
                          (unsigned long long)m->requests[i]);
#define COUNTER(name, help, fmt, v)                                                                                    \
    fp4rt_sbuf_printf(&b, "# HELP fp4rt_" name " " help "\n# TYPE fp4rt_" name " counter\nfp4rt_" name " " fmt "\n", v)
#define GAUGE(name, help, fmt, v)                                                                                      \
    fp4rt_sbuf_printf(&b, "# HELP fp4rt_" name " " help "\n# TYPE fp4rt_" name " gauge\nfp4rt_" name " " fmt "\n", v)
    COUNTER("generations_total", "Generations run (chat and text completions).", "%llu",
            (unsigned long long)m->generations);
    COUNTER("prompt_tokens_total", "Prompt tokens of the generations (cached ones included).", "%llu",
            (unsigned long long)m->prompt_tokens);
    COUNTER("prompt_tokens_cached_total", "Prompt tokens a slot already held (not evaluated again).", "%llu",
            (unsigned long long)m->cached_tokens);
    COUNTER("prefix_cache_hits_total", "Generations that reused the tokens a slot held.", "%llu",
            (unsigned long long)m->prefix_hits);
    COUNTER("state_snapshots_total", "Session state snapshots taken (prefix reuse).", "%llu",
            (unsigned long long)m->snapshots);
    COUNTER("state_snapshot_hits_total", "Generations that resumed from a state snapshot.", "%llu",
            (unsigned long long)m->snapshot_hits);
    COUNTER("generation_tokens_total", "Tokens generated.", "%llu", (unsigned long long)m->generated_tokens);
    COUNTER("prefill_seconds_total", "Seconds spent evaluating prompts.", "%.6f", m->prefill_seconds);
    COUNTER("decode_seconds_total", "Seconds spent generating.", "%.6f", m->decode_seconds);
    GAUGE("prefill_tokens_per_second", "Prefill speed of the last generation.", "%.3f", m->last_prefill_tps);
    GAUGE("decode_tokens_per_second", "Decode speed of the last generation.", "%.3f", m->last_decode_tps);
    pthread_mutex_unlock(&m->mu);
    GAUGE("requests_running", "Generations running in a slot.", "%d", running);
    GAUGE("requests_waiting", "Generations waiting for a slot (the queue).", "%d", waiting);
    GAUGE("slots", "Slots (sessions of the model).", "%d", S->n_slots);
#undef COUNTER
#undef GAUGE
    if (b.oom) {
        fp4rt_sbuf_free(&b);
        return NULL;
    }
    return b.s;
}
