/* The environment knobs (runtime/base/env.h): every type parses, malformed
 * values fall back to the default with one warning naming the knob, unknown
 * FP4RT_* variables (typos) are warned about once, the harness's are not, and
 * the process getters parse once. */
#include "runtime/base/env.h"

#include "fp4rt.h"

#include "tests/test_util.h"

static int n_warn;
static char last_warn[512];

static void capture(fp4rt_log_level level, const char *msg, void *user) {
    (void)user;
    if (level != FP4RT_LOG_WARN) return;
    n_warn++;
    snprintf(last_warn, sizeof last_warn, "%s", msg);
}

/* Parses one "NAME=value" (warnings on) into *st; returns the warnings. */
static int parse1(const char *entry, fp4rt_env_state *st) {
    char *envp[] = {(char *)entry, NULL};
    n_warn = 0;
    last_warn[0] = 0;
    fp4rt_env_parse(envp, st, 1);
    return n_warn;
}

static void test_types(void) {
    char *envp[] = {"FP4RT_VK_EXACT=yes", "FP4RT_CUDA_GRAPHS=off", "FP4RT_CUDA_STAGING_KB=-12",
                    "FP4RT_VK_MAX_RANGE=4k", "FP4RT_VK_PIECE_RANGE=3M", "FP4RT_VK_MAX_ACT_RANGE=1000",
                    "FP4RT_CACHE_DIR=/tmp/x y", "FP4RT_VK_COOPMAT=khr", "FP4RT_VK_LINEAR=mv",
                    "HOME=/nowhere", "FP4RT_VK_EXACT=0" /* repeated: the first counts, as getenv */, NULL};
    fp4rt_env_state st;
    n_warn = 0;
    fp4rt_env_parse(envp, &st, 1);
    CHECK_EQ_INT(n_warn, 0);
    CHECK_EQ_INT(st.n_unknown, 0);
    CHECK(st.v[FP4RT_ENV_VK_EXACT].set && st.v[FP4RT_ENV_VK_EXACT].i == 1);
    CHECK(st.v[FP4RT_ENV_CUDA_GRAPHS].set && st.v[FP4RT_ENV_CUDA_GRAPHS].i == 0);
    CHECK_EQ_INT(st.v[FP4RT_ENV_CUDA_STAGING_KB].i, -12);
    CHECK_EQ_INT(st.v[FP4RT_ENV_VK_MAX_RANGE].u, 4096);
    CHECK_EQ_INT(st.v[FP4RT_ENV_VK_PIECE_RANGE].u, 3 << 20);
    CHECK_EQ_INT(st.v[FP4RT_ENV_VK_MAX_ACT_RANGE].u, 1000);
    CHECK(!strcmp(st.v[FP4RT_ENV_CACHE_DIR].s, "/tmp/x y"));
    CHECK_EQ_INT(st.v[FP4RT_ENV_VK_COOPMAT].i, 2); /* 0|nv|khr|emu */
    CHECK(!strcmp(st.v[FP4RT_ENV_VK_COOPMAT].s, "khr"));
    CHECK_EQ_INT(st.v[FP4RT_ENV_VK_LINEAR].i, 1); /* rows|mv */
    /* absent: the defaults */
    CHECK(st.v[FP4RT_ENV_VK_GDN_CHUNKED].set && st.v[FP4RT_ENV_VK_GDN_CHUNKED].i == 1);
    CHECK(st.v[FP4RT_ENV_NO_CUDA].set && st.v[FP4RT_ENV_NO_CUDA].i == 0);
    CHECK(!st.v[FP4RT_ENV_VK_IDOT].set);
    CHECK(!st.v[FP4RT_ENV_CUDA_MODULE].set && !st.raw[FP4RT_ENV_CUDA_MODULE]);
    fp4rt_env_state_clear(&st);

    /* an empty value is the default, not an error */
    CHECK_EQ_INT(parse1("FP4RT_CUDA_GRAPHS=", &st), 0);
    CHECK(st.v[FP4RT_ENV_CUDA_GRAPHS].set && st.v[FP4RT_ENV_CUDA_GRAPHS].i == 1 &&
          !st.malformed[FP4RT_ENV_CUDA_GRAPHS]);
    fp4rt_env_state_clear(&st);
    CHECK_EQ_INT(parse1("FP4RT_CACHE_DIR=", &st), 0);
    CHECK(!st.v[FP4RT_ENV_CACHE_DIR].set);
    fp4rt_env_state_clear(&st);
}

static void test_malformed(void) {
    static const struct {
        const char *entry;
        fp4rt_env_id id;
    } bad[] = {
        {"FP4RT_VK_MAX_RANGE=abc", FP4RT_ENV_VK_MAX_RANGE},
        {"FP4RT_VK_MAX_RANGE=12x", FP4RT_ENV_VK_MAX_RANGE},
        {"FP4RT_VK_MAX_RANGE=-4", FP4RT_ENV_VK_MAX_RANGE},
        {"FP4RT_VK_PIECE_RANGE=99999999999g", FP4RT_ENV_VK_PIECE_RANGE},
        {"FP4RT_VK_EXACT=maybe", FP4RT_ENV_VK_EXACT},
        {"FP4RT_VK_GDN_CHUNKED=00", FP4RT_ENV_VK_GDN_CHUNKED},
        {"FP4RT_CUDA_STAGING_KB=1.5", FP4RT_ENV_CUDA_STAGING_KB},
        {"FP4RT_VK_COOPMAT=amd", FP4RT_ENV_VK_COOPMAT},
        {"FP4RT_VK_LINEAR=row", FP4RT_ENV_VK_LINEAR},
    };
    for (size_t j = 0; j < sizeof bad / sizeof *bad; j++) {
        fp4rt_env_state st;
        int w = parse1(bad[j].entry, &st);
        const fp4rt_env_knob *k = &fp4rt_env_table()[bad[j].id];
        CHECK_MSG(w == 1 && strstr(last_warn, k->name) && strstr(last_warn, "default"), "%s: %d warnings, last '%s'",
                  bad[j].entry, w, last_warn);
        CHECK_MSG(st.malformed[bad[j].id], "%s", bad[j].entry);
        fp4rt_env_value def = fp4rt_env_read_default(bad[j].id);
        const fp4rt_env_value *v = &st.v[bad[j].id];
        CHECK_MSG(v->set == def.set && v->i == def.i && v->u == def.u, "%s: not the default", bad[j].entry);
        fp4rt_env_state_clear(&st);
    }
}

static void test_unknown(void) {
    fp4rt_env_state st;
    CHECK_EQ_INT(parse1("FP4RT_VK_EXACTT=1", &st), 1);
    CHECK(strstr(last_warn, "FP4RT_VK_EXACTT") != NULL);
    CHECK_EQ_INT(st.n_unknown, 1);
    CHECK(!st.v[FP4RT_ENV_VK_EXACT].i);
    fp4rt_env_state_clear(&st);
    /* the build / test harness's variables are known */
    const char *harness[] = {"FP4RT_BIN=x", "FP4RT_TEST_VERBOSE=1", "FP4RT_GPU_JOBS=2", "FP4RT_CUDA=OFF"};
    for (int j = 0; j < 4; j++) {
        CHECK_MSG(parse1(harness[j], &st) == 0, "%s warned: %s", harness[j], last_warn);
        fp4rt_env_state_clear(&st);
    }
    CHECK_EQ_INT(parse1("FP4RT_=1", &st), 1); /* the bare prefix is no knob */
    fp4rt_env_state_clear(&st);
    CHECK_EQ_INT(parse1("FP4RT_TES=1", &st), 1); /* a prefix must match in full */
    fp4rt_env_state_clear(&st);
}

/* The process getters: parsed once, so each problem is warned about once. */
static void test_process(void) {
    setenv("FP4RT_VK_EXACTT", "1", 1);
    setenv("FP4RT_VK_MAX_RANGE", "abc", 1);
    setenv("FP4RT_VK_PIECE_RANGE", "2k", 1);
    setenv("FP4RT_VK_COOPMAT", "emu", 1);
    unsetenv("FP4RT_VK_LINEAR");
    setenv("FP4RT_CACHE_DIR", "", 1);
    n_warn = 0;
    for (int round = 0; round < 3; round++) {
        CHECK_EQ_INT(fp4rt_env_size(FP4RT_ENV_VK_MAX_RANGE), 0);
        CHECK_EQ_INT(fp4rt_env_size(FP4RT_ENV_VK_PIECE_RANGE), 2048);
        CHECK_EQ_INT(fp4rt_env_enum(FP4RT_ENV_VK_COOPMAT), 3);
        CHECK_EQ_INT(fp4rt_env_enum(FP4RT_ENV_VK_LINEAR), -1);
        CHECK(fp4rt_env_str(FP4RT_ENV_CACHE_DIR) == NULL);
        CHECK_EQ_INT(fp4rt_env_bool(FP4RT_ENV_VK_GDN_CHUNKED), 1);
        CHECK(!fp4rt_env_is_set(FP4RT_ENV_VK_IDOT));
        CHECK(!strcmp(fp4rt_env_raw(FP4RT_ENV_VK_MAX_RANGE), "abc"));
        CHECK_EQ_INT(fp4rt_env_int(FP4RT_ENV_CUDA_STAGING_KB), 65536);
    }
    CHECK_EQ_INT(n_warn, 2); /* FP4RT_VK_EXACTT, FP4RT_VK_MAX_RANGE: once each */
    /* later changes are not seen until the test hook parses again */
    setenv("FP4RT_VK_PIECE_RANGE", "3k", 1);
    CHECK_EQ_INT(fp4rt_env_size(FP4RT_ENV_VK_PIECE_RANGE), 2048);
    fp4rt_env_reload();
    CHECK_EQ_INT(fp4rt_env_size(FP4RT_ENV_VK_PIECE_RANGE), 3072);
    /* the header-only reader (the CUDA module's) agrees */
    CHECK_EQ_INT(fp4rt_env_read(FP4RT_ENV_VK_PIECE_RANGE).u, 3072);
    CHECK_EQ_INT(fp4rt_env_read(FP4RT_ENV_VK_MAX_RANGE).set, 0);
    CHECK_EQ_INT(fp4rt_env_read(FP4RT_ENV_CUDA_STAGING_KB).i, 65536);
}

int main(void) {
    fp4rt_log_set(capture, NULL);
    test_types();
    test_malformed();
    test_unknown();
    test_process();
    return test_summary("env");
}
