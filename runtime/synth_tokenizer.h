/* A small deterministic byte-level BPE tokenizer for synthesized checkpoints. */
#ifndef FP4RT_SYNTH_TOKENIZER_H
#define FP4RT_SYNTH_TOKENIZER_H

#include "fp4rt.h"

/* Writes dir/tokenizer.json and dir/tokenizer_config.json into an existing
 * directory (overwriting them). The tokenizer is Qwen-shaped: NFC, the Qwen3
 * split regex, ByteLevel, BPE with the 256 byte tokens (ids 0..255) plus up to
 * 400 merges learnt deterministically from a built-in English / code sample
 * (ids 256..), and the added tokens <|endoftext|>, <|im_start|>, <|im_end|>,
 * <tool_call>, </tool_call>, <tool_response>, </tool_response>, <think>,
 * </think> at ids vocab_size - 9 .. vocab_size - 1 (the first three special,
 * as in Qwen3). Ids between the last merge and the added tokens are unused.
 * tokenizer_config.json: eos_token <|im_end|>, pad_token <|endoftext|>, no
 * chat_template. vocab_size must be at least 265 (INVALID_ARGUMENT otherwise).
 * The same vocab_size always gives byte-identical files; they load with
 * fp4rt_tokenizer_load and with HF tokenizers / transformers. */
fp4rt_status fp4rt_synth_tokenizer(const char *dir, int vocab_size);

#endif
