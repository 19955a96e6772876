"""HellaSwag scoring throughput: batched (packed) vs the straightforward one-item-at-a-time way,
or (``--before-after``) the batched path of today vs the one it replaced.

Both ways score the same items with the same model in the same process, on the CPU in float32,
over the first --limit items of the 500-item sample, with random weights (throughput does not
depend on the weights). Runs alternate between the two ways so that machine load drifts affect
both; medians over --repeats runs. The predictions of the two are compared too (they must
agree) and the largest difference of the summed losses is printed.

- default: the `gpt2` preset (124M), ``score_batched`` vs ``score_simple`` (one item at a time,
  context + ending in full for every ending).
- ``--before-after``: the `nano` preset (2 layers of 32, GPT-2's 50,257-token vocabulary: the
  shape where the output layer is nearly all the work) over all 500 items, today's
  ``score_batched`` vs a frozen copy of the packed scorer as it was before the chunked output
  layer (commit 86d969a: logits of every scored position at once, a fresh tensor per batch, the
  attention mask built item by item).

    python benchmarks/bench_hellaswag.py --limit 40 --repeats 3
    python benchmarks/bench_hellaswag.py --before-after
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("MINIGPT_SHARED_DATA", ROOT.parent / "shared" / "data")) / \
    "hellaswag" / "hellaswag_val_sample500.jsonl"


def argmins(scores) -> tuple[list[int], list[int]]:
    acc = [min(range(len(s.sums)), key=s.sums.__getitem__) for s in scores]
    norm = [min(range(len(s.means)), key=s.means.__getitem__) for s in scores]
    return acc, norm


# ----------------------------------------------------------------------------- before (86d969a)


def _pack_before(items):
    """packed.pack as of 86d969a: the (B, T, T) mask filled item by item."""
    from minigpt_cli.evals.packed import Packed

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
        mask[b, :c, :c] = torch.ones(c, c, dtype=torch.bool).tril()
        p = c
        for e in it.endings:
            n = len(e) - 1
            if n:
                idx[b, p : p + n] = torch.tensor(e[:-1])
                pos[b, p : p + n] = torch.arange(c, c + n)
                mask[b, p : p + n, :c] = True
                mask[b, p : p + n, p : p + n] = torch.ones(n, n, dtype=torch.bool).tril()
            rows += [b] * len(e)
            cols += [c - 1, *range(p, p + n)]
            targets += e
            segment += [seg] * len(e)
            seg += 1
            p += n
        pad = torch.arange(p, T)
        mask[b, pad, pad] = True
    t = [torch.tensor(v, dtype=torch.long) for v in (rows, cols, targets, segment)]
    return Packed(idx, pos, mask, *t)


def _ending_losses_before(gpt, items, device):
    """packed.ending_losses as of 86d969a: the (N, 50257) logits whole, then cross_entropy."""
    from minigpt_cli.evals.packed import packed_hidden

    p = _pack_before(items)
    h = packed_hidden(gpt, p.idx.to(device), p.pos.to(device), p.mask.to(device))
    sel = h[p.rows.to(device), p.cols.to(device)]
    logits = gpt.lm_head(sel)[:, : gpt.config.vocab_size]
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    nll = F.cross_entropy(logits, p.targets.to(device), reduction="none")
    n_seg = int(p.segment[-1]) + 1
    sums = torch.zeros(n_seg, dtype=nll.dtype, device=device).index_add_(
        0, p.segment.to(device), nll).tolist()
    out, k = [], 0
    for it in items:
        out.append(sums[k : k + len(it.endings)])
        k += len(it.endings)
    return out


@torch.no_grad()
def score_before(model, items, batch_size: int = 16):
    """completion.score_batched as of 86d969a (same ordering and batching as today's)."""
    from minigpt_cli.evals.completion import Scores

    device = model.transformer.wte.weight.device
    order = sorted(range(len(items)),
                   key=lambda i: len(items[i].context) + sum(len(e) for e in items[i].endings))
    out = [None] * len(items)
    for k in range(0, len(order), batch_size):
        chunk = order[k : k + batch_size]
        for i, sums in zip(chunk, _ending_losses_before(model, [items[i] for i in chunk],
                                                        device)):
            out[i] = Scores(sums, [len(e) for e in items[i].endings])
    return out


# ----------------------------------------------------------------------------- the run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SAMPLE)
    ap.add_argument("--limit", type=int, default=None,
                    help="items scored per run [default: 40; --before-after: all 500]")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16, help="items per batched forward")
    ap.add_argument("--preset", default=None,
                    help="model shape [default: gpt2; --before-after: nano]")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--before-after", action="store_true",
                    help="today's batched scorer vs the one before the chunked output layer")
    args = ap.parse_args()
    preset = args.preset or ("nano" if args.before_after else "gpt2")
    limit = args.limit or (None if args.before_after else 40)

    from minigpt_cli.evals.completion import score_batched, score_simple
    from minigpt_cli.evals.hellaswag import encode, read_examples
    from minigpt_cli.model import GPT, preset_config
    from minigpt_cli.tokenizer import GPT2Tokenizer
    from minigpt_cli.train.machine import cpu_model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(preset_config(preset)).eval()
    tok = GPT2Tokenizer()
    examples = read_examples(args.data, limit)
    items, _, _, _ = encode(examples, tok, model.config.block_size, False, args.data)
    n = len(items)
    fed_simple = sum(len(it.endings) * (len(it.context) + max(map(len, it.endings)) - 1)
                     for it in items)
    fed_packed = sum(len(it.context) + sum(len(e) - 1 for e in it.endings) for it in items)
    cfg = model.config
    print(f"{preset} ({cfg.n_layer} layers of {cfg.n_embd}, vocabulary {cfg.vocab_size}, "
          f"context {cfg.block_size}; {model.num_params() / 1e6:.1f}M params, random weights), "
          f"float32, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, "
          f"{cpu_model()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"{n} items of {args.data.name}; tokens fed per item: straightforward "
          f"{fed_simple / n:.0f}, packed {fed_packed / n:.0f}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    bs = args.batch_size
    if args.before_after:
        ways = {"after": lambda its: score_batched(model, its, bs),
                "before": lambda its: score_before(model, its, bs)}
    else:
        ways = {"batched": lambda its: score_batched(model, its, bs),
                "one at a time": score_simple}
    new, old = ways
    with torch.no_grad():
        for fn in ways.values():  # warm-up
            fn(items[:2])
    rates: dict[str, list[float]] = {k: [] for k in ways}
    results = {}
    for r in range(args.repeats):
        for name, fn in (ways.items() if r % 2 == 0 else reversed(ways.items())):
            t0 = time.perf_counter()
            results[name] = fn(items)
            dt = time.perf_counter() - t0
            rates[name].append(n / dt)
            print(f"run {r + 1}: {name:>13}: {n / dt:7.2f} items/s ({dt:.1f} s)")
    a, b = argmins(results[new]), argmins(results[old])
    agree = sum(x == y for x, y in zip(a[0], b[0])), sum(x == y for x, y in zip(a[1], b[1]))
    diff = max(abs(x - y) / max(abs(y), 1e-30) for s, t in zip(results[new], results[old])
               for x, y in zip(s.sums, t.sums))
    med = {k: statistics.median(v) for k, v in rates.items()}
    per_run = [x / y for x, y in zip(rates[new], rates[old])]
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"median items/s: {new} {med[new]:.2f}, {old} {med[old]:.2f}; ratio "
          f"{med[new] / med[old]:.2f}x (per run: {', '.join(f'{x:.2f}x' for x in per_run)}; "
          f"batch size {bs})")
    print(f"same predictions: acc {agree[0]}/{n}, acc_norm {agree[1]}/{n}; summed losses agree "
          f"to {diff:.1e} (largest relative difference)")


if __name__ == "__main__":
    main()
