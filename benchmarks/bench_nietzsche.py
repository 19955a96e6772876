"""Next-character prediction on Nietzsche (issue 6's goal): a char model trained for a fixed
wall-clock budget with our recipe vs nanoGPT's "baby GPT on CPU" recipe, both through `minigpt
pretrain`'s code path, plus a small BPE model fine-tuned with `minigpt finetune`, all scored on
the same held-out text with the `loss` eval task.

    python benchmarks/bench_nietzsche.py                     # 5 minutes each, ~25 minutes
    python benchmarks/bench_nietzsche.py --only ours --minutes 2 --set lr=2e-3

The benchmark split: the 21 works in ../shared/data/nietzsche in file-name order, each cleaned
by the nietzsche source's ``clean_work`` (BOM and CRLF dropped; the Project Gutenberg header
through the START line plus a "Produced by" credit paragraph, and the footer from the END line
plus an "End of Project Gutenberg's ..." line, removed), joined with a blank line; the last 10%
of the characters is the validation text (7,560,723 characters, 756,072 of them validation).
The shards are made by the nietzsche source itself (``split=chunk``); the script checks that
their validation shard is exactly <|endoftext|> + that text.

Figures (validation text scored in non-overlapping windows of the model's context, every
character predicted once, as nanoGPT's estimate_loss does; the sliding-window figure, where
each character sees at least half a context, is given beside it):
- ours: examples/nietzsche-char.toml ([pretrain] table) under --max-time (the schedule runs on
  the budget); the budget counts from the first step, compilation included;
- baseline: nanoGPT's recipe (4 layers, 4 heads, 128 wide, context 64, batch 12, lr 1e-3,
  warmup 100, cosine to 1e-4 at step 2000 then flat, beta2 0.99, weight decay 0.1, dropout 0)
  for up to 6,000 steps, stopped by the same wall-clock budget;
- BPE: a 4-layer, 128-wide GPT-2-BPE model (no pretrained weights exist offline) pretrained
  from random init on the FineWeb sample for --bpe-pretrain-minutes, then `finetune`d on the
  Nietzsche training shards for --bpe-finetune-minutes; its bits/char on the same text, before
  and after fine-tuning.
The machine may be shared: the load average and thread count are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tomllib
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MINIGPT_SHARED_DATA", ROOT.parent / "shared" / "data"))
RECIPE = ROOT / "examples" / "nietzsche-char.toml"
NANOGPT_NATS = 1.69  # nanoGPT's baby recipe on this split, 5 minutes (issue 6)
GOAL_NATS = 1.45
BASELINE = {  # nanoGPT config/train_shakespeare_char.py with its README's CPU overrides
    "model": "baby", "micro_batch": 12, "seq_len": 64, "lr": 1e-3, "min_lr_ratio": 0.1,
    "warmup_steps": 100, "decay_steps": 2000, "max_steps": 6000, "beta1": 0.9, "beta2": 0.99,
    "weight_decay": 0.1, "grad_clip": 1.0, "dropout": 0.0, "schedule": "cosine",
}
RUN_KEYS = {"data", "out", "resume", "dry_run", "target_tokens", "cost_per_hour", "max_time"}


def benchmark_split(folder: Path) -> tuple[str, str]:
    from minigpt_cli.sources.nietzsche import clean_work, corpus_text, split_chunk

    works = [clean_work(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.txt"))]
    train, val = split_chunk(corpus_text(works), 0.1)
    return train, val


def make_shards(tokenizer: str, out: Path, val: str) -> Path:
    from minigpt_cli.shard_folder import open_shard_folder
    from minigpt_cli.sharding.config import ShardSettings
    from minigpt_cli.sharding.run import run
    from minigpt_cli.shards import open_shard

    run(ShardSettings(source="nietzsche", out=out, tokenizer=tokenizer, workers=0,
                      options={"from_dir": str(SHARED / "nietzsche"), "split": "chunk"}))
    tok = open_shard_folder(out).tokenizer
    got = np.asarray(open_shard(out / "val_000000.bin"))
    if got.tolist() != [tok.eot_id, *tok.encode(val)]:
        raise SystemExit(f"{out}: the validation shard is not the benchmark's validation text")
    return out


def fineweb_shards(out: Path) -> Path:
    from minigpt_cli.sharding.config import ShardSettings
    from minigpt_cli.sharding.run import run

    run(ShardSettings(source="jsonl", inputs=[str(SHARED / "fineweb" / "fineweb_subset_300.jsonl")],
                      out=out, workers=0, shard_size=20_000, stages=[]))
    return out


def recipe(path: Path, overrides: list[str]) -> dict:
    """The [pretrain] table of the recipe, with --set key=value overrides (JSON values)."""
    table = tomllib.loads(path.read_text())["pretrain"]
    for item in overrides:
        key, _, value = item.partition("=")
        try:
            table[key.strip()] = json.loads(value)
        except ValueError:
            table[key.strip()] = value
    return {k: v for k, v in table.items() if k not in RUN_KEYS}


def run_metrics(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    return {"steps": steps[-1]["step"], "tokens": steps[-1]["tokens_seen"],
            "tok_per_s": statistics.median(r["tok_per_s"] for r in steps[5:] or steps),
            "train_loss": statistics.fmean(r["loss"] for r in steps[-20:])}


def score(checkpoint: Path, val_file: Path, sliding: bool = True) -> dict:
    """The loss eval on the validation text: non-overlapping windows of the model's context,
    and (``sliding``) windows advancing by half a context."""
    from minigpt_cli.evals.loss import LossOptions, LossTask
    from minigpt_cli.loading import load_model

    model, tok, _ = load_model(checkpoint)
    T = model.config.block_size
    out = {"sliding_nats_per_char": math.nan}
    for name, stride in (("", T), ("sliding_", T // 2))[: 2 if sliding else 1]:
        r = LossTask().run(model, tok, val_file, LossOptions(seq_len=T, stride=stride,
                                                              batch_size=32), lambda p: None)
        m = r["metrics"]
        out |= {f"{name}nats_per_char": m["bits_per_char"] * math.log(2),
                f"{name}bits_per_char": m["bits_per_char"], f"{name}bits_per_byte":
                m["bits_per_byte"]}
    return out


def pretrain(name: str, settings: dict, data: Path, out: Path, budget: float) -> dict:
    from minigpt_cli.train.pretrain import run_pretrain
    from minigpt_cli.train.settings import PretrainSettings

    s = PretrainSettings(**{"eval_every": 0, "sample_every": 0, "checkpoint_every": 0,
                            "keep_last": 1, "device": "cpu", "dtype": "float32", **settings,
                            "data": data, "out": out, "max_time": budget})
    t0 = time.perf_counter()
    done = run_pretrain(s)
    wall = time.perf_counter() - t0
    print(f"  {name}: {done.step} steps, stopped by {done.reason}, {wall:.0f}s", flush=True)
    return {"name": name, "wall_s": wall, "train_s": done.elapsed, "checkpoint":
            done.last_checkpoint, **run_metrics(out)}


def bpe(work: Path, val_file: Path, val: str, pre_min: float, ft_min: float) -> list[dict]:
    from minigpt_cli.finetune.run import run_finetune
    from minigpt_cli.finetune.settings import FinetuneSettings

    web = fineweb_shards(work / "fineweb-gpt2")
    nz = make_shards("gpt2", work / "nietzsche-gpt2", val)
    shape = {"model": "baby", "block_size": 128, "seq_len": 128, "micro_batch": 8, "lr": 2e-3,
             "warmup_steps": 20, "beta2": 0.99, "min_lr_ratio": 0.1}
    pre = pretrain("BPE pretrain on FineWeb", shape, web, work / "bpe-pre", pre_min * 60)
    rows = [{**pre, **score(pre["checkpoint"], val_file, sliding=False)}]
    s = FinetuneSettings(from_checkpoint=pre["checkpoint"], data=nz, out=work / "bpe-ft",
                         max_time=ft_min * 60, lr=1e-3, warmup_steps=20, dropout=0.0,
                         micro_batch=8, seq_len=128, eval_every=100, eval_batches=8,
                         sample_every=0, checkpoint_every=0, keep_last=1, device="cpu",
                         dtype="float32")
    t0 = time.perf_counter()
    done = run_finetune(s)
    print(f"  BPE finetune: {done.step} steps, stopped by {done.reason}", flush=True)
    ft = {"name": "BPE + finetune on Nietzsche", "wall_s": time.perf_counter() - t0,
          "train_s": done.elapsed, **run_metrics(work / "bpe-ft")}
    rows.append({**ft, **score(done.last_checkpoint, val_file, sliding=False)})
    return rows


def show(rows: list[dict]) -> None:
    head = (f"{'run':34} {'steps':>6} {'tokens':>10} {'tok/s':>7} {'train s':>7} "
            f"{'nats/char':>9} {'bits/char':>9} {'bits/byte':>9} {'sliding nats/char':>17}")
    print(head)
    for r in rows:
        print(f"{r['name']:34} {r['steps']:>6} {r['tokens']:>10,} {r['tok_per_s']:>7,.0f} "
              f"{r['train_s']:>7.0f} {r['nats_per_char']:>9.4f} {r['bits_per_char']:>9.4f} "
              f"{r['bits_per_byte']:>9.4f} {r['sliding_nats_per_char']:>17.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="budget of each char run")
    ap.add_argument("--only", default="ours,baseline,bpe", help="comma-separated subset")
    ap.add_argument("--recipe", type=Path, default=RECIPE)
    ap.add_argument("--set", action="append", default=[], help="override a recipe key=value")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: 1 when the "
                    "machine is busy -- load average above half the cores -- else all)")
    ap.add_argument("--bpe-pretrain-minutes", type=float, default=2.0)
    ap.add_argument("--bpe-finetune-minutes", type=float, default=3.0)
    ap.add_argument("--work", type=Path, default=None, help="keep runs here (default: temp)")
    args = ap.parse_args()
    from minigpt_cli import allocator

    allocator.keep_large_buffers_mapped()  # as every minigpt command does
    folder = SHARED / "nietzsche"
    if not folder.is_dir():
        raise SystemExit(f"needs the Nietzsche texts in {folder}")
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    threads = args.threads or (1 if load > cores / 2 else cores)
    torch.set_num_threads(threads)
    only = set(args.only.split(","))
    train, val = benchmark_split(folder)
    print(f"split: {len(train) + len(val):,} characters, validation {len(val):,} (last 10%); "
          f"torch threads {threads} of {cores} cores, load average {load:.1f} at start",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        val_file = work / "val.txt"
        val_file.write_text(val, encoding="utf-8")
        rows = []
        if only & {"ours", "baseline"}:
            char = make_shards("char", work / "nietzsche-char", val)
            budget = args.minutes * 60
            if "baseline" in only:
                r = pretrain("nanoGPT baby recipe (baseline)", BASELINE, char,
                             work / "baseline", budget)
                rows.append({**r, **score(r["checkpoint"], val_file)})
            if "ours" in only:
                settings = recipe(args.recipe, args.set)
                r = pretrain(f"ours ({args.recipe.name})", settings, char, work / "ours", budget)
                rows.append({**r, **score(r["checkpoint"], val_file)})
        if "bpe" in only:
            rows += bpe(work, val_file, val, args.bpe_pretrain_minutes, args.bpe_finetune_minutes)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f} (1 min)")
        show(rows)
        by = {r["name"].split(" ")[0]: r for r in rows}
        if "ours" in by and "nanoGPT" in by:
            o, b = by["ours"], by["nanoGPT"]
            print(f"ours / baseline: nats/char {o['nats_per_char'] / b['nats_per_char']:.3f}, "
                  f"tokens {o['tokens'] / b['tokens']:.2f}x, tok/s "
                  f"{o['tok_per_s'] / b['tok_per_s']:.2f}x")
        if "ours" in by:
            ok = by["ours"]["nats_per_char"] <= GOAL_NATS
            print(f"goal <= {GOAL_NATS} nats/char in {args.minutes:g} minutes: "
                  f"{'met' if ok else 'NOT met'} ({by['ours']['nats_per_char']:.4f}); nanoGPT's "
                  f"figure from the issue: {NANOGPT_NATS}")


if __name__ == "__main__":
    main()
