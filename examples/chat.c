/* Embedding fp4rt: load a model, render one chat turn, stream the answer.
 * Build against the installed library:
 *   cc chat.c $(pkg-config --cflags --libs fp4rt) -o chat
 * Run: ./chat MODEL_DIR "your question" */
#include <fp4rt.h>

#include <stdio.h>
#include <stdlib.h>

static int print_piece(const fp4rt_token_event *ev, void *user) {
    (void)user;
    if (!ev->reasoning) fwrite(ev->text, 1, ev->len, stdout); /* the answer only */
    fflush(stdout);
    return 0; /* keep going */
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR QUESTION\n", argv[0]);
        return 2;
    }
    fp4rt_model *model = fp4rt_model_load(argv[1], NULL);
    if (!model) {
        fprintf(stderr, "error: %s\n", fp4rt_last_error());
        return 1;
    }
    fp4rt_session *session = fp4rt_session_create(model, NULL);
    fp4rt_chat_message msg = {.role = "user", .content = argv[2]};
    fp4rt_chat_params chat = fp4rt_chat_default_params();
    chat.thinking = FP4RT_THINKING_OFF;
    char *prompt = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    fp4rt_status st = session ? fp4rt_chat_format(&msg, 1, &chat, &prompt) : FP4RT_OUT_OF_MEMORY;
    if (!st) st = fp4rt_tokenize(model, prompt, &ids, &n);
    fp4rt_generate_params gen = fp4rt_generate_default_params();
    gen.max_tokens = 64;
    gen.sampling.seed = 42;
    fp4rt_generate_result res;
    if (!st) st = fp4rt_generate(session, ids, n, &gen, print_piece, NULL, &res);
    if (st)
        fprintf(stderr, "error: %s: %s\n", fp4rt_status_name(st), fp4rt_last_error());
    else
        printf("\n[%d prompt tokens, %d generated]\n", res.n_prompt, res.n_generated);
    fp4rt_free(prompt);
    fp4rt_free(ids);
    fp4rt_session_free(session);
    fp4rt_model_free(model);
    return st ? 1 : 0;
}
