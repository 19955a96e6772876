"""Our GPT with RoPE + RMSNorm + SwiGLU and no biases <-> transformers' LlamaForCausalLM, and
with per-head query/key RMSNorms as well <-> Qwen3ForCausalLM. The same function both ways:

- Llama and Qwen3 (transformers 5) rotate the two halves of each head (``rotate_half``) with
  ``inv_freq = 1 / theta^(2i/d)``, as rope.py does, so q/k weights need no permutation;
- their RMSNorm is x / sqrt(mean(x^2) + eps) * weight, in float32, with ``rms_norm_eps`` for the
  block, final and (Qwen3) q/k norms alike: our ``norm_eps``;
- Qwen3 normalises each head's queries and keys after the projection and before the rotation
  (``q_norm(q_proj(x).view(..., head_dim))``), as our ``qk_norm`` does;
- our fused ``c_attn`` (q, k, v rows) splits into q/k/v_proj and our fused SwiGLU ``c_fc``
  (gate rows, then up rows) into gate_proj and up_proj; no transposes (both use nn.Linear).

Norms without gains are written as gains of one (the same function); an untied output layer as
``lm_head.weight`` with ``tie_word_embeddings`` false.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.mlp import hidden_width
from minigpt_cli.model import GPT, GPTConfig

LLAMA_TYPES = {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def hf_architecture(config: GPTConfig) -> str:
    """The transformers class that computes this model's function, or a MinigptError naming
    each switch that no class computes."""
    c = config
    if c.positions == "learned":
        want = {"norm": "layernorm", "qk_norm": False, "mlp": "gelu", "logit_softcap": 0.0,
                "tie_embeddings": True}
        family, arch = "GPT2LMHeadModel (positions=learned) needs", "GPT2LMHeadModel"
    else:
        want = {"norm": "rmsnorm", "mlp": "swiglu", "bias": False, "logit_softcap": 0.0}
        family = "LlamaForCausalLM / Qwen3ForCausalLM (positions=rope) need"
        arch = "Qwen3ForCausalLM" if c.qk_norm else "LlamaForCausalLM"
    wrong = {k: w for k, w in want.items() if getattr(c, k) != w}
    if not wrong:
        return arch
    raise MinigptError(
        "No transformers class computes this model: "
        + ", ".join(f"{k}={getattr(c, k)}" for k in wrong) + f". {family} "
        + ", ".join(f"{k}={w}" for k, w in wrong.items()) + ". Export is exact or not at all: "
        "train with those switches (docs/model.md) for an exportable model, or keep the "
        "minigpt checkpoint."
    )


def llama_config(config: GPTConfig, tokenizer, dtype: torch.dtype, arch: str) -> dict[str, Any]:
    qwen = arch == "Qwen3ForCausalLM"
    C, nh = config.n_embd, config.n_head
    out = {
        "architectures": [arch],
        "model_type": "qwen3" if qwen else "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": C,
        "intermediate_size": hidden_width(config),
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": nh,
        "num_key_value_heads": nh,
        "head_dim": C // nh,
        "hidden_act": "silu",
        "max_position_embeddings": config.block_size,
        "initializer_range": 0.02,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_base,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_base},
        "attention_bias": False,
        "attention_dropout": config.dropout,
        "tie_word_embeddings": config.tie_embeddings,
        "use_cache": True,
        "bos_token_id": tokenizer.eot_id,
        "eos_token_id": tokenizer.eot_id,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }
    if qwen:
        out.update(use_sliding_window=False, sliding_window=None, max_window_layers=0)
    else:
        out.update(mlp_bias=False, pretraining_tp=1)
    return out


def llama_state_dict(gpt: GPT) -> dict[str, torch.Tensor]:
    """Our tensors -> LlamaForCausalLM / Qwen3ForCausalLM names (real vocabulary rows only)."""
    c, V = gpt.config, gpt.config.vocab_size
    C, H = c.n_embd, hidden_width(c)
    sd = {k: v.detach() for k, v in gpt.state_dict().items()}

    def gain(key: str, n: int) -> torch.Tensor:
        return sd[key] if key in sd else sd["transformer.wte.weight"].new_ones(n)

    out = {"model.embed_tokens.weight": sd["transformer.wte.weight"][:V],
           "model.norm.weight": gain("transformer.ln_f.weight", C)}
    if not c.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"][:V]
    for i in range(c.n_layer):
        ours, hf = f"transformer.h.{i}.", f"model.layers.{i}."
        q, k, v = sd[ours + "attn.c_attn.weight"].split(C)
        gate, up = sd[ours + "mlp.c_fc.weight"].split(H)
        out.update({
            hf + "input_layernorm.weight": gain(ours + "ln_1.weight", C),
            hf + "self_attn.q_proj.weight": q, hf + "self_attn.k_proj.weight": k,
            hf + "self_attn.v_proj.weight": v,
            hf + "self_attn.o_proj.weight": sd[ours + "attn.c_proj.weight"],
            hf + "post_attention_layernorm.weight": gain(ours + "ln_2.weight", C),
            hf + "mlp.gate_proj.weight": gate, hf + "mlp.up_proj.weight": up,
            hf + "mlp.down_proj.weight": sd[ours + "mlp.c_proj.weight"],
        })
        if c.qk_norm:
            hs = C // c.n_head
            out[hf + "self_attn.q_norm.weight"] = gain(ours + "attn.q_norm.weight", hs)
            out[hf + "self_attn.k_norm.weight"] = gain(ours + "attn.k_norm.weight", hs)
    return {k: t.to("cpu").contiguous() for k, t in out.items()}


def config_from_llama(c: dict[str, Any], where: Path | str, tokenizer_vocab: int,
                      padding) -> GPTConfig:
    """A LlamaConfig / Qwen3Config dict -> ours; every difference we cannot compute at once."""
    kind = c.get("model_type")
    problems = []
    C, nh = c.get("hidden_size"), c.get("num_attention_heads")
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "max_position_embeddings"):
        if isinstance(c.get(key), bool) or not isinstance(c.get(key), int) or c[key] < 1:
            problems.append(f"{key} must be a positive integer (got {c.get(key)!r})")
    if problems:
        raise MinigptError(f"{where}: " + "; ".join(problems) + ".")
    if c.get("num_key_value_heads") not in (None, nh):
        problems.append(f"num_key_value_heads is {c['num_key_value_heads']} (grouped-query "
                        f"attention); minigpt has one key/value head per query head ({nh})")
    if c.get("head_dim") not in (None, C // nh) or C % nh:
        problems.append(f"head_dim is {c.get('head_dim')}, not hidden_size / "
                        f"num_attention_heads")
    if c.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act is {c['hidden_act']!r}, not 'silu'")
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        problems.append(f"rope type {rope.get('rope_type', rope.get('type'))!r} (scaled RoPE); "
                        "minigpt computes the default rotation only")
    for key in ("attention_bias", "mlp_bias", "use_sliding_window"):
        if c.get(key):
            problems.append(f"{key} is set")
    if c.get("pretraining_tp", 1) not in (1, None):
        problems.append(f"pretraining_tp is {c['pretraining_tp']}")
    if c["vocab_size"] < tokenizer_vocab:
        problems.append(f"vocab_size is {c['vocab_size']} but its tokenizer has "
                        f"{tokenizer_vocab} ids")
    if problems:
        raise MinigptError(
            f"{where} describes a {kind} model minigpt cannot compute exactly: "
            + "; ".join(problems) + ". minigpt imports Llama and Qwen3 models with one key/value "
            "head per query head, the default RoPE, and no biases."
        )
    theta = rope.get("rope_theta", c.get("rope_theta", 10000.0))
    H = c["intermediate_size"]
    return GPTConfig(
        vocab_size=tokenizer_vocab, pad_vocab_to=padding(tokenizer_vocab, c["vocab_size"]),
        block_size=c["max_position_embeddings"], n_layer=c["num_hidden_layers"], n_head=nh,
        n_embd=C, dropout=0.0, bias=False, positions="rope", rope_base=float(theta),
        norm="rmsnorm", norm_eps=float(c.get("rms_norm_eps", 1e-6)), qk_norm=kind == "qwen3",
        mlp="swiglu", mlp_hidden=0 if H == round(8 * C / 3) else H,
        tie_embeddings=bool(c.get("tie_word_embeddings", False)),
    )


def state_from_llama(hf: dict[str, torch.Tensor], config: GPTConfig,
                     where: Path | str) -> dict[str, torch.Tensor]:
    """LlamaForCausalLM / Qwen3ForCausalLM tensors -> our names (what build_model checks)."""
    t = {k.removeprefix("model."): v for k, v in hf.items()}
    out = {}
    try:
        out["transformer.wte.weight"] = t["embed_tokens.weight"]
        out["transformer.ln_f.weight"] = t["norm.weight"]
        if not config.tie_embeddings:
            out["lm_head.weight"] = t["lm_head.weight"]
        for i in range(config.n_layer):
            hf_, ours = f"layers.{i}.", f"transformer.h.{i}."
            a, m = hf_ + "self_attn.", hf_ + "mlp."
            out.update({
                ours + "ln_1.weight": t[hf_ + "input_layernorm.weight"],
                ours + "attn.c_attn.weight": torch.cat([t[a + "q_proj.weight"],
                                                        t[a + "k_proj.weight"],
                                                        t[a + "v_proj.weight"]]),
                ours + "attn.c_proj.weight": t[a + "o_proj.weight"],
                ours + "ln_2.weight": t[hf_ + "post_attention_layernorm.weight"],
                ours + "mlp.c_fc.weight": torch.cat([t[m + "gate_proj.weight"],
                                                     t[m + "up_proj.weight"]]),
                ours + "mlp.c_proj.weight": t[m + "down_proj.weight"],
            })
            if config.qk_norm:
                out[ours + "attn.q_norm.weight"] = t[a + "q_norm.weight"]
                out[ours + "attn.k_norm.weight"] = t[a + "k_norm.weight"]
    except KeyError as e:
        raise IncompatibleError(f"The model in {where} lacks the tensor {e.args[0]!r} its "
                                "config.json calls for; the folder is incomplete.") from None
    if config.tie_embeddings and "lm_head.weight" in t and not torch.equal(
            t["lm_head.weight"], t["embed_tokens.weight"]):
        raise IncompatibleError(f"The model in {where} says tie_word_embeddings but its "
                                "lm_head differs from embed_tokens.")
    return out
