/* M-RoPE positions (runtime/engine/rope_index.h) and the session's rotary state:
 * - every case of tests/fixtures/vision/rope_index.txt (tools/rope_index_reference.py,
 *   transformers' get_rope_index): positions and mrope_position_deltas exactly;
 * - refusals: more pad runs than images, fewer, a run of the wrong length, a bad grid;
 * - on tests/fixtures/tiny-bf16 (CPU): a prompt with an "image" (embedding rows
 *   injected, pads straddling prefill chunks) leaves rope_delta and the per-index
 *   positions of the reference, decode continues at index + delta, a snapshot keeps
 *   them and restore puts them back (refusing a session of other positions), reset
 *   forgets them; a prompt given through fp4rt_session_eval_mm with text positions
 *   and no rows gives the logits of fp4rt_session_eval bit for bit. */
#include "tests/test_util.h"

#include "fp4rt.h"
#include "runtime/engine/model.h"
#include "runtime/engine/rope_index.h"

#define MAXN 64
#define MAXI 4

typedef struct rcase {
    char name[64];
    int merge, n_images, grids[MAXI][3], n;
    int32_t tokens[MAXN], pos[3][MAXN];
    int delta;
} rcase;

static int read_ints(FILE *f, int32_t *out, int n) {
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%d", &out[i]) != 1) return 0;
    return 1;
}

/* The next case of the fixture; 0 at the end. */
static int next_case(FILE *f, rcase *c) {
    char key[32];
    memset(c, 0, sizeof *c);
    int got = 0;
    while (fscanf(f, "%31s", key) == 1) {
        if (key[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != '\n' && ch != EOF) {
            }
        } else if (!strcmp(key, "case")) {
            got = fscanf(f, "%63s", c->name) == 1;
        } else if (!strcmp(key, "merge")) {
            CHECK(fscanf(f, "%d", &c->merge) == 1);
        } else if (!strcmp(key, "grids")) {
            CHECK(fscanf(f, "%d", &c->n_images) == 1 && c->n_images <= MAXI);
            for (int i = 0; i < c->n_images; i++) CHECK(read_ints(f, c->grids[i], 3));
        } else if (!strcmp(key, "tokens")) {
            CHECK(fscanf(f, "%d", &c->n) == 1 && c->n <= MAXN);
            CHECK(read_ints(f, c->tokens, c->n));
        } else if (!strncmp(key, "pos_", 4)) {
            int comp = key[4] == 't' ? 0 : key[4] == 'h' ? 1 : 2;
            CHECK(read_ints(f, c->pos[comp], c->n));
        } else if (!strcmp(key, "delta")) {
            CHECK(fscanf(f, "%d", &c->delta) == 1);
            return got;
        }
    }
    return 0;
}

static void spans_of(const rcase *c, fp4rt_image_span *sp) {
    for (int i = 0; i < c->n_images; i++)
        sp[i] = (fp4rt_image_span){c->grids[i][0], c->grids[i][1], c->grids[i][2], c->merge, NULL};
}

static void test_fixture(void) {
    FILE *f = fopen("tests/fixtures/vision/rope_index.txt", "r");
    CHECK_MSG(f != NULL, "tests/fixtures/vision/rope_index.txt missing");
    if (!f) return;
    int n_cases = 0;
    rcase c;
    while (next_case(f, &c)) {
        n_cases++;
        fp4rt_image_span sp[MAXI];
        spans_of(&c, sp);
        int32_t pos[MAXN * 3];
        int next = -1;
        fp4rt_status st = fp4rt_rope_index(c.tokens, c.n, 248056, sp, c.n_images, NULL, 0, pos, &next);
        CHECK_MSG(st == FP4RT_OK, "%s: %s", c.name, fp4rt_last_error());
        int bad = -1;
        for (int i = 0; i < c.n && bad < 0; i++)
            for (int k = 0; k < 3; k++)
                if (pos[i * 3 + k] != c.pos[k][i]) bad = i;
        CHECK_MSG(bad < 0, "%s: token %d at (%d, %d, %d), transformers (%d, %d, %d)", c.name, bad,
                  pos[bad * 3], pos[bad * 3 + 1], pos[bad * 3 + 2], c.pos[0][bad], c.pos[1][bad], c.pos[2][bad]);
        CHECK_MSG(next - c.n == c.delta, "%s: delta %d, transformers %d", c.name, next - c.n, c.delta);
        /* started later (a session continuing): every position shifts by the start */
        int32_t pos2[MAXN * 3];
        int next2 = -1;
        CHECK(!fp4rt_rope_index(c.tokens, c.n, 248056, sp, c.n_images, NULL, 100, pos2, &next2));
        int shifted = next2 == next + 100;
        for (int i = 0; i < c.n * 3; i++) shifted &= pos2[i] == pos[i] + 100;
        CHECK_MSG(shifted, "%s: positions from start 100 are not the ones from 0 plus 100", c.name);
    }
    fclose(f);
    CHECK_EQ_INT(n_cases, 5);
}

static void expect_fail(const int32_t *t, int n, const fp4rt_image_span *sp, int ni, const char *const *what,
                        const char *needle) {
    int32_t pos[MAXN * 3];
    int next;
    fp4rt_status st = fp4rt_rope_index(t, n, 9, sp, ni, what, 0, pos, &next);
    const char *e = fp4rt_last_error();
    CHECK_MSG(st == FP4RT_INVALID_ARGUMENT && strstr(e, needle) && !strchr(e, '\n'), "want '%s', got %s: %s",
              needle, fp4rt_status_name(st), e);
}

static void test_errors(void) {
    const fp4rt_image_span a = {1, 4, 4, 2, NULL}, b = {1, 2, 4, 2, NULL}, odd = {1, 3, 4, 2, NULL};
    const int32_t one[] = {1, 9, 9, 9, 9, 2}, two[] = {1, 9, 9, 9, 9, 2, 9, 9, 3};
    const char *names[] = {"cat.png", "dog.jpg"};
    fp4rt_image_span sp2[2] = {a, b};
    expect_fail(one, 6, sp2, 2, names, "dog.jpg has no <|image_pad|> run");
    expect_fail(two, 9, &a, 1, names, "more <|image_pad|> runs than the 1 image given");
    expect_fail(one, 6, &b, 1, names, "cat.png: takes 2 <|image_pad|> tokens but the prompt has a run of 4");
    expect_fail(one, 6, &odd, 1, NULL, "image 1: patch grid 1x3x4");
    int32_t pos[MAXN * 3];
    int next = -1;
    CHECK(!fp4rt_rope_index(two, 9, 9, sp2, 2, names, 0, pos, &next) && next == 7);
}

/* The session's rotary bookkeeping on the tiny fixture (its backend may ignore the
 * positions: only what the session keeps and hands on is checked here). */
static void test_session(void) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = 1;
    fp4rt_model *m = fp4rt_model_load("tests/fixtures/tiny-bf16", &mp);
    CHECK_MSG(m != NULL, "load: %s", fp4rt_last_error());
    if (!m) return;
    int V = fp4rt_model_n_vocab(m), H = m->weights->cfg.hidden;
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 64;
    sp.prefill_chunk = 4; /* the image's 8 pads straddle three chunks */
    fp4rt_session *s = fp4rt_session_create(m, &sp), *r = fp4rt_session_create(m, &sp);
    CHECK(s && r);
    /* text 3, <vs>, 8 pads (grid 1 x 4 x 8, merge 2: 2 x 4), <ve>, text 2 */
    const int32_t PAD = 7;
    int32_t t[15] = {11, 12, 13, 5, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD, 6, 14, 15};
    fp4rt_image_span im = {1, 4, 8, 2, NULL};
    int32_t pos[15 * 3];
    int next = -1;
    CHECK(!fp4rt_rope_index(t, 15, PAD, &im, 1, NULL, 0, pos, &next));
    CHECK_EQ_INT(next, 4 + 4 + 1 + 2); /* image at 4, width 4 merged: text resumes at 8 */
    float *emb = malloc((size_t)8 * H * 4), *lg = malloc((size_t)15 * V * 4), *lg2 = malloc((size_t)15 * V * 4);
    const float *rows[15] = {0};
    for (int i = 0; i < 8 * H; i++) emb[i] = 0.01f * (float)((i * 37) % 101 - 50);
    for (int i = 0; i < 8; i++) rows[4 + i] = emb + (size_t)i * H;
    fp4rt_eval_mm mm = {pos, rows, next};
    fp4rt_status st = fp4rt_session_eval_mm(s, t, 15, &mm, lg, 1);
    CHECK_MSG(st == FP4RT_OK, "eval_mm: %s", fp4rt_last_error());
    CHECK_EQ_INT(s->rope_delta, next - 15);
    int ok = 1;
    for (int i = 0; i < 15; i++) {
        int32_t p[3];
        fp4rt_session_position(s, i, p);
        ok &= p[0] == pos[i * 3] && p[1] == pos[i * 3 + 1] && p[2] == pos[i * 3 + 2];
    }
    CHECK_MSG(ok, "the session's positions are not rope_index's");
    /* decode: index 15 at position 15 + delta = next */
    int32_t d = 16;
    CHECK(!fp4rt_session_eval(s, &d, 1, NULL, 0));
    int32_t p15[3];
    fp4rt_session_position(s, 15, p15);
    CHECK_MSG(p15[0] == next && p15[1] == next && p15[2] == next, "decode at (%d, %d, %d), want %d", p15[0], p15[1],
              p15[2], next);
    /* a snapshot keeps them; restore onto a session of plain text positions is refused */
    fp4rt_session_snapshot *snap = fp4rt_session_snapshot_take(s);
    CHECK(snap != NULL);
    CHECK(!fp4rt_session_eval(r, t, 15, NULL, 0) && !fp4rt_session_eval(r, &d, 1, NULL, 0));
    st = fp4rt_session_snapshot_restore(r, snap);
    CHECK_MSG(st == FP4RT_INVALID_ARGUMENT && strstr(fp4rt_last_error(), "rotary position"), "restore: %s",
              fp4rt_last_error());
    CHECK(r->mrope == NULL && r->rope_delta == 0); /* unchanged */
    /* onto the same session after more text and a reset-free continuation: positions come back */
    int32_t more[3] = {20, 21, 22};
    CHECK(!fp4rt_session_eval(s, more, 3, NULL, 0));
    CHECK(!fp4rt_session_snapshot_restore(s, snap));
    CHECK_EQ_INT(s->rope_delta, next - 15);
    fp4rt_session_position(s, 8, p15);
    CHECK(p15[0] == pos[24] && p15[1] == pos[25] && p15[2] == pos[26]);
    /* a session given the same image prompt: restore accepted */
    fp4rt_session_reset(r);
    CHECK(!fp4rt_session_eval_mm(r, t, 15, &mm, NULL, 0) && !fp4rt_session_eval(r, &d, 1, NULL, 0));
    CHECK_MSG(!fp4rt_session_snapshot_restore(r, snap), "restore onto the same prompt: %s", fp4rt_last_error());
    fp4rt_session_snapshot_free(snap);
    /* a verify step (speculative decoding's rows) after the image: row i bit for bit a
     * decode step at index + rope_delta */
    fp4rt_session_reset(s);
    fp4rt_session_reset(r);
    CHECK(!fp4rt_session_eval_mm(s, t, 15, &mm, NULL, 0) && !fp4rt_session_eval_mm(r, t, 15, &mm, NULL, 0));
    int32_t vt[3] = {30, 31, 32};
    float *vl = malloc((size_t)3 * V * 4), *dl = malloc((size_t)3 * V * 4);
    st = fp4rt_session_verify(s, vt, 3, vl);
    CHECK_MSG(!st, "verify: %s", fp4rt_last_error());
    for (int i = 0; i < 3; i++) CHECK(!fp4rt_session_eval(r, &vt[i], 1, dl + (size_t)i * V, 0));
    CHECK_MSG(!memcmp(vl, dl, (size_t)3 * V * 4), "verify rows after an image differ from decode steps");
    free(vl);
    free(dl);
    /* reset forgets the rotary state */
    fp4rt_session_reset(s);
    CHECK(s->rope_delta == 0 && s->mrope == NULL);
    /* eval_mm with text positions and no rows == fp4rt_session_eval, bit for bit */
    for (int i = 0; i < 15; i++) pos[i * 3] = pos[i * 3 + 1] = pos[i * 3 + 2] = i;
    fp4rt_eval_mm plain = {pos, NULL, 15};
    CHECK(!fp4rt_session_eval_mm(s, t, 15, &plain, lg, 1));
    CHECK_EQ_INT(s->rope_delta, 0);
    fp4rt_session_reset(s);
    CHECK(!fp4rt_session_eval(s, t, 15, lg2, 1));
    CHECK_MSG(!memcmp(lg, lg2, (size_t)15 * V * 4), "eval_mm with text positions differs from eval");
    free(emb);
    free(lg);
    free(lg2);
    fp4rt_session_free(s);
    fp4rt_session_free(r);
    fp4rt_model_free(m);
}

int main(void) {
    test_fixture();
    test_errors();
    test_session();
    return test_summary("test_rope_index");
}
