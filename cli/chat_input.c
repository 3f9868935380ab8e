/* Chat message input (chat_input.h). */
#include "cli/chat_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FP4RT_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

struct fp4rt_chat_input {
    volatile sig_atomic_t *interrupted;
    int tty;    /* stdin and stdout are terminals: prompts (and libedit) */
    char *line; /* getline's buffer */
    size_t cap;
};

fp4rt_chat_input *fp4rt_chat_input_open(volatile sig_atomic_t *interrupted) {
    fp4rt_chat_input *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->interrupted = interrupted;
    in->tty = isatty(0) && isatty(1);
    return in;
}

int fp4rt_chat_input_tty(const fp4rt_chat_input *in) { return in->tty; }

void fp4rt_chat_input_close(fp4rt_chat_input *in) {
    if (!in) return;
    free(in->line);
    free(in);
}

/* One line without its newline (malloc'ed), or NULL at end of input / interrupt. */
static char *read_line(fp4rt_chat_input *in, const char *prompt) {
#ifdef FP4RT_HAVE_LIBEDIT
    if (in->tty) {
        char *l = readline(prompt);
        if (*in->interrupted) {
            free(l);
            return NULL;
        }
        return l;
    }
#endif
    if (in->tty) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    errno = 0;
    ssize_t n = getline(&in->line, &in->cap, stdin);
    if (n < 0 || *in->interrupted) return NULL;
    while (n > 0 && (in->line[n - 1] == '\n' || in->line[n - 1] == '\r')) in->line[--n] = 0;
    return strdup(in->line);
}

static int starts_block(const char *s) { return !strncmp(s, "\"\"\"", 3); }

/* 1 when s ends with the block's closing quotes (trailing spaces allowed); cuts them off. */
static int ends_block(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n < 3 || strncmp(s + n - 3, "\"\"\"", 3)) return 0;
    s[n - 3] = 0;
    return 1;
}

/* Appends line (and a newline before it unless first) to *msg; 0 when out of memory. */
static int append(char **msg, size_t *len, const char *line, int first) {
    size_t k = strlen(line);
    char *p = realloc(*msg, *len + k + 2);
    if (!p) return 0;
    *msg = p;
    if (!first) p[(*len)++] = '\n';
    memcpy(p + *len, line, k + 1);
    *len += k;
    return 1;
}

char *fp4rt_chat_input_read(fp4rt_chat_input *in) {
    char *line = read_line(in, "> ");
    if (!line || !starts_block(line)) {
#ifdef FP4RT_HAVE_LIBEDIT
        if (line && in->tty && line[0]) add_history(line);
#endif
        return line;
    }
    /* a block: the text after the opening quotes, then whole lines to the closing ones */
    char *msg = NULL;
    size_t len = 0;
    char *rest = line + 3;
    int done = ends_block(rest) && line[3] != 0, ok = 1;
    if (rest[0] || done) ok = append(&msg, &len, rest, 1);
    free(line);
    while (ok && !done) {
        char *l = read_line(in, "... ");
        if (!l) break; /* end of input inside a block: what was typed is the message */
        done = ends_block(l);
        if (!done || l[0]) ok = append(&msg, &len, l, msg == NULL);
        free(l);
    }
    if (!ok || !msg || *in->interrupted) {
        free(msg);
        return NULL;
    }
#ifdef FP4RT_HAVE_LIBEDIT
    if (in->tty && msg[0]) add_history(msg);
#endif
    return msg;
}
