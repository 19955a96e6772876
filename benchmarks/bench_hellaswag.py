"""HellaSwag scoring throughput: batched (packed) vs the straightforward one-item-at-a-time way.

Both score the same items with the same model in the same process: the `gpt2` preset (124M,
random weights: throughput does not depend on the weights) in float32 on the CPU, over the
first --limit items of the 500-item sample. Runs alternate between the two ways so that
machine load drifts affect both; medians over --repeats runs. The predictions of the two are
compared too (they must agree).

    python benchmarks/bench_hellaswag.py --limit 40 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("MINIGPT_SHARED_DATA", ROOT.parent / "shared" / "data")) / \
    "hellaswag" / "hellaswag_val_sample500.jsonl"


def argmins(scores) -> tuple[list[int], list[int]]:
    acc = [min(range(len(s.sums)), key=s.sums.__getitem__) for s in scores]
    norm = [min(range(len(s.means)), key=s.means.__getitem__) for s in scores]
    return acc, norm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SAMPLE)
    ap.add_argument("--limit", type=int, default=40, help="items scored per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16, help="items per batched forward")
    ap.add_argument("--preset", default="gpt2")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()

    from minigpt_cli.evals.completion import score_batched, score_simple
    from minigpt_cli.evals.hellaswag import encode, read_examples
    from minigpt_cli.model import GPT, preset_config
    from minigpt_cli.tokenizer import GPT2Tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(preset_config(args.preset)).eval()
    tok = GPT2Tokenizer()
    examples = read_examples(args.data, args.limit)
    items, _, _, _ = encode(examples, tok, model.config.block_size, False, args.data)
    n = len(items)
    fed_simple = sum(len(it.endings) * (len(it.context) + max(map(len, it.endings)) - 1)
                     for it in items)
    fed_packed = sum(len(it.context) + sum(len(e) - 1 for e in it.endings) for it in items)
    print(f"{args.preset} ({model.num_params() / 1e6:.1f}M params, random weights), float32, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    print(f"{n} items of {args.data.name}; tokens fed per item: straightforward "
          f"{fed_simple / n:.0f}, packed {fed_packed / n:.0f}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    with torch.no_grad():
        score_batched(model, items[:2], args.batch_size)  # warm-up
        score_simple(model, items[:1])
    rates: dict[str, list[float]] = {"batched": [], "one at a time": []}
    results = {}
    for r in range(args.repeats):
        for name, fn in (("batched", lambda: score_batched(model, items, args.batch_size)),
                         ("one at a time", lambda: score_simple(model, items))):
            t0 = time.perf_counter()
            results[name] = fn()
            dt = time.perf_counter() - t0
            rates[name].append(n / dt)
            print(f"run {r + 1}: {name:>13}: {n / dt:7.2f} items/s ({dt:.1f} s)")
    a, b = argmins(results["batched"]), argmins(results["one at a time"])
    agree = sum(x == y for x, y in zip(a[0], b[0])), sum(x == y for x, y in zip(a[1], b[1]))
    med = {k: statistics.median(v) for k, v in rates.items()}
    per_run = [x / y for x, y in zip(rates["batched"], rates["one at a time"])]
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"median items/s: batched {med['batched']:.2f}, one at a time "
          f"{med['one at a time']:.2f}; ratio {med['batched'] / med['one at a time']:.2f}x "
          f"(per run: {', '.join(f'{x:.2f}x' for x in per_run)}; batch size {args.batch_size})")
    print(f"same predictions: acc {agree[0]}/{n}, acc_norm {agree[1]}/{n}")


if __name__ == "__main__":
    main()
