// The public header compiles as C++ (-Wpedantic -Werror) and links against
// libfp4rt.so alone.
#include <fp4rt.h>

#include <cstdio>
#include <cstring>

int main() {
    int fails = 0;
    fails += std::strcmp(fp4rt_status_name(FP4RT_IO), "IO") != 0;
    fp4rt_session_params sp = fp4rt_session_default_params();
    fails += sp.n_ctx != 0 || sp.kv_type != FP4RT_KV_DEFAULT;
    fp4rt_chat_message msg = {"user", "hi", nullptr, nullptr, 0, nullptr, 0};
    fp4rt_chat_params cp = fp4rt_chat_default_params();
    char *text = nullptr;
    fails += fp4rt_chat_format(&msg, 1, &cp, &text) != FP4RT_OK;
    fails += text == nullptr || std::strstr(text, "<|im_start|>user\nhi<|im_end|>") == nullptr;
    fp4rt_free(text);
    std::printf("header (C++): %d passed, %d failed\n", 4 - fails, fails);
    return fails != 0;
}
