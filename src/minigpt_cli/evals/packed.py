"""Packed scoring: one row per item holding its context once and then every ending, each ending
attending to the context and to its own earlier tokens only, at the positions it would have
after the context alone. Logits are computed only where an ending token is predicted.

For HellaSwag (context ~25 tokens, four endings ~14 each) this feeds ~80 tokens per item
instead of ~180 (context + ending four times, padded), runs the 50k-wide output layer on ~56
positions instead of ~180, and batches many items into one forward pass (rows padded to the
longest in a batch of items sorted by packed length).

``packed_hidden`` is GPT-2's forward (the model's own modules: embeddings, pre-LN blocks with
GELU MLPs, final LayerNorm) with explicit positions and an explicit attention mask, which the
model's causal-only ``forward`` does not take. Tests hold it equal to ``GPT.forward`` and to
transformers' GPT2LMHeadModel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from minigpt_cli.model import GPT


def packed_hidden(gpt: GPT, idx: torch.Tensor, pos: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """idx, pos (B, T); mask (B, T, T) bool, True where query t may attend to key s ->
    final hidden states (B, T, C), after ln_f."""
    B, T = idx.shape
    C, nh = gpt.config.n_embd, gpt.config.n_head
    x = gpt.transformer.wte(idx) + gpt.transformer.wpe(pos)  # (B, T, C)
    attend = mask[:, None]  # (B, 1, T, T): the same mask for every head
    for block in gpt.transformer.h:
        attn = block.attn
        qkv = attn.c_attn(block.ln_1(x)).view(B, T, 3, nh, C // nh)  # (B, T, 3, nh, hs)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)  # (B, nh, T, hs)
        x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)
        x = x + block.mlp(block.ln_2(x))
    return gpt.transformer.ln_f(x)


@dataclass
class Packed:
    idx: torch.Tensor  # (B, T) tokens fed
    pos: torch.Tensor  # (B, T) their positions
    mask: torch.Tensor  # (B, T, T) who attends to whom
    rows: torch.Tensor  # (N,) batch row of each predicted ending token
    cols: torch.Tensor  # (N,) slot whose output predicts it
    targets: torch.Tensor  # (N,) the ending token
    segment: torch.Tensor  # (N,) which (item, ending) it belongs to, 0..S-1


def pack(items) -> Packed:
    """Lay out items (each with ``context`` and ``endings`` token lists) as packed rows."""
    T = max(len(it.context) + sum(len(e) - 1 for e in it.endings) for it in items)
    B = len(items)
    idx = torch.zeros(B, T, dtype=torch.long)
    pos = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, T, dtype=torch.bool)
    rows, cols, targets, segment = [], [], [], []
    seg = 0
    for b, it in enumerate(items):
        c = len(it.context)
        idx[b, :c] = torch.tensor(it.context)
        pos[b, :c] = torch.arange(c)
        mask[b, :c, :c] = torch.ones(c, c, dtype=torch.bool).tril()  # causal context
        p = c
        for e in it.endings:
            n = len(e) - 1  # an ending's last token is predicted, never fed
            if n:
                idx[b, p : p + n] = torch.tensor(e[:-1])
                pos[b, p : p + n] = torch.arange(c, c + n)  # right after the context
                mask[b, p : p + n, :c] = True  # sees the whole context
                mask[b, p : p + n, p : p + n] = torch.ones(n, n, dtype=torch.bool).tril()
            rows += [b] * len(e)
            cols += [c - 1, *range(p, p + n)]  # e[0] from the context's last slot, then chain
            targets += e
            segment += [seg] * len(e)
            seg += 1
            p += n
        pad = torch.arange(p, T)
        mask[b, pad, pad] = True  # padding attends to itself (no empty softmax rows)
    rows_t, cols_t, targets_t, segment_t = (torch.tensor(v, dtype=torch.long)
                                            for v in (rows, cols, targets, segment))
    return Packed(idx, pos, mask, rows_t, cols_t, targets_t, segment_t)


def ending_losses(gpt: GPT, items, device) -> list[list[float]]:
    """Summed loss (nats) of every ending of every item, in order."""
    p = pack(items)
    h = packed_hidden(gpt, p.idx.to(device), p.pos.to(device), p.mask.to(device))  # (B, T, C)
    sel = h[p.rows.to(device), p.cols.to(device)]  # (N, C): only where a token is predicted
    logits = gpt.lm_head(sel)[:, : gpt.config.vocab_size]  # (N, V)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    nll = F.cross_entropy(logits, p.targets.to(device), reduction="none")  # (N,)
    n_seg = int(p.segment[-1]) + 1
    sums = torch.zeros(n_seg, dtype=nll.dtype, device=device).index_add_(
        0, p.segment.to(device), nll).tolist()
    out, k = [], 0
    for it in items:
        out.append(sums[k : k + len(it.endings)])
        k += len(it.endings)
    return out
