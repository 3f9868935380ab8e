/* Images in chat messages (fp4rt_chat_message.images), for the chat template. */
#ifndef FP4RT_TEXT_CHAT_IMAGES_H
#define FP4RT_TEXT_CHAT_IMAGES_H

#include "fp4rt.h"

/* The text the Qwen3.6 template writes for one image content part. */
#define FP4RT_CHAT_IMAGE_MARK "<|vision_start|><|image_pad|><|vision_end|>"

/* When a message of m[0 .. n) has images, *copy gets a copy of the messages whose
 * contents with images are malloc'ed strings FP4RT_CHAT_IMAGE_MARK x n_images +
 * content (what the template's render_content gives for [image, ..., text]; its
 * trim then applies to the whole), listed in *owned (n_owned of them, the caller
 * frees them and *copy); else *copy = NULL. Refused (INVALID_ARGUMENT naming the
 * message): images in a system message (the template raises), images NULL with
 * n_images > 0. */
fp4rt_status fp4rt_chat_add_images(const fp4rt_chat_message *m, size_t n, fp4rt_chat_message **copy, char ***owned,
                                   size_t *n_owned);

#endif
