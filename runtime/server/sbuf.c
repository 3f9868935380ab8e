/* Growable byte strings (sbuf.h). */
#include "runtime/server/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp4rt_sbuf_add(fp4rt_sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void fp4rt_sbuf_puts(fp4rt_sbuf *b, const char *s) { fp4rt_sbuf_add(b, s, strlen(s)); }

void fp4rt_sbuf_printf(fp4rt_sbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof small) {
        fp4rt_sbuf_add(b, small, (size_t)k);
        return;
    }
    char *big = malloc((size_t)k + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    fp4rt_sbuf_add(b, big, (size_t)k);
    free(big);
}

void fp4rt_sbuf_consume(fp4rt_sbuf *b, size_t n) {
    if (n >= b->n) {
        b->n = 0;
        if (b->s) b->s[0] = 0;
        return;
    }
    memmove(b->s, b->s + n, b->n - n + 1);
    b->n -= n;
}

void fp4rt_sbuf_free(fp4rt_sbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

const char *fp4rt_sbuf_str(const fp4rt_sbuf *b) { return b->s ? b->s : ""; }
