/* Synthetic tokenizer: a tiny BPE trainer over a built-in text sample, so the
 * merges are ordinary ones (common English and code pairs) and the result is a
 * valid HF tokenizers file. Deterministic: pair counts are ties broken by the
 * smaller (left id, right id). */
#include "runtime/tools/synth_tokenizer.h"

#include "runtime/base/common.h"
#include "loader/st_writer.h"
#include "runtime/text/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_MAX_MERGES 400
#define SYNTH_N_ADDED 13

static const char k_sample[] =
    "The quick brown fox jumps over the lazy dog. It is a truth universally acknowledged that "
    "a model in possession of good weights must be in want of a tokenizer. The tokenizer turns "
    "the text into tokens, and the model turns the tokens into the next token. When the user "
    "asks a question, the assistant thinks about the answer and then writes it down. There are "
    "many things that you can do with this: read, write, learn, and understand the world. "
    "We tested the function with the following input and found that the output was correct. "
    "This is the first time that the system has been able to run on its own, without help from "
    "the people who built it. They were happy with the results and wanted to share them.\n"
    "int main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++) {\n"
    "        printf(\"%s\\n\", argv[i]);\n    }\n    return 0;\n}\n"
    "def process(self, items):\n    result = []\n    for item in items:\n"
    "        if item is not None:\n            result.append(self.transform(item))\n"
    "    return result\n\n"
    "import numpy as np\nfrom typing import List, Optional\n\n"
    "class Tokenizer:\n    def __init__(self, path: str) -> None:\n        self.path = path\n"
    "        self.vocab = {}\n\n    def encode(self, text: str) -> List[int]:\n"
    "        return [self.vocab[t] for t in text.split()]\n"
    "const value = await fetch(url).then((response) => response.json());\n"
    "if (error != NULL) { return error; } else { value = value + 1; }\n"
    "The number of tokens in the string is 12345, and the time is 10:30.\n";

/* Qwen3's flags: the first three are special, then Qwen3.5's vision tokens (special,
 * last, so the ids of the others do not move). */
static const char *const k_added[SYNTH_N_ADDED] = {
    "<|endoftext|>", "<|im_start|>",    "<|im_end|>",        "<tool_call>", "</tool_call>",
    "<tool_response>", "</tool_response>", "<think>", "</think>", "<|vision_start|>",
    "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"};
static int added_special(int i) { return i < 3 || i >= 9; }

static const char k_qwen3_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct word {
    int32_t sym[64];
    int n, count;
} word;

typedef struct token {
    unsigned char b[64];
    int n;
} token;

static int is_alpha(unsigned char c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\t'; }

/* Splits the sample roughly as the Qwen regex does (words with their leading
 * space, single digits, punctuation runs, whitespace) and counts the words. */
static int sample_words(word *w, int cap) {
    const unsigned char *s = (const unsigned char *)k_sample;
    size_t n = strlen(k_sample), i = 0;
    int nw = 0;
    while (i < n) {
        size_t j = i;
        if (is_digit(s[j])) {
            j++;
        } else if (is_alpha(s[j]) || (j + 1 < n && s[j] != '\n' && s[j] != '\r' &&
                                      !is_digit(s[j]) && is_alpha(s[j + 1]))) {
            j++;
            while (j < n && is_alpha(s[j])) j++;
        } else if (is_space(s[j]) && !(s[j] == ' ' && j + 1 < n && !is_space(s[j + 1]))) {
            while (j < n && is_space(s[j]) && !(s[j] == ' ' && j + 1 < n && !is_space(s[j + 1])))
                j++;
        } else {
            if (s[j] == ' ') j++;
            while (j < n && !is_space(s[j]) && !is_alpha(s[j]) && !is_digit(s[j])) j++;
            if (j == i) j++;
        }
        int len = (int)FP4RT_MIN(j - i, 64);
        int k;
        for (k = 0; k < nw; k++) {
            if (w[k].n != len) continue;
            int same = 1;
            for (int x = 0; x < len && same; x++) same = w[k].sym[x] == s[i + (size_t)x];
            if (same) break;
        }
        if (k == nw && nw < cap) {
            w[nw].n = len;
            w[nw].count = 0;
            for (int x = 0; x < len; x++) w[nw].sym[x] = s[i + (size_t)x];
            nw++;
        }
        if (k < nw) w[k].count++;
        i = j;
    }
    return nw;
}

/* ByteLevel string of a token's bytes, into out (6 * n + 1 bytes). */
static void token_string(const token *t, char *out) {
    size_t o = 0;
    for (int i = 0; i < t->n; i++) o += fp4rt_utf8_put(fp4rt_bytelevel_char(t->b[i]), out + o);
    out[o] = 0;
}

/* Learns up to max_merges merges: merges[k] = (left, right), tokens 256 + k.
 * Returns the number learnt, or -1 when out of memory. */
static int train(token *tok, int32_t (*merges)[2], int max_merges) {
    enum { MAX_WORDS = 2048, KEY_BITS = 10 }; /* ids < 1024 */
    word *w = malloc(MAX_WORDS * sizeof *w);
    int *count = calloc((size_t)1 << (2 * KEY_BITS), sizeof *count);
    int *touched = malloc(MAX_WORDS * 64 * sizeof *touched);
    if (!w || !count || !touched) {
        free(w), free(count), free(touched);
        return -1;
    }
    int nw = sample_words(w, MAX_WORDS), n_tok = 256, m = 0;
    for (int b = 0; b < 256; b++) {
        tok[b].b[0] = (unsigned char)b;
        tok[b].n = 1;
    }
    for (; m < max_merges; m++) {
        int nt = 0, best = -1;
        for (int i = 0; i < nw; i++)
            for (int x = 0; x + 1 < w[i].n; x++) {
                int key = w[i].sym[x] << KEY_BITS | w[i].sym[x + 1];
                if (!count[key]) touched[nt++] = key;
                count[key] += w[i].count;
            }
        for (int k = 0; k < nt; k++) {
            int key = touched[k];
            if (count[key] >= 2 && (best < 0 || count[key] > count[best] ||
                                    (count[key] == count[best] && key < best)))
                best = key;
        }
        int32_t ba = best < 0 ? -1 : best >> KEY_BITS, bb = best < 0 ? -1 : best & ((1 << KEY_BITS) - 1);
        for (int k = 0; k < nt; k++) count[touched[k]] = 0;
        if (ba < 0 || tok[ba].n + tok[bb].n > 64) break;
        int32_t id = n_tok++;
        memcpy(tok[id].b, tok[ba].b, (size_t)tok[ba].n);
        memcpy(tok[id].b + tok[ba].n, tok[bb].b, (size_t)tok[bb].n);
        tok[id].n = tok[ba].n + tok[bb].n;
        merges[m][0] = ba, merges[m][1] = bb;
        for (int i = 0; i < nw; i++) {
            int o = 0;
            for (int x = 0; x < w[i].n; x++) {
                if (x + 1 < w[i].n && w[i].sym[x] == ba && w[i].sym[x + 1] == bb) {
                    w[i].sym[o++] = id;
                    x++;
                } else {
                    w[i].sym[o++] = w[i].sym[x];
                }
            }
            w[i].n = o;
        }
    }
    free(w), free(count), free(touched);
    return m;
}

static cJSON *added_json(int32_t id, const char *content, int special, int with_id) {
    cJSON *a = cJSON_CreateObject();
    if (!a) return NULL;
    if (with_id) cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", special);
    return a;
}

static cJSON *bytelevel_json(void) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", 0);
    cJSON_AddBoolToObject(b, "trim_offsets", 0);
    cJSON_AddBoolToObject(b, "use_regex", 0);
    return b;
}

static cJSON *tokenizer_json(const token *tok, int32_t (*merges)[2], int m, int first_added) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < SYNTH_N_ADDED; i++)
        cJSON_AddItemToArray(added, added_json(first_added + i, k_added[i], added_special(i), 1));
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", k_qwen3_pattern);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(list, split);
    cJSON_AddItemToArray(list, bytelevel_json());
    cJSON_AddItemToObject(root, "post_processor", bytelevel_json());
    cJSON_AddItemToObject(root, "decoder", bytelevel_json());
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char s[6 * 64 + 1], s2[6 * 64 + 1];
    for (int id = 0; id < 256 + m; id++) {
        token_string(&tok[id], s);
        cJSON_AddNumberToObject(vocab, s, id);
    }
    /* unused ids up to the added tokens: tokens no merge produces, readable when decoded */
    for (int id = 256 + m; id < first_added; id++) {
        snprintf(s, sizeof s, "<synth_%d>", id);
        cJSON_AddNumberToObject(vocab, s, id);
    }
    cJSON *ml = cJSON_AddArrayToObject(model, "merges");
    for (int k = 0; k < m; k++) {
        token_string(&tok[merges[k][0]], s);
        token_string(&tok[merges[k][1]], s2);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(s));
        cJSON_AddItemToArray(pair, cJSON_CreateString(s2));
        cJSON_AddItemToArray(ml, pair);
    }
    return root;
}

static cJSON *config_json(int first_added) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "add_bos_token", 0);
    cJSON_AddBoolToObject(root, "add_prefix_space", 0);
    cJSON *dec = cJSON_AddObjectToObject(root, "added_tokens_decoder");
    for (int i = 0; i < SYNTH_N_ADDED; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", first_added + i);
        cJSON_AddItemToObject(dec, key, added_json(0, k_added[i], added_special(i), 0));
    }
    cJSON_AddNullToObject(root, "bos_token");
    cJSON_AddBoolToObject(root, "clean_up_tokenization_spaces", 0);
    cJSON_AddStringToObject(root, "eos_token", "<|im_end|>");
    cJSON_AddStringToObject(root, "errors", "replace");
    cJSON_AddNumberToObject(root, "model_max_length", 262144);
    cJSON_AddStringToObject(root, "pad_token", "<|endoftext|>");
    cJSON_AddBoolToObject(root, "split_special_tokens", 0);
    cJSON_AddStringToObject(root, "tokenizer_class", "Qwen2Tokenizer");
    cJSON_AddNullToObject(root, "unk_token");
    return root;
}

static fp4rt_status write_json(const char *dir, const char *name, cJSON *j) {
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    char *path = text ? fp4rt_path_join(dir, name) : NULL;
    fp4rt_status st = path ? fp4rt_write_text_file(path, text)
                           : fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synth tokenizer: out of memory");
    free(path);
    free(text);
    return st;
}

fp4rt_status fp4rt_synth_tokenizer(const char *dir, int vocab_size) {
    if (!dir || vocab_size < 256 + SYNTH_N_ADDED)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT,
                          "synth tokenizer: vocab_size %d is below %d (256 bytes + %d added tokens)",
                          vocab_size, 256 + SYNTH_N_ADDED, SYNTH_N_ADDED);
    int max_merges = FP4RT_MIN(SYNTH_MAX_MERGES, vocab_size - 256 - SYNTH_N_ADDED);
    token *tok = fp4rt_calloc(256 + SYNTH_MAX_MERGES, sizeof *tok, "synth tokenizer tokens");
    int32_t(*merges)[2] = fp4rt_calloc(SYNTH_MAX_MERGES, sizeof *merges, "synth tokenizer merges");
    fp4rt_status st = FP4RT_OUT_OF_MEMORY;
    if (tok && merges) {
        int m = train(tok, merges, max_merges);
        st = m < 0 ? fp4rt_fail(FP4RT_OUT_OF_MEMORY, "synth tokenizer: out of memory")
                   : write_json(dir, "tokenizer.json",
                                tokenizer_json(tok, merges, m, vocab_size - SYNTH_N_ADDED));
        if (st == FP4RT_OK)
            st = write_json(dir, "tokenizer_config.json", config_json(vocab_size - SYNTH_N_ADDED));
    }
    free(tok);
    free(merges);
    return st;
}
