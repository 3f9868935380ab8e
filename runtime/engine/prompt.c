/* Public API: prompts with images (fp4rt.h, fp4rt_prompt): the images decoded,
 * preprocessed and encoded by the vision tower, each one <|image_pad|> expanded to the
 * image's merged tokens, the M-RoPE positions (rope_index.h); evaluation through the
 * session's embedding overrides (fp4rt_session_eval_mm). */
#include "runtime/engine/model.h"
#include "runtime/engine/rope_index.h"
#include "runtime/engine/vision.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fp4rt_prompt {
    const fp4rt_model *model;
    int n;                   /* tokens after expansion */
    int32_t *tokens;         /* [n] */
    int n_images;
    fp4rt_image_span *spans; /* [n_images] grids; embeds point into vis[k].data */
    fp4rt_vision_embeds *vis;
    char **names;            /* [n_images] how errors name image k */
    int32_t *positions;      /* [n * 3] from position 0 */
    int next_pos;            /* the position after the prompt, from 0 */
    const float **rows;      /* [n] the embedding row of token i (an image's), or NULL */
    int *first;              /* [n_images] the index of image k's first token */
};

void fp4rt_prompt_free(fp4rt_prompt *p) {
    if (!p) return;
    for (int k = 0; k < p->n_images; k++) {
        if (p->vis) fp4rt_vision_embeds_free(&p->vis[k]);
        if (p->names) free(p->names[k]);
    }
    free(p->tokens);
    free(p->spans);
    free(p->vis);
    free(p->names);
    free(p->positions);
    free(p->rows);
    free(p->first);
    free(p);
}

size_t fp4rt_prompt_n_tokens(const fp4rt_prompt *p) { return p ? (size_t)p->n : 0; }

const int32_t *fp4rt_prompt_tokens(const fp4rt_prompt *p) { return p ? p->tokens : NULL; }

/* Image k decoded, preprocessed with the model's preprocessor_config.json and encoded. */
static fp4rt_status encode_one(fp4rt_model *m, const fp4rt_image_input *in, const char *name, int exact,
                               fp4rt_vision_embeds *out) {
    fp4rt_image img = {0};
    fp4rt_status st;
    if (in->path) {
        st = fp4rt_image_load_file(in->path, NULL, &img);
    } else if (!in->data || !in->size) {
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: neither a path nor data (size %zu) was given", name, in->size);
    } else {
        st = fp4rt_image_load_memory(in->data, in->size, name, NULL, &img);
    }
    if (st) return st;
    fp4rt_image_patches patches = {0};
    st = fp4rt_image_preprocess(&img, &m->image_cfg, name, &patches);
    fp4rt_image_free(&img);
    if (!st) {
        st = fp4rt_vision_encode(m, &patches, exact, out);
        if (st) fp4rt_fail_context(st, "%s", name);
    }
    fp4rt_image_patches_free(&patches);
    if (!st && out->hidden != m->weights->cfg.hidden)
        st = fp4rt_fail(FP4RT_INTERNAL, "%s: the vision tower gives rows of %d, the text model takes %d", name,
                        out->hidden, m->weights->cfg.hidden);
    return st;
}

/* The checks before any image is decoded: the model can take images, and the
 * prompt has exactly one <|image_pad|> slot per image. */
static fp4rt_status check_slots(const fp4rt_model *m, const int32_t *tokens, size_t n, size_t n_images,
                                char **names, int32_t pad) {
    size_t slots = 0, first_extra = 0;
    for (size_t i = 0; i < n; i++)
        if (pad >= 0 && tokens[i] == pad && slots++ == n_images) first_extra = i;
    if (n_images && (pad < 0 || !fp4rt_model_has_vision(m)))
        return fp4rt_fail(FP4RT_UNSUPPORTED, "%s: the model has no vision tower%s: it cannot take images", names[0],
                          pad < 0 ? " (no <|image_pad|> token)" : "");
    if (n_images > slots)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "%s: no <|image_pad|> left for it in the prompt (%zu image%s, %zu <|image_pad|> slot%s)",
                          names[slots], n_images, n_images == 1 ? "" : "s", slots, slots == 1 ? "" : "s");
    if (slots > n_images)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "the prompt has %zu <|image_pad|> slot%s but %zu image%s given (token %zu has none)",
                          slots, slots == 1 ? "" : "s", n_images, n_images == 1 ? " was" : "s were", first_extra);
    return FP4RT_OK;
}

fp4rt_prompt *fp4rt_prompt_create(fp4rt_model *m, const int32_t *tokens, size_t n, const fp4rt_image_input *images,
                                  size_t n_images) {
    return fp4rt_prompt_create_mode(m, tokens, n, images, n_images, 0);
}

fp4rt_prompt *fp4rt_prompt_create_mode(fp4rt_model *m, const int32_t *tokens, size_t n,
                                       const fp4rt_image_input *images, size_t n_images, int exact) {
    fp4rt_prompt *p = NULL;
    fp4rt_prompt_make(m, tokens, n, images, n_images, exact, &p);
    return p;
}

fp4rt_status fp4rt_prompt_make(fp4rt_model *m, const int32_t *tokens, size_t n, const fp4rt_image_input *images,
                               size_t n_images, int exact, fp4rt_prompt **out) {
    *out = NULL;
    if (!m || (!tokens && n) || (!images && n_images) || n == 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_prompt_create: %s",
                          !m ? "model is NULL" : n == 0 ? "no tokens" : !tokens ? "tokens is NULL" : "images is NULL");
    if (n > INT32_MAX / 4 || n_images > (size_t)INT32_MAX / 4)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_prompt_create: %zu tokens / %zu images is too many", n,
                          n_images);
    int vocab = m->weights->cfg.vocab;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "token %d at index %zu is outside the vocabulary [0, %d)",
                              tokens[i], i, vocab);
    fp4rt_prompt *p = fp4rt_calloc(1, sizeof *p, "prompt");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->model = m;
    p->n_images = (int)n_images;
    size_t ni = n_images ? n_images : 1;
    p->spans = fp4rt_calloc(ni, sizeof *p->spans, "prompt images");
    p->vis = fp4rt_calloc(ni, sizeof *p->vis, "prompt images");
    p->names = fp4rt_calloc(ni, sizeof *p->names, "prompt images");
    p->first = fp4rt_calloc(ni, sizeof *p->first, "prompt images");
    fp4rt_status st = !p->spans || !p->vis || !p->names || !p->first ? FP4RT_OUT_OF_MEMORY : FP4RT_OK;
    for (size_t k = 0; !st && k < n_images; k++) {
        char buf[48];
        snprintf(buf, sizeof buf, "image %zu (in memory)", k + 1);
        p->names[k] = strdup(images[k].path ? images[k].path : buf);
        if (!p->names[k]) st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory naming image %zu", k + 1);
    }
    int32_t pad = m->image_pad;
    if (!st) st = check_slots(m, tokens, n, n_images, p->names, pad);
    int64_t total = (int64_t)n - (int64_t)n_images;
    for (size_t k = 0; !st && k < n_images; k++) {
        st = encode_one(m, &images[k], p->names[k], exact, &p->vis[k]);
        if (st) break;
        const fp4rt_vision_embeds *e = &p->vis[k];
        p->spans[k] = (fp4rt_image_span){e->grid_t, e->grid_h, e->grid_w, e->merge, e->data};
        if (fp4rt_image_span_tokens(&p->spans[k]) != e->n_tokens)
            st = fp4rt_fail(FP4RT_INTERNAL, "%s: %d embedding rows for grid %dx%dx%d merged by %d", p->names[k],
                            e->n_tokens, e->grid_t, e->grid_h, e->grid_w, e->merge);
        total += e->n_tokens;
    }
    if (!st && total > INT32_MAX / 4)
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "the prompt with its images is %lld tokens, too many", (long long)total);
    if (!st) {
        p->n = (int)total;
        p->tokens = fp4rt_malloc((size_t)total * sizeof *p->tokens, "prompt tokens");
        p->rows = fp4rt_calloc((size_t)total, sizeof *p->rows, "prompt rows");
        p->positions = fp4rt_malloc((size_t)total * 3 * sizeof *p->positions, "prompt positions");
        if (!p->tokens || !p->rows || !p->positions) st = FP4RT_OUT_OF_MEMORY;
    }
    if (!st) { /* each slot becomes its image's rows */
        int j = 0, k = 0;
        for (size_t i = 0; i < n; i++) {
            if (tokens[i] != pad || n_images == 0) {
                p->tokens[j++] = tokens[i];
                continue;
            }
            p->first[k] = j;
            for (int r = 0; r < p->vis[k].n_tokens; r++, j++) {
                p->tokens[j] = pad;
                p->rows[j] = p->vis[k].data + (size_t)r * p->vis[k].hidden;
            }
            k++;
        }
        st = fp4rt_rope_index(p->tokens, p->n, pad, p->spans, p->n_images, (const char *const *)p->names, 0,
                              p->positions, &p->next_pos);
    }
    if (st) {
        fp4rt_prompt_free(p);
        return st;
    }
    *out = p;
    return FP4RT_OK;
}

/* Tokens [from, n) of p (from <= its first image token) with the logits of every
 * row or of the last. */
static fp4rt_status eval_from(fp4rt_session *s, const fp4rt_prompt *p, int from, float *logits, int all_logits) {
    if (!s || !p)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_eval_prompt: %s is NULL", s ? "prompt" : "session");
    if (p->model != s->model)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_eval_prompt: the prompt was made for another model");
    if (from < 0 || from >= p->n || (p->n_images && from > p->first[0]))
        return fp4rt_fail(FP4RT_INTERNAL, "fp4rt_session_eval_prompt: resuming at token %d of %d (first image at %d)",
                          from, p->n, p->n_images ? p->first[0] : -1);
    int n = p->n - from, held = s->n_past + s->pending, room = s->sb.n_ctx - held;
    if (n > room) { /* name the first image that does not fit */
        for (int k = 0; k < p->n_images; k++) {
            int nk = p->vis[k].n_tokens, at = p->first[k] - from;
            if (at + nk > room)
                return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                                  "%s: its %d tokens (prompt tokens %d .. %d) do not fit in the context: %d tokens "
                                  "held + %d prompt tokens exceed n_ctx %d",
                                  p->names[k], nk, at, at + nk - 1, held, n, s->sb.n_ctx);
        }
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d tokens held + %d new exceed n_ctx %d", held, n,
                          s->sb.n_ctx);
    }
    if (!p->n_images) return fp4rt_session_eval(s, p->tokens + from, n, logits, all_logits); /* text: the plain path */
    /* token `from` is text: it takes the session's next position, the rest follow */
    int shift = held + s->rope_delta - p->positions[(size_t)from * 3];
    int32_t *pos = fp4rt_malloc((size_t)n * 3 * sizeof *pos, "prompt positions");
    if (!pos) return FP4RT_OUT_OF_MEMORY;
    for (size_t i = 0; i < (size_t)n * 3; i++) pos[i] = p->positions[(size_t)from * 3 + i] + shift;
    fp4rt_eval_mm mm = {pos, p->rows + from, p->next_pos + shift};
    fp4rt_status st = fp4rt_session_eval_mm(s, p->tokens + from, n, &mm, logits, all_logits);
    free(pos);
    return st;
}

fp4rt_status fp4rt_session_eval_prompt(fp4rt_session *s, const fp4rt_prompt *p, float *logits) {
    return eval_from(s, p, 0, logits, 0);
}

fp4rt_status fp4rt_session_eval_prompt_rows(fp4rt_session *s, const fp4rt_prompt *p, float *logits, int all_logits) {
    return eval_from(s, p, 0, logits, all_logits);
}

fp4rt_status fp4rt_session_eval_prompt_from(fp4rt_session *s, const fp4rt_prompt *p, size_t from, float *logits) {
    return eval_from(s, p, from > (size_t)INT32_MAX ? -1 : (int)from, logits, 0);
}
