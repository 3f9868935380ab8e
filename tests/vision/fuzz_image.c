/* libFuzzer target: arbitrary bytes as an encoded image, decoded (pixel cap 1 Mpx so
 * a run stays small) and preprocessed with small limits. A decoded image or patch
 * set must satisfy the shapes the contracts promise (smart_resize may exceed
 * max_pixels for extreme aspect ratios, as the reference does: the bound checked is
 * the module's own cap). */
#include "runtime/vision/image.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fp4rt_image_load_params lp = {.max_pixels = 1 << 20};
    fp4rt_image img;
    if (fp4rt_image_load_memory(data, size, "fuzz", &lp, &img) != FP4RT_OK) {
        if (img.rgb) abort();
        return 0;
    }
    if (img.width < 2 || img.height < 2 || (int64_t)img.width * img.height > lp.max_pixels) abort();
    fp4rt_image_config cfg;
    fp4rt_image_config_default(&cfg);
    cfg.min_pixels = 32 * 32;
    cfg.max_pixels = 128 * 128;
    fp4rt_image_patches p;
    if (fp4rt_image_preprocess(&img, &cfg, "fuzz", &p) == FP4RT_OK) {
        if (p.grid_t != 1 || p.grid_h % 2 || p.grid_w % 2 ||
            p.n_patches != (int64_t)p.grid_h * p.grid_w || p.patch_dim != 3 * 2 * 16 * 16 ||
            (int64_t)p.grid_h * p.grid_w * 256 > ((int64_t)1 << 28))
            abort();
        for (int64_t i = 0; i < p.n_patches * p.patch_dim; i++)
            if (!(p.data[i] >= -1.0f && p.data[i] <= 1.0f)) abort(); /* (v/255 - 0.5) / 0.5 */
    }
    fp4rt_image_patches_free(&p);
    fp4rt_image_free(&img);
    return 0;
}
