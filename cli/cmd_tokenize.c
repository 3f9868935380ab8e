/* fp4rt tokenize: text -> ids (a JSON array) with a checkpoint's tokenizer.json.
 *
 *   fp4rt tokenize (--model DIR | --tokenizer FILE) TEXT
 *   fp4rt tokenize (--model DIR | --tokenizer FILE) --jsonl [--skip-special]
 *       stdin: one JSON value per line; a string is encoded (-> one array per
 *       line), an array of ids is decoded (-> one JSON string per line).
 *   fp4rt tokenize (--model DIR | --tokenizer FILE) --decode 1,2,3 [--skip-special]
 *       prints the decoded text followed by a newline.
 * Special tokens written literally in the text are recognized (as
 * transformers does by default). */
#include "cli/commands.h"

#include "runtime/base/common.h"
#include "runtime/text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZE_USAGE                                                                             \
    "(--model DIR | --tokenizer FILE) (TEXT | --jsonl | --decode IDS) [--skip-special]"

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    fputs("]\n", stdout);
}

/* One --jsonl line: returns 0, or 1 after printing an error. */
static int jsonl_line(const fp4rt_tokenizer *t, const char *line, long lineno, int skip_special) {
    cJSON *j = cJSON_Parse(line);
    int rc = 0;
    if (cJSON_IsString(j)) {
        int32_t *ids;
        size_t n;
        fp4rt_status st = fp4rt_tokenizer_encode(t, j->valuestring, strlen(j->valuestring), &ids, &n);
        if (st) {
            rc = fp4rt_cli_fail(st);
        } else {
            print_ids(ids, n);
            free(ids);
        }
    } else if (cJSON_IsArray(j)) {
        int n = cJSON_GetArraySize(j), k = 0;
        int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            if (!ids || !cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble) {
                free(ids);
                cJSON_Delete(j);
                return fp4rt_cli_error("stdin line %ld: entry %d is not a token id", lineno, k);
            }
            ids[k++] = (int32_t)it->valuedouble;
        }
        char *text;
        size_t len;
        fp4rt_status st = fp4rt_tokenizer_decode(t, ids, (size_t)n, skip_special, &text, &len);
        free(ids);
        if (st) {
            rc = fp4rt_cli_fail(st);
        } else {
            cJSON *s = cJSON_CreateString(text);
            char *out = s ? cJSON_PrintUnformatted(s) : NULL;
            if (out) {
                puts(out);
            } else {
                rc = fp4rt_cli_error("out of memory");
            }
            free(out);
            cJSON_Delete(s);
            free(text);
        }
    } else {
        rc = fp4rt_cli_error("stdin line %ld: expected a JSON string or an array of ids", lineno);
    }
    cJSON_Delete(j);
    return rc;
}

int fp4rt_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *decode = NULL, *text = NULL;
    int jsonl = 0, skip_special = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = fp4rt_cli_opt(argc, argv, &i, "--model"))) model = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--tokenizer"))) file = v;
        else if ((v = fp4rt_cli_opt(argc, argv, &i, "--decode"))) decode = v;
        else if (!strcmp(argv[i], "--jsonl")) jsonl = 1;
        else if (!strcmp(argv[i], "--skip-special")) skip_special = 1;
        else if (argv[i][0] == '-' && argv[i][1]) return fp4rt_cli_unknown(TOKENIZE_USAGE, argv[i]);
        else if (!text) text = argv[i];
        else return fp4rt_cli_unknown(TOKENIZE_USAGE, argv[i]);
    }
    if (!model == !file) return fp4rt_cli_bad("tokenize: give one of --model and --tokenizer");
    if ((!!text + jsonl + !!decode) != 1) return fp4rt_cli_bad("tokenize: give one of TEXT, --jsonl and --decode");
    fp4rt_tokenizer *t;
    fp4rt_status st = model ? fp4rt_tokenizer_load_dir(model, &t) : fp4rt_tokenizer_load(file, &t);
    if (st) return fp4rt_cli_fail(st);
    int rc = 0;
    if (text) {
        int32_t *ids;
        size_t n;
        st = fp4rt_tokenizer_encode(t, text, strlen(text), &ids, &n);
        if (st) {
            rc = fp4rt_cli_fail(st);
        } else {
            print_ids(ids, n);
            free(ids);
        }
    } else if (decode) {
        int32_t *ids;
        int n;
        rc = fp4rt_cli_parse_tokens(decode, &ids, &n);
        if (!rc) {
            char *out;
            size_t len;
            st = fp4rt_tokenizer_decode(t, ids, (size_t)n, skip_special, &out, &len);
            if (st) {
                rc = fp4rt_cli_fail(st);
            } else {
                fwrite(out, 1, len, stdout);
                putchar('\n');
                free(out);
            }
            free(ids);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        while (!rc && !fp4rt_cli_stdout_failed() && getline(&line, &cap, stdin) > 0) {
            lineno++;
            if (line[strspn(line, " \t\r\n")] == 0) continue;
            rc = jsonl_line(t, line, lineno, skip_special);
            fflush(stdout);
        }
        free(line);
    }
    fp4rt_tokenizer_free(t);
    return rc;
}
