/* Tokenizer encode throughput, single thread.
 *
 *   tokenizer_bench TOKENIZER_JSON CORPUS_JSONL [REPEAT]
 *
 * CORPUS_JSONL holds one JSON string per line; every line is encoded with one
 * fp4rt_tokenizer_encode call (as HF's plain `encode` per line). Prints the
 * load time, the input size, the tokens and the encode MB/s (MB = 10^6 bytes
 * of UTF-8 input) of the best of REPEAT passes (default 3), and a checksum of
 * the ids so runs can be compared. */
#include "fp4rt.h"
#include "runtime/text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON CORPUS_JSONL [REPEAT]\n", argv[0]);
        return 2;
    }
    int repeat = argc > 3 ? atoi(argv[3]) : 3;
    double t0 = now();
    fp4rt_tokenizer *t;
    if (fp4rt_tokenizer_load(argv[1], &t) != FP4RT_OK) {
        fprintf(stderr, "tokenizer_bench: %s\n", fp4rt_last_error());
        return 1;
    }
    double t_load = now() - t0;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    size_t n = 0, cap = 0, bytes = 0;
    char **text = NULL, *line = NULL;
    size_t *len = NULL, lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (cJSON_IsString(j)) {
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                text = realloc(text, cap * sizeof *text);
                len = realloc(len, cap * sizeof *len);
            }
            text[n] = strdup(j->valuestring);
            len[n] = strlen(text[n]);
            bytes += len[n++];
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    double best = 1e30;
    size_t tokens = 0;
    uint64_t sum = 0;
    for (int r = 0; r < repeat; r++) {
        tokens = 0, sum = 0;
        double s = now();
        for (size_t i = 0; i < n; i++) {
            int32_t *ids;
            size_t k;
            if (fp4rt_tokenizer_encode(t, text[i], len[i], &ids, &k) != FP4RT_OK) {
                fprintf(stderr, "tokenizer_bench: %s\n", fp4rt_last_error());
                return 1;
            }
            tokens += k;
            for (size_t q = 0; q < k; q++) sum = sum * 31 + (uint64_t)ids[q];
            free(ids);
        }
        double e = now() - s;
        if (e < best) best = e;
    }
    printf("fp4rt: load %.3f s; %zu lines, %.2f MB, %zu tokens; encode %.3f s = %.2f MB/s "
           "(%.0f tokens/s); checksum %016llx\n",
           t_load, n, (double)bytes / 1e6, tokens, best, (double)bytes / 1e6 / best,
           (double)tokens / best, (unsigned long long)sum);
    for (size_t i = 0; i < n; i++) free(text[i]);
    free(text);
    free(len);
    fp4rt_tokenizer_free(t);
    return 0;
}
