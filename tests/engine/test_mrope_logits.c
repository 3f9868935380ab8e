/* The text side of prompts with images vs transformers (tools/mrope_text_reference.py):
 *   test_mrope_logits [cpu|vulkan]
 * tests/fixtures/vision/mrope_{one_image,two_images}.{txt,bin}: the tiny-bf16 text model
 * given embedding rows at the image pads and transformers' 3-D M-RoPE positions. fp4rt
 * takes the same rows through fp4rt_session_eval_mm (EMBED override rows) with the
 * positions of fp4rt_rope_index, in prefill chunks of 8 (an image's rows straddle
 * chunks), the last 3 text tokens as decode steps (rope_delta). NMSE of every row <= 1e-6
 * (tiny-bf16's text ceiling, tests/engine/test_model.c; F32 KV cache), argmax equal where
 * clear. The same prompt with plain text positions must miss by far more (the positions
 * matter), and with the pads' own embeddings too (the rows matter). Skips (exit 0) on
 * vulkan without a Vulkan device. */
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "fp4rt.h"
#include "runtime/engine/model.h"
#include "runtime/engine/rope_index.h"
#include "tests/test_devices.h"

#define MAXN 64
#define PAD 7

typedef struct mcase {
    int merge, n_images, grids[4][3], n, delta;
    int32_t tokens[MAXN];
} mcase;

static int read_case(const char *path, mcase *c) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    memset(c, 0, sizeof *c);
    char key[32];
    int ok = 1;
    while (ok && fscanf(f, "%31s", key) == 1) {
        if (key[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != '\n' && ch != EOF) {
            }
        } else if (!strcmp(key, "merge")) {
            ok = fscanf(f, "%d", &c->merge) == 1;
        } else if (!strcmp(key, "grids")) {
            ok = fscanf(f, "%d", &c->n_images) == 1 && c->n_images <= 4;
            for (int i = 0; ok && i < c->n_images; i++)
                ok = fscanf(f, "%d %d %d", &c->grids[i][0], &c->grids[i][1], &c->grids[i][2]) == 3;
        } else if (!strcmp(key, "tokens")) {
            ok = fscanf(f, "%d", &c->n) == 1 && c->n <= MAXN;
            for (int i = 0; ok && i < c->n; i++) ok = fscanf(f, "%d", &c->tokens[i]) == 1;
        } else if (!strcmp(key, "delta")) {
            ok = fscanf(f, "%d", &c->delta) == 1;
        }
    }
    fclose(f);
    return ok && c->n > 0;
}

/* Logits [n, V] of the case: the first n - n_dec tokens in one eval_mm (chunks of 8),
 * the rest decoded one by one. rows: the pad rows in order, or NULL (the pads' own
 * embeddings); text_pos: plain positions instead of rope_index's. */
static float *run(fp4rt_model *m, const mcase *c, const float *rows, int text_pos, int n_dec) {
    int V = fp4rt_model_n_vocab(m), H = m->weights->cfg.hidden;
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 64;
    sp.prefill_chunk = 8;
    sp.kv_type = FP4RT_KV_F32;
    sp.exact = 1; /* vs transformers, and bit for bit across devices */
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    float *out = malloc((size_t)c->n * V * 4);
    if (!s || !out) {
        free(out);
        fp4rt_session_free(s);
        return NULL;
    }
    fp4rt_image_span sp_[4];
    for (int i = 0; i < c->n_images; i++)
        sp_[i] = (fp4rt_image_span){c->grids[i][0], c->grids[i][1], c->grids[i][2], c->merge, NULL};
    int32_t pos[MAXN * 3];
    int next = 0;
    fp4rt_status st = fp4rt_rope_index(c->tokens, c->n, PAD, sp_, c->n_images, NULL, 0, pos, &next);
    CHECK_MSG(!st && next - c->n == c->delta, "rope_index: %s (delta %d, reference %d)", fp4rt_last_error(),
              next - c->n, c->delta);
    int np = c->n - n_dec;
    if (text_pos) {
        for (int i = 0; i < c->n; i++) pos[i * 3] = pos[i * 3 + 1] = pos[i * 3 + 2] = i;
        next = np;
    } else {
        next -= n_dec; /* the position after the prefilled part: all text follows */
    }
    const float *rp[MAXN] = {0};
    for (int i = 0, k = 0; rows && i < np; i++)
        if (c->tokens[i] == PAD) rp[i] = rows + (size_t)k++ * H;
    fp4rt_eval_mm mm = {pos, rp, next};
    st = fp4rt_session_eval_mm(s, c->tokens, np, &mm, out, 1);
    CHECK_MSG(!st, "eval_mm: %s", fp4rt_last_error());
    for (int i = np; !st && i < c->n; i++) st = fp4rt_session_eval(s, &c->tokens[i], 1, out + (size_t)i * V, 0);
    CHECK_MSG(!st, "decode: %s", fp4rt_last_error());
    fp4rt_session_free(s);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

static void check_case(fp4rt_model *m, const char *name) {
    char txt[256], bin[256];
    snprintf(txt, sizeof txt, "tests/fixtures/vision/%s.txt", name);
    snprintf(bin, sizeof bin, "tests/fixtures/vision/%s.bin", name);
    mcase c;
    CHECK_MSG(read_case(txt, &c), "%s missing or malformed", txt);
    int V = fp4rt_model_n_vocab(m), H = m->weights->cfg.hidden;
    int n_pad = 0;
    for (int i = 0; i < c.n; i++) n_pad += c.tokens[i] == PAD;
    size_t nrow = (size_t)n_pad * H, nlog = (size_t)c.n * V;
    float *ref = test_read_floats(bin, nrow + nlog);
    CHECK_MSG(ref != NULL, "%s missing or not %zu floats", bin, nrow + nlog);
    if (!ref) return;
    const float *rows = ref, *want = ref + nrow;
    float *got = run(m, &c, rows, 0, 3);
    if (got) {
        double e = test_nmse(got, want, nlog);
        double worst = 0;
        for (int i = 0; i < c.n; i++) {
            double ei = test_nmse(got + (size_t)i * V, want + (size_t)i * V, (size_t)V);
            if (ei > worst) worst = ei;
        }
        printf("%-17s NMSE vs transformers %.3g (worst row %.3g, ceiling 1e-6)\n", name, e, worst);
        CHECK_MSG(worst <= 1e-6, "%s: a row's NMSE %.3g > 1e-6", name, worst);
        int bad = test_argmax_disagreements(got, want, c.n, V, 1e-3f);
        CHECK_MSG(bad == 0, "%s: argmax differs at %d clear positions", name, bad);
    }
    /* the positions and the rows are what makes it match */
    float *plain = run(m, &c, rows, 1, 3), *norows = run(m, &c, NULL, 0, 3);
    if (plain && norows) {
        double ep = test_nmse(plain, want, nlog), er = test_nmse(norows, want, nlog);
        printf("%-17s with text positions %.3g, without the rows %.3g\n", name, ep, er);
        CHECK_MSG(ep > 1e-4 && er > 1e-4, "%s: text positions (%.3g) or no rows (%.3g) match as well", name, ep, er);
    }
    free(got);
    free(plain);
    free(norows);
    free(ref);
}

int main(int argc, char **argv) {
    char dev[64];
    if (!test_device_arg(argc, argv, dev, sizeof dev)) return 0;
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = dev;
    fp4rt_model *m = fp4rt_model_load("tests/fixtures/tiny-bf16", &mp);
    CHECK_MSG(m != NULL, "load: %s", fp4rt_last_error());
    if (m) {
        check_case(m, "mrope_one_image");
        check_case(m, "mrope_two_images");
        fp4rt_model_free(m);
    }
    return test_summary("test_mrope_logits");
}
