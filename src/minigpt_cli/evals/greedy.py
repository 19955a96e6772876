"""Batched greedy decoding with the KV cache.

Positions are learned and absolute, so prompts are not left-padded (that would shift every
position of the shorter prompts): prompts are grouped by token length and each group decodes
as one batch, sharing one cache. A row stops at a stop token (end-of-text, or a token holding
a newline); the batch stops when every row has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from minigpt_cli.model_file import unwrap

_NEWLINES: dict = {}  # tokenizer identity -> ids whose text holds a newline


def stop_ids(tokenizer) -> frozenset[int]:
    """End-of-text and every token whose text holds a newline."""
    key = tokenizer.identity()
    if key not in _NEWLINES:
        ids = (i for i in range(tokenizer.vocab_size) if i != tokenizer.eot_id)
        _NEWLINES[key] = frozenset(i for i in ids if b"\n" in tokenizer.decode_bytes([i]))
    return _NEWLINES[key] | {tokenizer.eot_id}


@torch.no_grad()
def _decode_group(model, prompts: list[list[int]], max_new: int, stop: torch.Tensor,
                  device) -> list[list[int]]:
    raw = unwrap(model)
    B, Lp = len(prompts), len(prompts[0])
    max_new = max(0, min(max_new, raw.config.block_size - Lp))
    out: list[list[int]] = [[] for _ in range(B)]
    if max_new == 0:
        return out
    x = torch.tensor(prompts, dtype=torch.long, device=device)  # (B, Lp)
    cache = raw.new_cache(B, Lp + max_new)
    logits, _ = raw(x, cache=cache, last_only=True)  # (B, 1, V)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    steps = []
    for step in range(max_new):
        tok = logits[:, -1].argmax(dim=-1)  # (B,)
        ended = torch.isin(tok, stop)
        steps.append(torch.where(done | ended, torch.full_like(tok, -1), tok))
        done |= ended
        if bool(done.all()) or step == max_new - 1:
            break
        logits, _ = raw(tok[:, None], cache=cache, last_only=True)  # (B, 1, V)
    grid = torch.stack(steps, dim=1).tolist()  # (B, steps), -1 after a row stopped
    for b, row in enumerate(grid):
        for t in row:
            if t < 0:
                break
            out[b].append(t)
    return out


@torch.no_grad()
def greedy_decode(model, prompts: list[list[int]], max_new_tokens: int, stop: frozenset[int],
                  batch_size: int = 64,
                  on_done: Callable[[int], None] | None = None) -> list[list[int]]:
    """The greedy continuation of every prompt (stop tokens left out), in order.

    A prompt longer than the model's context keeps its last tokens; generation never runs past
    the context (such a row simply stops)."""
    raw = unwrap(model)
    device = raw.transformer.wte.weight.device
    block = raw.config.block_size
    stop_t = torch.tensor(sorted(stop), dtype=torch.long, device=device)
    prompts = [p[-(block - 1):] if len(p) >= block else p for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        groups[len(p)].append(i)
    out: list[list[int]] = [[] for _ in prompts]
    for _, idx in sorted(groups.items()):
        for k in range(0, len(idx), batch_size):
            chunk = idx[k : k + batch_size]
            rows = _decode_group(raw, [prompts[i] for i in chunk], max_new_tokens, stop_t, device)
            for i, r in zip(chunk, rows):
                out[i] = r
            if on_done is not None:
                on_done(len(chunk))
    return out
