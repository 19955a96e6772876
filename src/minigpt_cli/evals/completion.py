"""Scoring multiple-choice endings by their likelihood after a context (completion style).

For each item the loss of every ending is summed over the ending's tokens only, given the
context; the caller picks the lowest sum or the lowest mean per token.

``score_batched`` is the fast path: items whose contexts have the same token length are run
together, the context once per item (not once per ending) with the KV cache and logits only
for its last position, then all endings of those items in one padded forward pass that
continues from the cache. Right padding is exact for a causal model: a padded position comes
after every real one, so no real position attends to it; its loss is masked out.
``score_simple`` is the straightforward reference (one item at a time, context + ending in
full for every ending): the benchmark's baseline and a check in the tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from minigpt_cli.checkpoint import unwrap
from minigpt_cli.model import KVCache


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
def _score_group(model, items: list[Item], device) -> list[Scores]:
    """Items whose contexts all have the same length."""
    raw = unwrap(model)
    ctx = torch.tensor([it.context for it in items], dtype=torch.long, device=device)  # (B, c)
    owner = [i for i, it in enumerate(items) for _ in it.endings]  # row -> item
    ends = [e for it in items for e in it.endings]
    R, c, Le = len(ends), ctx.size(1), max(len(e) for e in ends)
    cache = raw.new_cache(len(items), c)
    logits, _ = raw(ctx, cache=cache, last_only=True)  # (B, 1, V): predicts each first token
    first_logp = F.log_softmax(at_least_fp32(logits[:, 0]), dim=-1)  # (B, V)
    rows = torch.tensor(owner, dtype=torch.long, device=device)  # (R,)
    padded = torch.zeros(R, Le, dtype=torch.long, device=device)  # (R, Le), 0 = padding
    for r, e in enumerate(ends):
        padded[r, : len(e)] = torch.tensor(e, dtype=torch.long)
    lengths = torch.tensor([len(e) for e in ends], device=device)  # (R,)
    total = -first_logp[rows, padded[:, 0]]  # (R,) loss of each first ending token
    if Le > 1:
        # one cache row per ending, each a copy of its item's context keys/values
        rcache = KVCache(raw.config, R, c + Le - 1, device, cache.k.dtype)
        rcache.k[:, :, :, :c] = cache.k.index_select(1, rows)
        rcache.v[:, :, :, :c] = cache.v.index_select(1, rows)
        rcache.length = c
        logits, _ = raw(padded[:, :-1], cache=rcache)  # (R, Le - 1, V)
        per = _row_losses(logits, padded[:, 1:])  # (R, Le - 1)
        valid = torch.arange(1, Le, device=device)[None, :] < lengths[:, None]  # (R, Le - 1)
        total = total + per.masked_fill(~valid, 0.0).sum(dim=1)
    out, r = [], 0
    for it in items:
        k = len(it.endings)
        out.append(Scores(total[r : r + k].tolist(), lengths[r : r + k].tolist()))
        r += k
    return out


@torch.no_grad()
def score_batched(model, items: list[Item], batch_size: int = 16,
                  on_done: Callable[[int], None] | None = None) -> list[Scores]:
    """Scores of every item, in order (each fitted to the context first); ``batch_size`` items
    per forward pass at most. ``on_done(n)`` reports n more items scored."""
    raw = unwrap(model)
    device = raw.transformer.wte.weight.device
    items = [fit_to_context(it, raw.config.block_size)[0] for it in items]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        groups[len(it.context)].append(i)
    out: list[Scores | None] = [None] * len(items)
    for _, idx in sorted(groups.items()):
        idx.sort(key=lambda i: max(len(e) for e in items[i].endings))  # less padding
        for k in range(0, len(idx), batch_size):
            chunk = idx[k : k + batch_size]
            for i, s in zip(chunk, _score_group(raw, [items[i] for i in chunk], device)):
                out[i] = s
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
