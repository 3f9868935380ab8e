/* The backend registry (runtime/backend/registry.h): the records, the CPU
 * device, device names that parse back, the --device auto rule (scores), the
 * public device list as the sum over the records, and one-line errors for
 * unknown backends and indices. Runs with whatever devices the machine has
 * (lavapipe in CI: vulkan:0 is then a software device auto never picks). */
#include "tests/test_util.h"

#include "runtime/backend/registry.h"
#include "runtime/base/common.h"
#include "runtime/engine/model.h"

static int reg_index(const fp4rt_backend_reg *r) {
    for (int i = 0; i < fp4rt_registry_count(); i++)
        if (fp4rt_registry_get(i) == r) return i;
    return -1;
}

/* Expects status `want` with a non-empty one-line message containing `part`. */
static void check_error(fp4rt_status st, fp4rt_status want, const char *part, const char *what) {
    const char *msg = fp4rt_last_error();
    CHECK_MSG(st == want, "%s: status %d, want %d", what, (int)st, (int)want);
    CHECK_MSG(msg[0] && strstr(msg, part) && !strchr(msg, '\n'), "%s: message '%s' should name '%s'", what, msg,
              part);
    fp4rt_clear_error();
}

static void check_records(void) {
    const char *names[] = {"cpu", "vulkan", "cuda"};
    const fp4rt_device_kind kinds[] = {FP4RT_DEVICE_CPU, FP4RT_DEVICE_VULKAN, FP4RT_DEVICE_CUDA};
    CHECK_EQ_INT(fp4rt_registry_count(), 3);
    for (int i = 0; i < 3 && i < fp4rt_registry_count(); i++) {
        const fp4rt_backend_reg *r = fp4rt_registry_get(i);
        CHECK_MSG(!strcmp(r->name, names[i]), "record %d is '%s', want '%s'", i, r->name, names[i]);
        CHECK(r->kind == kinds[i]);
        CHECK(fp4rt_registry_find(names[i]) == r);
        CHECK(r->not_built || (r->device_count && r->device_get && r->unavailable_reason && r->create));
        /* no device: a reason says why */
        if (!r->not_built && fp4rt_registry_device_count(r) == 0) CHECK(r->unavailable_reason()[0] != 0);
    }
    CHECK(fp4rt_registry_get(-1) == NULL && fp4rt_registry_get(fp4rt_registry_count()) == NULL);
    CHECK(fp4rt_registry_find("metal") == NULL);
    /* priorities: cuda over vulkan over cpu */
    CHECK(fp4rt_registry_find("cuda")->priority > fp4rt_registry_find("vulkan")->priority);
    CHECK(fp4rt_registry_find("vulkan")->priority > fp4rt_registry_find("cpu")->priority);
}

static void check_cpu(void) {
    const fp4rt_backend_reg *cpu = fp4rt_registry_find("cpu");
    CHECK_EQ_INT(fp4rt_registry_device_count(cpu), 1);
    fp4rt_device_desc d;
    CHECK_EQ_INT(fp4rt_registry_device(cpu, 0, &d), FP4RT_OK);
    CHECK(!strcmp(d.name, "cpu"));
    CHECK(d.kind == FP4RT_DEVICE_CPU);
    CHECK(d.usable && !d.software && d.memory_bytes > 0);
    CHECK_MSG(strstr(d.description, " cores, ") && strstr(d.description, "GiB memory"), "cpu: '%s'", d.description);
    CHECK(!strcmp(d.title, d.description) && d.n_details == 0);
    CHECK(d.score > 0);
    fp4rt_device_ref ref;
    CHECK_EQ_INT(fp4rt_registry_parse("cpu", &ref), FP4RT_OK);
    CHECK(ref.reg == cpu && ref.index == 0);
    /* the record creates the CPU backend */
    const fp4rt_backend_ops *ops = NULL;
    void *ctx = NULL;
    CHECK_EQ_INT(cpu->create(0, 1, &ops, &ctx), FP4RT_OK);
    CHECK(ops == &fp4rt_backend_cpu && ctx != NULL);
    if (ops && ctx) ops->destroy(ctx);
}

/* Every device's name parses back to it; "vulkan" alone is vulkan:0. */
static void check_names(void) {
    for (int i = 0; i < fp4rt_registry_count(); i++) {
        const fp4rt_backend_reg *r = fp4rt_registry_get(i);
        int n = fp4rt_registry_device_count(r);
        for (int k = 0; k < n; k++) {
            fp4rt_device_desc d;
            fp4rt_device_ref ref;
            CHECK_EQ_INT(fp4rt_registry_device(r, k, &d), FP4RT_OK);
            CHECK(d.kind == r->kind);
            char want[32];
            if (r->indexed)
                snprintf(want, sizeof want, "%s:%d", r->name, k);
            else
                snprintf(want, sizeof want, "%s", r->name);
            CHECK_MSG(!strcmp(d.name, want), "device name '%s', want '%s'", d.name, want);
            CHECK_EQ_INT(fp4rt_registry_parse(d.name, &ref), FP4RT_OK);
            CHECK(ref.reg == r && ref.index == k);
            CHECK(d.description[0] && d.title[0]);
            CHECK(d.usable || d.reason[0]);
            printf("%-10s score %.0f: %s\n", d.name, d.score, d.description);
        }
        if (n > 0 && r->indexed) {
            fp4rt_device_ref ref;
            CHECK_EQ_INT(fp4rt_registry_parse(r->name, &ref), FP4RT_OK);
            CHECK(ref.reg == r && ref.index == 0);
        }
    }
}

/* The auto rule: the highest score wins (the first on a tie); software and
 * unusable devices score 0; a device of a higher-priority backend outscores
 * every device of a lower one; skipping records gives the fallback order. */
static void check_auto(void) {
    const fp4rt_backend_reg *cpu = fp4rt_registry_find("cpu");
    fp4rt_device_ref want = {NULL, -1};
    double best = 0;
    for (int i = 0; i < fp4rt_registry_count(); i++) {
        const fp4rt_backend_reg *r = fp4rt_registry_get(i);
        double lo = 1e300, hi = 0;
        for (int k = 0; k < fp4rt_registry_device_count(r); k++) {
            fp4rt_device_desc d;
            if (fp4rt_registry_device(r, k, &d)) continue;
            if (d.software || !d.usable) CHECK_MSG(d.score == 0, "%s: software or unusable but score %g", d.name, d.score);
            if (d.score > best) best = d.score, want.reg = r, want.index = k;
            if (d.score > 0 && d.score < lo) lo = d.score;
            if (d.score > hi) hi = d.score;
        }
        /* scores of a record lie above every score of a lower-priority record */
        for (int j = 0; j < fp4rt_registry_count(); j++) {
            const fp4rt_backend_reg *o = fp4rt_registry_get(j);
            if (o->priority >= r->priority || lo == 1e300) continue;
            for (int k = 0; k < fp4rt_registry_device_count(o); k++) {
                fp4rt_device_desc d;
                if (!fp4rt_registry_device(o, k, &d)) CHECK_MSG(d.score < lo, "%s outscores a %s device", d.name, r->name);
            }
        }
    }
    fp4rt_device_ref got = fp4rt_registry_best(0);
    CHECK(want.reg != NULL); /* the CPU at least */
    CHECK_MSG(got.reg == want.reg && got.index == want.index, "auto picks %s:%d, want %s:%d",
              got.reg ? got.reg->name : "none", got.index, want.reg ? want.reg->name : "none", want.index);
    fp4rt_device_choice c;
    CHECK_EQ_INT(fp4rt_device_parse("auto", &c), FP4RT_OK);
    CHECK(c.dev.reg == got.reg && c.dev.index == got.index && !c.asked);
    CHECK_EQ_INT(fp4rt_device_parse(NULL, &c), FP4RT_OK);
    CHECK(c.dev.reg == got.reg && !c.asked);
    CHECK_EQ_INT(fp4rt_device_parse("cpu", &c), FP4RT_OK);
    CHECK(c.dev.reg == cpu && c.asked);
    /* skipping every record but the CPU: the CPU; skipping the CPU too: none */
    unsigned all = (1u << fp4rt_registry_count()) - 1, no_cpu = all & ~(1u << reg_index(cpu));
    got = fp4rt_registry_best(no_cpu);
    CHECK(got.reg == cpu && got.index == 0);
    got = fp4rt_registry_best(all);
    CHECK(got.reg == NULL && got.index == -1);
    /* with the CPU skipped, auto never picks a software device */
    got = fp4rt_registry_best(1u << reg_index(cpu));
    if (got.reg) {
        fp4rt_device_desc d;
        CHECK_EQ_INT(fp4rt_registry_device(got.reg, got.index, &d), FP4RT_OK);
        CHECK(!d.software && d.usable && d.score > 0);
    }
}

/* The public list is the records' devices in order. */
static void check_public_list(void) {
    int sum = 0;
    for (int i = 0; i < fp4rt_registry_count(); i++) sum += fp4rt_registry_device_count(fp4rt_registry_get(i));
    CHECK_EQ_INT(fp4rt_device_count(), sum);
    int at = 0;
    for (int i = 0; i < fp4rt_registry_count(); i++) {
        const fp4rt_backend_reg *r = fp4rt_registry_get(i);
        for (int k = 0; k < fp4rt_registry_device_count(r); k++, at++) {
            fp4rt_device_info info;
            fp4rt_device_desc d;
            CHECK_EQ_INT(fp4rt_device_get(at, &info), FP4RT_OK);
            CHECK_EQ_INT(fp4rt_registry_device(r, k, &d), FP4RT_OK);
            CHECK(!strcmp(info.name, d.name) && !strcmp(info.description, d.description));
            CHECK(info.kind == r->kind && info.usable == d.usable && info.memory_bytes == d.memory_bytes);
        }
    }
    fp4rt_device_info info;
    fp4rt_device_get(0, &info);
    CHECK(!strcmp(info.name, "cpu")); /* the CPU is always device 0 */
}

static void check_errors(void) {
    fp4rt_device_ref ref;
    fp4rt_device_desc d;
    fp4rt_device_info info;
    check_error(fp4rt_registry_parse("metal", &ref), FP4RT_DEVICE, "metal", "unknown backend");
    CHECK(ref.reg == NULL && ref.index == -1);
    check_error(fp4rt_registry_parse("metal:0", &ref), FP4RT_DEVICE, "metal:0", "unknown backend with index");
    check_error(fp4rt_registry_parse("vulkan:999", &ref), FP4RT_DEVICE, "vulkan:999", "vulkan out of range");
    check_error(fp4rt_registry_parse("cuda:999", &ref), FP4RT_DEVICE, "cuda:999", "cuda out of range");
    check_error(fp4rt_registry_parse("vulkan:x", &ref), FP4RT_INVALID_ARGUMENT, "vulkan:N", "malformed index");
    check_error(fp4rt_registry_parse("vulkan:-1", &ref), FP4RT_INVALID_ARGUMENT, "vulkan:N", "negative index");
    check_error(fp4rt_registry_parse("cpu:1", &ref), FP4RT_INVALID_ARGUMENT, "cpu:1", "cpu takes no index");
    fp4rt_device_choice c;
    check_error(fp4rt_device_parse("gpu", &c), FP4RT_DEVICE, "gpu", "--device gpu");
    const fp4rt_backend_reg *cpu = fp4rt_registry_find("cpu");
    check_error(fp4rt_registry_device(cpu, 1, &d), FP4RT_INVALID_ARGUMENT, "no device 1", "cpu device 1");
    check_error(fp4rt_registry_device(cpu, -1, &d), FP4RT_INVALID_ARGUMENT, "no device -1", "cpu device -1");
    const fp4rt_backend_reg *vk = fp4rt_registry_find("vulkan");
    int nvk = fp4rt_registry_device_count(vk);
    check_error(fp4rt_registry_device(vk, nvk, &d), FP4RT_INVALID_ARGUMENT, "vulkan", "vulkan past the end");
    int n = fp4rt_device_count();
    check_error(fp4rt_device_get(n, &info), FP4RT_INVALID_ARGUMENT, "no device", "fp4rt_device_get past the end");
    check_error(fp4rt_device_get(-1, &info), FP4RT_INVALID_ARGUMENT, "no device -1", "fp4rt_device_get(-1)");
}

int main(void) {
    check_records();
    check_cpu();
    check_names();
    check_auto();
    check_public_list();
    check_errors();
    return test_summary("test_registry");
}
