"""Build the calculator embedded in the package (`minigpt sample --model calculator`, the default
of `minigpt eval math`) from examples/calculator.toml. Run from the repository root:

    python scripts/build_calculator.py                       # the recipe's budget (60 minutes)
    python scripts/build_calculator.py --minutes 15          # a short version
    python scripts/build_calculator.py --from-run runs/calculator/run   # package a trained run

It is the product's own path, nothing special: `make-math` with the [make-math] table, `shard`
with the [shard] table (the math source: loss on the solution only, examples never cut),
`pretrain` with the [pretrain] table under a wall-clock budget of --minutes, then `eval math` on
the held-out test problems and as many training problems. The final weights are written to
src/minigpt_cli/assets/calculator.safetensors with, in the metadata's ``extra``: the eval table
by (operation, lengths) cell for test and train, the make-math settings and the sha256 of
test.jsonl (so `eval math` can rebuild the exact data set with no --data), the recipe, the
steps and the minutes trained.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "src" / "minigpt_cli" / "assets" / "calculator.safetensors"
RECIPE = ROOT / "examples" / "calculator.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", type=Path, default=RECIPE)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "calculator-build",
                    help="folder for the data, shards and run")
    ap.add_argument("--minutes", type=float, default=None,
                    help="training budget (default: the recipe's max_time)")
    ap.add_argument("--steps", type=int, default=None, help="max_steps (sets the schedule)")
    ap.add_argument("--from-run", type=Path, default=None,
                    help="skip training: package this run (its data is the recipe's "
                    "[make-math] out unless --data)")
    ap.add_argument("--data", type=Path, default=None, help="the make-math folder of --from-run")
    ap.add_argument("--eval-limit", type=int, default=None,
                    help="test problems scored (default: all of test.jsonl)")
    ap.add_argument("--out", type=Path, default=ASSET)
    args = ap.parse_args()

    from minigpt_cli.commands.train_display import TrainDisplay
    from minigpt_cli.mathgen.dataset import make_math
    from minigpt_cli.mathgen.settings import MakeMathSettings
    from minigpt_cli.model_file import load_checkpoint, save_checkpoint
    from minigpt_cli.settings import resolve
    from minigpt_cli.sharding.config import ShardSettings
    from minigpt_cli.sharding.run import run as shard
    from minigpt_cli.train.pretrain import run_pretrain
    from minigpt_cli.train.settings import PretrainSettings

    t0 = time.perf_counter()
    data = args.work / "data"
    if args.from_run is not None:
        run_dir = args.from_run
        data = args.data or Path(resolve(MakeMathSettings, "make-math", {}, args.recipe).out)
        steps_done, seconds = None, trained_seconds(run_dir)
    else:
        make_math(resolve(MakeMathSettings, "make-math", {"out": data}, args.recipe))
        shards = args.work / "shards"
        shard(resolve(ShardSettings, "shard", {"inputs": [str(data)], "out": shards},
                      args.recipe))
        run_dir = args.work / "run"
        flags = {"data": shards, "out": run_dir, "max_steps": args.steps,
                 "max_time": None if args.minutes is None else args.minutes * 60}
        s = resolve(PretrainSettings, "pretrain", flags, args.recipe)
        with TrainDisplay(live=False) as display:
            done = run_pretrain(s, display)
        steps_done, seconds = done.step, round(done.elapsed, 1)
    model, tok, ckpt = load_checkpoint(run_dir)
    table = score(model, tok, data, args.eval_limit)
    from minigpt_cli.mathgen.calculator import data_record

    extra = {"task": "calculator",
             "recipe": str(args.recipe.relative_to(ROOT)) if args.recipe.is_relative_to(ROOT)
             else str(args.recipe),
             "steps": steps_done if steps_done is not None else ckpt.step,
             "train_seconds": seconds, "minutes": args.minutes,
             "train_settings": run_settings(run_dir),
             "params": sum(p.numel() for p in model.parameters()),
             "data": data_record(data / "meta.json"), "eval": table}
    save_checkpoint(args.out, model, tok, step=ckpt.step, extra=extra)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, step {ckpt.step}) in "
          f"{(time.perf_counter() - t0) / 60:.1f} minutes")
    print(render(table))


def run_settings(run_dir: Path) -> dict:
    """The run's resolved training settings (the recipe plus any flags over it)."""
    import json

    f = run_dir / "settings.json"
    keep = ("model", "n_layer", "n_head", "n_embd", "block_size", "seq_len", "micro_batch",
            "lr", "warmup_steps", "max_time", "max_steps", "seed")
    return {k: v for k, v in json.loads(f.read_text()).items() if k in keep} if f.exists() \
        else {}


def trained_seconds(run_dir: Path) -> float | None:
    """The trainer's own clock at the newest checkpoint (its trainer_state.json)."""
    import json

    states = sorted(run_dir.glob("step_*/trainer_state.json"))
    if not states:
        return None
    elapsed = json.loads(states[-1].read_text()).get("elapsed")
    return None if elapsed is None else round(float(elapsed), 1)


def score(model, tok, data: Path, limit: int | None) -> dict:
    """`eval math` on the test set and as many training problems: exact match and step
    validity, overall and by (operation, lengths) cell."""
    from minigpt_cli.evals.arithmetic import MathOptions, MathTask

    train = 4000 if limit is None else limit  # the recipe's [eval] train_limit
    r = MathTask().run(model, tok, data, MathOptions(limit=limit, train_limit=train),
                       lambda *a: None)

    def compact(split: dict) -> dict:
        keep = ("n", "acc", "step_validity")
        return {"acc": split["acc"], "step_validity": split["step_validity"], "n": split["n"],
                "by_op": {k: {f: v[f] for f in keep} for k, v in split["by_op"].items()},
                "by_length": {k: {f: v[f] for f in keep} for k, v in split["by_length"].items()}}

    return {split: compact(v) for split, v in r["splits"].items()}


def render(table: dict) -> str:
    test, train = table["test"], table.get("train", {})
    lines = [f"{'cell':<8} {'n':>6} {'exact':>7} {'steps':>7} {'train':>7}"]
    for key in ("by_op", "by_length"):
        for cell, row in test[key].items():
            tr = train.get(key, {}).get(cell, {}).get("acc")
            lines.append(f"{cell:<8} {row['n']:>6} {pct(row['acc']):>7} "
                         f"{pct(row['step_validity']):>7} {pct(tr):>7}")
    return "\n".join(lines)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


if __name__ == "__main__":
    main()
