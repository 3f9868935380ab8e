/* The draft vocabulary on the Vulkan backend (fp4rt_step.logits_rows, issue 16):
 * a step with logits_rows = N computes only logits [0, N) of each row, bit for
 * bit those of the full step, with fewer LM-head workgroups
 * (fp4rt_vk_logits_groups); its greedy pick (argmax_out, over ids [0, N)) is
 * the host's greedy pick of the full row's first N logits. On the tiny
 * fixtures (BF16 and quantized), a 4-row step with every row's logits and a
 * 1-token step, on lavapipe's whole-rows kernels and on the GPUs' decode
 * kernels (FP4RT_VK_LINEAR=mv). Skips (exit 0) without a Vulkan device. */
#include "fp4rt.h"
#include "tests/test_util.h"
#include "tests/test_session_util.h"
#include "tests/backend/vulkan/test_vk_util.h"

#include "runtime/engine/model.h"

#include <math.h>
#include <stdint.h>

/* The host's greedy pick of l[0, n): the lowest id of the largest valid logit. */
static int32_t host_pick(const float *l, int n, const uint8_t *valid) {
    int32_t best = -1;
    for (int i = 0; i < n; i++)
        if ((!valid || valid[i]) && (best < 0 || l[i] > l[best])) best = i;
    return best < 0 ? 0 : best;
}

/* One step of the model's program on s (tokens at its n_past), logits [rows, V]
 * downloaded to out; the LM head's workgroups recorded to *groups. */
static fp4rt_status run(fp4rt_model *m, fp4rt_session *s, fp4rt_step *step, float *out, long *groups) {
    int V = fp4rt_model_n_vocab(m), rows = step->all_logits ? step->n_tokens : 1;
    step->pos0 = s->n_past;
    long g0 = fp4rt_vk_logits_groups();
    fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, step);
    *groups = fp4rt_vk_logits_groups() - g0;
    if (!st) s->n_past += step->n_tokens;
    if (!st) st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, 0, out, (size_t)rows * V * 4);
    return st;
}

static void check_model(const char *dir, const char *dev, const char *how, const int32_t *tok) {
    fp4rt_model *m = test_load_model(dir, dev);
    if (!m) return;
    int V = fp4rt_model_n_vocab(m);
    const int ns[] = {1, 37, V / 2 + 3, V - 1};
    float *full = malloc((size_t)4 * V * 4), *part = malloc((size_t)4 * V * 4);
    for (size_t k = 0; full && part && k < sizeof ns / sizeof ns[0]; k++) {
        int N = ns[k];
        fp4rt_session *a = test_session(m, 64, 16), *b = test_session(m, 64, 16);
        if (!a || !b) break;
        long ga = 0, gb = 0, ga1 = 0, gb1 = 0;
        /* 4 rows, every row's logits */
        fp4rt_step sa = {.tokens = tok, .n_tokens = 4, .all_logits = 1}, sb = sa;
        sb.logits_rows = N;
        fp4rt_status st = run(m, a, &sa, full, &ga);
        if (!st) memset(part, 0x7f, (size_t)4 * V * 4);
        if (!st) st = run(m, b, &sb, part, &gb);
        int same = 1;
        for (int r = 0; !st && r < 4; r++)
            same &= !memcmp(full + (size_t)r * V, part + (size_t)r * V, (size_t)N * 4);
        CHECK_MSG(!st, "%s (%s) N = %d: %s", dir, how, N, fp4rt_last_error());
        CHECK_MSG(same, "%s (%s) N = %d: the 4-row step's logits [0, N) differ from the full step's", dir, how, N);
        /* fewer, unless N is within a workgroup's rows (at most 32) of the vocabulary */
        int fewer = N + 32 <= V;
        CHECK_MSG(gb > 0 && (fewer ? gb < ga : gb <= ga), "%s (%s) N = %d: %ld LM-head workgroups, the full step %ld",
                  dir, how, N, gb, ga);
        /* 1 token, picked on the device over [0, N) */
        int32_t pick = -2;
        fp4rt_step s1a = {.tokens = tok + 4, .n_tokens = 1}, s1b = s1a;
        s1b.logits_rows = N;
        s1b.argmax_out = &pick;
        s1b.argmax_valid = m->valid_ids;
        if (!st) st = run(m, a, &s1a, full, &ga1);
        if (!st) st = run(m, b, &s1b, part, &gb1);
        int same1 = !st && !memcmp(full, part, (size_t)N * 4);
        int32_t want = host_pick(full, N, m->valid_ids);
        CHECK_MSG(!st, "%s (%s) N = %d, decode: %s", dir, how, N, fp4rt_last_error());
        CHECK_MSG(same1, "%s (%s) N = %d: the decode step's logits [0, N) differ from the full step's", dir, how, N);
        CHECK_MSG(pick == want, "%s (%s) N = %d: device pick %d, host %d", dir, how, N, pick, want);
        CHECK_MSG(gb1 > 0 && (fewer ? gb1 < ga1 : gb1 <= ga1), "%s (%s) N = %d, decode: %ld LM-head workgroups, "
                  "full %ld", dir, how, N, gb1, ga1);
        printf("  %-26s %-14s N = %4d of %d: 4 rows %s (%ld vs %ld workgroups), decode %s (%ld vs %ld), pick %d / %d\n",
               dir, how, N, V, same ? "identical" : "DIFFER", gb, ga, same1 ? "identical" : "DIFFER", gb1, ga1, pick,
               want);
        fp4rt_session_free(a);
        fp4rt_session_free(b);
    }
    free(full);
    free(part);
    fp4rt_model_free(m);
}

int main(void) {
    char dev[32];
    fp4rt_vk_device_desc d;
    if (!test_vk_pick_device(dev, sizeof dev, &d)) return 0;
    printf("device %s: %s (%s)\n", dev, d.name, d.driver);
    int n = 0;
    int32_t *tok = test_read_tokens("tests/fixtures/tokens.txt", &n);
    CHECK(tok && n >= 8);
    if (tok && n >= 8) {
        const char *dirs[] = {"tests/fixtures/tiny-bf16", "tests/fixtures/tiny-mixed", "tests/fixtures/tiny-w4a4"};
        for (int mv = 0; mv < 2; mv++) {
            test_set_knob("FP4RT_VK_LINEAR", mv ? "mv" : NULL);
            for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
                check_model(dirs[i], dev, mv ? "decode kernels" : "default", tok);
        }
        test_set_knob("FP4RT_VK_LINEAR", NULL);
    }
    free(tok);
    long msgs = fp4rt_vk_message_count();
    CHECK_MSG(msgs == 0, "%ld validation messages", msgs);
    return test_summary("test_vk_logits_rows");
}
