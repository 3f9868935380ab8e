/* A small deterministic byte-level BPE tokenizer for synthesized checkpoints. */
#ifndef FP4RT_SYNTH_TOKENIZER_H
#define FP4RT_SYNTH_TOKENIZER_H

#include "fp4rt.h"

/* Writes dir/tokenizer.json and dir/tokenizer_config.json into an existing
 * directory (overwriting them). The tokenizer is Qwen-shaped: NFC, the Qwen3
 * split regex, ByteLevel, BPE. Ids, contiguous from 0 to vocab_size - 1:
 *   0 .. 255                     the 256 byte tokens;
 *   256 .. 255 + m               m = min(400, vocab_size - 265) merges learnt
 *                                deterministically from a built-in English / code
 *                                sample (it yields about 170);
 *   .. vocab_size - 10           filler tokens "<synth_ID>" that no merge
 *                                produces (so a random model's output decodes
 *                                to readable text);
 *   vocab_size - 9 .. - 1        the added tokens <|endoftext|>, <|im_start|>,
 *                                <|im_end|> (special, as in Qwen3), <tool_call>,
 *                                </tool_call>, <tool_response>, </tool_response>,
 *                                <think>, </think>.
 * Contiguous on purpose: HF tokenizers ignores the ids written for added tokens
 * and numbers them from the end of model.vocab. For vocab_size 512: <|im_end|>
 * is 505, <|endoftext|> 503. tokenizer_config.json: eos_token <|im_end|>,
 * pad_token <|endoftext|>, no chat_template. vocab_size must be at least 265
 * (INVALID_ARGUMENT otherwise). The same vocab_size always gives
 * byte-identical files; they load with fp4rt_tokenizer_load and with HF
 * tokenizers / transformers (same ids). */
fp4rt_status fp4rt_synth_tokenizer(const char *dir, int vocab_size);

#endif
