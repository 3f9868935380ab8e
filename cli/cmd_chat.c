/* fp4rt chat: an interactive conversation. Each turn renders the whole history
 * with the chat template; the tokens the session already holds are reused when
 * they are a prefix of the new prompt, else the session is reset and the whole
 * prompt is evaluated again (the template drops the reasoning of earlier turns,
 * which changes the prefix, unless --preserve-thinking).
 * A message that fails (does not fit the context, cannot be tokenized, a
 * generation error) is reported and dropped; the conversation goes on. When
 * the history no longer fits the context, the oldest exchanges are dropped
 * (the system prompt stays) and the user is told. Ctrl-C stops a reply (what
 * was generated stays in the history); Ctrl-C or Ctrl-D at the prompt ends
 * the chat (exit 0). Commands: /help, /think on|off, /image FILE, /reset, /quit
 * (/exit).
 * Images: /image FILE attaches FILE to the next message (several may). The session
 * holds an image's expanded tokens, so the reuse above compares the prompt with
 * `held`, the history's tokens as the template gives them (one <|image_pad|> per
 * image) that the session holds; only the images of the new part are encoded. */
#include "cli/chat_input.h"
#include "cli/commands.h"
#include "runtime/engine/model.h"
#include "runtime/engine/vision.h"

#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *k_usage = "--model DIR [-n N] [--system TEXT] [--think on|off] [--preserve-thinking] [--hide-reasoning]\n"
                             "    " FP4RT_CLI_SAMPLING_USAGE " " FP4RT_CLI_MODEL_USAGE;

static const char *k_help =
    "commands:\n"
    "  /help           this list\n"
    "  /think on|off   the model thinks before answering, or not\n"
    "  /image FILE     attach an image (PNG, JPEG, BMP, GIF) to the next message\n"
    "  /reset          forget the conversation (the system prompt stays)\n"
    "  /quit, /exit    end the chat (as Ctrl-D does)\n"
    "keys: Ctrl-C stops a reply; Ctrl-C or Ctrl-D at the prompt ends the chat.\n"
    "A line starting with \"\"\" opens a message of several lines; one ending with \"\"\" closes it.\n"
    "When the conversation outgrows the context (--ctx), its oldest exchanges are dropped.\n";

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct turn {
    char *role, *content, *reasoning;
    char **images; /* n_images paths (user turns), owned */
    size_t n_images;
} turn;

typedef struct text_buf {
    char *s;
    size_t n, cap;
} text_buf;

static void buf_add(text_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) return;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

typedef struct chat_out {
    fp4rt_cli_stream print;
    text_buf answer, reasoning;
} chat_out;

static int on_piece(const fp4rt_token_event *ev, void *user) {
    chat_out *o = user;
    buf_add(ev->reasoning ? &o->reasoning : &o->answer, ev->text, ev->len);
    return fp4rt_cli_stream_piece(&o->print, ev) || g_interrupted; /* non-zero stops the reply */
}

typedef struct chat {
    fp4rt_model *m;
    fp4rt_session *s;
    fp4rt_generate_params gp;
    fp4rt_chat_params cp;
    int hide;
    turn *turns;
    size_t n_turns, cap, n_system;
    char *pending[FP4RT_CLI_MAX_IMAGES]; /* /image files for the next message */
    size_t n_pending;
    int32_t *held;     /* the session's tokens with each image as its one <|image_pad|> */
    size_t n_held, n_held_images;
    int32_t *out_ids;  /* [n_ctx] a reply's ids */
} chat;

static void free_turns(turn *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(t[i].role);
        free(t[i].content);
        free(t[i].reasoning);
        for (size_t k = 0; k < t[i].n_images; k++) free(t[i].images[k]);
        free(t[i].images);
    }
}

/* Removes turns [from, from + n). */
static void drop_turns(chat *c, size_t from, size_t n) {
    free_turns(c->turns + from, n);
    memmove(c->turns + from, c->turns + from + n, (c->n_turns - from - n) * sizeof *c->turns);
    c->n_turns -= n;
}

/* 0, or 1 when out of memory. The strings are taken over (freed on failure). */
static int add_turn(chat *c, char *role, char *content, char *reasoning) {
    if (c->n_turns == c->cap) {
        turn *t = realloc(c->turns, 2 * c->cap * sizeof *t);
        if (t) c->turns = t, c->cap *= 2;
    }
    if (c->n_turns == c->cap || !role || !content) {
        free(role), free(content), free(reasoning);
        return 1;
    }
    c->turns[c->n_turns++] = (turn){role, content, reasoning, NULL, 0};
    return 0;
}

/* The session is reset: nothing held. */
static void forget_held(chat *c) {
    fp4rt_session_reset(c->s);
    c->n_held = c->n_held_images = 0;
}

/* The images of the history in order ([n] of them, malloc'ed; the paths borrowed). */
static fp4rt_image_input *history_images(const chat *c, size_t *n) {
    *n = 0;
    for (size_t i = 0; i < c->n_turns; i++) *n += c->turns[i].n_images;
    fp4rt_image_input *im = calloc(*n ? *n : 1, sizeof *im);
    for (size_t i = 0, k = 0; im && i < c->n_turns; i++)
        for (size_t j = 0; j < c->turns[i].n_images; j++) im[k++].path = c->turns[i].images[j];
    return im;
}

/* The history as token ids (the chat template, then the tokenizer). */
static fp4rt_status history_ids(chat *c, int32_t **ids, size_t *n) {
    fp4rt_chat_message *msgs = calloc(c->n_turns, sizeof *msgs);
    size_t n_im;
    fp4rt_image_input *im = history_images(c, &n_im);
    if (!msgs || !im) {
        free(msgs);
        free(im);
        return FP4RT_OUT_OF_MEMORY;
    }
    for (size_t i = 0, k = 0; i < c->n_turns; k += c->turns[i].n_images, i++)
        msgs[i] = (fp4rt_chat_message){.role = c->turns[i].role, .content = c->turns[i].content,
                                       .reasoning_content = c->turns[i].reasoning, .images = im + k,
                                       .n_images = c->turns[i].n_images};
    char *prompt = NULL;
    fp4rt_status st = fp4rt_chat_format(msgs, c->n_turns, &c->cp, &prompt);
    free(msgs);
    free(im);
    if (!st) st = fp4rt_tokenize(c->m, prompt, ids, n);
    free(prompt);
    return st;
}

/* The prompt for the history ending in the new user turn, dropping the oldest
 * exchanges until it fits with room for a reply. Returns 0, or prints why the
 * message cannot be sent and returns 1. */
static int fitting_prompt(chat *c, int32_t **ids, size_t *n) {
    int n_ctx = c->s->sb.n_ctx;
    size_t room = c->gp.max_tokens > 0 && c->gp.max_tokens < n_ctx / 2 ? (size_t)c->gp.max_tokens : (size_t)n_ctx / 8;
    size_t dropped = 0;
    for (;;) {
        fp4rt_status st = history_ids(c, ids, n);
        if (st) return fp4rt_cli_fail(st);
        if (*n + room <= (size_t)n_ctx) break;
        if (c->n_turns - c->n_system < 3) { /* only the new message left */
            if (*n < (size_t)n_ctx) break; /* it fits; the reply may be cut short */
            fp4rt_cli_error("the message is %zu tokens; the context holds %d (--ctx); not sent", *n, n_ctx);
            free(*ids);
            *ids = NULL;
            return 1;
        }
        free(*ids);
        *ids = NULL;
        /* the oldest exchange: a user turn and the turns up to the next user turn */
        size_t k = 1;
        while (c->n_system + k < c->n_turns - 1 && strcmp(c->turns[c->n_system + k].role, "user")) k++;
        drop_turns(c, c->n_system, k);
        dropped += k;
    }
    if (dropped)
        fprintf(stderr, "fp4rt chat: the context is full: dropped the %zu oldest messages (the system prompt stays)\n",
                dropped);
    return 0;
}

/* The new part of the prompt ids[skip ..] with its images (the history's from
 * c->n_held_images on) as a prompt with images; NULL (and the error) on failure. */
static fp4rt_prompt *new_part(chat *c, const int32_t *ids, size_t n, size_t skip) {
    size_t n_im;
    fp4rt_image_input *im = history_images(c, &n_im);
    if (!im) return fp4rt_cli_error("out of memory"), NULL;
    fp4rt_prompt *p = fp4rt_prompt_create_mode(c->m, ids + skip, n - skip, im + c->n_held_images,
                                               n_im - c->n_held_images, !c->s->relaxed); /* the session's mode */
    free(im);
    if (!p) fp4rt_cli_fail(1);
    return p;
}

/* One user message: the reply streams and joins the history. A failure is
 * reported and the message dropped. */
static void say(chat *c, const char *message) {
    if (add_turn(c, strdup("user"), strdup(message), NULL)) {
        fp4rt_cli_error("out of memory");
        return;
    }
    turn *t = &c->turns[c->n_turns - 1]; /* the pending images go with it */
    if (c->n_pending && !(t->images = calloc(c->n_pending, sizeof *t->images))) {
        fp4rt_cli_error("out of memory");
        drop_turns(c, c->n_turns - 1, 1);
        return;
    }
    for (size_t k = 0; k < c->n_pending; k++) t->images[k] = c->pending[k];
    t->n_images = c->n_pending;
    c->n_pending = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (fitting_prompt(c, &ids, &n_ids)) {
        drop_turns(c, c->n_turns - 1, 1);
        return;
    }
    /* reuse the held tokens when they prefix the new prompt */
    size_t skip = 0;
    if (c->n_held > 0 && c->n_held < n_ids && !memcmp(c->held, ids, c->n_held * sizeof(int32_t)))
        skip = c->n_held;
    else
        forget_held(c);
    size_t n_im_before = c->n_held_images, n_im = 0;
    for (size_t i = 0; i < c->n_turns; i++) n_im += c->turns[i].n_images;
    fp4rt_prompt *pi = n_im > c->n_held_images ? new_part(c, ids, n_ids, skip) : NULL;
    chat_out out = {.print = {.hide_reasoning = c->hide, .tty = isatty(1)}};
    c->gp.reasoning_open = c->cp.thinking != FP4RT_THINKING_OFF;
    c->gp.prompt_images = pi;
    c->gp.output_ids = c->out_ids;
    c->gp.output_cap = (size_t)c->s->sb.n_ctx;
    fp4rt_generate_result res;
    g_interrupted = 0;
    int bad_images = n_im > n_im_before && !pi; /* new_part said why */
    fp4rt_status st = bad_images ? FP4RT_INVALID_ARGUMENT
                      : pi       ? fp4rt_generate(c->s, NULL, 0, &c->gp, on_piece, &out, &res)
                                 : fp4rt_generate(c->s, ids + skip, n_ids - skip, &c->gp, on_piece, &out, &res);
    c->gp.prompt_images = NULL;
    fp4rt_prompt_free(pi);
    if (!st) { /* what the session now holds, images as one pad each */
        int32_t *h = realloc(c->held, (n_ids + (size_t)res.n_generated + 1) * sizeof *h);
        if (!h) {
            st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory keeping the history");
        } else {
            c->held = h;
            memcpy(h, ids, n_ids * sizeof *h);
            memcpy(h + n_ids, c->out_ids, (size_t)res.n_generated * sizeof *h);
            c->n_held = n_ids + (size_t)res.n_generated;
            c->n_held_images = n_im;
        }
    }
    free(ids);
    fp4rt_cli_stream_end(&out.print);
    printf("\n");
    fflush(stdout);
    if (st) {
        if (!bad_images) fp4rt_cli_fail(st);
        fprintf(stderr, "fp4rt chat: the message was not sent; the conversation is kept\n");
        forget_held(c); /* its state after a failed step is unknown */
        drop_turns(c, c->n_turns - 1, 1);
        free(out.answer.s);
        free(out.reasoning.s);
        return;
    }
    if (g_interrupted) fprintf(stderr, "fp4rt chat: reply stopped (Ctrl-C); it stays in the history\n");
    g_interrupted = 0;
    char spec[512];
    fprintf(stderr, "fp4rt: %d new prompt tokens (%.1f tokens/s), %d generated (%.2f tokens/s)%s\n", res.n_prompt,
            res.prefill_seconds > 0 ? res.n_prompt / res.prefill_seconds : 0.0, res.n_generated,
            res.decode_seconds > 0 ? res.n_generated / res.decode_seconds : 0.0,
            fp4rt_cli_spec_stats(&res, c->gp.spec_drafts, spec, sizeof spec));
    if (add_turn(c, strdup("assistant"), out.answer.s ? out.answer.s : strdup(""), out.reasoning.s))
        fp4rt_cli_error("out of memory");
    if (res.stop_reason == FP4RT_STOP_CONTEXT)
        fprintf(stderr, "fp4rt chat: the context is full; the next message drops the oldest exchanges\n");
}

/* Trims trailing white space in place; returns s past the leading white space. */
static char *trim(char *s) {
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    while (isspace((unsigned char)*s)) s++;
    return s;
}

/* /image FILE: FILE goes with the next message. Checked now: the model takes
 * images, FILE is a readable file; decoding waits for the message. */
static void attach_image(chat *c, const char *path) {
    struct stat sb;
    int found = *path && stat(path, &sb) == 0;
    if (!*path) fprintf(stderr, "fp4rt chat: /image FILE\n");
    else if (c->m->image_pad < 0 || !fp4rt_model_has_vision(c->m))
        fprintf(stderr, "fp4rt chat: %s: the model has no vision tower: it cannot take images\n", path);
    else if (!found || !S_ISREG(sb.st_mode) || access(path, R_OK))
        fprintf(stderr, "fp4rt chat: %s: %s\n", path, found && S_ISDIR(sb.st_mode) ? "is a directory" : "not a readable file");
    else if (c->n_pending == FP4RT_CLI_MAX_IMAGES)
        fprintf(stderr, "fp4rt chat: %s: at most %d images per message\n", path, FP4RT_CLI_MAX_IMAGES);
    else if (!(c->pending[c->n_pending] = strdup(path)))
        fprintf(stderr, "fp4rt chat: out of memory\n");
    else {
        c->n_pending++;
        fprintf(stderr, "fp4rt chat: %s attached to the next message (%zu image%s)\n", path, c->n_pending,
                c->n_pending == 1 ? "" : "s");
    }
}

/* A line starting with '/': runs the command. Returns 1 for /quit. */
static int command(chat *c, char *line) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = 0;
    arg = trim(arg);
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) return 1;
    if (!strcmp(line, "/help") || !strcmp(line, "/?")) {
        fputs(k_help, stderr);
    } else if (!strcmp(line, "/reset")) {
        if (*arg) fprintf(stderr, "fp4rt chat: /reset takes no argument\n");
        else {
            drop_turns(c, c->n_system, c->n_turns - c->n_system);
            forget_held(c);
            while (c->n_pending) free(c->pending[--c->n_pending]);
            fprintf(stderr, "fp4rt chat: history cleared\n");
        }
    } else if (!strcmp(line, "/image")) {
        attach_image(c, arg);
    } else if (!strcmp(line, "/think")) {
        if (!strcasecmp(arg, "on")) c->cp.thinking = FP4RT_THINKING_ON;
        else if (!strcasecmp(arg, "off")) c->cp.thinking = FP4RT_THINKING_OFF;
        else {
            fprintf(stderr, "fp4rt chat: /think on or /think off\n");
            return 0;
        }
        fprintf(stderr, "fp4rt chat: thinking %s\n", c->cp.thinking == FP4RT_THINKING_OFF ? "off" : "on");
    } else {
        fprintf(stderr, "fp4rt chat: unknown command %s, /help lists them\n", line);
    }
    return 0;
}

/* Checks for the tokenizer before the (slow) model load. */
static int have_tokenizer(const char *dir) {
    char *path = malloc(strlen(dir) + 32);
    if (!path) return fp4rt_cli_error("out of memory");
    sprintf(path, "%s/tokenizer.json", dir);
    int ok = access(path, R_OK) == 0;
    free(path);
    if (!ok) return fp4rt_cli_error("%s: no tokenizer.json in the model directory; chat needs one", dir);
    return 0;
}

int fp4rt_cmd_chat(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    chat c = {.gp = fp4rt_generate_default_params(), .cp = fp4rt_chat_default_params(), .cap = 16};
    const char *system = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o) || fp4rt_cli_sampling_opt(argc, argv, &i, &c.gp.sampling) ||
            fp4rt_cli_spec_opt(argc, argv, &i, &c.gp, &o.session))
            continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--system"))) system = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "-n"))) c.gp.max_tokens = (int)fp4rt_cli_parse_range("-n", v, 0, INT_MAX / 2);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--think"))) {
            if (!strcmp(v, "on")) c.cp.thinking = FP4RT_THINKING_ON;
            else if (!strcmp(v, "off")) c.cp.thinking = FP4RT_THINKING_OFF;
            else return fp4rt_cli_bad("--think: '%s' is not on or off", v);
        } else if (!strcmp(argv[i], "--preserve-thinking")) c.cp.preserve_thinking = 1;
        else if (!strcmp(argv[i], "--hide-reasoning")) c.hide = 1;
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!o.model) return fp4rt_cli_bad("chat: --model DIR is required");
    if (have_tokenizer(o.model) || fp4rt_cli_open(&o, &c.m, &c.s)) return 1;
    fp4rt_chat_input *in = fp4rt_chat_input_open(&g_interrupted);
    c.turns = calloc(c.cap, sizeof *c.turns);
    c.out_ids = calloc((size_t)c.s->sb.n_ctx, sizeof *c.out_ids);
    int rc = 0;
    if (!in || !c.turns || !c.out_ids || (system && add_turn(&c, strdup("system"), strdup(system), NULL))) {
        rc = fp4rt_cli_error("out of memory");
        goto done;
    }
    c.n_system = c.n_turns;
    struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: Ctrl-C interrupts a read */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (fp4rt_chat_input_tty(in)) fprintf(stderr, "fp4rt chat: /help lists the commands; Ctrl-D ends the chat\n");
    for (char *line; (line = fp4rt_chat_input_read(in));) {
        char *msg = trim(line);
        int quit = msg[0] == '/' && command(&c, msg);
        if (msg[0] && msg[0] != '/') say(&c, msg);
        free(line);
        if (quit || fp4rt_cli_stdout_failed()) break;
    }
    if (g_interrupted && fp4rt_chat_input_tty(in)) fputc('\n', stdout); /* Ctrl-C at the prompt */
done:
    fp4rt_chat_input_close(in);
    free_turns(c.turns, c.n_turns);
    free(c.turns);
    free(c.held);
    free(c.out_ids);
    while (c.n_pending) free(c.pending[--c.n_pending]);
    fp4rt_session_free(c.s);
    fp4rt_model_free(c.m);
    return rc;
}
