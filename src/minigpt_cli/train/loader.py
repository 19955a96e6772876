"""The window stream: training sequences cut from token arrays (memory-mapped shards or arrays
in memory), in an order reshuffled every epoch from the seed, resumable from one small position.

Each array of ``n`` tokens holds ``(n - 1) // seq_len`` windows; window ``w`` is the
``seq_len + 1`` tokens at ``w * seq_len`` (inputs are the first ``seq_len``, targets the last,
so consecutive windows share one token, as in llm.c). An epoch visits every window once: the
array order is a permutation drawn from ``(seed, epoch)`` and the windows of each array a
permutation drawn from ``(seed, epoch, array)``. The stream is global: every process walks the
same sequence and takes its own disjoint slice of each step (see ``step_windows``), so the
whole data position is ``(epoch, cursor)`` whatever the world size.

An optional loss mask (one 0/1 value per token, same length as the tokens) rides along: the
target at position t counts only where the mask at t is 1 (finetune, math examples).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class Position:
    epoch: int = 0
    cursor: int = 0  # windows of this epoch already handed out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Batch:
    x: torch.Tensor  # (B, T) inputs
    y: torch.Tensor  # (B, T) targets
    mask: torch.Tensor | None  # (B, T) 1 where the target counts, or None (all count)

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        m = self.mask.to(device, non_blocking=nb) if self.mask is not None else None
        return Batch(self.x.to(device, non_blocking=nb), self.y.to(device, non_blocking=nb), m)

    def target_count(self) -> int:
        """Targets that count toward the loss."""
        return int(self.mask.sum()) if self.mask is not None else self.y.numel()


class TokenWindows:
    """Windows of ``seq_len + 1`` tokens over a list of arrays (no shuffling): the shared base."""

    def __init__(self, arrays, masks=None, seq_len: int = 1024) -> None:
        self.arrays = list(arrays)
        self.masks = list(masks) if masks is not None else [None] * len(self.arrays)
        self.seq_len = seq_len
        self.counts = np.array([max(0, (len(a) - 1) // seq_len) for a in self.arrays],
                               dtype=np.int64)
        self.has_mask = any(m is not None for m in self.masks)

    def counted_targets(self, refs: np.ndarray) -> int:
        """Targets that count among the windows ``refs`` (at least 1)."""
        if not self.has_mask:
            return len(refs) * self.seq_len
        return max(1, self.gather(refs).target_count())

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def gather(self, refs: np.ndarray) -> Batch:
        """refs (B, 2) of (array, window) -> a Batch of B sequences."""
        T = self.seq_len
        rows = np.empty((len(refs), T + 1), dtype=np.int64)  # (B, T+1)
        mask_rows = np.ones((len(refs), T + 1), dtype=np.int64) if self.has_mask else None
        for i, (a, w) in enumerate(refs):
            start = int(w) * T
            rows[i] = self.arrays[a][start : start + T + 1]
            if mask_rows is not None and self.masks[a] is not None:
                mask_rows[i] = self.masks[a][start : start + T + 1]
        t = torch.from_numpy(rows)
        mask = torch.from_numpy(mask_rows[:, 1:]) if mask_rows is not None else None  # (B, T)
        return Batch(t[:, :-1], t[:, 1:], mask)


class WindowStream(TokenWindows):
    """The shuffled, endless, resumable stream of training windows."""

    def __init__(self, arrays, masks=None, seq_len: int = 1024, seed: int = 0) -> None:
        super().__init__(arrays, masks, seq_len)
        if self.total < 1:
            raise ValueError("no window of seq_len + 1 tokens fits in the data")
        self.seed = seed
        self.position = Position()
        self._epoch_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._perms: dict[int, np.ndarray] = {}

    # -- order -------------------------------------------------------------------------
    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(array order, cumulative window counts in that order) for ``epoch``."""
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.arrays))
            self._epoch_cache = (epoch, order, np.cumsum(self.counts[order]))
            self._perms = {}
        return self._epoch_cache[1], self._epoch_cache[2]

    def _perm(self, epoch: int, array: int) -> np.ndarray:
        if array not in self._perms:
            rng = np.random.default_rng([self.seed, epoch, array])
            self._perms[array] = rng.permutation(int(self.counts[array]))
        return self._perms[array]

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` windows as (n, 2) refs of (array, window); advances the position."""
        out = np.empty((n, 2), dtype=np.int64)
        done = 0
        while done < n:
            epoch, cursor = self.position.epoch, self.position.cursor
            order, cum = self._epoch(epoch)
            k = min(n - done, self.total - cursor)
            idx = np.arange(cursor, cursor + k)
            slot = np.searchsorted(cum, idx, side="right")  # position in the array order
            before = np.where(slot > 0, cum[np.maximum(slot - 1, 0)], 0)
            for j, (s, i) in enumerate(zip(slot, idx - before)):
                a = int(order[s])
                out[done + j] = (a, self._perm(epoch, a)[i])
            done += k
            cursor += k
            if cursor == self.total:
                self.position = Position(epoch + 1, 0)
            else:
                self.position = Position(epoch, cursor)
        return out

    def where(self) -> dict:
        """The position in words-and-numbers, for the checkpoint (epoch, array, offset)."""
        order, cum = self._epoch(self.position.epoch)
        cursor = self.position.cursor
        s = int(np.searchsorted(cum, cursor, side="right"))
        if s >= len(order):
            return {**self.position.to_dict(), "seed": self.seed}
        a = int(order[s])
        i = cursor - (int(cum[s - 1]) if s else 0)
        return {**self.position.to_dict(), "seed": self.seed, "array": a,
                "token_offset": int(self._perm(self.position.epoch, a)[i]) * self.seq_len}

    def restore(self, epoch: int, cursor: int) -> None:
        if not 0 <= cursor < self.total:
            raise ValueError(f"data cursor {cursor} outside this data ({self.total} windows)")
        self.position = Position(int(epoch), int(cursor))


def step_windows(refs: np.ndarray, rank: int, world: int, accum: int,
                 micro: int) -> list[np.ndarray]:
    """Split one step's global windows (world * accum * micro, 2) into this rank's micro-batches:
    rank r takes the r-th contiguous block, so the ranks' parts are disjoint and the step's set
    of windows does not depend on the world size."""
    per_rank = accum * micro
    mine = refs[rank * per_rank : (rank + 1) * per_rank]
    return [mine[a * micro : (a + 1) * micro] for a in range(accum)]


class ValWindows(TokenWindows):
    """The first windows of the validation data, in order (the same every eval)."""

    def batches(self, micro: int, n_batches: int, rank: int = 0, world: int = 1):
        """This rank's micro-batches of the first ``micro * n_batches`` windows."""
        refs = []
        for a, c in enumerate(self.counts):
            refs.extend((a, w) for w in range(int(c)))
            if len(refs) >= micro * n_batches:
                break
        refs = np.array(refs[: micro * n_batches], dtype=np.int64).reshape(-1, 2)
        mine = refs[rank::world]
        for i in range(0, len(mine), micro):
            yield self.gather(mine[i : i + micro])
