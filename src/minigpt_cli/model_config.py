"""GPTConfig: the model's shape and architecture switches (defaults: GPT-2 exactly), with the
named presets. Only the standard library here: settings validate preset names without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from minigpt_cli.errors import MinigptError

POSITIONS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "relu2", "swiglu")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50257  # real vocabulary; ids >= vocab_size are never predicted
    block_size: int = 1024  # context length (number of learned position embeddings)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # GPT-2 has biases in Linear layers and LayerNorms
    pad_vocab_to: int = 1  # round the embedding table up to a multiple of this (64 -> 50304)
    # architecture switches (docs/model.md); the defaults are GPT-2
    positions: str = "learned"  # learned (a table of block_size vectors) | rope (rotary)
    rope_base: float = 10000.0  # RoPE's theta (transformers' rope_theta)
    norm: str = "layernorm"  # layernorm | rmsnorm
    norm_gain: bool = True  # norms with learned gains (and biases, with `bias`)
    norm_eps: float = 1e-5
    qk_norm: bool = False  # RMSNorm of each head's queries and keys before attention (Qwen3)
    mlp: str = "gelu"  # gelu (tanh) | relu2 | swiglu
    mlp_hidden: int = 0  # hidden width; 0: 4C (gelu, relu2), round(8C/3) for swiglu
    tie_embeddings: bool = True  # the output layer is the token embedding (Press & Wolf 2017)
    logit_softcap: float = 0.0  # 0: off; c: logits = c tanh(logits / c) (Gemma 2)

    @property
    def padded_vocab_size(self) -> int:
        m = max(1, self.pad_vocab_to)
        return ((self.vocab_size + m - 1) // m) * m

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def validate(self) -> list[str]:
        problems = []
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "pad_vocab_to"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.n_head >= 1 and self.n_embd % self.n_head:
            problems.append(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout})")
        for name, allowed in (("positions", POSITIONS), ("norm", NORMS), ("mlp", MLPS)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)} "
                                f"(got {getattr(self, name)!r})")
        if self.positions == "rope":
            if self.n_head >= 1 and (self.n_embd // self.n_head) % 2:
                problems.append(f"positions=rope needs an even head size (n_embd / n_head = "
                                f"{self.n_embd / self.n_head:g})")
            if not self.rope_base > 0:
                problems.append(f"rope_base must be positive (got {self.rope_base})")
        elif self.rope_base != GPTConfig.rope_base:
            problems.append(f"rope_base is set ({self.rope_base:g}) but positions is "
                            f"{self.positions!r}: set positions=rope or drop rope_base")
        if not self.norm_eps > 0:
            problems.append(f"norm_eps must be positive (got {self.norm_eps})")
        if self.mlp_hidden < 0:
            problems.append(f"mlp_hidden must be 0 (the default width) or more "
                            f"(got {self.mlp_hidden})")
        if self.logit_softcap < 0:
            problems.append(f"logit_softcap must be 0 (off) or positive "
                            f"(got {self.logit_softcap})")
        return problems

    def is_gpt2(self) -> bool:
        """Every switch at GPT-2's setting (bias and tying aside)."""
        return (self.positions, self.norm, self.norm_gain, self.qk_norm, self.mlp,
                self.logit_softcap) == ("learned", "layernorm", True, False, "gelu", 0.0)


LLAMA = dict(positions="rope", norm="rmsnorm", mlp="swiglu", bias=False)
MODERN = dict(positions="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", bias=False,
              tie_embeddings=False, logit_softcap=15.0)

# GPT-2 sizes from the paper (Table 2) and small CPU presets for tests and demos.
PRESETS: dict[str, dict] = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, block_size=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600, block_size=1024),
    # nanoGPT's "baby GPT on CPU" shape
    "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "micro": dict(n_layer=4, n_head=4, n_embd=64, block_size=128),
    "nano": dict(n_layer=2, n_head=2, n_embd=32, block_size=64),
    # architecture switches (docs/model.md): GPT-2's size, Llama's and Qwen3's blocks (both
    # export to their transformers class) ...
    "llama": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, **LLAMA),
    "qwen3": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, **LLAMA, qk_norm=True),
    # ... and every modern switch together (modded-nanogpt's set; docs/model.md, "Which
    # switches", compares them),
    # at GPT-2's size and at the baby size with the Nietzsche recipe's 128-token context
    "modern": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, **MODERN),
    "baby-modern": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, **MODERN),
}


def describe_switches(config: GPTConfig) -> str:
    """The architecture in words: "GPT-2", or the switches that differ from it."""
    c, words = config, []
    if c.positions == "rope":
        words.append("RoPE" + (f" (base {c.rope_base:g})" if c.rope_base != 10000.0 else ""))
    if c.norm != "layernorm" or not c.norm_gain:
        words.append(("RMSNorm" if c.norm == "rmsnorm" else "LayerNorm")
                     + ("" if c.norm_gain else " without gains"))
    if c.qk_norm:
        words.append("QK-norm")
    if c.mlp != "gelu" or c.mlp_hidden:
        words.append({"gelu": "GELU", "relu2": "ReLU²", "swiglu": "SwiGLU"}[c.mlp]
                     + (f" ({c.mlp_hidden} hidden)" if c.mlp_hidden else ""))
    if not c.bias:
        words.append("no bias")
    if not c.tie_embeddings:
        words.append("untied embeddings")
    if c.logit_softcap:
        words.append(f"logit soft-cap {c.logit_softcap:g}")
    return "GPT-2" + (": " + ", ".join(words) if words else "")


def preset_config(name: str, **overrides) -> GPTConfig:
    if name not in PRESETS:

        raise MinigptError(
            f"Unknown model preset {name!r}. Known presets: {', '.join(PRESETS)}."
        )
    fields = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return GPTConfig(**fields)


