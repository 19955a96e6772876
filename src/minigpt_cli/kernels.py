"""Faster CPU forms of two GPT-2 operations: the same functions, computed in fewer passes.

PyTorch's CPU kernels for tanh-GELU and for causal ``scaled_dot_product_attention`` are slow at
the small shapes a CPU trains (the baby GPT: 1,024 positions x 512 features, 4 heads of 32 over
128 positions). Profiled on a 2-core AVX2 machine they took 16% and 19% of a training step while
the matmuls ran near the machine's peak. The forms here are exact rewrites, not approximations:

- GELU (GPT-2's tanh form): 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3),
  with a hand-written backward; CPU tanh is scalar code, sigmoid is vectorised.
- causal attention for short contexts: one ``baddbmm`` adding the causal mask to the scaled
  scores, a softmax, one ``bmm``.

GPUs keep the fused kernels (``F.gelu``, flash attention).
``benchmarks/bench_kernels.py`` measures both against PyTorch's own, forward and backward.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

_K = 2.0 * math.sqrt(2.0 / math.pi)  # 2u = x (K + K C x^2)
_C = 0.044715
# Above this many positions the (B, heads, T, T) score tensor of the explicit form costs more
# than it saves; measured crossover on the 2-core machine (bench_kernels.py).
SHORT_CONTEXT = 256
enabled = True  # False: always PyTorch's own kernels (bench_kernels.py compares the two)


class _TanhGelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        k = torch.tensor(_K, dtype=x.dtype)
        s = torch.addcmul(k, x, x, value=_K * _C).mul_(x).sigmoid_()  # sigmoid(2u)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, s = ctx.saved_tensors
        k = torch.tensor(_K, dtype=x.dtype)
        du = torch.addcmul(k, x, x, value=3.0 * _K * _C).mul_(x)  # x d(2u)/dx
        # d/dx [x s] = s + x s (1 - s) d(2u)/dx
        return (1.0 - s).mul_(s).mul_(du).add_(s).mul_(grad)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if not enabled or x.device.type != "cpu":
        return F.gelu(x, approximate="tanh")
    return _TanhGelu.apply(x)


_masks: dict[tuple, torch.Tensor] = {}


def _causal_mask(T: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(T, T): 0 on and below the diagonal, -inf above; a view of one cached table."""
    key = (dtype, device)
    mask = _masks.get(key)
    if mask is None:
        mask = torch.full((SHORT_CONTEXT, SHORT_CONTEXT), float("-inf"), dtype=dtype,
                          device=device).triu_(1)
        _masks[key] = mask
    return mask[:T, :T]


def causal_attention(q, k, v, dropout_p: float = 0.0) -> torch.Tensor:
    """Causal self-attention of (B, heads, T, head_dim) queries, keys and values."""
    B, H, T, D = q.shape
    if not (enabled and q.device.type == "cpu" and q.dtype == torch.float32
            and T <= SHORT_CONTEXT and dropout_p == 0.0):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    mask = _causal_mask(T, q.dtype, q.device).expand(B * H, T, T)
    scores = torch.baddbmm(mask, q.reshape(B * H, T, D), k.reshape(B * H, T, D).transpose(1, 2),
                           alpha=1.0 / math.sqrt(D))
    return torch.bmm(scores.softmax(-1), v.reshape(B * H, T, D)).view(B, H, T, D)
