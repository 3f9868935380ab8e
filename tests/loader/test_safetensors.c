/* safetensors reader: round trips of hand-built files and checkpoints, and every
 * malformed input the reader must refuse with the right status and a message
 * naming the file and the tensor. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "loader/safetensors.h"

#include "tests/test_util.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* Writes a safetensors file: 8-byte length (hlen_override if nonzero), header, payload. */
static void write_st_len(const char *path, const char *header, uint64_t hlen_override,
                         const void *payload, size_t plen) {
    size_t hl = strlen(header);
    size_t n = 8 + hl + plen;
    unsigned char *b = malloc(n + 1);
    uint64_t len = hlen_override ? hlen_override : hl;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(len >> (8 * i));
    memcpy(b + 8, header, hl);
    if (plen) memcpy(b + 8 + hl, payload, plen);
    write_bytes(path, b, n);
    free(b);
}

static void write_st(const char *path, const char *header, const void *payload, size_t plen) {
    write_st_len(path, header, 0, payload, plen);
}

static void clear_dir(void) {
    test_tmpdir_remove();
    if (mkdir(test_tmp_dir_, 0700) != 0) exit(2);
}

/* Expects fp4rt_st_open(file) to fail with `want`, naming the file and `needle`. */
static void expect_open_fail(int line, const char *file, fp4rt_status want, const char *needle) {
    fp4rt_st_file *f = NULL;
    fp4rt_status st = fp4rt_st_open(file, &f);
    const char *msg = fp4rt_last_error();
    if (getenv("FP4RT_TEST_VERBOSE")) printf("line %d: %s\n", line, msg);
    CHECK_MSG(st == want, "line %d: status %s, want %s (%s)", line, fp4rt_status_name(st),
              fp4rt_status_name(want), msg);
    CHECK_MSG(f == NULL, "line %d: file handle returned on failure", line);
    CHECK_MSG(strstr(msg, file) != NULL, "line %d: message lacks the file: %s", line, msg);
    CHECK_MSG(!needle || strstr(msg, needle) != NULL, "line %d: message lacks '%s': %s", line,
              needle, msg);
    fp4rt_st_close(f);
}

static void bad_header(int line, const char *header, size_t plen, fp4rt_status want,
                       const char *needle) {
    static unsigned char zeros[256];
    char *p = test_tmp_path("bad.safetensors");
    write_st(p, header, zeros, plen);
    expect_open_fail(line, p, want, needle);
}
#define BAD(header, plen, want, needle) bad_header(__LINE__, header, plen, want, needle)

static void test_round_trip(void) {
    /* One tensor per dtype, a 0-d scalar, an empty tensor; payload bytes are i & 0xff. */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"w.f16\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[12,20]},"
                    "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[1,2,1],\"data_offsets\":[20,28]},"
                    "\"w.f8\":{\"dtype\":\"F8_E4M3\",\"shape\":[3,2],\"data_offsets\":[28,34]},"
                    "\"w.u8\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[34,36]},"
                    "\"w.i8\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[36,40]},"
                    "\"w.i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[40,48]},"
                    "\"w.i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[48,56]},"
                    "\"scale\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[56,60]},"
                    "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[60,60]}}    ";
    unsigned char payload[60];
    for (int i = 0; i < 60; i++)
        payload[i] = (unsigned char)(i * 7 + 1);
    char *p = test_tmp_path("ok.safetensors");
    write_st(p, h, payload, sizeof payload);

    fp4rt_st_file *f = NULL;
    fp4rt_status st = fp4rt_st_open(p, &f);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (st != FP4RT_OK) return;
    CHECK_EQ_INT(f->n_tensors, 10);
    static const struct {
        const char *name;
        fp4rt_dtype dt;
        int ndim;
        int64_t d0;
        uint64_t begin, nbytes;
    } want[] = {
        {"w.bf16", FP4RT_DT_BF16, 2, 2, 0, 12}, {"w.f16", FP4RT_DT_F16, 1, 4, 12, 8},
        {"w.f32", FP4RT_DT_F32, 3, 1, 20, 8},   {"w.f8", FP4RT_DT_F8_E4M3, 2, 3, 28, 6},
        {"w.u8", FP4RT_DT_U8, 1, 2, 34, 2},     {"w.i8", FP4RT_DT_I8, 1, 4, 36, 4},
        {"w.i32", FP4RT_DT_I32, 1, 2, 40, 8},   {"w.i64", FP4RT_DT_I64, 1, 1, 48, 8},
        {"scale", FP4RT_DT_F32, 0, 0, 56, 4},   {"empty", FP4RT_DT_F32, 2, 0, 60, 0},
    };
    size_t hdr = 8 + strlen(h);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const fp4rt_st_tensor *t = fp4rt_st_find(f, want[i].name);
        CHECK_MSG(t != NULL, "%s not found", want[i].name);
        if (!t) continue;
        CHECK(t->dtype == want[i].dt);
        CHECK_EQ_INT(t->ndim, want[i].ndim);
        if (want[i].ndim) CHECK_EQ_INT(t->shape[0], want[i].d0);
        CHECK_EQ_INT(t->nbytes, want[i].nbytes);
        CHECK_EQ_INT(t->file_offset, hdr + want[i].begin);
        CHECK(t->nbytes == 0 || memcmp(t->data, payload + want[i].begin, t->nbytes) == 0);
        CHECK(strcmp(t->file_path, p) == 0);
    }
    CHECK(f->tensors[0].name && strcmp(f->tensors[0].name, "empty") == 0); /* sorted by name */
    CHECK(fp4rt_st_find(f, "w.f32")->shape[1] == 2);
    CHECK(fp4rt_st_find(f, "nope") == NULL);
    CHECK(fp4rt_st_find(f, "") == NULL);
    fp4rt_st_close(f);

    /* dtype helpers */
    for (int i = 0; i < FP4RT_DT_COUNT; i++) {
        fp4rt_dtype d;
        CHECK(fp4rt_dtype_parse(fp4rt_dtype_name((fp4rt_dtype)i), &d) == 0 && d == (fp4rt_dtype)i);
    }
    fp4rt_dtype d;
    CHECK(fp4rt_dtype_parse("F64", &d) == -1);
    CHECK(fp4rt_dtype_size(FP4RT_DT_I64) == 8 && fp4rt_dtype_size(FP4RT_DT_BF16) == 2);

    /* The same file as a checkpoint: by file path and as dir/model.safetensors. */
    fp4rt_checkpoint *c = NULL;
    st = fp4rt_checkpoint_open(p, &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (c) {
        CHECK_EQ_INT(c->n_tensors, 10);
        CHECK(fp4rt_checkpoint_find(c, "w.i64") != NULL);
        fp4rt_checkpoint_close(c);
    }
    write_st(test_tmp_path("model.safetensors"), h, payload, sizeof payload);
    st = fp4rt_checkpoint_open(test_tmp_dir_, &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (c) {
        CHECK_EQ_INT(c->n_files, 1);
        CHECK(fp4rt_checkpoint_find(c, "scale") && fp4rt_checkpoint_find(c, "scale")->nbytes == 4);
        fp4rt_checkpoint_close(c);
    }

    /* In-memory parse, as the fuzz target uses it. */
    fp4rt_st_file mf;
    unsigned char img[8 + 3];
    memcpy(img, "\x03\0\0\0\0\0\0\0{} ", 11);
    CHECK(fp4rt_st_parse("mem", img, sizeof img, &mf) == FP4RT_OK && mf.n_tensors == 0);
    fp4rt_st_release(&mf);
    clear_dir();
}

static void test_bad_files(void) {
    char *p = test_tmp_path("bad.safetensors");
    static const unsigned char zeros[16];
    write_bytes(p, "", 0);
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "shorter than");
    write_bytes(p, zeros, 5);
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "shorter than");
    write_st_len(p, "{}", 1000, NULL, 0); /* header length past the end */
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "past the end");
    write_st_len(p, "{}", (uint64_t)200 << 20, NULL, 0);
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "limit");
    write_st_len(p, "{}", UINT64_MAX, NULL, 0);
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "limit");
    expect_open_fail(__LINE__, test_tmp_path("missing.safetensors"), FP4RT_IO, "cannot open");

    /* Truncated: a valid file cut inside the payload, then inside the header. */
    const char *h = "{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    write_st(p, h, zeros, 10);
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "big");
    write_st_len(p, h, 0, NULL, 0);
    FILE *f = fopen(p, "r+b");
    CHECK(f && ftruncate(fileno(f), 30) == 0);
    if (f) fclose(f);
    expect_open_fail(__LINE__, p, FP4RT_FORMAT, "past the end");

    BAD("{\"a\":{\"dtype\":\"F32\",", 0, FP4RT_FORMAT, "not valid JSON");
    BAD("not json", 0, FP4RT_FORMAT, "not valid JSON");
    BAD("[1,2]", 0, FP4RT_FORMAT, "not a JSON object");
    BAD("{} x", 0, FP4RT_FORMAT, "after the header");
    BAD("{}{}", 0, FP4RT_FORMAT, "after the header");
    BAD("{\"t.nonobj\":5}", 0, FP4RT_FORMAT, "t.nonobj");
    BAD("{\"t.dtype\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
        FP4RT_UNSUPPORTED, "t.dtype");
    BAD("{\"t.dtype\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
        FP4RT_UNSUPPORTED, "F64");
    BAD("{\"t.dt2\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, FP4RT_FORMAT, "t.dt2");
    BAD("{\"t.noshape\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, FP4RT_FORMAT, "t.noshape");
    BAD("{\"t.nooff\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, FP4RT_FORMAT, "t.nooff");
    BAD("{\"t.off3\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, FP4RT_FORMAT,
        "t.off3");
    BAD("{\"t.neg\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[-4,0]}}", 4, FP4RT_FORMAT,
        "t.neg");
    BAD("{\"t.frac\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0.5,1.5]}}", 4, FP4RT_FORMAT,
        "t.frac");
    BAD("{\"t.huge\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1e20,100000000000000000001]}"
        "}",
        4, FP4RT_FORMAT, "t.huge");
    BAD("{\"t.stroff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\"0\",\"1\"]}}", 4,
        FP4RT_FORMAT, "t.stroff");
    BAD("{\"t.negdim\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 4, FP4RT_FORMAT,
        "t.negdim");
    BAD("{\"t.manydims\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
        4, FP4RT_FORMAT, "t.manydims");
    BAD("{\"t.ovf\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}",
        4, FP4RT_FORMAT, "t.ovf");
    BAD("{\"t.ovf2\":{\"dtype\":\"I64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,0]}}",
        4, FP4RT_FORMAT, "t.ovf2");
    BAD("{\"t.rev\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, FP4RT_FORMAT,
        "t.rev");
    BAD("{\"t.past\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 4, FP4RT_FORMAT,
        "t.past");
    BAD("{\"t.size\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, FP4RT_FORMAT,
        "t.size");
    BAD("{\"a.first\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        "\"b.overlap\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
        8, FP4RT_FORMAT, "b.overlap");
    BAD("{\"a.first\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        "\"b.overlap\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
        8, FP4RT_FORMAT, "a.first");
    BAD("{\"t.dup\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"t.dup\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
        2, FP4RT_FORMAT, "t.dup");
    BAD("{\"__metadata__\":{\"format\":1}}", 0, FP4RT_FORMAT, "__metadata__");
    BAD("{\"__metadata__\":[]}", 0, FP4RT_FORMAT, "__metadata__");

    /* Tolerated: empty tensors sharing an offset, gaps, whitespace padding. */
    write_st(p,
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]},"
             "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[5,6]}}\n\t  ",
             zeros, 8);
    fp4rt_st_file *ok = NULL;
    CHECK_MSG(fp4rt_st_open(p, &ok) == FP4RT_OK, "%s", fp4rt_last_error());
    fp4rt_st_close(ok);
    clear_dir();
}

static void write_shard(const char *name, const char *header, size_t plen) {
    static unsigned char payload[64];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (unsigned char)i;
    write_st(test_tmp_path(name), header, payload, plen);
}

static void write_index(const char *weight_map) {
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"metadata\":{\"total_size\":16},\"weight_map\":{%s}}", weight_map);
    write_bytes(test_tmp_path("model.safetensors.index.json"), buf, strlen(buf));
}

static void expect_ckpt_fail(int line, fp4rt_status want, const char *n1, const char *n2) {
    fp4rt_checkpoint *c = NULL;
    fp4rt_status st = fp4rt_checkpoint_open(test_tmp_dir_, &c);
    const char *msg = fp4rt_last_error();
    if (getenv("FP4RT_TEST_VERBOSE")) printf("line %d: %s\n", line, msg);
    CHECK_MSG(st == want, "line %d: status %s, want %s (%s)", line, fp4rt_status_name(st),
              fp4rt_status_name(want), msg);
    CHECK_MSG(c == NULL, "line %d: checkpoint returned on failure", line);
    CHECK_MSG(strstr(msg, n1) != NULL, "line %d: message lacks '%s': %s", line, n1, msg);
    CHECK_MSG(!n2 || strstr(msg, n2) != NULL, "line %d: message lacks '%s': %s", line, n2, msg);
    fp4rt_checkpoint_close(c);
}

static void test_sharded(void) {
    const char *h1 = "{\"b.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"a.w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}";
    const char *h2 = "{\"c.w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    write_shard("model-00001-of-00002.safetensors", h1, 12);
    write_shard("model-00002-of-00002.safetensors", h2, 4);
    write_index("\"a.w\":\"model-00001-of-00002.safetensors\","
                "\"b.w\":\"model-00001-of-00002.safetensors\","
                "\"c.w\":\"model-00002-of-00002.safetensors\"");
    fp4rt_checkpoint *c = NULL;
    fp4rt_status st = fp4rt_checkpoint_open(test_tmp_dir_, &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    if (c) {
        CHECK_EQ_INT(c->n_files, 2);
        CHECK_EQ_INT(c->n_tensors, 3);
        CHECK(strcmp(c->tensors[0]->name, "a.w") == 0 && strcmp(c->tensors[2]->name, "c.w") == 0);
        const fp4rt_st_tensor *t = fp4rt_checkpoint_find(c, "c.w");
        CHECK(t && t->dtype == FP4RT_DT_BF16 && strstr(t->file_path, "00002-of") != NULL);
        CHECK(t && ((const unsigned char *)t->data)[1] == 1);
        t = fp4rt_checkpoint_find(c, "a.w");
        CHECK(t && ((const unsigned char *)t->data)[0] == 8);
        CHECK(fp4rt_checkpoint_find(c, "d.w") == NULL);
        fp4rt_checkpoint_close(c);
    }

    /* Index naming a missing shard. */
    write_index("\"a.w\":\"model-00001-of-00002.safetensors\","
                "\"b.w\":\"model-00001-of-00002.safetensors\","
                "\"c.w\":\"model-00003-of-00003.safetensors\"");
    expect_ckpt_fail(__LINE__, FP4RT_IO, "model-00003-of-00003.safetensors", "cannot open");
    /* Entry absent from the shard it names. */
    write_index("\"a.w\":\"model-00001-of-00002.safetensors\","
                "\"b.w\":\"model-00001-of-00002.safetensors\","
                "\"c.w\":\"model-00001-of-00002.safetensors\","
                "\"x.w\":\"model-00002-of-00002.safetensors\"");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "c.w", "model-00001-of-00002.safetensors");
    /* Stored tensor missing from the weight_map. */
    write_index("\"a.w\":\"model-00001-of-00002.safetensors\","
                "\"c.w\":\"model-00002-of-00002.safetensors\"");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "b.w", "model.safetensors.index.json");
    /* Shard paths that leave the directory. */
    write_index("\"a.w\":\"../model-00001-of-00002.safetensors\"");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "a.w", "model.safetensors.index.json");
    write_index("\"a.w\":\"..\"");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "a.w", NULL);
    write_index("\"a.w\":\"/etc/passwd\"");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "a.w", NULL);
    write_index("\"a.w\":3");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "a.w", NULL);
    /* Not JSON / no weight_map. */
    write_bytes(test_tmp_path("model.safetensors.index.json"), "{\"weight_map\":", 14);
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "model.safetensors.index.json", "JSON");
    write_bytes(test_tmp_path("model.safetensors.index.json"), "{\"metadata\":{}}", 15);
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "weight_map", NULL);
    /* A tensor stored in two shards. */
    write_shard("model-00002-of-00002.safetensors",
                "{\"c.w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                "\"a.w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                8);
    write_index("\"a.w\":\"model-00001-of-00002.safetensors\","
                "\"b.w\":\"model-00001-of-00002.safetensors\","
                "\"c.w\":\"model-00002-of-00002.safetensors\"");
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "a.w", "two shards");
    /* A broken shard: the message names the shard file and the tensor. */
    write_shard("model-00002-of-00002.safetensors",
                "{\"c.w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4);
    expect_ckpt_fail(__LINE__, FP4RT_FORMAT, "c.w", "model-00002-of-00002.safetensors");
    clear_dir();
    /* Nothing there. */
    expect_ckpt_fail(__LINE__, FP4RT_IO, test_tmp_dir_, "model.safetensors");
}

int main(void) {
    test_tmpdir("st");
    test_round_trip();
    test_bad_files();
    test_sharded();
    test_tmpdir_remove();
    return test_summary("test_safetensors");
}
