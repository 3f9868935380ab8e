"""Tokenizer half of tools/train_reference.py: byte-level BPE in the form of Qwen3.5/3.6's.

Contract: train_tokenizer() gives a `tokenizers.Tokenizer` whose BPE ids come first and whose
ADDED_TOKENS follow in Qwen's order with consecutive ids; tokenizer_config() the matching
tokenizer_config.json (Qwen2Tokenizer, no BOS, eos <|im_end|>, pad <|endoftext|>, the chat
template); encode_docs() one id stream with <|endoftext|> after every document.
"""

import sys

import torch

# Qwen3.5 / 3.6 split regex as transformers uses it (\p{M} in the letter classes; docs/MODEL.md).
QWEN35_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|"
                      r" ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen3.5/3.6 added tokens in id order (docs/MODEL.md; the audio/tts tokens 248070-248076 are left
# out: their strings are not recorded).  (content, special)
ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

def train_tokenizer(docs, vocab_rows):
    """Byte-level BPE with Qwen's pipeline; BPE ids first, then ADDED_TOKENS; size < vocab_rows."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors, trainers

    n_bpe = vocab_rows - len(ADDED_TOKENS) - 6  # a few padding rows, as Qwen pads its embedding
    if n_bpe < 512:
        sys.exit(f"train_reference: --vocab {vocab_rows} is too small (need at least 544 rows)")
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN35_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=n_bpe, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator((d["text"] for d in docs), trainer=trainer, length=len(docs))
    n_model = tok.get_vocab_size(with_added_tokens=False)
    for content, special in ADDED_TOKENS:
        t = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False,
                       special=special)
        (tok.add_special_tokens if special else tok.add_tokens)([t])
    ids = {c: tok.token_to_id(c) for c, _ in ADDED_TOKENS}
    want = {c: n_model + i for i, (c, _) in enumerate(ADDED_TOKENS)}
    if ids != want:
        sys.exit(f"train_reference: added-token ids {ids} are not the consecutive ids {want}")
    return tok, ids


def tokenizer_config(tok, chat_template):
    """tokenizer_config.json in the form of the Qwen3.5/3.6 checkpoints (Qwen2Tokenizer, no BOS)."""
    decoder = {}
    for content, special in ADDED_TOKENS:
        decoder[str(tok.token_to_id(content))] = {
            "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": special}
    return {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
        "bos_token": None, "chat_template": chat_template, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 262144,
        "pad_token": "<|endoftext|>", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }


def read_chat_template(path):
    if not path:
        sys.exit("train_reference: give the Qwen3.6 chat_template.jinja with --chat-template FILE "
                 "(or FP4RT_CHAT_TEMPLATE); see tools/README.md")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        sys.exit(f"train_reference: --chat-template {path}: {e.strerror}")


def encode_docs(tok, docs, eot):
    """One stream: every document's ids followed by <|endoftext|>."""
    out = []
    for enc, _ in zip(tok.encode_batch([d["text"] for d in docs], add_special_tokens=False), docs):
        out.extend(enc.ids)
        out.append(eot)
    return torch.tensor(out, dtype=torch.long)
