"""The normalisation layers a config can ask for: GPT-2's LayerNorm (Ba et al. 2016) or RMSNorm
(Zhang & Sennrich 2019: no mean subtracted, x / sqrt(mean(x^2) + eps)), each with or without
gains (``norm_gain``) and biases (``bias``). The same factory builds the per-head query/key norms
(``qk_norm``: Dehghani et al. 2023; placed as in Qwen3, after the projection, before RoPE)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F

from minigpt_cli import kernels


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight (+ bias): Llama's / Qwen3's RMSNorm (equal to
    transformers' to float32 rounding). On a CPU in float32 it runs as ``rms_norm`` below."""

    def __init__(self, dim: int, eps: float, gain: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.normalized_shape = (dim,)
        self.weight = nn.Parameter(torch.ones(dim)) if gain else None
        self.bias = nn.Parameter(torch.zeros(dim)) if bias and gain else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = rms_norm(x, self.weight, self.eps)
        return y if self.bias is None else y + self.bias


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dimension; ``weight`` (..., C) broadcasts against x. PyTorch's CPU
    ``F.rms_norm`` is a chain of autograd ops (pow, mean, add, rsqrt, mul, mul, each with its
    backward): 2.5x LayerNorm's cost forward + backward at the baby shape. ``_RMSNorm`` writes
    both passes by hand, in a few in-place passes: 1.5x faster there, the same forward bit for
    bit (tests/test_arch.py)."""
    if kernels.enabled and x.device.type == "cpu" and x.dtype == torch.float32 and (
            weight is None or weight.dtype == torch.float32):
        return _RMSNorm.apply(x, weight, eps)
    if weight is not None and weight.dim() > 1:  # gains broadcast over more than the last dim
        return F.rms_norm(x, x.shape[-1:], None, eps) * weight
    return F.rms_norm(x, x.shape[-1:], weight, eps)


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        r = x.square().mean(-1, keepdim=True).add_(eps).rsqrt_()  # (..., 1)
        xh = x * r  # (..., C)
        ctx.save_for_backward(xh, r, weight)
        return xh if weight is None else xh * weight

    @staticmethod
    def backward(ctx, grad):
        # y = w x r, r = (mean(x^2) + eps)^(-1/2): dx = r (g w - xh mean(g w xh)), dw = sum g xh
        xh, r, weight = ctx.saved_tensors
        grad_w = None
        if weight is not None:
            if ctx.needs_input_grad[1]:
                grad_w = (grad * xh).sum_to_size(weight.shape)
            grad = grad * weight
        dot = (grad * xh).mean(-1, keepdim=True)  # (..., 1)
        return torch.addcmul(grad, xh, dot, value=-1.0).mul_(r), grad_w, None


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
