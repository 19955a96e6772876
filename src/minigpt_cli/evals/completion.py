"""Scoring multiple-choice endings by their likelihood after a context (completion style).

For each item the loss of every ending is summed over the ending's tokens only, given the
context; the caller picks the lowest sum or the lowest mean per token.

``score_batched`` is the fast path: many items per forward pass, each packed into one row
(context once, then every ending; see packed.py), logits only where an ending token is
predicted, a chunk of rows at a time in one reused buffer. ``score_simple`` is the
straightforward reference (one item at a time, context + ending in full for every ending,
right-padded -- exact for a causal model, as no real position attends to a later padded one):
the benchmark's baseline and a check in the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from minigpt_cli.model_file import unwrap


@dataclass
class Item:
    context: list[int]  # token ids, at least one
    endings: list[list[int]]  # token ids of each ending, at least one each


@dataclass
class Scores:
    sums: list[float]  # summed loss (nats) of each ending's tokens
    counts: list[int]  # tokens in each ending

    @property
    def means(self) -> list[float]:
        return [s / n for s, n in zip(self.sums, self.counts)]


def fit_to_context(item: Item, block_size: int) -> tuple[Item, bool]:
    """Keep an item within the model's context: endings are kept whole when they fit, the
    context is cropped from the left (its last tokens matter most). Returns (item, cropped)."""
    longest = max(len(e) for e in item.endings)
    endings = item.endings
    cropped = False
    if longest > block_size - 1:
        endings = [e[: block_size - 1] for e in endings]
        longest, cropped = block_size - 1, True
    room = block_size - (longest - 1)  # context tokens that fit before the longest ending
    context = item.context
    if len(context) > room:
        context, cropped = context[-room:], True
    return Item(context, endings), cropped


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are upcast before a softmax; float64 stays float64."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _row_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits (R, T, V), targets (R, T) -> per-token nats (R, T), at least float32."""
    V = logits.size(-1)
    return F.cross_entropy(at_least_fp32(logits).reshape(-1, V), targets.reshape(-1),
                           reduction="none").view_as(targets)


@torch.no_grad()
def score_batched(model, items: list[Item], batch_size: int = 16,
                  on_done: Callable[[int], None] | None = None) -> list[Scores]:
    """Scores of every item, in order (each fitted to the context first), packed
    (``packed.py``): ``batch_size`` items per forward pass, sorted by packed length so that
    little is padding. ``on_done(n)`` reports n more items scored."""
    from minigpt_cli.evals.packed import HeadLoss, ending_losses

    raw = unwrap(model)
    device = raw.transformer.wte.weight.device
    head = HeadLoss(raw)  # one logits buffer for the whole run
    items = [fit_to_context(it, raw.config.block_size)[0] for it in items]
    order = sorted(range(len(items)),
                   key=lambda i: len(items[i].context) + sum(len(e) for e in items[i].endings))
    out: list[Scores | None] = [None] * len(items)
    for k in range(0, len(order), batch_size):
        chunk = order[k : k + batch_size]
        for i, sums in zip(chunk, ending_losses(raw, [items[i] for i in chunk], device, head)):
            out[i] = Scores(sums, [len(e) for e in items[i].endings])
        if on_done is not None:
            on_done(len(chunk))
    return out  # type: ignore[return-value]


@torch.no_grad()
def score_simple(model, items: list[Item]) -> list[Scores]:
    """The straightforward way: per item, every ending as context + ending in full, padded to
    the longest, one forward pass over all positions."""
    raw = unwrap(model)
    device = raw.transformer.wte.weight.device
    out = []
    for it in items:
        it = fit_to_context(it, raw.config.block_size)[0]
        seqs = [it.context + e for e in it.endings]
        T = max(len(s) for s in seqs)
        x = torch.zeros(len(seqs), T, dtype=torch.long, device=device)  # (4, T)
        mask = torch.zeros(len(seqs), T, dtype=torch.bool, device=device)  # ending tokens
        for r, (s, e) in enumerate(zip(seqs, it.endings)):
            x[r, : len(s)] = torch.tensor(s)
            mask[r, len(it.context) : len(s)] = True
        logits, _ = model(x[:, :-1])  # (4, T - 1, V): the last token predicts nothing scored
        per = _row_losses(logits, x[:, 1:])  # (4, T - 1): token t+1 given <= t
        sums = per.masked_fill(~mask[:, 1:], 0.0).sum(dim=1)
        out.append(Scores(sums.tolist(), [len(e) for e in it.endings]))
    return out
