/* OpenAI image content parts (oai_request.h): {"type": "image_url", "image_url":
 * {"url": "data:image/png;base64,..."}} decoded here; the server never fetches a URL. */
#include "runtime/server/oai_request.h"

#include "runtime/text/chat_images.h"

#include <stdlib.h>
#include <string.h>

/* RFC 4648 base64 (padding optional, no whitespace); NULL on a bad character or length. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_n) {
    while (n && s[n - 1] == '=') n--;
    if (n % 4 == 1) return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out) return NULL;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62;
        else if (c == '/' || c == '_') v = 63;
        else {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    *out_n = k;
    return out;
}

int srv_image_part(srv_request *r, const cJSON *part, size_t i, size_t j, srv_error *e) {
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
    if (!cJSON_IsString(url))
        return srv_fail(e, 400, "messages", "messages[%zu].content[%zu].image_url.url must be a string", i, j);
    const char *u = url->valuestring;
    if (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8))
        return srv_fail(e, 400, "messages",
                        "messages[%zu].content[%zu].image_url: remote URLs are not fetched (the server has no network "
                        "access); send the image inline as a data: URL (data:image/png;base64,...)",
                        i, j);
    if (strncmp(u, "data:", 5))
        return srv_fail(e, 400, "messages", "messages[%zu].content[%zu].image_url: expected a data: URL", i, j);
    const char *comma = strchr(u, ',');
    const char *meta = u + 5;
    size_t mlen = comma ? (size_t)(comma - meta) : 0;
    if (!comma || mlen < 7 || strncmp(meta + mlen - 7, ";base64", 7))
        return srv_fail(e, 400, "messages", "messages[%zu].content[%zu].image_url: the data: URL is not base64 "
                        "(data:image/...;base64,...)", i, j);
    if (mlen > 7 && strncmp(meta, "image/", 6))
        return srv_fail(e, 400, "messages", "messages[%zu].content[%zu].image_url: media type '%.*s' is not an image",
                        i, j, (int)(mlen - 7 > 40 ? 40 : mlen - 7), meta);
    if (r->n_images == SRV_MAX_IMAGES)
        return srv_fail(e, 400, "messages", "messages[%zu].content[%zu]: more than %d images in one request", i, j,
                        SRV_MAX_IMAGES);
    size_t n = 0;
    unsigned char *bytes = b64_decode(comma + 1, strlen(comma + 1), &n);
    if (!bytes || !n) {
        free(bytes);
        return srv_fail(e, 400, "messages", "messages[%zu].content[%zu].image_url: the base64 data is malformed or empty",
                        i, j);
    }
    char **o = realloc(r->owned, (r->n_owned + 1) * sizeof *o);
    if (!o) {
        free(bytes);
        return srv_fail(e, 500, NULL, "out of memory");
    }
    r->owned = o;
    r->owned[r->n_owned++] = (char *)bytes;
    r->images[r->n_images++] = (fp4rt_image_input){.data = bytes, .size = n};
    return 0;
}
