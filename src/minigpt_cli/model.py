"""GPT-2, exactly: the model of Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners" (which is GPT-1's decoder with LayerNorm moved to the input of each sub-block, a final
LayerNorm, and residual projections initialised with 1/sqrt(2 * n_layer)).

Parameter names follow OpenAI's / Hugging Face's (`transformer.h.0.attn.c_attn.weight`), so
weights move both ways with a transpose of the four Conv1D matrices (see hf/read.py and
hf/export.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from minigpt_cli.errors import MinigptError
from minigpt_cli.kernels import causal_attention, tanh_gelu
from minigpt_cli.lm_loss import linear_cross_entropy


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
        return problems


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
}


def preset_config(name: str, **overrides) -> GPTConfig:
    if name not in PRESETS:

        raise MinigptError(
            f"Unknown model preset {name!r}. Known presets: {', '.join(PRESETS)}."
        )
    fields = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return GPTConfig(**fields)


class KVCache:
    """Pre-allocated keys/values for every layer: (n_layer, B, n_head, max_len, head_dim).

    Decoding writes one position per step in place, so generation allocates nothing per token.
    The buffers start uninitialised (`empty`, no 75 MB zero-fill for gpt2): only positions
    below ``length`` are ever read.
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device, dtype) -> None:
        hs = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, hs)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self._k, self._v = self.k.unbind(0), self.v.unbind(0)  # per layer: (B, nh, max_len, hs)
        self.max_len = max_len
        self.length = 0  # positions filled so far

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store k, v (B, nh, T, hs) at the next positions; return all keys/values so far."""
        start, T = self.length, k.size(2)
        if start + T > self.max_len:
            raise ValueError(f"KV cache of {self.max_len} positions cannot hold {start + T}")
        lk, lv = self._k[layer], self._v[layer]
        lk.narrow(2, start, T).copy_(k)  # in place: no allocation per step
        lv.narrow(2, start, T).copy_(v)
        return lk.narrow(2, 0, start + T), lv.narrow(2, 0, start + T)  # (B, nh, start + T, hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        # query, key, value projections for all heads, in one matrix (GPT-2's c_attn)
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.size()
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head)  # (B, T, 3, nh, hs)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, hs), views: no copies
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)  # (B, nh, past + T, hs)
        if past == 0:
            dropout_p = self.dropout if self.training else 0.0
            y = causal_attention(q, k, v, dropout_p)  # kernels.py: fast on short CPU contexts
        elif T == 1:
            # one new query attends to every cached position: no mask needed
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            # a chunk after a prefix: query i sees keys up to past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        # (B, nh, T, hs) -> (B, T, C): re-assemble heads (a view when T == 1)
        y = self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return self.resid_dropout(y) if self.training else y  # eval: skip the no-op call


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        y = self.c_proj(tanh_gelu(self.c_fc(x)))  # GPT-2's tanh GELU (kernels.py)
        return self.dropout(y) if self.training else y


class Block(nn.Module):
    """Pre-LayerNorm transformer block (GPT-2 paper, section 2.3)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    gradient_checkpointing = False  # set by the trainer: recompute block activations in backward

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        problems = config.validate()
        if problems:

            raise MinigptError("Invalid model config: " + "; ".join(problems) + ".")
        self.config = config
        V = config.padded_vocab_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(V, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                ln_f=nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, V, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2: N(0, 0.02) everywhere; residual projections scaled by 1/sqrt(2 * n_layer)
        # because each block adds two residual contributions.
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "RESIDUAL_SCALE_INIT", False):
                std /= math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @torch.no_grad()
    def zero_residual_projections(self) -> None:
        """Zero the residual projections (the layers GPT-2's init scales down: attn.c_proj,
        mlp.c_proj weights): each block then starts as the identity on the residual stream (an
        initialisation only; the architecture and the Hugging Face layout are unchanged)."""
        for module in self.modules():
            if getattr(module, "RESIDUAL_SCALE_INIT", False):
                module.weight.zero_()

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once). ``non_embedding`` drops position embeddings."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        loss_mask: torch.Tensor | None = None,
        last_only: bool = False,
        need_logits: bool = True,
    ):
        """idx (B, T) token ids -> (logits (B, T, vocab_size), loss or None).

        ``targets`` (B, T) with -1 for ignored positions; ``loss_mask`` (B, T) 0/1 selects which
        positions count. With ``cache``, positions continue from ``cache.length``. ``last_only``
        computes logits for the final position only (generation). ``need_logits=False`` with
        ``targets`` (the trainer) may return ``(None, loss)``: on a CPU the output layer and the
        loss then run fused (lm_loss.py), the logits never kept.
        """
        B, T = idx.size()
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(
                f"sequence of {start + T} tokens exceeds the context of {self.config.block_size}"
            )
        # learned positions start..start+T-1: a slice of the table (no index tensor per step)
        x = self.transformer.wte(idx) + self.transformer.wpe.weight[start : start + T]  # (B, T, C)
        if self.training:
            x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            if self.gradient_checkpointing and self.training and cache is None:
                # the trainer's --activation-checkpointing

                x = checkpoint(block, x, use_reentrant=False)  # recompute in backward
            else:
                x = block(x, cache, i)
        if cache is not None:
            cache.length += T
        if last_only:
            x = x[:, -1:, :]  # (B, 1, C): LayerNorm is per position, so normalise only this one
        x = self.transformer.ln_f(x)
        if targets is not None and loss_mask is not None:
            targets = targets.masked_fill(loss_mask == 0, -1)
        if (targets is not None and not need_logits and x.device.type == "cpu"
                and type(self.lm_head) is nn.Linear):
            weight = self.lm_head.weight[: self.config.vocab_size]  # padded ids never predicted
            return None, linear_cross_entropy(x.reshape(-1, x.size(-1)), weight,
                                              targets.reshape(-1), ignore_index=-1)
        logits = self.lm_head(x)  # (B, T, V_padded)
        if self.config.padded_vocab_size != self.config.vocab_size:
            logits = logits[..., : self.config.vocab_size]  # padded ids are never predicted
        loss = None
        if targets is not None:
            # the mean over counted targets; 0.0 (not NaN) when none counts, still reaching
            # every weight (as lm_loss.py does): a micro-batch of masked windows is harmless
            flat = targets.reshape(-1)
            nats = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), flat,
                                   ignore_index=-1, reduction="sum")
            loss = nats / (flat >= 0).sum().clamp(min=1)
        return logits, loss

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        p = self.transformer.wte.weight
        max_len = max_len or self.config.block_size
        return KVCache(self.config, batch_size, max_len, p.device, p.dtype)

