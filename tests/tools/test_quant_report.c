/* The quantizer's report measures what was written (issue 12, item 9): the
 * errors of the FP8 tensors quantized first were once computed with the E4M3
 * table still empty (relative MSE 1, SQNR 0 dB). This test deliberately never
 * calls fp4rt_numfmt_init: no table may be read before it is built. */
#include "loader/config.h"
#include "runtime/tools/quantize.h"
#include "runtime/tools/synth.h"
#include "tests/test_util.h"

#include <cjson/cJSON.h>

int main(void) {
    test_tmpdir("quant-report");
    fp4rt_config c;
    char in[512], out[512], rep[512];
    snprintf(in, sizeof in, "%s", test_tmp_path("bf16"));
    snprintf(out, sizeof out, "%s", test_tmp_path("mixed"));
    snprintf(rep, sizeof rep, "%s", test_tmp_path("r.json"));
    CHECK(fp4rt_config_preset("tiny", 0, &c) == FP4RT_OK);
    CHECK(fp4rt_synth(&c, in, 3, 0, 0) == FP4RT_OK);
    fp4rt_quantize_opts o = {.report_path = rep, .n_threads = 1};
    fp4rt_status st = fp4rt_quantize(in, out, "nvidia-mixed", 0, &o, NULL);
    CHECK_MSG(st == FP4RT_OK, "quantize: %s", fp4rt_last_error());
    char *text = NULL;
    FILE *f = fopen(rep, "rb");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = calloc(1, (size_t)n + 1);
        CHECK(text && fread(text, 1, (size_t)n, f) == (size_t)n);
        fclose(f);
    }
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK(root != NULL);
    int n_fp8 = 0, n_nvfp4 = 0, first_fp8 = -1;
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "tensors")) {
        const char *fmt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "format"));
        double rel = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "rel_mse"));
        double db = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "sqnr_db"));
        const char *mod = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "module"));
        int fp8 = fmt && strstr(fmt, "FP8") != NULL;
        if (fp8 && first_fp8 < 0) first_fp8 = i;
        n_fp8 += fp8;
        n_nvfp4 += !fp8;
        /* E4M3 per-tensor on Gaussian weights: rel MSE ~1e-3 (SQNR ~30 dB);
           NVFP4: ~1e-2. A table read before it is filled gives 1 / 0 dB. */
        CHECK_MSG(rel < (fp8 ? 0.01 : 0.05) && db > (fp8 ? 20 : 13),
                  "tensor %d %s (%s): rel_mse %g, sqnr %g dB", i, mod ? mod : "?", fmt ? fmt : "?",
                  rel, db);
        i++;
    }
    CHECK_MSG(n_fp8 > 0 && n_nvfp4 > 0, "FP8 tensors %d, NVFP4 tensors %d", n_fp8, n_nvfp4);
    CHECK(first_fp8 >= 0);
    cJSON_Delete(root);
    free(text);
    test_tmpdir_remove();
    return test_summary("test_quant_report");
}
