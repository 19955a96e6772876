"""Architecture switches at equal wall-clock (issue 17): a GPT-2-BPE language model trained
from scratch on the Nietzsche benchmark split (the split of bench_nietzsche.py, GPT-2
tokenizer) for the same budget with each switch set, 2 seeds each, alternating; every run is
scored on the same held-out text (the last 10% of the corpus) with the `loss` eval task.

    python benchmarks/bench_arch.py                      # gpt2 vs best, 10 min each, 2 seeds
    python benchmarks/bench_arch.py --variants all --minutes 3 --seeds 1    # the ablation
    python benchmarks/bench_arch.py --minutes 0.2 --seeds 1 --variants gpt2,best   # smoke

The shape (4 layers, 4 heads, 256 wide, context 256, 8 x 256 tokens a step, ~16M parameters
with the tied 50,304-row embedding) and the recipe (Muon for the blocks, AdamW lr 3e-3 for the
rest, wsd decaying over the whole budget, proj_init zero) are held fixed; only the model's
switches change. Gains per token and per second are both visible: the table gives the tokens
seen and tokens/s beside the validation loss (nats per GPT-2 token) and bits per character.
The goal: the best set beats GPT-2's architecture by >= 0.05 nats in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nietzsche import SHARED, benchmark_split, make_shards, pretrain  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {"model": "baby", "n_layer": 4, "n_head": 4, "n_embd": 256, "block_size": 256,
         "seq_len": 256, "micro_batch": 8, "optimizer": "muon", "muon_lr": 0.02, "lr": 3e-3,
         "schedule": "wsd", "decay_share": 1.0, "min_lr_ratio": 0.02, "beta2": 0.99,
         "weight_decay": 0.1, "grad_clip": 1.0, "proj_init": "zero", "dtype": "float32"}
# One switch at a time against GPT-2's architecture, then the combinations.
VARIANTS: dict[str, dict] = {
    "gpt2": {},
    "rope": {"positions": "rope"},
    "rmsnorm": {"norm": "rmsnorm"},
    "qk_norm": {"qk_norm": True},
    "relu2": {"mlp": "relu2"},
    "swiglu": {"mlp": "swiglu"},
    "no_bias": {"bias": False},
    "untied": {"tie_embeddings": False},
    "softcap": {"logit_softcap": 15.0},
    "llama": {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
    "best": {"positions": "rope", "norm": "rmsnorm", "qk_norm": True, "mlp": "relu2",
             "bias": False, "logit_softcap": 15.0},
}
GOAL_NATS = 0.05


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def evaluate(checkpoint: Path, val_file: Path) -> dict:
    """Validation loss (nats per GPT-2 token) and bits per character on the held-out text, in
    non-overlapping windows of the model's context; and the parameter count."""
    from minigpt_cli.evals.loss import LossOptions, LossTask
    from minigpt_cli.loading import load_model

    model, tok, _ = load_model(checkpoint)
    T = model.config.block_size
    m = LossTask().run(model, tok, val_file, LossOptions(seq_len=T, stride=T, batch_size=32),
                       lambda p: None)["metrics"]
    return {"loss": m["loss"], "bits_per_char": m["bits_per_char"],
            "params": sum(p.numel() for p in model.parameters())}


def table(rows: list[dict], names: list[str]) -> list[dict]:
    base = statistics.fmean(r["loss"] for r in rows if r["variant"] == "gpt2") if any(
        r["variant"] == "gpt2" for r in rows) else None
    out = []
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        if not mine:
            continue
        loss = statistics.fmean(r["loss"] for r in mine)
        out.append({"variant": name, "switches": VARIANTS[name], "seeds": len(mine),
                    "params": mine[0]["params"], "loss": loss,
                    "loss_per_seed": [r["loss"] for r in mine],
                    "bits_per_char": statistics.fmean(r["bits_per_char"] for r in mine),
                    "tokens": statistics.fmean(r["tokens"] for r in mine),
                    "tok_per_s": statistics.median(r["tok_per_s"] for r in mine),
                    "delta": None if base is None else loss - base})
    return out


def show(summary: list[dict]) -> None:
    print(f"\n{'variant':9} {'params':>11} {'seeds':>5} {'val nats/tok':>12} {'vs gpt2':>8} "
          f"{'bits/char':>9} {'tokens':>10} {'tok/s':>7}  per seed")
    for s in summary:
        delta = "" if s["delta"] is None else f"{s['delta']:+.4f}"
        seeds = ", ".join(f"{v:.4f}" for v in s["loss_per_seed"])
        print(f"{s['variant']:9} {s['params']:>11,} {s['seeds']:>5} {s['loss']:>12.4f} "
              f"{delta:>8} {s['bits_per_char']:>9.4f} {s['tokens']:>10,.0f} "
              f"{s['tok_per_s']:>7,.0f}  {seeds}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="budget of each run")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--variants", default="gpt2,best",
                    help=f"comma-separated, or 'all' ({', '.join(VARIANTS)})")
    ap.add_argument("--set", action="append", default=[], help="override a shape/recipe "
                    "key=value (JSON value) for every run")
    ap.add_argument("--work", type=Path, default=None, help="keep runs here (default: temp)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    from minigpt_cli import allocator

    allocator.keep_large_buffers_mapped()  # as every minigpt command does
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    folder = SHARED / "nietzsche"
    if not folder.is_dir():
        raise SystemExit(f"needs the Nietzsche texts in {folder}")
    shape = dict(SHAPE)
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            shape[key.strip()] = json.loads(value)
        except ValueError:
            shape[key.strip()] = value
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    print(f"CPU: {cpu_model()}, {cores} cores, torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} at start; {args.minutes:g} min per run, "
          f"{args.seeds} seed(s), variants {', '.join(names)}", flush=True)
    _, val = benchmark_split(folder)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        val_file = work / "val.txt"
        val_file.write_text(val, encoding="utf-8")
        data = make_shards("gpt2", work / "nietzsche-gpt2", val)
        for seed in range(args.seeds):
            order = names if seed % 2 == 0 else names[::-1]  # alternate: drift hits both ends
            for name in order:
                out = work / f"{name}-seed{seed}"
                t0 = time.perf_counter()
                r = pretrain(f"{name} seed {seed}", {**shape, **VARIANTS[name], "seed": seed},
                             data, out, args.minutes * 60)
                m = evaluate(r["checkpoint"], val_file)
                rows.append({"variant": name, "seed": seed, **m, "tokens": r["tokens"],
                             "tok_per_s": r["tok_per_s"], "steps": r["steps"],
                             "wall_s": time.perf_counter() - t0})
                print(f"    val {rows[-1]['loss']:.4f} nats/token, "
                      f"{m['bits_per_char']:.4f} bits/char", flush=True)
    summary = table(rows, names)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (1 min)")
    show(summary)
    by = {s["variant"]: s for s in summary}
    if "gpt2" in by and len(by) > 1:
        best = min((s for s in summary if s["variant"] != "gpt2"), key=lambda s: s["loss"])
        gain = by["gpt2"]["loss"] - best["loss"]
        print(f"best: {best['variant']} beats gpt2 by {gain:.4f} nats "
              f"(goal >= {GOAL_NATS}: {'met' if gain >= GOAL_NATS else 'NOT met'})")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "minutes": args.minutes,
                                         "seeds": args.seeds, "shape": shape, "rows": rows,
                                         "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
