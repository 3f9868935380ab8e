/* The chat page served at / (chat_page.html, embedded at build time by
 * cmake/embed.cmake: one self-contained HTML/CSS/JS file, nothing fetched). */
#include "runtime/server/srv.h"

#include "generated/chat_page.h"

const unsigned char *const fp4rt_chat_page = FP4RT_CHAT_PAGE;
const size_t fp4rt_chat_page_len = FP4RT_CHAT_PAGE_LEN;
