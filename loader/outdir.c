/* Atomic output directories (outdir.h): "<OUT>.tmp-<pid>" renamed into place,
 * the checks --force makes, stale temporary directories, and the clean-up an
 * interrupted command asks for. */
#include "loader/outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_pending; /* the temporary directory of the begin in progress */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 ? -1 : 0;
}

/* Removes path and, for a directory, everything below it (symlinks are not followed). */
static int remove_tree(const char *path) {
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int fp4rt_outdir_owns(const char *name) {
    /* keep in step with fp4rt_quant_copy_aux_files (runtime/tools/quant_output.c) */
    static const char *const names[] = {"config.json", "hf_quant_config.json", "generation_config.json",
                                        "special_tokens_map.json", "vocab.json", "merges.txt",
                                        "chat_template.jinja", "chat_template.json", "preprocessor_config.json",
                                        "video_preprocessor_config.json"};
    if (ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json") ||
        !strncmp(name, "tokenizer", 9))
        return 1;
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(names); i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

/* final_dir made absolute, without trailing slashes ("." -> the working
 * directory); a path whose parent does not resolve comes back as given. */
static char *abs_path(const char *p) {
    char *given = fp4rt_strdup(p);
    if (!given) return NULL;
    size_t l = strlen(given);
    while (l > 1 && given[l - 1] == '/') given[--l] = 0;
    char buf[PATH_MAX];
    if (realpath(given, buf)) {
        free(given);
        return fp4rt_strdup(buf);
    }
    char *slash = strrchr(given, '/');
    const char *parent = ".", *base = given;
    if (slash) {
        *slash = 0;
        parent = slash == given ? "/" : given;
        base = slash + 1;
    }
    char *out = NULL;
    if (realpath(parent, buf)) out = fp4rt_path_join(buf, base);
    if (!out) {
        if (slash) *slash = '/';
        return given;
    }
    free(given);
    return out;
}

/* Reports (or, with force, removes) "<abs>.tmp-<pid>" and "<abs>.old-<pid>"
 * directories whose process no longer exists. */
static void stale_temps(const char *abs, int force) {
    static char reported[PATH_MAX]; /* check, then begin: report once */
    const char *slash = strrchr(abs, '/');
    if (!slash || (!force && !strcmp(reported, abs))) return;
    if (!force) snprintf(reported, sizeof reported, "%s", abs);
    char *parent = slash == abs ? fp4rt_strdup("/") : fp4rt_strdup(abs);
    if (!parent) return;
    if (slash != abs) parent[slash - abs] = 0;
    const char *base = slash + 1;
    size_t bl = strlen(base);
    DIR *d = opendir(parent);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || (strncmp(n + bl, ".tmp-", 5) && strncmp(n + bl, ".old-", 5))) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (end == n + bl + 5 || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue; /* a run still going */
        char *path = fp4rt_path_join(parent, n);
        if (!path) break;
        if (!force)
            fp4rt_log(FP4RT_LOG_WARN, "%s: left by an interrupted run (pid %ld); --force removes it", path, pid);
        else if (remove_tree(path) == 0)
            fp4rt_log(FP4RT_LOG_WARN, "%s: removed (left by an interrupted run, pid %ld)", path, pid);
        else
            fp4rt_log(FP4RT_LOG_WARN, "%s: could not remove it: %s", path, strerror(errno));
        free(path);
    }
    if (d) closedir(d);
    free(parent);
}

/* IO error naming dir's entries that fp4rt_outdir_owns refuses, or OK. */
static fp4rt_status foreign_files(const char *given, const char *abs) {
    DIR *d = opendir(abs);
    if (!d) return fp4rt_fail(FP4RT_IO, "%s: cannot list the directory: %s", given, strerror(errno));
    char list[256] = "";
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || fp4rt_outdir_owns(e->d_name)) continue;
        if (n++ < 3) {
            size_t l = strlen(list), k = strlen(e->d_name);
            if (l + k + 3 < sizeof list) {
                if (l) memcpy(list + l, ", ", 2), l += 2;
                memcpy(list + l, e->d_name, k + 1);
            }
        }
    }
    closedir(d);
    if (!n) return FP4RT_OK;
    return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                      "%s: holds files fp4rt would not write (%s%s); --force replaces only fp4rt's own output",
                      given, list, n > 3 ? ", ..." : "");
}

fp4rt_status fp4rt_outdir_check(const char *final_dir, const char *keep, int force) {
    char *abs = abs_path(final_dir);
    if (!abs) return FP4RT_OUT_OF_MEMORY;
    stale_temps(abs, force);
    struct stat sb;
    fp4rt_status st = FP4RT_OK;
    char buf[PATH_MAX];
    if (keep && realpath(keep, buf) && !strcmp(buf, abs))
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: is the input directory %s; give another output", final_dir,
                        keep);
    else if (lstat(abs, &sb) != 0)
        st = FP4RT_OK;
    else if (!force)
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: already exists (--force replaces it)", final_dir);
    else if (!S_ISDIR(sb.st_mode))
        st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: exists and is not a directory; not replacing it", final_dir);
    else
        st = foreign_files(final_dir, abs);
    free(abs);
    return st;
}

fp4rt_status fp4rt_outdir_begin(const char *final_dir, int force, char **tmp_dir) {
    *tmp_dir = NULL;
    fp4rt_status st = fp4rt_outdir_check(final_dir, NULL, force);
    if (st != FP4RT_OK) return st;
    char *abs = abs_path(final_dir);
    if (!abs) return FP4RT_OUT_OF_MEMORY;
    size_t n = strlen(abs) + 32;
    char *tmp = fp4rt_malloc(n, "output directory name");
    if (!tmp) {
        free(abs);
        return FP4RT_OUT_OF_MEMORY;
    }
    snprintf(tmp, n, "%s.tmp-%ld", abs, (long)getpid());
    free(abs);
    struct stat sb;
    if (lstat(tmp, &sb) == 0) remove_tree(tmp); /* left over from a crashed run of this pid */
    if (mkdir(tmp, 0755) != 0) {
        st = fp4rt_fail(FP4RT_IO, "%s: cannot create directory: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    pthread_mutex_lock(&g_lock);
    free(g_pending);
    g_pending = fp4rt_strdup(tmp);
    pthread_mutex_unlock(&g_lock);
    *tmp_dir = tmp;
    return FP4RT_OK;
}

static void forget_pending(const char *tmp_dir) {
    if (g_pending && !strcmp(g_pending, tmp_dir)) {
        free(g_pending);
        g_pending = NULL;
    }
}

/* The commit into the working directory itself (which cannot be renamed from
 * under the user's shell): its files (all fp4rt's own: check) are removed and
 * tmp's moved in. */
static fp4rt_status commit_in_place(const char *tmp_dir, const char *abs, const char *given) {
    fp4rt_status st = foreign_files(given, abs);
    if (st != FP4RT_OK) return st;
    DIR *d = opendir(abs);
    struct dirent *e;
    while (d && st == FP4RT_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = fp4rt_path_join(abs, e->d_name);
        if (!p || remove_tree(p) != 0)
            st = p ? fp4rt_fail(FP4RT_IO, "%s: cannot remove it: %s", p, strerror(errno)) : FP4RT_OUT_OF_MEMORY;
        free(p);
    }
    if (d) closedir(d);
    d = st == FP4RT_OK ? opendir(tmp_dir) : NULL;
    while (d && st == FP4RT_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *from = fp4rt_path_join(tmp_dir, e->d_name), *to = fp4rt_path_join(abs, e->d_name);
        if (!from || !to) st = FP4RT_OUT_OF_MEMORY;
        else if (rename(from, to) != 0)
            st = fp4rt_fail(FP4RT_IO, "%s: cannot move %s into place: %s", given, from, strerror(errno));
        free(from);
        free(to);
    }
    if (d) closedir(d);
    if (st == FP4RT_OK) rmdir(tmp_dir);
    return st;
}

/* Renames tmp to abs, moving an existing abs aside first so it is never half-removed. */
static fp4rt_status commit_rename(const char *tmp_dir, const char *abs, const char *given) {
    struct stat sb;
    char *old = NULL;
    if (lstat(abs, &sb) == 0) {
        size_t n = strlen(abs) + 32;
        if (!(old = fp4rt_malloc(n, "output directory name"))) return FP4RT_OUT_OF_MEMORY;
        snprintf(old, n, "%s.old-%ld", abs, (long)getpid());
        if (lstat(old, &sb) == 0) remove_tree(old);
        if (rename(abs, old) != 0) {
            fp4rt_status st =
                fp4rt_fail(FP4RT_IO, "%s: cannot move the existing output aside: %s", given, strerror(errno));
            free(old);
            return st;
        }
    }
    if (rename(tmp_dir, abs) != 0) {
        fp4rt_status st =
            fp4rt_fail(FP4RT_IO, "%s: cannot rename %s into place: %s", given, tmp_dir, strerror(errno));
        if (old) (void)rename(old, abs); /* put the old output back */
        free(old);
        return st;
    }
    if (old) {
        if (remove_tree(old) != 0) fp4rt_log(FP4RT_LOG_WARN, "%s: could not remove the replaced output", old);
        free(old);
    }
    return FP4RT_OK;
}

/* fsyncs directory `path`'s parent so a rename in it is durable (best effort). */
static void sync_parent(const char *path) {
    char *d = fp4rt_strdup(path);
    if (!d) return;
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash == d)
        dir = "/";
    else if (slash) {
        *slash = 0;
        dir = d;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(d);
}

fp4rt_status fp4rt_outdir_commit(const char *tmp_dir, const char *final_dir) {
    char *abs = abs_path(final_dir);
    if (!abs) return FP4RT_OUT_OF_MEMORY;
    char cwd[PATH_MAX];
    struct stat sb;
    pthread_mutex_lock(&g_lock);
    int here = lstat(abs, &sb) == 0 && getcwd(cwd, sizeof cwd) && !strcmp(cwd, abs);
    fp4rt_status st = here ? commit_in_place(tmp_dir, abs, final_dir) : commit_rename(tmp_dir, abs, final_dir);
    if (st == FP4RT_OK) {
        forget_pending(tmp_dir);
        sync_parent(abs);
    }
    pthread_mutex_unlock(&g_lock);
    free(abs);
    return st;
}

void fp4rt_outdir_abort(const char *tmp_dir) {
    struct stat sb;
    if (!tmp_dir) return;
    pthread_mutex_lock(&g_lock);
    if (lstat(tmp_dir, &sb) == 0 && remove_tree(tmp_dir) != 0)
        fp4rt_log(FP4RT_LOG_WARN, "%s: could not remove the temporary output", tmp_dir);
    forget_pending(tmp_dir);
    pthread_mutex_unlock(&g_lock);
}

int fp4rt_outdir_interrupted(void) {
    pthread_mutex_lock(&g_lock);
    int had = g_pending != NULL;
    if (had) {
        if (remove_tree(g_pending) != 0)
            fp4rt_log(FP4RT_LOG_WARN, "%s: could not remove the temporary output", g_pending);
        free(g_pending);
        g_pending = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    return had;
}
