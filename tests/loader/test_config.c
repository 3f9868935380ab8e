/* config.json parsing: the 27B nested config, a small flat one, layer kinds, rope
 * sources, and each inconsistency refused with the right status naming the key. */
#include "loader/config.h"

#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

/* Qwen3.6-27B (docs/MODEL.md 1.1), nested under text_config. */
static const char *k_27b =
    "{\"architectures\":[\"Qwen3_5ForConditionalGeneration\"],\"model_type\":\"qwen3_5\","
    "\"eos_token_id\":248046,\"tie_word_embeddings\":true,"
    "\"text_config\":{\"model_type\":\"qwen3_5_text\",\"hidden_size\":5120,"
    "\"num_hidden_layers\":64,\"intermediate_size\":17408,\"vocab_size\":248320,"
    "\"num_attention_heads\":24,\"num_key_value_heads\":4,\"head_dim\":256,"
    "\"linear_num_key_heads\":16,\"linear_num_value_heads\":48,\"linear_key_head_dim\":128,"
    "\"linear_value_head_dim\":128,\"linear_conv_kernel_dim\":4,\"rms_norm_eps\":1e-06,"
    "\"hidden_act\":\"silu\",\"attn_output_gate\":true,\"attention_bias\":false,"
    "\"max_position_embeddings\":262144,\"mtp_num_hidden_layers\":1,"
    "\"tie_word_embeddings\":false,\"eos_token_id\":248044,\"full_attention_interval\":4,"
    "\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":10000000,"
    "\"partial_rotary_factor\":0.25,\"mrope_section\":[11,11,10],\"mrope_interleaved\":true},"
    "\"layer_types\":[\"linear_attention\",\"linear_attention\",\"linear_attention\","
    "\"full_attention\"]},"
    "\"vision_config\":{\"depth\":27}}";

/* A small flat text-only config (0.8B-like geometry, legacy top-level rope keys). */
static const char *k_small =
    "{\"model_type\":\"qwen3_5_text\",\"hidden_size\":1024,\"num_hidden_layers\":6,"
    "\"intermediate_size\":3584,\"vocab_size\":248320,\"num_attention_heads\":8,"
    "\"num_key_value_heads\":2,\"head_dim\":256,\"linear_num_key_heads\":16,"
    "\"linear_num_value_heads\":16,\"linear_key_head_dim\":128,\"linear_value_head_dim\":128,"
    "\"linear_conv_kernel_dim\":4,\"rms_norm_eps\":1e-6,\"rope_theta\":1e7,"
    "\"full_attention_interval\":3,\"tie_word_embeddings\":true,\"eos_token_id\":[1,2,1]}";

/* The 27B text with its layer_types expanded to 64 entries. */
static cJSON *base_27b(void) {
    cJSON *root = cJSON_Parse(k_27b);
    cJSON *tc = cJSON_GetObjectItem(root, "text_config");
    cJSON *lt = cJSON_CreateArray();
    for (int i = 0; i < 64; i++)
        cJSON_AddItemToArray(
            lt, cJSON_CreateString((i + 1) % 4 ? "linear_attention" : "full_attention"));
    cJSON_ReplaceItemInObject(tc, "layer_types", lt);
    return root;
}

static fp4rt_status parse_json(cJSON *root, fp4rt_config *c) {
    char *s = cJSON_PrintUnformatted(root);
    fp4rt_status st = fp4rt_config_parse(s, strlen(s), "cfg.json", c);
    free(s);
    cJSON_Delete(root);
    return st;
}

static fp4rt_config g_cfg;

/* Parses `root` (consumed), expects `want` and a message naming cfg.json and `key`. */
static void expect(int line, cJSON *root, fp4rt_status want, const char *key) {
    fp4rt_status st = parse_json(root, &g_cfg);
    const char *msg = fp4rt_last_error();
    if (getenv("FP4RT_TEST_VERBOSE")) printf("line %d: %s\n", line, msg);
    CHECK_MSG(st == want, "line %d: status %s, want %s (%s)", line, fp4rt_status_name(st),
              fp4rt_status_name(want), msg);
    CHECK_MSG(strstr(msg, "cfg.json") && strstr(msg, key), "line %d: message lacks '%s': %s", line,
              key, msg);
}
#define EXPECT(root, want, key) expect(__LINE__, root, want, key)

static cJSON *tc_set(cJSON *root, const char *key, cJSON *v) {
    cJSON *tc = cJSON_GetObjectItem(root, "text_config");
    if (cJSON_GetObjectItem(tc, key))
        cJSON_ReplaceItemInObject(tc, key, v);
    else
        cJSON_AddItemToObject(tc, key, v);
    return root;
}

static cJSON *tc_del(cJSON *root, const char *key) {
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "text_config"), key);
    return root;
}

static void test_27b(void) {
    fp4rt_config c;
    fp4rt_status st = parse_json(base_27b(), &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(strcmp(c.architecture, "Qwen3_5ForConditionalGeneration") == 0 && c.nested == 1);
    CHECK(strcmp(c.tensor_prefix, "model.language_model.") == 0);
    CHECK(c.hidden == 5120 && c.n_layers == 64 && c.intermediate == 17408 && c.vocab == 248320);
    CHECK(c.n_heads == 24 && c.n_kv_heads == 4 && c.head_dim == 256 && c.attn_output_gate == 1);
    CHECK(c.lin_k_heads == 16 && c.lin_v_heads == 48 && c.lin_k_dim == 128 && c.lin_v_dim == 128);
    CHECK(c.conv_kernel == 4 && c.mtp_layers == 1 && c.max_positions == 262144);
    CHECK(c.rope_theta == 1e7 && c.partial_rotary == 0.25f && c.rotary_dim == 64);
    CHECK(c.mrope_section[0] == 11 && c.mrope_section[1] == 11 && c.mrope_section[2] == 10 &&
          c.mrope_interleaved == 1);
    CHECK(c.rms_eps == 1e-6f);
    CHECK(c.tie_embeddings == 0); /* text_config wins over the top level */
    CHECK(c.n_eos == 2 && c.eos[0] == 248044 && c.eos[1] == 248046);
    CHECK(fp4rt_cfg_n_attention_layers(&c) == 16);
    CHECK(c.layer_kind[3] == FP4RT_LAYER_ATTENTION && c.layer_kind[0] == FP4RT_LAYER_GDN &&
          c.layer_kind[63] == FP4RT_LAYER_ATTENTION && c.layer_kind[62] == FP4RT_LAYER_GDN);
    CHECK(fp4rt_cfg_key_dim(&c) == 2048 && fp4rt_cfg_value_dim(&c) == 6144 &&
          fp4rt_cfg_conv_dim(&c) == 10240);

    /* layer_types wins over full_attention_interval; without it the interval is used. */
    cJSON *r = base_27b();
    cJSON *lt = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "layer_types");
    cJSON_ReplaceItemInArray(lt, 0, cJSON_CreateString("full_attention"));
    CHECK(parse_json(r, &c) == FP4RT_OK && c.layer_kind[0] == FP4RT_LAYER_ATTENTION &&
          fp4rt_cfg_n_attention_layers(&c) == 17);
    r = tc_set(tc_del(base_27b(), "layer_types"), "full_attention_interval", cJSON_CreateNumber(2));
    CHECK(parse_json(r, &c) == FP4RT_OK && fp4rt_cfg_n_attention_layers(&c) == 32 &&
          c.layer_kind[1] == FP4RT_LAYER_ATTENTION && c.layer_kind[2] == FP4RT_LAYER_GDN);
    /* top-level tie_word_embeddings used when text_config lacks it */
    CHECK(parse_json(tc_del(base_27b(), "tie_word_embeddings"), &c) == FP4RT_OK &&
          c.tie_embeddings == 1);
    /* model_type alone selects the architecture */
    r = base_27b();
    cJSON_DeleteItemFromObject(r, "architectures");
    CHECK(parse_json(r, &c) == FP4RT_OK && c.nested == 1);
    /* rope_theta from rope_scaling (legacy), partial_rotary_factor defaulted */
    r = tc_del(base_27b(), "rope_parameters");
    cJSON *rs = cJSON_CreateObject();
    cJSON_AddStringToObject(rs, "type", "mrope");
    cJSON_AddNumberToObject(rs, "rope_theta", 5e6);
    tc_set(r, "rope_scaling", rs);
    st = parse_json(r, &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(c.rope_theta == 5e6 && c.rotary_dim == 64);
    /* M-RoPE: a given section is kept; absent, transformers' default [11, 11, 10] interleaved */
    r = base_27b();
    cJSON *rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    int sec[3] = {20, 6, 6};
    cJSON_ReplaceItemInObject(rp, "mrope_section", cJSON_CreateIntArray(sec, 3));
    CHECK(parse_json(r, &c) == FP4RT_OK && c.mrope_section[0] == 20 && c.mrope_section[1] == 6 &&
          c.mrope_section[2] == 6 && c.mrope_interleaved == 1);
    r = base_27b();
    rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    cJSON_DeleteItemFromObject(rp, "mrope_section");
    cJSON_DeleteItemFromObject(rp, "mrope_interleaved");
    CHECK(parse_json(r, &c) == FP4RT_OK && c.mrope_section[0] == 11 && c.mrope_section[2] == 10 &&
          c.mrope_interleaved == 1);
    /* the chunked layout is fine while only t has slots (it is then plain RoPE) */
    r = base_27b();
    rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    int tonly[3] = {32, 0, 0};
    cJSON_ReplaceItemInObject(rp, "mrope_section", cJSON_CreateIntArray(tonly, 3));
    cJSON_ReplaceItemInObject(rp, "mrope_interleaved", cJSON_CreateFalse());
    CHECK(parse_json(r, &c) == FP4RT_OK && c.mrope_interleaved == 0 && c.mrope_section[0] == 32);
}

static void test_small(void) {
    fp4rt_config c;
    fp4rt_status st = fp4rt_config_parse(k_small, strlen(k_small), "small.json", &c);
    CHECK_MSG(st == FP4RT_OK, "%s", fp4rt_last_error());
    CHECK(strcmp(c.architecture, "Qwen3_5ForCausalLM") == 0 && c.nested == 0);
    CHECK(strcmp(c.tensor_prefix, "model.") == 0);
    CHECK(c.hidden == 1024 && c.n_layers == 6 && c.lin_v_heads == 16 && c.tie_embeddings == 1);
    CHECK(c.rope_theta == 1e7 && c.rotary_dim == 64 && c.mtp_layers == 0 && c.max_positions == 0);
    CHECK(fp4rt_cfg_n_attention_layers(&c) == 2 && c.layer_kind[2] == FP4RT_LAYER_ATTENTION);
    CHECK(c.n_eos == 2 && c.eos[0] == 1 && c.eos[1] == 2);

    cJSON *r = cJSON_Parse(k_small);
    cJSON *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen3_5ForCausalLM"));
    cJSON_AddItemToObject(r, "architectures", arch);
    cJSON_ReplaceItemInObject(r, "model_type", cJSON_CreateString("anything"));
    CHECK(parse_json(r, &c) == FP4RT_OK && c.nested == 0);

    /* load from a directory */
    char dir[] = "/tmp/fp4rt-cfg-XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[64];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(k_small, f);
        fclose(f);
    }
    CHECK(fp4rt_config_load(dir, &c) == FP4RT_OK && c.hidden == 1024);
    remove(path);
    CHECK(fp4rt_config_load(dir, &c) == FP4RT_IO && strstr(fp4rt_last_error(), "config.json"));
    rmdir(dir);
}

static void test_errors(void) {
    EXPECT(tc_set(base_27b(), "num_key_value_heads", cJSON_CreateNumber(5)), FP4RT_FORMAT,
           "text_config.num_key_value_heads");
    EXPECT(tc_set(base_27b(), "linear_num_value_heads", cJSON_CreateNumber(40)), FP4RT_FORMAT,
           "text_config.linear_num_value_heads");
    EXPECT(tc_set(base_27b(), "num_hidden_layers", cJSON_CreateNumber(60)), FP4RT_FORMAT,
           "text_config.layer_types");
    EXPECT(tc_del(base_27b(), "hidden_size"), FP4RT_FORMAT, "text_config.hidden_size");
    EXPECT(tc_set(base_27b(), "hidden_size", cJSON_CreateString("5120")), FP4RT_FORMAT,
           "text_config.hidden_size");
    EXPECT(tc_set(base_27b(), "hidden_size", cJSON_CreateNumber(5120.5)), FP4RT_FORMAT,
           "text_config.hidden_size");
    EXPECT(tc_set(base_27b(), "intermediate_size", cJSON_CreateNumber(0)), FP4RT_FORMAT,
           "text_config.intermediate_size");
    EXPECT(tc_set(base_27b(), "vocab_size", cJSON_CreateNumber(-3)), FP4RT_FORMAT,
           "text_config.vocab_size");
    EXPECT(tc_set(base_27b(), "head_dim", cJSON_CreateNumber(255)), FP4RT_FORMAT,
           "text_config.head_dim");
    EXPECT(tc_set(base_27b(), "num_hidden_layers", cJSON_CreateNumber(5000)), FP4RT_FORMAT,
           "text_config.num_hidden_layers");
    EXPECT(tc_set(base_27b(), "attn_output_gate", cJSON_CreateFalse()), FP4RT_UNSUPPORTED,
           "text_config.attn_output_gate");
    EXPECT(tc_set(base_27b(), "attn_output_gate", cJSON_CreateNumber(1)), FP4RT_FORMAT,
           "text_config.attn_output_gate");
    EXPECT(tc_set(base_27b(), "hidden_act", cJSON_CreateString("gelu")), FP4RT_UNSUPPORTED,
           "text_config.hidden_act");
    EXPECT(tc_set(base_27b(), "tie_word_embeddings", cJSON_CreateString("no")), FP4RT_FORMAT,
           "text_config.tie_word_embeddings");
    EXPECT(tc_set(base_27b(), "rms_norm_eps", cJSON_CreateNumber(0)), FP4RT_FORMAT,
           "text_config.rms_norm_eps");
    EXPECT(tc_set(base_27b(), "eos_token_id", cJSON_CreateString("x")), FP4RT_FORMAT,
           "text_config.eos_token_id");
    EXPECT(tc_set(base_27b(), "layer_types", cJSON_CreateString("x")), FP4RT_FORMAT,
           "text_config.layer_types");
    cJSON *r = base_27b();
    cJSON_ReplaceItemInArray(
        cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "layer_types"), 5,
        cJSON_CreateString("sliding_attention"));
    EXPECT(r, FP4RT_FORMAT, "text_config.layer_types[5]");
    EXPECT(tc_del(tc_del(base_27b(), "layer_types"), "full_attention_interval"), FP4RT_FORMAT,
           "layer_types");
    EXPECT(tc_del(base_27b(), "rope_parameters"), FP4RT_FORMAT, "rope_theta");
    r = base_27b();
    cJSON *rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    cJSON_ReplaceItemInObject(rp, "partial_rotary_factor", cJSON_CreateNumber(3.0 / 256));
    EXPECT(r, FP4RT_FORMAT, "partial_rotary_factor"); /* rotary dim 3: odd */
    r = base_27b();
    rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    cJSON_ReplaceItemInObject(rp, "rope_type", cJSON_CreateString("yarn"));
    EXPECT(r, FP4RT_UNSUPPORTED, "yarn");
    r = base_27b();
    rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    cJSON_ReplaceItemInObject(rp, "mrope_interleaved", cJSON_CreateFalse());
    EXPECT(r, FP4RT_UNSUPPORTED, "rope_parameters.mrope_interleaved");
    r = base_27b();
    rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    int big[3] = {11, 11, 11}; /* 33 slots > 64 / 2 */
    cJSON_ReplaceItemInObject(rp, "mrope_section", cJSON_CreateIntArray(big, 3));
    EXPECT(r, FP4RT_FORMAT, "rope_parameters.mrope_section");
    r = base_27b();
    rp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "text_config"), "rope_parameters");
    int two[2] = {11, 11};
    cJSON_ReplaceItemInObject(rp, "mrope_section", cJSON_CreateIntArray(two, 2));
    EXPECT(r, FP4RT_FORMAT, "rope_parameters.mrope_section");
    EXPECT(tc_del(base_27b(), "linear_conv_kernel_dim"), FP4RT_FORMAT,
           "text_config.linear_conv_kernel_dim");
    r = base_27b();
    cJSON_DeleteItemFromObject(r, "text_config");
    EXPECT(r, FP4RT_FORMAT, "text_config");
    r = base_27b();
    cJSON *arch = cJSON_GetObjectItem(r, "architectures");
    cJSON_ReplaceItemInArray(arch, 0, cJSON_CreateString("Qwen3_5MoeForConditionalGeneration"));
    EXPECT(r, FP4RT_UNSUPPORTED, "Qwen3_5MoeForConditionalGeneration");
    r = cJSON_Parse(k_small);
    cJSON_ReplaceItemInObject(r, "model_type", cJSON_CreateString("llama"));
    EXPECT(r, FP4RT_UNSUPPORTED, "llama");
    r = cJSON_Parse(k_small);
    cJSON_DeleteItemFromObject(r, "num_attention_heads");
    EXPECT(r, FP4RT_FORMAT, "num_attention_heads");

    fp4rt_config c;
    CHECK(fp4rt_config_parse("{\"a\":", 5, "cfg.json", &c) == FP4RT_FORMAT);
    CHECK(fp4rt_config_parse("[]", 2, "cfg.json", &c) == FP4RT_FORMAT);
    CHECK(fp4rt_config_parse("{}", 2, "cfg.json", &c) == FP4RT_FORMAT);
}

int main(void) {
    test_27b();
    test_small();
    test_errors();
    return test_summary("test_config");
}
