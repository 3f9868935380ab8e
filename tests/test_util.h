/* Minimal test harness: CHECK macros count checks; tests end with
 * `return test_summary("name");`, which prints "name: N passed, N failed" and
 * returns non-zero when any check failed. Each check prints file:line on failure. */
#ifndef FP4RT_TEST_UTIL_H
#define FP4RT_TEST_UTIL_H

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int test_passed_, test_failed_;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed_++;                                                                        \
        } else {                                                                                   \
            test_failed_++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed_++;                                                                        \
        } else {                                                                                   \
            test_failed_++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* Counts a whole group of comparisons as one check (avoids millions of "passed"). */
#define CHECK_EQ_INT(a, b) CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

/* 1 when FP4RT_TEST_SHORT is set and not "0" (tests/CMakeLists.txt sets it in the
 * sanitizer build): a test then runs every code path and every kind of check, on
 * fewer positions / tokens / repetitions; the release build runs them all. */
static inline int test_short(void) {
    const char *v = getenv("FP4RT_TEST_SHORT");
    return v && *v && strcmp(v, "0") != 0;
}

/* Normalized mean squared error: sum((a-b)^2) / sum(b^2). */
static inline double test_nmse(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

/* The comma-separated token ids of a fixture (tests/fixtures/tokens.txt), at
 * most 4096, in a malloc'd array; *n gets the count. NULL when the file cannot
 * be read. */
static inline int32_t *test_read_tokens(const char *path, int *n) {
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    int32_t *ids = (int32_t *)malloc(4096 * sizeof *ids);
    int c = 0, v;
    while (ids && c < 4096 && fscanf(f, " %d ,", &v) == 1) ids[c++] = v;
    fclose(f);
    *n = c;
    return ids;
}

/* Of n rows of V logits, how many have another argmax than the reference's row
 * where the reference's top-2 margin exceeds `margin`. */
static inline int test_argmax_disagreements(const float *a, const float *ref, int n, int V, float margin) {
    int bad = 0;
    for (int t = 0; t < n; t++) {
        const float *x = a + (size_t)t * V, *r = ref + (size_t)t * V;
        int ia = 0, ir = 0, second = -1;
        for (int i = 1; i < V; i++) {
            if (x[i] > x[ia]) ia = i;
            if (r[i] > r[ir]) ir = i;
        }
        for (int i = 0; i < V; i++)
            if (i != ir && (second < 0 || r[i] > r[second])) second = i;
        if (r[ir] - r[second] > margin && ia != ir) bad++;
    }
    return bad;
}

/* A fresh scratch directory per test process: /tmp/fp4rt-test-<name>-XXXXXX.
 * test_tmpdir creates it (exits 2 if it cannot), test_tmp_path joins a leaf name
 * (8 rotating buffers), test_tmpdir_remove deletes it and everything below. */
static char test_tmp_dir_[128];

static inline const char *test_tmpdir(const char *name) {
    snprintf(test_tmp_dir_, sizeof test_tmp_dir_, "/tmp/fp4rt-test-%s-XXXXXX", name);
    if (!mkdtemp(test_tmp_dir_)) {
        perror("mkdtemp");
        exit(2);
    }
    return test_tmp_dir_;
}

static inline char *test_tmp_path(const char *leaf) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", test_tmp_dir_, leaf);
    return p;
}

/* Entries of the scratch directory whose name contains `part` (e.g. ".tmp-"
 * leftovers of an interrupted writer). */
static inline int test_tmpdir_count(const char *part) {
    DIR *d = opendir(test_tmp_dir_);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, part) != NULL;
    if (d) closedir(d);
    return n;
}

/* The n floats of a file holding exactly n (a fixture's raw float32 logits);
 * NULL when it cannot be read or is not that long. malloc'ed. */
static inline float *test_read_floats(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *x = (float *)malloc(n * sizeof *x); /* (C++ too: the CUDA tests include this) */
    size_t got = x ? fread(x, sizeof *x, n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        free(x);
        return NULL;
    }
    return x;
}

static inline int test_rm_entry_(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void test_tmpdir_remove(void) {
    if (test_tmp_dir_[0]) nftw(test_tmp_dir_, test_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
