/* fp4rt chat: an interactive conversation. Each turn renders the whole history
 * with the chat template; the tokens the session already holds are reused when
 * they are a prefix of the new prompt, else the session is reset and the whole
 * prompt is evaluated again (the template drops the reasoning of earlier turns,
 * which changes the prefix, unless --preserve-thinking).
 * Commands: /think on|off, /reset, /quit. */
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_usage = "--model DIR [-n N] [--system TEXT] [--think on|off] [--preserve-thinking] [--hide-reasoning]\n"
                             "    " FP4RT_CLI_SAMPLING_USAGE " " FP4RT_CLI_MODEL_USAGE;

typedef struct turn {
    char *role, *content, *reasoning;
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
    fp4rt_cli_stream_piece(&o->print, ev);
    return 0;
}

static void free_turns(turn *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(t[i].role);
        free(t[i].content);
        free(t[i].reasoning);
    }
}

int fp4rt_cmd_chat(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    fp4rt_chat_params cp = fp4rt_chat_default_params();
    const char *system = NULL, *v;
    int hide = 0;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o) || fp4rt_cli_sampling_opt(argc, argv, &i, &gp.sampling))
            continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--system"))) system = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "-n"))) gp.max_tokens = (int)fp4rt_cli_parse_long("-n", v);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--think"))) {
            if (!strcmp(v, "on")) cp.thinking = FP4RT_THINKING_ON;
            else if (!strcmp(v, "off")) cp.thinking = FP4RT_THINKING_OFF;
            else return fp4rt_cli_usage("chat", k_usage);
        } else if (!strcmp(argv[i], "--preserve-thinking")) cp.preserve_thinking = 1;
        else if (!strcmp(argv[i], "--hide-reasoning")) hide = 1;
        else return fp4rt_cli_usage("chat", k_usage);
    }
    if (!o.model) return fp4rt_cli_usage("chat", k_usage);
    fp4rt_model *m;
    fp4rt_session *s;
    if (fp4rt_cli_open(&o, &m, &s)) return 1;
    int tty = isatty(0) && isatty(1), rc = 0;
    size_t n_turns = 0, cap = 16;
    turn *turns = calloc(cap, sizeof *turns);
    if (system) turns[n_turns++] = (turn){strdup("system"), strdup(system), NULL};
    size_t n_system = n_turns;
    char *line = NULL;
    size_t line_cap = 0;
    if (tty) fprintf(stderr, "fp4rt chat: /think on|off, /reset, /quit\n");
    for (;;) {
        if (tty) fputs("> ", stdout), fflush(stdout);
        ssize_t len = getline(&line, &line_cap, stdin);
        if (len < 0) break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            free_turns(turns + n_system, n_turns - n_system);
            n_turns = n_system;
            fp4rt_session_reset(s);
            fprintf(stderr, "fp4rt chat: history cleared\n");
            continue;
        }
        if (!strncmp(line, "/think ", 7)) {
            cp.thinking = !strcmp(line + 7, "off") ? FP4RT_THINKING_OFF : FP4RT_THINKING_ON;
            fprintf(stderr, "fp4rt chat: thinking %s\n", cp.thinking == FP4RT_THINKING_OFF ? "off" : "on");
            continue;
        }
        if (n_turns + 2 > cap) {
            turn *t = realloc(turns, 2 * cap * sizeof *turns);
            if (!t) break;
            turns = t;
            cap *= 2;
        }
        turns[n_turns++] = (turn){strdup("user"), strdup(line), NULL};
        fp4rt_chat_message *msgs = calloc(n_turns, sizeof *msgs);
        for (size_t i = 0; i < n_turns; i++)
            msgs[i] = (fp4rt_chat_message){.role = turns[i].role, .content = turns[i].content,
                                           .reasoning_content = turns[i].reasoning};
        char *prompt = NULL;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        fp4rt_status st = fp4rt_chat_format(msgs, n_turns, &cp, &prompt);
        free(msgs);
        if (!st) st = fp4rt_tokenize(m, prompt, &ids, &n_ids);
        free(prompt);
        if (st) {
            rc = fp4rt_cli_fail(st);
            break;
        }
        /* reuse the held tokens when they prefix the new prompt */
        int held = fp4rt_session_n_past(s);
        const int32_t *have = fp4rt_session_tokens(s);
        size_t skip = 0;
        if ((size_t)held < n_ids && !memcmp(have, ids, (size_t)held * sizeof(int32_t)))
            skip = (size_t)held;
        else
            fp4rt_session_reset(s);
        chat_out out = {.print = {.hide_reasoning = hide, .tty = isatty(1)}};
        gp.reasoning_open = cp.thinking != FP4RT_THINKING_OFF;
        fp4rt_generate_result res;
        st = fp4rt_generate(s, ids + skip, n_ids - skip, &gp, on_piece, &out, &res);
        free(ids);
        fp4rt_cli_stream_end(&out.print);
        printf("\n");
        if (st) {
            rc = fp4rt_cli_fail(st);
            free(out.answer.s);
            free(out.reasoning.s);
            break;
        }
        fprintf(stderr, "fp4rt: %d new prompt tokens (%.1f tokens/s), %d generated (%.2f tokens/s)\n",
                res.n_prompt, res.prefill_seconds > 0 ? res.n_prompt / res.prefill_seconds : 0.0,
                res.n_generated, res.decode_seconds > 0 ? res.n_generated / res.decode_seconds : 0.0);
        turns[n_turns++] = (turn){strdup("assistant"), out.answer.s ? out.answer.s : strdup(""),
                                  out.reasoning.s};
        if (res.stop_reason == FP4RT_STOP_CONTEXT) {
            fprintf(stderr, "fp4rt chat: the context is full; /reset to continue\n");
        }
    }
    free(line);
    free_turns(turns, n_turns);
    free(turns);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    return rc;
}
