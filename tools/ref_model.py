"""Model half of tools/train_reference.py: the Qwen3.5 trunk (transformers' own classes), the MTP
head, the joint losses and the checkpoint writer / strict reader.

Contract: build_model() returns (config, Qwen3_5ForCausalLM, MTPHead, modeling module) with the
trunk's initializer applied to the head too; forward_logits() / forward_losses() implement
docs/MODEL.md §3 (the MTP at position i is fed the trunk's final-normed state h_i and x_{i+1} and
predicts x_{i+2}); save_checkpoint() writes the official file layout in BF16 and verify_saved()
reads it back with strict name / shape checks (a mismatch raises).
"""

import json
import os
import sys

os.environ.setdefault("USE_HUB_KERNELS", "0")  # before any transformers import (pure-torch GDN)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

def text_config_dict(a, eos_ids):
    """Qwen3_5TextConfig keys as in the official config.json's text_config (sizes from args)."""
    n = a.layers
    if n % 4:
        sys.exit(f"train_reference: --layers must be a multiple of 4 (3 GDN : 1 attention), got {n}")
    layer_types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)]
    return {
        "model_type": "qwen3_5_text", "vocab_size": a.vocab, "hidden_size": a.hidden,
        "intermediate_size": a.intermediate, "num_hidden_layers": n,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads, "head_dim": a.head_dim,
        "hidden_act": "silu", "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
        "initializer_range": 0.02, "use_cache": True, "tie_word_embeddings": True,
        "attention_bias": False, "attention_dropout": 0.0, "attn_output_gate": True,
        "full_attention_interval": 4, "layer_types": layer_types, "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": a.gdn_head_dim, "linear_value_head_dim": a.gdn_head_dim,
        "linear_num_key_heads": a.gdn_k_heads, "linear_num_value_heads": a.gdn_v_heads,
        "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False,
        "mamba_ssm_dtype": "float32",
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000000,
                            "partial_rotary_factor": 0.25, "mrope_section": [2, 1, 1],
                            "mrope_interleaved": True},
        # no pad_token_id: transformers would make it the embedding's padding_idx (a row that
        # never trains), and <|endoftext|> is the document separator here
        "eos_token_id": eos_ids[-1], "dtype": "bfloat16",
    }


class MTPHead(nn.Module):
    """Qwen3.5 multi-token-prediction head (vLLM qwen3_5_mtp.py, Qwen3_5MultiTokenPredictor).

    forward(emb_next, hidden, position_embeddings, mask) for a whole sequence:
      emb_next [B,T,H] = embed_tokens(x_{i+1});  hidden [B,T,H] = the trunk's FINAL-NORMED hidden
      state at position i (what its logits come from).  Returns mtp.norm(layer(fc(cat[
      pre_fc_norm_embedding(emb_next), pre_fc_norm_hidden(hidden)]))) [B,T,H]; the shared lm_head
      of that predicts x_{i+2}.  The layer is a Qwen3_5DecoderLayer of type full_attention (gated
      attention + MLP, its own norms), causal over the sequence.
    """

    def __init__(self, cfg, M):
        super().__init__()
        h, eps = cfg.hidden_size, cfg.rms_norm_eps
        attn_idx = cfg.layer_types.index("full_attention")  # any full-attention index: no cache used
        self.pre_fc_norm_embedding = M.Qwen3_5RMSNorm(h, eps=eps)
        self.pre_fc_norm_hidden = M.Qwen3_5RMSNorm(h, eps=eps)
        self.fc = nn.Linear(2 * h, h, bias=False)
        self.layers = nn.ModuleList([M.Qwen3_5DecoderLayer(cfg, attn_idx)])
        self.norm = M.Qwen3_5RMSNorm(h, eps=eps)

    def forward(self, emb_next, hidden, position_embeddings, mask):
        x = self.fc(torch.cat([self.pre_fc_norm_embedding(emb_next), self.pre_fc_norm_hidden(hidden)], dim=-1))
        for layer in self.layers:
            x = layer(x, position_embeddings=position_embeddings, attention_mask=mask)
        return self.norm(x)


def build_model(tcfg_dict):
    from transformers.models.qwen3_5 import modeling_qwen3_5 as M
    from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig

    import inspect

    # The GDN helpers must be the pure-torch fallbacks (as tools/reference_logits.py checks).
    for fname in ("torch_chunk_gated_delta_rule", "causal_conv1d_fn"):
        nl = inspect.getclosurevars(getattr(M, fname)).nonlocals
        impl = nl.get("implementation")
        if nl.get("is_new_implementation", True) or getattr(impl, "__module__", "") != M.__name__:
            sys.exit(f"train_reference: {fname} does not resolve to the torch fallback ({impl!r})")
    cfg = Qwen3_5TextConfig(**tcfg_dict)
    cfg._attn_implementation = "sdpa"
    model = M.Qwen3_5ForCausalLM(cfg)
    mtp = MTPHead(cfg, M)
    for mod in mtp.modules():  # the trunk's own initializer: N(0, 0.02) linears, zero (=1) norms
        model._init_weights(mod)
    return cfg, model, mtp, M


def mtp_hidden(model, mtp, cfg, h, next_tokens, pos_offset=1):
    """MTP head output m [B,T,H] for trunk states h [B,T,H] and next_tokens = x_{i+1} [B,T].

    RoPE positions are i + pos_offset (1: the positions of the shifted tokens); any offset gives
    the same result, RoPE being relative and the MTP layer attending only to itself."""
    from transformers.masking_utils import create_causal_mask

    b, t = next_tokens.shape
    emb = model.model.embed_tokens(next_tokens)
    text_pos = (torch.arange(t) + pos_offset).unsqueeze(0).expand(b, t)
    pe = model.model.rotary_emb(emb, text_pos.unsqueeze(0).expand(3, b, t))
    mask = create_causal_mask(config=cfg, inputs_embeds=emb, attention_mask=None, cache=None,
                              position_ids=text_pos)
    return mtp(emb, h, pe, mask)


def forward_logits(model, mtp, cfg, chunk):
    """chunk [B, T+1] -> (main logits [B,T,V] for x_{i+1}, MTP logits [B,T,V] for x_{i+2})."""
    inp, nxt = chunk[:, :-1], chunk[:, 1:]
    h = model.model(input_ids=inp).last_hidden_state  # after the trunk's final norm
    lm_w = model.lm_head.weight
    return F.linear(h, lm_w), F.linear(mtp_hidden(model, mtp, cfg, h, nxt), lm_w)


def forward_losses(model, mtp, cfg, chunk):
    """chunk [B, T+2] -> (main CE, MTP CE), means over the B*T positions."""
    main, extra = forward_logits(model, mtp, cfg, chunk[:, :-1])
    ce = lambda lg, tg: F.cross_entropy(lg.flatten(0, 1).float(), tg.flatten())
    return ce(main, chunk[:, 1:-1]), ce(extra, chunk[:, 2:])


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------

def state_tensors(model, mtp):
    """Official names: model.language_model.* for the trunk (tied: no lm_head), mtp.* for the head."""
    out = {}
    for k, v in model.model.state_dict().items():
        out["model.language_model." + k] = v
    for k, v in mtp.state_dict().items():
        out["mtp." + k] = v
    return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in out.items()}


def save_checkpoint(out_dir, model, mtp, tcfg, tok, tok_cfg, eos_ids, pad_id):
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    cfg = {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
           "text_config": tcfg, "tie_word_embeddings": True, "eos_token_id": eos_ids,
           "dtype": "bfloat16", "transformers_version": __import__("transformers").__version__}
    gen = {"bos_token_id": pad_id, "eos_token_id": eos_ids, "pad_token_id": pad_id, "do_sample": True,
           "temperature": 0.6, "top_k": 20, "top_p": 0.95}
    for name, obj in (("config.json", cfg), ("generation_config.json", gen), ("tokenizer_config.json", tok_cfg)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    tensors = state_tensors(model, mtp)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    return tensors


def verify_saved(out_dir, tcfg):
    """Read model.safetensors back into a fresh model + MTP head with strict name/shape checks."""
    from safetensors.torch import load_file

    raw = load_file(os.path.join(out_dir, "model.safetensors"))
    _, model, mtp, _ = build_model(tcfg)
    trunk = {k[len("model.language_model."):]: v.float() for k, v in raw.items()
             if k.startswith("model.language_model.")}
    head = {k[len("mtp."):]: v.float() for k, v in raw.items() if k.startswith("mtp.")}
    other = [k for k in raw if not k.startswith(("model.language_model.", "mtp."))]
    if other:
        sys.exit(f"train_reference: {out_dir}/model.safetensors: unexpected tensors {other[:5]}")
    model.model.load_state_dict(trunk, strict=True)
    mtp.load_state_dict(head, strict=True)
    return len(raw), sum(v.numel() for v in raw.values())
