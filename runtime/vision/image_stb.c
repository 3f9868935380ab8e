/* The stb_image implementation (see image_stb.h). Its source is third-party and is
 * compiled without our warning flags (runtime/vision/CMakeLists.txt). */
#include "runtime/vision/image_stb.h"

#include <limits.h>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
/* Each side at most 2^16 (a header beyond it fails in stb); the pixel cap of
 * fp4rt_image_load_* is checked before decoding anyway. */
#define STBI_MAX_DIMENSIONS (1 << 16)
#include <stb/stb_image.h>

int fp4rt_stb_info(const uint8_t *data, size_t size, int *w, int *h, int *comp) {
    if (size > INT_MAX) return 0;
    return stbi_info_from_memory(data, (int)size, w, h, comp);
}

uint8_t *fp4rt_stb_decode_rgba(const uint8_t *data, size_t size, int *w, int *h) {
    if (size > INT_MAX) return NULL;
    int comp = 0;
    return stbi_load_from_memory(data, (int)size, w, h, &comp, 4);
}

uint16_t *fp4rt_stb_decode_gray16(const uint8_t *data, size_t size, int *w, int *h) {
    if (size > INT_MAX) return NULL;
    int comp = 0;
    return stbi_load_16_from_memory(data, (int)size, w, h, &comp, 1);
}

void fp4rt_stb_free(void *p) {
    stbi_image_free(p);
}

const char *fp4rt_stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r ? r : "unknown error";
}
