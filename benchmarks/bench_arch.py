"""Architecture switches at equal wall-clock: a small GPT-2-BPE model trained for the same time
with GPT-2's architecture and with each switch (docs/model.md), one at a time and combined, all
scored on the same validation tokens (issue 17, target (b): the best set beats GPT-2 by >= 0.05
nats of validation loss in the same run, on every seed).

    python benchmarks/bench_arch.py                       # 10 minutes a run, 2 seeds: ~4.5 h
    python benchmarks/bench_arch.py --minutes 10 --seeds 2 --sets gpt2,rope,modern
    python benchmarks/bench_arch.py --quick               # a 2-layer model, 6 s a run (a check)

Every run goes through `minigpt pretrain`'s code path (`run_pretrain`) with the same recipe:
AdamW, warmup over 5% then cosine to 10% on the time budget (``--max-time`` without
``--max-steps``), 8 x 256-token micro-batches, float32, on the GPT-2 tokenization of the
Nietzsche corpus (the benchmark split of bench_nietzsche.py: the last 10% is validation) or of
the FineWeb sample (``--data fineweb``). The loss is measured once at the end, on the same
``--eval-batches`` windows of the validation shard for every run. Runs are taken round-robin
(every set once per seed, seeds in turn) so a slow phase of the machine spreads over all sets.
The table gives the mean validation loss over seeds, each seed's, the difference to GPT-2's,
the median tokens/s and the steps done; the CPU model, thread count and load average are
printed with it (the figures mean little on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

# the switches: GPT-2, each alone, and combinations (two of them presets, model_config.py)
SETS: dict[str, dict] = {
    "gpt2": {},
    "rope": {"positions": "rope"},
    "rmsnorm": {"norm": "rmsnorm"},
    "qk_norm": {"qk_norm": True},
    "relu2": {"mlp": "relu2"},
    "swiglu": {"mlp": "swiglu"},
    "no-bias": {"bias": False},
    "untied": {"tie_embeddings": False},
    "softcap": {"logit_softcap": 15.0},
    "rope-qk": {"positions": "rope", "qk_norm": True},  # the Nietzsche char recipe's pair
    "llama": {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
    "modern": {"positions": "rope", "norm": "rmsnorm", "qk_norm": True, "mlp": "relu2",
               "bias": False, "tie_embeddings": False, "logit_softcap": 15.0},
}
SHAPE = {"model": "baby", "n_layer": 6, "n_head": 4, "n_embd": 256, "block_size": 256}
QUICK_SHAPE = {"model": "nano", "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64}
RECIPE = {"micro_batch": 8, "lr": 1e-3, "min_lr_ratio": 0.1, "beta2": 0.99,
          "weight_decay": 0.1, "grad_clip": 1.0, "dropout": 0.0, "schedule": "cosine"}
GOAL = 0.05  # nats of validation loss the best set must gain over GPT-2's architecture


def shards(kind: str, work: Path) -> Path:
    import bench_nietzsche as B

    if kind == "fineweb":
        return B.fineweb_shards(work / "fineweb-gpt2")
    _train, val = B.benchmark_split(B.SHARED / "nietzsche")
    return B.make_shards("gpt2", work / "nietzsche-gpt2", val)


def train(name: str, switches: dict, seed: int, data: Path, out: Path, seconds: float,
          shape: dict, eval_batches: int, dtype: str = "float32") -> dict:
    from minigpt_cli.model_file import read_checkpoint
    from minigpt_cli.train.pretrain import run_pretrain
    from minigpt_cli.train.settings import PretrainSettings

    shutil.rmtree(out, ignore_errors=True)  # a fresh run, also in a reused --work folder
    s = PretrainSettings(**{**RECIPE, **shape, **switches, "seq_len": shape["block_size"],
                            "seed": seed, "data": data, "out": out, "max_time": seconds,
                            "eval_every": 0, "eval_batches": eval_batches, "sample_every": 0,
                            "checkpoint_every": 0, "keep_last": 1, "device": "cpu",
                            "dtype": dtype})
    done = run_pretrain(s)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]
    steps = [r for r in rows if "loss" in r]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    import torch

    from minigpt_cli.model import GPT

    config = read_checkpoint(done.last_checkpoint, load_tensors=False).config
    with torch.device("meta"):
        params = GPT(config).num_params()
    return {"set": name, "seed": seed, "val_loss": val[-1], "steps": done.step,
            "tok_per_s": statistics.median(r["tok_per_s"] for r in steps[3:] or steps),
            "params": params, "train_s": done.elapsed}


def table(results: list[dict], order: list[str]) -> list[str]:
    """One row per set: mean validation loss over its seeds and the mean difference to GPT-2's
    on those same seeds (a set run on fewer seeds is compared seed for seed)."""
    gpt2 = {r["seed"]: r["val_loss"] for r in results if r["set"] == "gpt2"}
    lines = [f"{'set':10} {'params':>11} {'val loss':>9} {'vs gpt2':>8} {'per seed':>22} "
             f"{'tok/s':>8} {'steps':>6}"]
    for name in order:
        rs = [r for r in results if r["set"] == name]
        if not rs:
            continue
        mean = statistics.fmean(r["val_loss"] for r in rs)
        paired = [r["val_loss"] - gpt2[r["seed"]] for r in rs if r["seed"] in gpt2]
        delta = f"{statistics.fmean(paired):+.4f}" if paired else "-"
        seeds = " ".join(f"{r['val_loss']:.4f}" for r in rs)
        lines.append(f"{name:10} {rs[0]['params']:>11,} {mean:>9.4f} {delta:>8} {seeds:>22} "
                     f"{statistics.median(r['tok_per_s'] for r in rs):>8,.0f} "
                     f"{round(statistics.fmean(r['steps'] for r in rs)):>6}")
    return lines


def verdict(results: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in results})
    by = {(r["set"], r["seed"]): r["val_loss"] for r in results}
    if not all(("gpt2", s) in by for s in seeds):
        return "no GPT-2 runs: no verdict"
    gains = {}
    for name in {r["set"] for r in results} - {"gpt2"}:
        if all((name, s) in by for s in seeds):
            gains[name] = min(by[("gpt2", s)] - by[(name, s)] for s in seeds)
    if not gains:
        return "no other set: no verdict"
    best = max(gains, key=gains.get)
    met = "met" if gains[best] >= GOAL else "not met"
    return (f"best set: {best}, at least {gains[best]:+.4f} nats below GPT-2 on each of "
            f"{len(seeds)} seed(s); target >= {GOAL} on every seed: {met}")


def write_json(path: Path, minutes: float, shape: dict, dtype: str, results: list[dict]) -> None:
    from minigpt_cli.train.machine import cpu_model

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"cpu": cpu_model(), "minutes": minutes, "shape": shape,
                               "recipe": {**RECIPE, "dtype": dtype}, "results": results},
                              indent=2) + "\n")
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget of each run")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated: {', '.join(SETS)}")
    ap.add_argument("--one-seed", default="",
                    help="comma-separated sets run on the first seed only (an ablation's "
                    "single-switch rows when time is short; the verdict needs every seed)")
    ap.add_argument("--data", choices=("nietzsche", "fineweb"), default="nietzsche")
    ap.add_argument("--eval-batches", type=int, default=100,
                    help="validation micro-batches of 8 windows (the same for every run)")
    ap.add_argument("--dtype", choices=("float32", "auto", "bfloat16"), default="float32",
                    help="the trainer's --dtype for every run (auto: bf16 where this CPU's bf16 "
                    "matrix products measure fast)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    ap.add_argument("--quick", action="store_true",
                    help="a 2-layer 64-wide model, 0.1 minute a run, gpt2/rope/modern, 1 seed")
    ap.add_argument("--work", type=Path, default=None, help="keep shards and runs here")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    from minigpt_cli import allocator

    allocator.keep_large_buffers_mapped()  # as every minigpt command does
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown set(s) {unknown}; known: {', '.join(SETS)}")
    one_seed = {n.strip() for n in args.one_seed.split(",") if n.strip()}
    if one_seed - set(names):
        raise SystemExit(f"--one-seed names set(s) not in --sets: {sorted(one_seed - set(names))}")
    shape, minutes, seeds, eval_batches = SHAPE, args.minutes, args.seeds, args.eval_batches
    if args.quick:
        shape, minutes, seeds, eval_batches = QUICK_SHAPE, 0.1, 1, 4
        if args.sets == ",".join(SETS):
            names = ["gpt2", "rope", "modern"]
    import torch

    from minigpt_cli.train.machine import cpu_model

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_arch."))
    work.mkdir(parents=True, exist_ok=True)
    data = shards(args.data, work)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_model()}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}; "
          f"{minutes:g} min a run, {seeds} seed(s), data {args.data}, dtype {args.dtype}, "
          f"shape {shape}",
          flush=True)
    results = []
    for seed in range(1337, 1337 + seeds):
        for name in names:
            if seed > 1337 and name in one_seed:
                continue
            t0 = time.perf_counter()
            r = train(name, SETS[name], seed, data, work / f"run-{name}-{seed}", minutes * 60,
                      shape, eval_batches, args.dtype)
            results.append(r)
            print(f"  {name} seed {seed}: val {r['val_loss']:.4f}, {r['steps']} steps, "
                  f"{r['tok_per_s']:,.0f} tok/s ({time.perf_counter() - t0:.0f} s)", flush=True)
            if args.json:  # after every run, so a stopped benchmark keeps what it measured
                write_json(args.json, minutes, shape, args.dtype, results)
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    print("\n".join(table(results, names)))
    print(verdict(results))


if __name__ == "__main__":
    main()
