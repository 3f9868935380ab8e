/* Images in chat messages (chat_images.h). */
#include "runtime/text/chat_images.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

fp4rt_status fp4rt_chat_add_images(const fp4rt_chat_message *m, size_t n, fp4rt_chat_message **copy, char ***owned,
                                   size_t *n_owned) {
    *copy = NULL;
    *owned = NULL;
    *n_owned = 0;
    size_t with = 0;
    for (size_t i = 0; m && i < n; i++) {
        if (!m[i].n_images) continue;
        if (!m[i].images)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat message %zu: images is NULL with n_images = %zu", i,
                              m[i].n_images);
        if (m[i].role && !strcmp(m[i].role, "system"))
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat message %zu: a system message cannot contain images", i);
        with++;
    }
    if (!with) return FP4RT_OK;
    *copy = fp4rt_malloc(n * sizeof **copy, "chat messages");
    *owned = fp4rt_calloc(with, sizeof **owned, "chat messages");
    if (!*copy || !*owned) return FP4RT_OUT_OF_MEMORY;
    memcpy(*copy, m, n * sizeof **copy);
    const size_t mark = strlen(FP4RT_CHAT_IMAGE_MARK);
    for (size_t i = 0; i < n; i++) {
        size_t k = m[i].n_images;
        if (!k) continue;
        size_t len = m[i].content ? strlen(m[i].content) : 0;
        if (k > (SIZE_MAX - len - 1) / mark)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "chat message %zu: %zu images is too many", i, k);
        char *c = fp4rt_malloc(k * mark + len + 1, "chat message with images");
        if (!c) return FP4RT_OUT_OF_MEMORY;
        for (size_t j = 0; j < k; j++) memcpy(c + j * mark, FP4RT_CHAT_IMAGE_MARK, mark);
        if (len) memcpy(c + k * mark, m[i].content, len);
        c[k * mark + len] = 0;
        (*owned)[(*n_owned)++] = c;
        (*copy)[i].content = c;
    }
    return FP4RT_OK;
}
