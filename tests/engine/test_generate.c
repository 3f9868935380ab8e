/* Generation on a synthesized tiny model with its tokenizer: same seed, same
 * text; max_tokens; stop strings cut exactly where the string starts (and hold
 * back text that might start one); the callback can stop; streamed pieces are
 * complete UTF-8 and concatenate to the detokenized output; reasoning flags;
 * the session continues after a generation; a constraint forces and masks
 * the picks and stops; bad input. */
#include "tests/test_util.h"

#include "runtime/engine/model.h"
#include "runtime/tools/synth.h"

#include <pthread.h>
#include <stdint.h>

typedef struct capture {
    char text[65536];
    size_t n;
    int pieces, reasoning_pieces, answer_pieces, stop_after;
    int bad_utf8;
} capture;

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int len = s[i] < 0x80 ? 1 : (s[i] >> 5) == 6 ? 2 : (s[i] >> 4) == 14 ? 3 : (s[i] >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        for (int k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return 0;
        i += (size_t)len;
    }
    return 1;
}

static int on_piece(const fp4rt_token_event *ev, void *user) {
    capture *c = user;
    if (ev->len != strlen(ev->text)) c->bad_utf8 = 1;
    if (!valid_utf8((const unsigned char *)ev->text, ev->len)) c->bad_utf8 = 1;
    if (c->n + ev->len < sizeof c->text) {
        memcpy(c->text + c->n, ev->text, ev->len);
        c->n += ev->len;
        c->text[c->n] = 0;
    }
    c->pieces++;
    if (ev->reasoning) c->reasoning_pieces++;
    else c->answer_pieces++;
    return c->stop_after && c->pieces >= c->stop_after;
}

typedef struct progress {
    int calls, cancel_at;
    float last;
    int monotonic;
} progress;

static int on_progress(float f, const char *stage, void *user) {
    progress *p = user;
    if (f < p->last || !stage || !stage[0]) p->monotonic = 0;
    p->last = f;
    return ++p->calls == p->cancel_at;
}

/* Two sessions of one model driven from two threads give the same logits as
 * one session alone (steps are serialized on the model's device). */
typedef struct worker_arg {
    fp4rt_model *m;
    const int32_t *ids;
    int n;
    float *logits;
    fp4rt_status st;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    fp4rt_session *s = fp4rt_session_create(a->m, NULL);
    a->st = s ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    for (int i = 0; i < a->n && !a->st; i++) a->st = fp4rt_session_eval(s, a->ids + i, 1, a->logits, 0);
    fp4rt_session_free(s);
    return NULL;
}

static void test_threads(fp4rt_model *m) {
    int32_t ids[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 37) % 400;
    int V = fp4rt_model_n_vocab(m);
    float *ref = malloc(sizeof(float) * V), *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    worker_arg w0 = {m, ids, 24, ref, 0}, w1 = {m, ids, 24, a, 0}, w2 = {m, ids, 24, b, 0};
    worker(&w0);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, worker, &w1);
    pthread_create(&t2, NULL, worker, &w2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(!w0.st && !w1.st && !w2.st);
    CHECK_MSG(!memcmp(ref, a, sizeof(float) * V) && !memcmp(ref, b, sizeof(float) * V),
              "concurrent sessions differ from a lone one");
    free(ref), free(a), free(b);
}

static fp4rt_status run(fp4rt_model *m, const char *prompt, fp4rt_generate_params *gp, capture *c,
                        fp4rt_generate_result *res) {
    fp4rt_session *s = fp4rt_session_create(m, NULL);
    if (!s) return FP4RT_OUT_OF_MEMORY;
    int32_t *ids = NULL;
    size_t n = 0;
    fp4rt_status st = fp4rt_tokenize(m, prompt, &ids, &n);
    if (!st) st = fp4rt_generate(s, ids, n, gp, on_piece, c, res);
    fp4rt_free(ids);
    fp4rt_session_free(s);
    return st;
}

/* A constraint (fp4rt_generate_params.constraint): forces ids, then masks to
 * a set, then stops; it records what accept saw. */
typedef struct forcer {
    const int32_t *forced;
    int n_forced, n_masked, answer; /* answer != 0: what next returns once forcing is over (a bad one) */
    uint8_t *mask;
    int32_t seen[64];
    int n_seen, calls;
} forcer;

static int32_t forcer_next(void *user, const uint8_t **mask) {
    forcer *f = user;
    f->calls++;
    if (f->n_seen < f->n_forced) return f->forced[f->n_seen];
    if (f->answer) return f->answer;
    if (f->n_seen < f->n_forced + f->n_masked) {
        *mask = f->mask;
        return FP4RT_PICK_MASK;
    }
    return FP4RT_PICK_STOP;
}

static void forcer_accept(void *user, int32_t id) {
    forcer *f = user;
    if (f->n_seen < 64) f->seen[f->n_seen] = id;
    f->n_seen++;
}

static void test_constraint(fp4rt_model *m, const char *prompt) {
    int vocab = fp4rt_model_n_vocab(m);
    uint8_t *mask = calloc((size_t)vocab, 1);
    int32_t allowed[3] = {-1, -1, -1}, forced[3] = {-1, -1, -1};
    for (int32_t id = vocab - 1, k = 0; id >= 0 && k < 6; id--) /* ids with a token that no eos is */
        if (m->valid_ids[id] && !fp4rt_tokenizer_is_special(m->tokenizer, id) && id != m->think_open &&
            id != m->think_close) {
            if (k < 3) forced[k] = id;
            else allowed[k - 3] = id, mask[id] = 1;
            k++;
        }
    for (int greedy = 1; greedy >= 0; greedy--) {
        fp4rt_generate_params gp = fp4rt_generate_default_params();
        gp.max_tokens = 20;
        gp.ignore_eos = 1;
        gp.sampling.greedy = greedy ? 1 : -1;
        gp.sampling.temperature = 1.5f;
        gp.sampling.seed = 5;
        int32_t out[32];
        gp.output_ids = out;
        gp.output_cap = 32;
        forcer f = {forced, 3, 6, 0, mask, {0}, 0, 0};
        fp4rt_constraint con = {forcer_next, forcer_accept, &f};
        gp.constraint = &con;
        static capture c;
        memset(&c, 0, sizeof c);
        fp4rt_generate_result r;
        CHECK(!run(m, prompt, &gp, &c, &r));
        CHECK_EQ_INT(r.stop_reason, FP4RT_STOP_CALLBACK);
        CHECK_EQ_INT(r.n_generated, 9);
        CHECK_EQ_INT(f.n_seen, 9);
        int ok = 1;
        for (int i = 0; i < 9 && i < r.n_generated; i++) {
            ok &= out[i] == f.seen[i];
            if (i < 3) ok &= out[i] == forced[i];
            else ok &= out[i] == allowed[0] || out[i] == allowed[1] || out[i] == allowed[2];
        }
        CHECK_MSG(ok, "constraint (greedy %d): the output ids are not the forced then the allowed ones", greedy);
        /* max_tokens comes first: the constraint is not asked past it */
        gp.max_tokens = 4;
        f = (forcer){forced, 3, 6, 0, mask, {0}, 0, 0};
        CHECK(!run(m, prompt, &gp, &c, &r));
        CHECK(r.stop_reason == FP4RT_STOP_MAX_TOKENS && r.n_generated == 4 && f.calls == 4 && f.n_seen == 4);
    }
    /* a bad answer is an error naming it; a constraint without accept is refused */
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.max_tokens = 5;
    forcer f = {forced, 1, 0, -7, mask, {0}, 0, 0};
    fp4rt_constraint con = {forcer_next, forcer_accept, &f};
    gp.constraint = &con;
    static capture c;
    fp4rt_generate_result r;
    CHECK_EQ_INT(run(m, prompt, &gp, &c, &r), FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "the constraint answered -7") != NULL);
    f = (forcer){forced, 1, 0, vocab, mask, {0}, 0, 0};
    CHECK_EQ_INT(run(m, prompt, &gp, &c, &r), FP4RT_INVALID_ARGUMENT);
    con.accept = NULL;
    CHECK_EQ_INT(run(m, prompt, &gp, &c, &r), FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "constraint") != NULL);
    free(mask);
}

int main(void) {
    test_tmpdir("generate");
    fp4rt_config cfg;
    CHECK(!fp4rt_config_preset("tiny", 0, &cfg));
    const char *dir = test_tmp_path("tiny");
    CHECK(!fp4rt_synth(&cfg, dir, 9, 0, 0));
    /* progress reaches 1 in order; a callback can cancel the load */
    progress pr = {0, 0, 0, 1};
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.progress = on_progress;
    mp.progress_user = &pr;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK(m && pr.calls >= 3 && pr.last == 1.0f && pr.monotonic);
    fp4rt_model_free(m);
    pr = (progress){0, 2, 0, 1};
    m = fp4rt_model_load(dir, &mp);
    CHECK(m == NULL && strstr(fp4rt_last_error(), "cancelled") != NULL);
    m = fp4rt_model_load(dir, NULL);
    CHECK_MSG(m != NULL, "%s", fp4rt_last_error());
    if (!m) return test_summary("generate");
    int32_t eos[8];
    CHECK(fp4rt_model_eos_ids(m, eos, 8) >= 1);

    const char *prompt = "<|im_start|>user\nWrite a story about a robot.<|im_end|>\n<|im_start|>assistant\n";
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.max_tokens = 40;
    gp.ignore_eos = 1;
    gp.sampling.seed = 3;
    fp4rt_generate_result r1, r2, r3;
    static capture c1, c2, c3;
    CHECK(!run(m, prompt, &gp, &c1, &r1));
    CHECK(!run(m, prompt, &gp, &c2, &r2));
    CHECK_EQ_INT(r1.n_generated, 40);
    CHECK_EQ_INT(r1.stop_reason, FP4RT_STOP_MAX_TOKENS);
    CHECK_MSG(c1.n == c2.n && !memcmp(c1.text, c2.text, c1.n), "same seed gave different text");
    CHECK(!c1.bad_utf8 && c1.n > 0);
    CHECK(c1.answer_pieces > 0 && c1.reasoning_pieces == 0);
    gp.sampling.seed = 4;
    CHECK(!run(m, prompt, &gp, &c3, &r3));
    CHECK_MSG(c3.n != c1.n || memcmp(c1.text, c3.text, c1.n), "another seed gave the same text");

    /* streamed pieces == detokenized output ids */
    int32_t out_ids[64];
    gp.sampling.seed = 3;
    gp.output_ids = out_ids;
    gp.output_cap = 64;
    static capture c4;
    CHECK(!run(m, prompt, &gp, &c4, &r3));
    /* the stream leaves out special tokens and the think markers */
    int32_t kept[64];
    size_t nk = 0;
    for (int i = 0; i < r3.n_generated; i++)
        if (out_ids[i] != m->think_open && out_ids[i] != m->think_close) kept[nk++] = out_ids[i];
    char *whole = NULL;
    size_t wl = 0;
    CHECK(!fp4rt_tokenizer_decode(m->tokenizer, kept, nk, 1, &whole, &wl));
    CHECK_MSG(whole && wl == c4.n && !memcmp(whole, c4.text, c4.n),
              "streamed text differs from the detokenized ids:\n[%s]\n[%s]", whole, c4.text);
    fp4rt_free(whole);
    gp.output_ids = NULL;
    gp.output_cap = 0;

    /* a stop string taken from the middle of the text: output ends right before it */
    if (c1.n > 12) {
        char stop[5];
        size_t at = c1.n / 2;
        while (at < c1.n && ((unsigned char)c1.text[at] & 0xc0) == 0x80) at++;
        memcpy(stop, c1.text + at, 4);
        stop[4] = 0;
        if (valid_utf8((unsigned char *)stop, strlen(stop))) {
            const char *first = strstr(c1.text, stop);
            const char *stops[] = {"\x01never", stop};
            gp.stop = stops;
            gp.n_stop = 2;
            static capture c5;
            CHECK(!run(m, prompt, &gp, &c5, &r3));
            CHECK_EQ_INT(r3.stop_reason, FP4RT_STOP_STRING);
            CHECK_MSG(c5.n == (size_t)(first - c1.text) && !memcmp(c5.text, c1.text, c5.n),
                      "stop string: got %zu bytes, expected %zu", c5.n, (size_t)(first - c1.text));
            gp.stop = NULL;
            gp.n_stop = 0;
        }
    }

    /* the callback stops generation */
    static capture c6;
    c6.stop_after = 2;
    CHECK(!run(m, prompt, &gp, &c6, &r3));
    CHECK_EQ_INT(r3.stop_reason, FP4RT_STOP_CALLBACK);
    CHECK_EQ_INT(c6.pieces, 2);

    test_constraint(m, prompt);

    /* reasoning_open: pieces are reasoning until </think> */
    static capture c7;
    gp.reasoning_open = 1;
    gp.max_tokens = 8;
    CHECK(!run(m, prompt, &gp, &c7, &r3));
    CHECK(c7.pieces > 0);
    CHECK(c7.reasoning_pieces > 0);
    gp.reasoning_open = 0;

    /* stop on an eos id: with eos honoured and greedy, generation ends by itself
     * or by max_tokens; either way the reason is one of the two */
    gp.ignore_eos = 0;
    gp.max_tokens = 30;
    static capture c8;
    CHECK(!run(m, prompt, &gp, &c8, &r3));
    CHECK(r3.stop_reason == FP4RT_STOP_EOS || r3.stop_reason == FP4RT_STOP_MAX_TOKENS);

    /* continuing a session; bad input */
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 64;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(!fp4rt_tokenize(m, prompt, &ids, &n));
    gp.max_tokens = 5;
    gp.ignore_eos = 1;
    CHECK(!fp4rt_generate(s, ids, n, &gp, NULL, NULL, &r3));
    int held = fp4rt_session_n_past(s);
    CHECK_EQ_INT(held, (int)n + 5); /* every sampled token is held (the 5th pending) */
    CHECK_EQ_INT(fp4rt_generate(s, NULL, 0, &gp, NULL, NULL, &r3), FP4RT_OK); /* continues */
    CHECK_EQ_INT(fp4rt_session_n_past(s), (int)n + 10);
    gp.max_tokens = 0; /* until the context is full */
    CHECK(!fp4rt_generate(s, ids, 1, &gp, NULL, NULL, &r3));
    CHECK_EQ_INT(r3.stop_reason, FP4RT_STOP_CONTEXT);
    CHECK_EQ_INT(fp4rt_session_n_past(s), 64);
    fp4rt_session_reset(s);
    int32_t *big = calloc(100, sizeof *big);
    CHECK_EQ_INT(fp4rt_generate(s, big, 100, &gp, NULL, NULL, &r3), FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "context") != NULL);
    free(big);
    fp4rt_free(ids);
    fp4rt_session_free(s);
    /* invalid UTF-8 in a prompt is replaced, not fatal */
    CHECK(!fp4rt_tokenize(m, "bad \xff\xfe bytes", &ids, &n));
    fp4rt_free(ids);

    test_threads(m);
    fp4rt_model_free(m);
    test_tmpdir_remove();
    return test_summary("generate");
}
