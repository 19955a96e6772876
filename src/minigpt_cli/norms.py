"""The normalisation layers a config can ask for: GPT-2's LayerNorm (Ba et al. 2016) or RMSNorm
(Zhang & Sennrich 2019: no mean subtracted, x / sqrt(mean(x^2) + eps)), each with or without
gains (``norm_gain``) and biases (``bias``). The same factory builds the per-head query/key norms
(``qk_norm``: Dehghani et al. 2023; placed as in Qwen3, after the projection, before RoPE)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight (+ bias): Llama's / Qwen3's RMSNorm, in one
    ``F.rms_norm`` call (equal to transformers' to float32 rounding)."""

    def __init__(self, dim: int, eps: float, gain: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.normalized_shape = (dim,)
        self.weight = nn.Parameter(torch.ones(dim)) if gain else None
        self.bias = nn.Parameter(torch.zeros(dim)) if bias and gain else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.rms_norm(x, self.normalized_shape, self.weight, self.eps)
        return y if self.bias is None else y + self.bias


def make_norm(config, dim: int | None = None) -> nn.Module:
    """The config's norm over ``dim`` features (default: the model width). Without gains there
    are no norm biases either (a bias alone would only shift the next Linear's bias)."""
    dim = dim or config.n_embd
    if config.norm == "rmsnorm":
        return RMSNorm(dim, config.norm_eps, config.norm_gain, config.bias)
    if not config.norm_gain:
        return nn.LayerNorm(dim, eps=config.norm_eps, elementwise_affine=False)
    return nn.LayerNorm(dim, eps=config.norm_eps, bias=config.bias)


def apply_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` through the functional form (the KV-cache decoder calls it on one vector)."""
    if isinstance(norm, RMSNorm):
        return norm(x)
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
