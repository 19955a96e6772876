"""GPT-2, exactly: the model of Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners" (which is GPT-1's decoder with LayerNorm moved to the input of each sub-block, a final
LayerNorm, and residual projections initialised with 1/sqrt(2 * n_layer)).

Parameter names follow OpenAI's / Hugging Face's (`transformer.h.0.attn.c_attn.weight`), so
weights move both ways with a transpose of the four Conv1D matrices (see hf/read.py and
hf/export.py).

The same model takes architecture switches as config keys (docs/model.md): rotary positions
(rope.py), RMSNorm with or without gains and per-head query/key norms (norms.py), squared-ReLU or
SwiGLU MLPs (mlp.py), no biases, untied embeddings and a tanh logit soft-cap. Their defaults are
GPT-2, and a switch that is off adds no operation to GPT-2's forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from minigpt_cli.errors import MinigptError
from minigpt_cli.kernels import causal_attention
from minigpt_cli.kv_cache import KVCache
from minigpt_cli.lm_loss import linear_cross_entropy
from minigpt_cli.mlp import MLP
from minigpt_cli.model_config import PRESETS, GPTConfig, preset_config
from minigpt_cli.norms import RMSNorm, make_norm, rms_norm
from minigpt_cli.rope import Rotary, apply_rope

__all__ = ["GPT", "GPTConfig", "KVCache", "PRESETS", "preset_config"]


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
        hs = config.n_embd // config.n_head
        self.qk_norm = config.qk_norm
        if config.qk_norm:  # per head, over its hs dimensions (Qwen3's q_norm / k_norm)
            self.q_norm = RMSNorm(hs, config.norm_eps, config.norm_gain, config.bias)
            self.k_norm = RMSNorm(hs, config.norm_eps, config.norm_gain, config.bias)
        self.rotary = Rotary(hs, config.rope_base, config.block_size) \
            if config.positions == "rope" else None

    def project(self, x, start: int = 0, positions: torch.Tensor | None = None):
        """x (B, T, C) -> q, k, v (B, nh, T, hs), with the query/key norms and the rotation of
        positions start..start+T-1 (or the explicit ``positions`` (B, T)) when configured;
        queries and keys go through both together, as one (B, T, 2, nh, hs) view."""
        B, T, C = x.size()
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head)  # (B, T, 3, nh, hs)
        if not self.qk_norm and self.rotary is None:
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, hs), views
            return q, k, v
        qk = qkv[:, :, :2]  # (B, T, 2, nh, hs): queries and keys
        if self.qk_norm:
            qk = self.qk_norms(qk)
        if self.rotary is not None:
            if positions is None:
                cos, sin = self.rotary.table(start, T, x.device, qk.dtype)  # (T, hs)
                cos, sin = cos[:, None, None], sin[:, None, None]  # (T, 1, 1, hs)
            else:
                cos, sin = self.rotary.at(positions, qk.dtype)  # (B, T, 1, 1, hs)
            qk = apply_rope(qk, cos, sin)
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # 2 x (B, nh, T, hs)
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def qk_norms(self, qk: torch.Tensor) -> torch.Tensor:
        """q_norm on qk[:, :, 0], k_norm on qk[:, :, 1], in one pass (qk: (B, T, 2, nh, hs))."""
        qn, kn = self.q_norm, self.k_norm
        gain = None if qn.weight is None else torch.stack((qn.weight, kn.weight))[:, None]
        y = rms_norm(qk, gain, qn.eps)  # gains (2, 1, hs)
        return y if qn.bias is None else y + torch.stack((qn.bias, kn.bias))[:, None]

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.size()
        q, k, v = self.project(x, cache.position if cache is not None else 0)
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


class Block(nn.Module):
    """Pre-norm transformer block (GPT-2 paper, section 2.3)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    gradient_checkpointing = False  # set by the trainer: recompute block activations in backward
    compiled_blocks: list | None = None  # set by --compile (train/loop.py): used in training only

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        problems = config.validate()
        if problems:

            raise MinigptError("Invalid model config: " + "; ".join(problems) + ".")
        self.config = config
        V = config.padded_vocab_size
        parts = dict(wte=nn.Embedding(V, config.n_embd))
        if config.positions == "learned":  # RoPE rotates q and k instead (no table)
            parts["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        parts.update(drop=nn.Dropout(config.dropout),
                     h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                     ln_f=make_norm(config))
        self.transformer = nn.ModuleDict(parts)
        self.lm_head = nn.Linear(config.n_embd, V, bias=False)
        if config.tie_embeddings:
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
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token (+ learned position) embeddings of idx (B, T) at positions start.. -> (B, T, C)."""
        x = self.transformer.wte(idx)
        if "wpe" in self.transformer:
            # learned positions start..start+T-1: a slice of the table (no index tensor per step)
            x = x + self.transformer.wpe.weight[start : start + idx.size(1)]
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final hidden states (..., C) after ln_f -> logits (..., vocab_size)."""
        logits = self.lm_head(x)  # (..., V_padded)
        if self.config.padded_vocab_size != self.config.vocab_size:
            logits = logits[..., : self.config.vocab_size]  # padded ids are never predicted
        if self.config.logit_softcap:
            c = self.config.logit_softcap
            logits = torch.tanh(logits / c) * c  # Gemma 2's soft cap: |logits| < c
        return logits

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
        start = cache.position if cache is not None else 0
        if start + T > self.config.block_size and not (cache is not None and cache.sliding):
            raise ValueError(
                f"sequence of {start + T} tokens exceeds the context of {self.config.block_size}"
            )
        if cache is not None and not cache.room(T):
            raise ValueError(f"KV cache of {cache.max_len} positions cannot hold "
                             f"{cache.length + T}")
        x = self.embed(idx, start)  # (B, T, C)
        if self.training:
            x = self.transformer.drop(x)
        training = self.training and cache is None and torch.is_grad_enabled()
        if training and self.compiled_blocks:  # --compile: the same blocks, compiled
            for block in self.compiled_blocks:
                x = (checkpoint(block, x, use_reentrant=False) if self.gradient_checkpointing
                     else block(x))
        for i, block in enumerate(self.transformer.h if not (training and self.compiled_blocks)
                                  else ()):
            if self.gradient_checkpointing and self.training and cache is None:
                # the trainer's --activation-checkpointing
                x = checkpoint(block, x, use_reentrant=False)  # recompute in backward
            else:
                x = block(x, cache, i)
        if cache is not None:
            cache.advance(T)
        if last_only:
            x = x[:, -1:, :]  # (B, 1, C): LayerNorm is per position, so normalise only this one
        x = self.transformer.ln_f(x)
        if targets is not None and loss_mask is not None:
            targets = targets.masked_fill(loss_mask == 0, -1)
        if (targets is not None and not need_logits and x.device.type == "cpu"
                and type(self.lm_head) is nn.Linear and not self.config.logit_softcap):
            weight = self.lm_head.weight[: self.config.vocab_size]  # padded ids never predicted
            return None, linear_cross_entropy(x.reshape(-1, x.size(-1)), weight,
                                              targets.reshape(-1), ignore_index=-1)
        logits = self.head(x)  # (B, T, vocab_size)
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
        """A cache for up to ``max_len`` positions (default: the context); with RoPE it slides
        once full, so decoding continues past the context without recomputation."""
        p = self.transformer.wte.weight
        max_len = max_len or self.config.block_size
        return KVCache(self.config, batch_size, max_len, p.device, p.dtype,
                       sliding=self.config.positions == "rope")

