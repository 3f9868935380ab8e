/* libFuzzer target: arbitrary bytes as config.json and as a quantization config.
 * Both parsers must return a status without crashing or leaking; a parsed config
 * must satisfy the invariants its users rely on. */
#include "loader/config.h"
#include "loader/quant_config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fp4rt_config c; /* large: keep it off the stack */
    if (fp4rt_config_parse((const char *)data, size, "fuzz.json", &c) == FP4RT_OK) {
        if (c.n_layers < 1 || c.n_layers > FP4RT_MAX_LAYERS || c.n_kv_heads < 1 ||
            c.n_heads % c.n_kv_heads != 0 || c.lin_v_heads % c.lin_k_heads != 0 ||
            c.rotary_dim < 2 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim ||
            c.n_eos > FP4RT_MAX_EOS)
            abort();
        (void)fp4rt_cfg_n_attention_layers(&c);
    }
    fp4rt_quant_config q;
    if (fp4rt_quant_config_parse((const char *)data, size, "fuzz.json", &q) == FP4RT_OK) {
        static const char *const modules[] = {"lm_head", "model.visual.blocks.0.attn.qkv",
                                              "model.language_model.layers.0.mlp.down_proj", ""};
        for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++)
            (void)fp4rt_quant_algo_for(&q, modules[i]);
        for (size_t i = 0; i < q.n_layers; i++)
            if (fp4rt_quant_algo_for(&q, q.layers[i].module) != q.layers[i].algo) abort();
    }
    fp4rt_quant_config_free(&q);
    return 0;
}
