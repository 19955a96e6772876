"""Packed scoring: one row per item holding its context once and then every ending, each ending
attending to the context and to its own earlier tokens only, at the positions it would have
after the context alone. Only the hidden states that predict an ending token go through the
output layer, in chunks.

For HellaSwag (context ~25 tokens, four endings ~14 each) this feeds ~80 tokens per item
instead of ~180 (context + ending four times, padded), runs the 50k-wide output layer on ~56
positions instead of ~180, and batches many items into one forward pass (rows padded to the
longest in a batch of items sorted by packed length).

The output layer and the loss are where a small model spends its time (a 2-layer model with
GPT-2's 50,257-token vocabulary: over 90% of it). ``HeadLoss`` computes them ``chunk`` rows at a
time into one buffer it keeps across batches: logits of a chunk (chunk x vocabulary) are
written in place, the log-sum-exp taken in place (max, subtract, exp, sum), so the
(positions x 50,257) logits never exist whole and no large tensor is allocated per batch
(glibc returns large blocks to the OS on free and faults them back in on the next batch).

``packed_hidden`` is the model's forward (its own modules: embeddings, pre-norm blocks, the
query/key projection with any norms and rotation, the MLP, the final norm) with explicit
positions and an explicit attention mask, which the model's causal-only ``forward`` does not
take. Tests hold it equal to ``GPT.forward`` and to transformers' GPT2LMHeadModel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from minigpt_cli.model import GPT

CHUNK = 128  # rows of logits at a time: 128 x 50,257 fp32 = 25.7 MB (bench: best of 16-256)


def packed_hidden(gpt: GPT, idx: torch.Tensor, pos: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """idx, pos (B, T); mask (B, T, T) bool, True where query t may attend to key s ->
    final hidden states (B, T, C), after ln_f."""
    B, T = idx.shape
    C = gpt.config.n_embd
    x = gpt.transformer.wte(idx)  # (B, T, C)
    if "wpe" in gpt.transformer:
        x = x + gpt.transformer.wpe(pos)
    attend = mask[:, None]  # (B, 1, T, T): the same mask for every head
    for block in gpt.transformer.h:
        attn = block.attn
        q, k, v = attn.project(block.ln_1(x), positions=pos)  # 3 x (B, nh, T, hs)
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
    idx, pos, group = [], [], []  # per row, T slots; group: 0 context, k ending k, -1 padding
    rows, cols, targets, segment = [], [], [], []
    seg = 0
    for b, it in enumerate(items):
        c = len(it.context)
        r_idx, r_pos, r_group = list(it.context), list(range(c)), [0] * c
        p = c
        for k, e in enumerate(it.endings, 1):
            n = len(e) - 1  # an ending's last token is predicted, never fed
            r_idx += e[:-1]
            r_pos += range(c, c + n)  # right after the context
            r_group += [k] * n
            rows += [b] * len(e)
            cols += [c - 1, *range(p, p + n)]  # e[0] from the context's last slot, then chain
            targets += e
            segment += [seg] * len(e)
            seg += 1
            p += n
        pad = T - p
        idx.append(r_idx + [0] * pad)
        pos.append(r_pos + [0] * pad)
        group.append(r_group + [-1] * pad)
    g = torch.tensor(group)  # (B, T)
    gq, gk = g[:, :, None], g[:, None, :]  # query t, key s
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    # context keys: seen by the context (causally) and by every ending; an ending's own keys:
    # causally; padding attends to itself only (no empty softmax rows)
    mask = ((gk == 0) & (gq >= 0) | (gk == gq) & (gq > 0)) & causal
    mask |= torch.eye(T, dtype=torch.bool) & (gq < 0)
    rows_t, cols_t, targets_t, segment_t = (torch.tensor(v, dtype=torch.long)
                                            for v in (rows, cols, targets, segment))
    return Packed(torch.tensor(idx), torch.tensor(pos), mask, rows_t, cols_t, targets_t,
                  segment_t)


class HeadLoss:
    """-log p(target | hidden state) through the output layer, ``chunk`` rows at a time,
    in one logits buffer kept from call to call (see the module docstring). Logits are at least
    float32 (a half-precision model's are computed in its dtype, then upcast)."""

    def __init__(self, gpt: GPT, chunk: int = CHUNK) -> None:
        V = gpt.config.vocab_size
        self.weight = gpt.lm_head.weight[:V]  # (V, C): padded ids are never predicted
        self.chunk = chunk
        self.cap = gpt.config.logit_softcap  # 0: off
        dt = self.weight.dtype
        up = torch.promote_types(dt, torch.float32)
        dev = self.weight.device
        self.buf = torch.empty(chunk, V, dtype=up, device=dev)
        self.low = torch.empty(chunk, V, dtype=dt, device=dev) if up != dt else None

    def __call__(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """h (N, C), targets (N,) -> nats (N,) in the logits' dtype."""
        N = h.size(0)
        out = torch.empty(N, dtype=self.buf.dtype, device=h.device)
        wt = self.weight.t()
        for r in range(0, N, self.chunk):
            n = min(self.chunk, N - r)
            z = self.buf[:n]
            if self.low is None:
                torch.mm(h[r : r + n], wt, out=z)  # (n, V) logits, in place
            else:
                z.copy_(torch.mm(h[r : r + n], wt, out=self.low[:n]))
            if self.cap:
                z.div_(self.cap).tanh_().mul_(self.cap)  # the model's soft cap, in place
            picked = z.gather(1, targets[r : r + n, None]).squeeze(1)  # (n,) target logits
            m = z.amax(dim=1, keepdim=True)  # (n, 1)
            lse = z.sub_(m).exp_().sum(dim=1).log_().add_(m.squeeze(1))  # log-sum-exp
            out[r : r + n] = lse - picked
        return out


def ending_losses(gpt: GPT, items, device, head: HeadLoss | None = None) -> list[list[float]]:
    """Summed loss (nats) of every ending of every item, in order. Pass the same ``head`` for
    every batch of a run so its buffer is reused."""
    head = head or HeadLoss(gpt)
    p = pack(items)
    h = packed_hidden(gpt, p.idx.to(device), p.pos.to(device), p.mask.to(device))  # (B, T, C)
    sel = h[p.rows.to(device), p.cols.to(device)]  # (N, C): only where a token is predicted
    nll = head(sel, p.targets.to(device))  # (N,)
    n_seg = int(p.segment[-1]) + 1
    sums = torch.zeros(n_seg, dtype=nll.dtype, device=device).index_add_(
        0, p.segment.to(device), nll).tolist()
    out, k = [], 0
    for it in items:
        out.append(sums[k : k + len(it.endings)])
        k += len(it.endings)
    return out
