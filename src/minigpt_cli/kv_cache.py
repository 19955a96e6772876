"""The KV cache of generation: keys and values of every layer, written in place."""

from __future__ import annotations

import torch

from minigpt_cli.model_config import GPTConfig


class KVCache:
    """Pre-allocated keys/values for every layer: (n_layer, B, n_head, max_len, head_dim).

    Decoding writes one position per step in place, so generation allocates nothing per token.
    The buffers start uninitialised (`empty`, no 75 MB zero-fill for gpt2): only positions
    below ``length`` are ever read.

    ``position`` counts the tokens seen; it equals ``length`` until a ``sliding`` cache (RoPE:
    attention depends only on relative positions) is full. Then each new token overwrites the
    oldest slot (slot = position mod max_len, a ring) and attends to the last ``max_len`` tokens,
    with no recomputation: one query attends to a set of keys, in any order.
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device, dtype,
                 sliding: bool = False) -> None:
        hs = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, hs)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self._k, self._v = self.k.unbind(0), self.v.unbind(0)  # per layer: (B, nh, max_len, hs)
        self.max_len = max_len
        self.length = 0  # positions filled so far
        self.position = 0  # tokens seen so far (the next token's position)
        self.sliding = sliding

    def room(self, T: int) -> bool:
        """Whether T more tokens fit (a sliding cache takes one at a time once full)."""
        return self.length + T <= self.max_len or (self.sliding and T == 1)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store k, v (B, nh, T, hs) at the next positions; return all keys/values so far."""
        start, T = self.length, k.size(2)
        lk, lv = self._k[layer], self._v[layer]
        if start + T > self.max_len:
            if not (self.sliding and T == 1):
                raise ValueError(f"KV cache of {self.max_len} positions cannot hold {start + T}")
            slot = self.position % self.max_len  # full ring: overwrite the oldest
            lk.narrow(2, slot, 1).copy_(k)
            lv.narrow(2, slot, 1).copy_(v)
            return lk, lv  # (B, nh, max_len, hs)
        lk.narrow(2, start, T).copy_(k)  # in place: no allocation per step
        lv.narrow(2, start, T).copy_(v)
        return lk.narrow(2, 0, start + T), lv.narrow(2, 0, start + T)  # (B, nh, start + T, hs)

    def advance(self, T: int) -> None:
        self.length = min(self.length + T, self.max_len)
        self.position += T
