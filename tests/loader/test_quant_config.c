/* ModelOpt quantization config: both file forms, MIXED_PRECISION lookup, exclude
 * patterns, KV-cache settings, and unsupported algorithms named in the error. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "loader/quant_config.h"

#include "tests/test_util.h"

#include <stdlib.h>
#include <unistd.h>

#define L "model.language_model.layers."

static fp4rt_status parse(const char *json, fp4rt_quant_config *q) {
    return fp4rt_quant_config_parse(json, strlen(json), "q.json", q);
}

static void expect_fail(int line, const char *json, fp4rt_status want, const char *n1,
                        const char *n2) {
    fp4rt_quant_config q;
    fp4rt_status st = parse(json, &q);
    const char *msg = fp4rt_last_error();
    if (getenv("FP4RT_TEST_VERBOSE")) printf("line %d: %s\n", line, msg);
    CHECK_MSG(st == want, "line %d: status %s, want %s (%s)", line, fp4rt_status_name(st),
              fp4rt_status_name(want), msg);
    CHECK_MSG(strstr(msg, "q.json") && strstr(msg, n1) && (!n2 || strstr(msg, n2)),
              "line %d: message lacks '%s'/'%s': %s", line, n1, n2 ? n2 : "", msg);
    CHECK(q.n_layers == 0 && q.layers == NULL && q.exclude == NULL);
    fp4rt_quant_config_free(&q);
}
#define EXPECT_FAIL(json, want, n1, n2) expect_fail(__LINE__, json, want, n1, n2)

static void test_mixed(void) {
    const char *j =
        "{\"producer\":{\"name\":\"modelopt\",\"version\":\"0.45.0\"},"
        "\"quantization\":{\"quant_algo\":\"MIXED_PRECISION\",\"kv_cache_quant_algo\":\"FP8\","
        "\"quantized_layers\":{"
        "\"" L "0.mlp.down_proj\":{\"quant_algo\":\"W4A16_NVFP4\",\"group_size\":16},"
        "\"" L "0.linear_attn.in_proj_z\":{\"quant_algo\":\"FP8\"},"
        "\"lm_head\":{\"quant_algo\":\"W4A16_NVFP4\",\"group_size\":16},"
        "\"" L "3.self_attn.q_proj\":{\"quant_algo\":\"FP8\"},"
        "\"" L "5.mlp.up_proj\":{\"quant_algo\":\"NVFP4\",\"group_size\":16}},"
        "\"exclude_modules\":[\"mtp*\"]}}";
    fp4rt_quant_config q;
    fp4rt_status st = parse(j, &q);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(q.algo == FP4RT_Q_MIXED && q.kv_cache_fp8 == 1 && q.n_layers == 5 && q.group_size == 16);
    CHECK(strcmp(q.source, "q.json") == 0);
    CHECK(fp4rt_quant_algo_for(&q, L "0.mlp.down_proj") == FP4RT_Q_NVFP4_W4A16);
    CHECK(fp4rt_quant_algo_for(&q, L "0.linear_attn.in_proj_z") == FP4RT_Q_FP8);
    CHECK(fp4rt_quant_algo_for(&q, "lm_head") == FP4RT_Q_NVFP4_W4A16);
    CHECK(fp4rt_quant_algo_for(&q, L "3.self_attn.q_proj") == FP4RT_Q_FP8);
    CHECK(fp4rt_quant_algo_for(&q, L "5.mlp.up_proj") == FP4RT_Q_NVFP4_W4A4);
    CHECK(fp4rt_quant_algo_for(&q, L "0.linear_attn.in_proj_a") == FP4RT_Q_NONE); /* not listed */
    CHECK(fp4rt_quant_algo_for(&q, L "0.mlp") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, "") == FP4RT_Q_NONE);
    fp4rt_quant_config_free(&q);
    fp4rt_quant_config_free(&q); /* idempotent */

    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"MIXED_PRECISION\"}}", FP4RT_FORMAT,
                "quantized_layers", NULL);
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"MIXED_PRECISION\",\"quantized_layers\":{"
                "\"a.b\":{\"quant_algo\":\"FP8\"},\"x.y\":{\"quant_algo\":\"INT8_SQ\"}}}}",
                FP4RT_UNSUPPORTED, "quantized_layers.x.y.quant_algo", "INT8_SQ");
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"MIXED_PRECISION\",\"quantized_layers\":{"
                "\"x.y\":{\"quant_algo\":\"W4A16_NVFP4\",\"group_size\":32}}}}",
                FP4RT_UNSUPPORTED, "quantized_layers.x.y.group_size", NULL);
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"MIXED_PRECISION\",\"quantized_layers\":{"
                "\"x.y\":{\"group_size\":16}}}}",
                FP4RT_FORMAT, "quantized_layers.x.y.quant_algo", NULL);
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"MIXED_PRECISION\",\"quantized_layers\":{"
                "\"x.y\":\"FP8\"}}}",
                FP4RT_FORMAT, "quantized_layers.x.y", NULL);
}

static void test_single(void) {
    const char *j =
        "{\"producer\":{\"name\":\"modelopt\"},\"quantization\":{\"quant_algo\":\"NVFP4\","
        "\"group_size\":16,\"kv_cache_quant_algo\":null,"
        "\"exclude_modules\":[\"lm_head\",\"model.visual*\",\"*.linear_attn.in_proj_a\","
        "\"mtp\"]}}";
    fp4rt_quant_config q;
    fp4rt_status st = parse(j, &q);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(q.algo == FP4RT_Q_NVFP4_W4A4 && q.kv_cache_fp8 == 0 && q.n_exclude == 4);
    CHECK(fp4rt_quant_algo_for(&q, L "0.mlp.down_proj") == FP4RT_Q_NVFP4_W4A4);
    CHECK(fp4rt_quant_algo_for(&q, "lm_head") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, "lm_head_extra") == FP4RT_Q_NVFP4_W4A4);
    CHECK(fp4rt_quant_algo_for(&q, "model.visual.blocks.0.attn.qkv") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, "model.visual") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, L "7.linear_attn.in_proj_a") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, L "7.linear_attn.in_proj_b") == FP4RT_Q_NVFP4_W4A4);
    CHECK(fp4rt_quant_algo_for(&q, "mtp.layers.0.mlp.up_proj") == FP4RT_Q_NONE); /* below "mtp" */
    CHECK(fp4rt_quant_algo_for(&q, "mtpx.fc") == FP4RT_Q_NVFP4_W4A4);
    fp4rt_quant_config_free(&q);

    /* "model.visual" without a wildcard also covers everything below it */
    st = parse("{\"quantization\":{\"quant_algo\":\"FP8\",\"exclude_modules\":[\"model.visual\"],"
               "\"kv_cache_quant_algo\":\"FP8\"}}",
               &q);
    CHECK(st == FP4RT_OK && q.algo == FP4RT_Q_FP8 && q.kv_cache_fp8 == 1);
    CHECK(fp4rt_quant_algo_for(&q, "model.visual.blocks.0.attn.qkv") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, "model.visualizer") == FP4RT_Q_FP8);
    CHECK(fp4rt_quant_algo_for(&q, L "1.self_attn.o_proj") == FP4RT_Q_FP8);
    fp4rt_quant_config_free(&q);

    st = parse("{\"quantization\":{\"quant_algo\":\"W4A16_NVFP4\"}}", &q);
    CHECK(st == FP4RT_OK && q.algo == FP4RT_Q_NVFP4_W4A16 && q.group_size == 16);
    fp4rt_quant_config_free(&q);

    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"INT4_AWQ\"}}", FP4RT_UNSUPPORTED, "quant_algo",
                "INT4_AWQ");
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"NVFP4_AWQ\"}}", FP4RT_UNSUPPORTED,
                "quant_algo", "NVFP4_AWQ");
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"NVFP4\",\"group_size\":32}}",
                FP4RT_UNSUPPORTED, "group_size", "32");
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":5}}", FP4RT_FORMAT, "quant_algo", NULL);
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"FP8\",\"exclude_modules\":\"lm_head\"}}",
                FP4RT_FORMAT, "exclude_modules", NULL);
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"FP8\",\"exclude_modules\":[\"a\",3]}}",
                FP4RT_FORMAT, "exclude_modules[1]", NULL);
    EXPECT_FAIL("{\"quantization\":{\"quant_algo\":\"FP8\",\"kv_cache_quant_algo\":\"NVFP4\"}}",
                FP4RT_UNSUPPORTED, "kv_cache_quant_algo", "NVFP4");
    EXPECT_FAIL("{\"quantization\":[]}", FP4RT_FORMAT, "quantization", NULL);
    EXPECT_FAIL("{\"producer\":{}}", FP4RT_FORMAT, "quantization", NULL);
    EXPECT_FAIL("{\"quantization\":", FP4RT_FORMAT, "JSON", NULL);
}

static void test_config_json_form(void) {
    const char *j =
        "{\"architectures\":[\"Qwen3_5ForConditionalGeneration\"],"
        "\"quantization_config\":{\"quant_method\":\"modelopt\",\"quant_algo\":\"W4A16_NVFP4\","
        "\"config_groups\":{\"group_0\":{\"weights\":{\"num_bits\":4,\"type\":\"float\","
        "\"group_size\":16}}},"
        "\"ignore\":[\"lm_head\",\"model.visual*\"],"
        "\"kv_cache_scheme\":{\"dynamic\":false,\"num_bits\":8,\"type\":\"float\"},"
        "\"producer\":{\"name\":\"modelopt\"}}}";
    fp4rt_quant_config q;
    fp4rt_status st = parse(j, &q);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(q.algo == FP4RT_Q_NVFP4_W4A16 && q.kv_cache_fp8 == 1 && q.n_exclude == 2);
    CHECK(fp4rt_quant_algo_for(&q, "lm_head") == FP4RT_Q_NONE);
    CHECK(fp4rt_quant_algo_for(&q, L "2.mlp.gate_proj") == FP4RT_Q_NVFP4_W4A16);
    fp4rt_quant_config_free(&q);

    /* the bare quantization_config object */
    st = parse("{\"quant_method\":\"modelopt\",\"quant_algo\":\"MIXED_PRECISION\","
               "\"quantized_layers\":{\"lm_head\":{\"quant_algo\":\"FP8\"}}}",
               &q);
    CHECK(st == FP4RT_OK && q.algo == FP4RT_Q_MIXED &&
          fp4rt_quant_algo_for(&q, "lm_head") == FP4RT_Q_FP8);
    fp4rt_quant_config_free(&q);

    EXPECT_FAIL("{\"quantization_config\":{\"quant_method\":\"compressed-tensors\"}}",
                FP4RT_UNSUPPORTED, "quant_method", "compressed-tensors");
    EXPECT_FAIL("{\"quantization_config\":{\"quant_algo\":\"FP8\"}}", FP4RT_FORMAT, "quant_method",
                NULL);
    EXPECT_FAIL("{\"quantization_config\":{\"quant_method\":\"modelopt\",\"quant_algo\":\"FP8\","
                "\"kv_cache_scheme\":{\"num_bits\":4,\"type\":\"int\"}}}",
                FP4RT_UNSUPPORTED, "kv_cache_scheme", NULL);

    /* load(): hf_quant_config.json first, then config.json, else none */
    char dir[] = "/tmp/fp4rt-qcfg-XXXXXX", hp[64], cp[64];
    if (!mkdtemp(dir)) return;
    snprintf(hp, sizeof hp, "%s/hf_quant_config.json", dir);
    snprintf(cp, sizeof cp, "%s/config.json", dir);
    FILE *f = fopen(cp, "wb");
    if (f) {
        fputs(j, f);
        fclose(f);
    }
    CHECK(fp4rt_quant_config_load(dir, &q) == FP4RT_OK && q.algo == FP4RT_Q_NVFP4_W4A16 &&
          strstr(q.source, "config.json"));
    fp4rt_quant_config_free(&q);
    f = fopen(hp, "wb");
    if (f) {
        fputs("{\"quantization\":{\"quant_algo\":\"FP8\"}}", f);
        fclose(f);
    }
    CHECK(fp4rt_quant_config_load(dir, &q) == FP4RT_OK && q.algo == FP4RT_Q_FP8 &&
          strstr(q.source, "hf_quant_config.json"));
    fp4rt_quant_config_free(&q);
    remove(hp);
    f = fopen(cp, "wb");
    if (f) {
        fputs("{\"architectures\":[\"Qwen3_5ForCausalLM\"]}", f);
        fclose(f);
    }
    CHECK(fp4rt_quant_config_load(dir, &q) == FP4RT_OK && q.algo == FP4RT_Q_NONE &&
          q.source[0] == 0 && fp4rt_quant_algo_for(&q, "lm_head") == FP4RT_Q_NONE);
    fp4rt_quant_config_free(&q);
    remove(cp);
    rmdir(dir);

    CHECK(strcmp(fp4rt_qalgo_name(FP4RT_Q_NONE), "none") == 0);
    CHECK(strcmp(fp4rt_qalgo_name(FP4RT_Q_NVFP4_W4A16), "W4A16_NVFP4") == 0);
    CHECK(strcmp(fp4rt_qalgo_name(FP4RT_Q_NVFP4_W4A4), "NVFP4") == 0);
    CHECK(strcmp(fp4rt_qalgo_name(FP4RT_Q_MIXED), "MIXED_PRECISION") == 0);
    CHECK(strcmp(fp4rt_qalgo_name(FP4RT_Q_FP8), "FP8") == 0);
}

int main(void) {
    test_mixed();
    test_single();
    test_config_json_form();
    return test_summary("test_quant_config");
}
