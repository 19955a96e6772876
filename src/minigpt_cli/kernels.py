"""A faster CPU form of GPT-2's causal self-attention over short contexts: the same function.

PyTorch's CPU flash-attention kernel behind ``scaled_dot_product_attention`` is slow at the
small shapes a CPU trains (the baby GPT: 4 heads of 32 over 64-128 positions): profiled on a
2-core AVX2 machine it took 19% of a training step while the matmuls ran near the machine's
peak. For contexts up to ``SHORT_CONTEXT`` the scores are formed explicitly instead: one
``baddbmm`` adding the causal mask to the scaled q k^T, a softmax, one ``bmm`` (an exact rewrite,
not an approximation). GPUs, longer contexts, dropout and reduced precision keep PyTorch's
fused kernels. ``benchmarks/bench_kernels.py`` measures both, forward and backward.

GPT-2's tanh GELU likewise: PyTorch evaluates ``tanh`` on CPUs with a slow vector routine
(2.5x the cost of the erf GELU on AVX2). ``tanh_gelu`` computes the same function through the
identity 0.5 (1 + tanh(u)) = sigmoid(2u), forward and backward by hand, in a few in-place
passes: 1.75-2.2x faster forward + backward at the baby GPT's shapes, equal to PyTorch's to
1e-8 in float64. The passes are cheap only while the activation stays in cache: at GPT-2's
width (4 x 1024 x 3072) they ran 0.83x, so tensors above ``GELU_MAX_NUMEL`` keep PyTorch's.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

# Up to this many positions the explicit form wins (bench_kernels.py on the 2-core machine:
# 1.15-1.26x at 64, 1.04-1.18x at 128, 0.80-1.00x at 256, 0.78-0.92x at 512, forward + backward).
SHORT_CONTEXT = 128
enabled = True  # False: always PyTorch's own kernel (bench_kernels.py compares the two)

_masks: dict[tuple, torch.Tensor] = {}
_GELU_K = 2.0 * math.sqrt(2.0 / math.pi)  # 2u = _GELU_K (x + _GELU_C x^3)
_GELU_C = 0.044715
GELU_MAX_NUMEL = 1 << 21  # 8 MB of float32: bench_kernels.py, 1.75x at 0.5M, 0.83x at 12.6M


def _causal_mask(T: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(T, T): 0 on and below the diagonal, -inf above; a view of one cached table."""
    key = (dtype, device)
    mask = _masks.get(key)
    if mask is None or mask.size(0) < T:
        n = max(T, SHORT_CONTEXT)
        mask = torch.full((n, n), float("-inf"), dtype=dtype, device=device).triu_(1)
        _masks[key] = mask
    return mask[:T, :T]


def causal_attention(q, k, v, dropout_p: float = 0.0) -> torch.Tensor:
    """Causal self-attention of (B, heads, T, head_dim) queries, keys and values."""
    if not (enabled and q.device.type == "cpu" and q.dtype == torch.float32
            and q.size(-2) <= SHORT_CONTEXT and dropout_p == 0.0):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    return explicit_causal_attention(q, k, v)


def explicit_causal_attention(q, k, v) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim) + causal mask) v, written out (no dropout)."""
    B, H, T, D = q.shape
    mask = _causal_mask(T, q.dtype, q.device).expand(B * H, T, T)
    scores = torch.baddbmm(mask, q.reshape(B * H, T, D), k.reshape(B * H, T, D).transpose(1, 2),
                           alpha=1.0 / math.sqrt(D))
    return torch.bmm(scores.softmax(-1), v.reshape(B * H, T, D)).view(B, H, T, D)


def tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if (enabled and x.device.type == "cpu" and x.dtype == torch.float32
            and x.numel() <= GELU_MAX_NUMEL):
        return _TanhGelu.apply(x)
    return F.gelu(x, approximate="tanh")


class _TanhGelu(torch.autograd.Function):
    """x sigmoid(2u): the tanh GELU without tanh (see the module docstring)."""

    @staticmethod
    def forward(ctx, x):
        k = torch.tensor(_GELU_K, dtype=x.dtype)
        s = torch.addcmul(k, x, x, value=_GELU_K * _GELU_C).mul_(x).sigmoid_()  # sigmoid(2u)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        # d/dx x s(2u) = s + x s (1 - s) 2u'  with 2u' = K (1 + 3 C x^2)
        x, s = ctx.saved_tensors
        k = torch.tensor(_GELU_K, dtype=x.dtype)
        t = torch.addcmul(k, x, x, value=3.0 * _GELU_K * _GELU_C).mul_(x)  # x 2u'
        return t.addcmul_(t, s, value=-1.0).add_(1.0).mul_(s).mul_(grad)  # s (1 + x 2u' (1 - s))
