"""Rotary position embeddings (Su et al. 2021, "RoFormer"), in the half-split layout of GPT-NeoX,
Llama and Qwen3 in transformers: the first and second halves of each head's dimensions form the
rotated pairs (``rotate_half``), so q/k weights map to transformers' as they are.

The angle tables are not parameters (nothing in the checkpoint): they are computed on first use
per device and dtype and grown on demand, so a cached decoder can run past ``block_size``
(attention sees only relative positions; see model.KVCache's sliding window).
"""

from __future__ import annotations

import torch


class Rotary:
    def __init__(self, head_dim: int, base: float, length: int) -> None:
        self.head_dim = head_dim
        self.base = base
        self.length = length
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def inv_freq(self, device) -> torch.Tensor:
        # transformers' default rope: 1 / base^(2i/d), computed in float32
        exps = torch.arange(0, self.head_dim, 2, dtype=torch.int64, device=device).float()
        return 1.0 / (self.base ** (exps / self.head_dim))  # (hs/2,)

    def _angles(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and the signed sin (-sin on the first half, +sin on the second) (..., hs)."""
        freqs = positions.float()[..., None] * self.inv_freq(positions.device)  # (..., hs/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (..., hs)
        sin = emb.sin()
        return emb.cos(), torch.cat((-sin[..., : self.head_dim // 2],
                                     sin[..., self.head_dim // 2 :]), dim=-1)

    def table(self, start: int, T: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, signed sin (T, hs) for positions start..start+T-1."""
        key = (device, dtype)
        cached = self._tables.get(key)
        if cached is None or cached[0].size(0) < start + T:
            n = max(self.length, 2 * (start + T) if cached is not None else start + T)
            # plain tensors even when first asked for under inference_mode (a sample during
            # training): a table made there could not take part in a later backward
            with torch.inference_mode(False), torch.no_grad():
                cos, sin = self._angles(torch.arange(n, device=device))
                cached = (cos.to(dtype), sin.to(dtype))
            self._tables[key] = cached
        return cached[0][start : start + T], cached[1][start : start + T]

    def at(self, positions: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, signed sin (B, 1, T, hs) for explicit positions (B, T) (packed scoring)."""
        cos, sin = self._angles(positions)
        return cos.to(dtype)[:, None], sin.to(dtype)[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """x (B, nh, T, hs) rotated by the angles of its positions (cos/sin broadcast to it):
    transformers' x cos + rotate_half(x) sin, with rotate_half(x) sin = (-x2, x1) sin written as
    the halves swapped (one ``roll``) times the signed sin: the same products, 4 ops instead of
    5 (a negation and a concatenation become one roll)."""
    return x * cos + x.roll(x.size(-1) // 2, dims=-1) * signed_sin
