/* stb_image (Debian libstb-dev), compiled into this component with only the formats
 * fp4rt accepts (PNG, JPEG, BMP, GIF), no stdio, and its own dimension cap. Internal
 * to runtime/vision/: image_load.c is its only user. */
#ifndef FP4RT_VISION_IMAGE_STB_H
#define FP4RT_VISION_IMAGE_STB_H

#include <stddef.h>
#include <stdint.h>

/* The header's width, height and channel count (1..4) without decoding pixels;
 * 0 when stb does not recognize the data or the header is bad. */
int fp4rt_stb_info(const uint8_t *data, size_t size, int *w, int *h, int *comp);
/* Decodes to 8-bit RGBA (GIF: the first frame), [h, w, 4], or NULL (then
 * fp4rt_stb_reason() says why). Free with fp4rt_stb_free. */
uint8_t *fp4rt_stb_decode_rgba(const uint8_t *data, size_t size, int *w, int *h);
/* Decodes a 16-bit image to one 16-bit gray channel, [h, w], or NULL. Free with
 * fp4rt_stb_free. */
uint16_t *fp4rt_stb_decode_gray16(const uint8_t *data, size_t size, int *w, int *h);
void fp4rt_stb_free(void *p);
/* stb's last failure reason on this thread (a short phrase). */
const char *fp4rt_stb_reason(void);

#endif
