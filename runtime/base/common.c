#include "runtime/base/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_last_error[1024];
static fp4rt_log_fn g_log_fn;
static void *g_log_user;
static fp4rt_log_level g_log_level = FP4RT_LOG_INFO;
static long g_fail_alloc_after;

static const char *const k_status_names[] = {
#define FP4RT_STATUS_NAME_(name, msg) #name,
    FP4RT_STATUS_LIST(FP4RT_STATUS_NAME_)
#undef FP4RT_STATUS_NAME_
};
static const char *const k_status_messages[] = {
#define FP4RT_STATUS_MSG_(name, msg) msg,
    FP4RT_STATUS_LIST(FP4RT_STATUS_MSG_)
#undef FP4RT_STATUS_MSG_
};

const char *fp4rt_status_name(fp4rt_status s) {
    return (unsigned)s < FP4RT_STATUS_COUNT ? k_status_names[s] : "UNKNOWN";
}

const char *fp4rt_status_message(fp4rt_status s) {
    return (unsigned)s < FP4RT_STATUS_COUNT ? k_status_messages[s] : "unknown status";
}

const char *fp4rt_last_error(void) { return g_last_error; }

void fp4rt_clear_error(void) { g_last_error[0] = 0; }

fp4rt_status fp4rt_fail(fp4rt_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    for (char *p = g_last_error; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return s;
}

fp4rt_status fp4rt_fail_context(fp4rt_status s, const char *fmt, ...) {
    char prefix[512], old[sizeof g_last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_last_error, sizeof old);
    snprintf(g_last_error, sizeof g_last_error, "%s: %s", prefix,
             old[0] ? old : fp4rt_status_message(s));
    return s;
}

void fp4rt_log_set(fp4rt_log_fn fn, void *user) {
    g_log_fn = fn;
    g_log_user = user;
}

void fp4rt_log_set_level(fp4rt_log_level max_level) { g_log_level = max_level; }

void fp4rt_log(fp4rt_log_level level, const char *fmt, ...) {
    if (level > g_log_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_log_fn) {
        g_log_fn(level, msg, g_log_user);
        return;
    }
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "fp4rt: %s: %s\n", names[level], msg);
}

void fp4rt_debug_fail_alloc_after(long n) { g_fail_alloc_after = n; }

static int injected_failure(void) {
    if (g_fail_alloc_after <= 0) return 0;
    return --g_fail_alloc_after == 0;
}

void *fp4rt_malloc(size_t n, const char *what) {
    void *p = injected_failure() ? NULL : malloc(n ? n : 1);
    if (!p) fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *fp4rt_calloc(size_t n, size_t size, const char *what) {
    if (size && n > SIZE_MAX / size) {
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "allocation size overflow for %s", what);
        return NULL;
    }
    void *p = injected_failure() ? NULL : calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory allocating %zu bytes for %s", n * size,
                   what);
    return p;
}

void *fp4rt_malloc_aligned(size_t n, const char *what) {
    void *p = NULL;
    if (injected_failure() || posix_memalign(&p, 64, n ? (n + 63) & ~(size_t)63 : 64) != 0)
        p = NULL;
    if (!p) fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void fp4rt_free_aligned(void *p) { free(p); }

void fp4rt_free(void *p) { free(p); }

char *fp4rt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = fp4rt_malloc(n, "string");
    if (p) memcpy(p, s, n);
    return p;
}

char *fp4rt_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = fp4rt_malloc(a + b + 2, "path");
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

fp4rt_status fp4rt_read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fp4rt_fail(FP4RT_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return fp4rt_fail(FP4RT_IO, "%s: cannot seek", path);
    }
    long sz = ftell(f);
    if (sz < 0) {
        fclose(f);
        return fp4rt_fail(FP4RT_IO, "%s: cannot size", path);
    }
    if ((size_t)sz > max_bytes) {
        fclose(f);
        return fp4rt_fail(FP4RT_FORMAT, "%s: file is %ld bytes, more than the %zu allowed", path,
                          sz, max_bytes);
    }
    rewind(f);
    char *buf = fp4rt_malloc((size_t)sz + 1, path);
    if (!buf) {
        fclose(f);
        return FP4RT_OUT_OF_MEMORY;
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        free(buf);
        return fp4rt_fail(FP4RT_IO, "%s: short read (%zu of %ld bytes)", path, got, sz);
    }
    buf[sz] = 0;
    *out = buf;
    if (len) *len = (size_t)sz;
    return FP4RT_OK;
}
