/* A growable byte string, always NUL-terminated once anything is added. On out
 * of memory the buffer marks itself failed and drops further text (callers
 * check .oom once, at the end). */
#ifndef FP4RT_SERVER_SBUF_H
#define FP4RT_SERVER_SBUF_H

#include <stddef.h>

typedef struct fp4rt_sbuf {
    char *s;   /* NULL until the first add */
    size_t n;  /* bytes held (without the NUL) */
    size_t cap;
    int oom;
} fp4rt_sbuf;

void fp4rt_sbuf_add(fp4rt_sbuf *b, const char *s, size_t n);
void fp4rt_sbuf_puts(fp4rt_sbuf *b, const char *s);
void fp4rt_sbuf_printf(fp4rt_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void fp4rt_sbuf_consume(fp4rt_sbuf *b, size_t n);
void fp4rt_sbuf_free(fp4rt_sbuf *b);
/* The text ("" when empty); valid until the next change. */
const char *fp4rt_sbuf_str(const fp4rt_sbuf *b);

#endif
