"""A faster CPU form of GPT-2's causal self-attention over short contexts: the same function.

PyTorch's CPU flash-attention kernel behind ``scaled_dot_product_attention`` is slow at the
small shapes a CPU trains (the baby GPT: 4 heads of 32 over 64-128 positions): profiled on a
2-core AVX2 machine it took 19% of a training step while the matmuls ran near the machine's
peak. For contexts up to ``SHORT_CONTEXT`` the scores are formed explicitly instead: one
``baddbmm`` adding the causal mask to the scaled q k^T, a softmax, one ``bmm`` (an exact rewrite,
not an approximation). GPUs, longer contexts, dropout and reduced precision keep PyTorch's
fused kernels. ``benchmarks/bench_kernels.py`` measures both, forward and backward.

(A sigmoid rewrite of the tanh GELU was measured too and dropped: 1.04-1.11x on the GELU of the
small shapes, 0.83x at GPT-2's width, about 1% of a step.)
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
