/* fp4rt run: one generation. With --prompt TEXT the prompt goes through the
 * model's chat template (unless --raw) and the answer streams as text; with
 * --tokens the prompt is token ids and the sampled ids are printed. --image FILE
 * (repeatable) puts images in the user message before the text (with --raw, the
 * text's <|image_pad|> tokens take them in order). A stats line ends the run on
 * stderr. */
#include "cli/commands.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_usage =
    "--model DIR (--prompt TEXT | --tokens 1,2,3|@FILE) [--image FILE]... [-n N] [--raw] [--system TEXT]\n"
    "    [--think on|off] [--hide-reasoning] [--stop S]... " FP4RT_CLI_SAMPLING_USAGE " " FP4RT_CLI_MODEL_USAGE;

static int on_piece(const fp4rt_token_event *ev, void *user) {
    return fp4rt_cli_stream_piece(user, ev); /* stdout failed: stop */
}

int fp4rt_cmd_run(int argc, char **argv) {
    fp4rt_cli_model_opts o = {0};
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    const char *tokens_spec = NULL, *prompt = NULL, *system = NULL, *v;
    const char *stops[16];
    fp4rt_image_input images[FP4RT_CLI_MAX_IMAGES];
    size_t n_images = 0;
    fp4rt_prompt *pi = NULL;
    int raw = 0, hide = 0;
    fp4rt_thinking think = FP4RT_THINKING_DEFAULT;
    long n_gen = -1;
    for (int i = 1; i < argc; i++) {
        if (fp4rt_cli_model_opt(argc, argv, &i, &o) || fp4rt_cli_sampling_opt(argc, argv, &i, &gp.sampling) ||
            fp4rt_cli_spec_opt(argc, argv, &i, &gp, &o.session))
            continue;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--tokens"))) tokens_spec = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--prompt"))) prompt = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--system"))) system = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--image"))) {
            if (n_images == FP4RT_CLI_MAX_IMAGES) return fp4rt_cli_bad("--image: at most %d images", FP4RT_CLI_MAX_IMAGES);
            images[n_images++] = (fp4rt_image_input){.path = v};
        }
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "-n"))) n_gen = fp4rt_cli_parse_range("-n", v, 0, INT_MAX / 2);
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--stop"))) { /* fp4rt_cli_opt refuses "" */
            if (gp.n_stop == 16) return fp4rt_cli_bad("--stop: at most 16 stop strings");
            stops[gp.n_stop++] = v;
        } else if ((v = fp4rt_cli_opt(argc, argv, &i, "--think"))) {
            if (!strcmp(v, "on")) think = FP4RT_THINKING_ON;
            else if (!strcmp(v, "off")) think = FP4RT_THINKING_OFF;
            else return fp4rt_cli_bad("--think: '%s' is not on or off", v);
        } else if (!strcmp(argv[i], "--raw")) raw = 1;
        else if (!strcmp(argv[i], "--hide-reasoning")) hide = 1;
        else return fp4rt_cli_unknown(k_usage, argv[i]);
    }
    if (!o.model) return fp4rt_cli_bad("run: --model DIR is required");
    if (tokens_spec && prompt) return fp4rt_cli_bad("run: give --prompt or --tokens, not both");
    if (!tokens_spec && !prompt) return fp4rt_cli_bad("run: give --prompt TEXT or --tokens IDS");
    if (prompt && !prompt[0] && !n_images) return fp4rt_cli_error("--prompt: the prompt is empty");
    if (n_images && !prompt) return fp4rt_cli_bad("run: --image needs --prompt TEXT");
    gp.stop = stops;
    int32_t *ids = NULL;
    int n = 0;
    if (tokens_spec && fp4rt_cli_parse_tokens(tokens_spec, &ids, &n)) return 1;
    if (n_gen < 0) n_gen = tokens_spec ? 16 : 0; /* text: until a stop id or the context is full */
    gp.max_tokens = (int)n_gen;
    fp4rt_model *m;
    fp4rt_session *s;
    /* the context is sized once the prompt is known */
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = o.device;
    mp.n_threads = o.threads;
    mp.fp4_activations = o.fp4_activations;
    mp.profile = o.profile;
    m = fp4rt_model_load(o.model, &mp);
    if (!m) {
        free(ids);
        return fp4rt_cli_fail(1);
    }
    fprintf(stderr, "fp4rt: device %s\n", fp4rt_model_device(m));
    o.session.n_ctx = fp4rt_cli_check_ctx(m, o.session.n_ctx);
    int rc = 0;
    if (prompt) {
        fp4rt_status st;
        char *text = NULL;
        if (raw) {
            text = strdup(prompt);
            st = text ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
        } else {
            fp4rt_chat_message msgs[2];
            size_t nm = 0;
            if (system) msgs[nm++] = (fp4rt_chat_message){.role = "system", .content = system};
            msgs[nm++] = (fp4rt_chat_message){.role = "user", .content = prompt, .images = images,
                                              .n_images = n_images};
            fp4rt_chat_params cp = fp4rt_chat_default_params();
            cp.thinking = think;
            st = fp4rt_chat_format(msgs, nm, &cp, &text);
            gp.reasoning_open = think != FP4RT_THINKING_OFF;
        }
        size_t nn = 0;
        if (!st) st = fp4rt_tokenize(m, text, &ids, &nn);
        free(text);
        if (st) {
            rc = fp4rt_cli_fail(st);
            goto done;
        }
        n = (int)nn;
        if (n == 0) {
            rc = fp4rt_cli_error("--prompt: the prompt is empty");
            goto done;
        }
        if (n_images) { /* the images encoded, their tokens expanded: the prompt's real length */
            pi = fp4rt_prompt_create_mode(m, ids, nn, images, n_images, o.session.exact);
            if (!pi) {
                rc = fp4rt_cli_fail(1);
                goto done;
            }
            n = (int)fp4rt_prompt_n_tokens(pi);
            gp.prompt_images = pi;
        }
    }
    if (o.session.n_ctx == 0) o.session.n_ctx = n + (n_gen > 0 ? (int)n_gen : 4096);
    s = fp4rt_session_create(m, &o.session);
    if (!s) {
        rc = fp4rt_cli_fail(1);
        goto done;
    }
    int32_t *out_ids = tokens_spec ? calloc((size_t)n_gen + 1, sizeof *out_ids) : NULL;
    gp.output_ids = out_ids;
    gp.output_cap = out_ids ? (size_t)n_gen : 0;
    fp4rt_cli_stream ro = {hide, isatty(1), 0};
    fp4rt_generate_result res;
    fp4rt_status st = fp4rt_generate(s, pi ? NULL : ids, pi ? 0 : (size_t)n, &gp, prompt ? on_piece : NULL, &ro, &res);
    fp4rt_cli_stream_end(&ro);
    if (st) {
        rc = fp4rt_cli_fail(st);
    } else {
        if (out_ids)
            for (int g = 0; g < res.n_generated && g < n_gen && !ferror(stdout); g++)
                printf("%s%d", g ? "," : "", out_ids[g]);
        printf("\n");
        fp4rt_cli_stdout_failed(); /* flushed: the text ends before the stats line on a shared terminal or pipe */
        static const char *const reasons[] = {"end of generation", "stop string", "max tokens", "context full",
                                              "callback"};
        char spec[512];
        fprintf(stderr,
                "fp4rt: prompt %d tokens, prefill %.2f tokens/s; generated %d tokens, decode %.2f tokens/s%s; "
                "stop: %s; device %s\n",
                res.n_prompt, res.prefill_seconds > 0 ? res.n_prompt / res.prefill_seconds : 0.0, res.n_generated,
                res.decode_seconds > 0 ? res.n_generated / res.decode_seconds : 0.0,
                fp4rt_cli_spec_stats(&res, gp.spec_drafts, spec, sizeof spec), reasons[res.stop_reason],
                fp4rt_model_device(m));
    }
    free(out_ids);
    fp4rt_session_free(s);
done:
    free(ids);
    fp4rt_prompt_free(pi);
    fp4rt_model_free(m);
    return rc;
}
