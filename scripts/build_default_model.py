"""Build the tiny character-level Nietzsche model embedded in the package (the no-network default
for `minigpt sample` and `minigpt eval`). Run from the repository root with ../shared/data
beside it:

    python scripts/build_default_model.py --minutes 12
    python scripts/build_default_model.py --steps 8000 --minutes 30   # steps set the schedule

It is the product's own path, nothing special: the `nietzsche` source (from the local copies in
../shared/data/nietzsche, verified against their pinned checksums, Gutenberg header and footer
stripped, the last 10% of the characters held out) sharded with the char tokenizer, then
`minigpt pretrain`'s trainer with the recipe of examples/nietzsche-char.toml under a wall-clock
budget of --minutes (with --steps, the steps set the LR schedule, which makes the model
independent of the machine's speed, and --minutes is only a hard stop). The final weights are
written, with their held-out loss, to
src/minigpt_cli/assets/nietzsche-char-tiny.safetensors.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "src" / "minigpt_cli" / "assets" / "nietzsche-char-tiny.safetensors"
RECIPE = ROOT / "examples" / "nietzsche-char.toml"
RUN_KEYS = {"data", "out", "max_time", "resume"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "nietzsche")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--steps", type=int, default=None, help="max_steps (sets the schedule)")
    ap.add_argument("--recipe", type=Path, default=RECIPE)
    ap.add_argument("--out", type=Path, default=ASSET)
    args = ap.parse_args()

    from minigpt_cli.commands.train_display import TrainDisplay
    from minigpt_cli.model_file import load_checkpoint, save_checkpoint
    from minigpt_cli.sharding.config import ShardSettings
    from minigpt_cli.sharding.run import run as shard
    from minigpt_cli.train.pretrain import run_pretrain
    from minigpt_cli.train.settings import PretrainSettings

    recipe = {k: v for k, v in tomllib.loads(args.recipe.read_text())["pretrain"].items()
              if k not in RUN_KEYS}
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        shard(ShardSettings(source="nietzsche", out=shards, tokenizer="char", workers=0,
                            options={"from_dir": str(args.data), "split": "chunk"}))
        steps = {"max_steps": args.steps} if args.steps else {}
        settings = PretrainSettings(**recipe, **steps, data=shards, out=Path(tmp) / "run",
                                    max_time=args.minutes * 60)
        with TrainDisplay(live=False) as display:
            done = run_pretrain(settings, display)
        model, tok, _ = load_checkpoint(done.last_checkpoint)
        nats = held_out_nats_per_char(model, tok, shards)
        extra = {"trained_on": "21 Nietzsche works (Project Gutenberg), the nietzsche source "
                 "with split=chunk (last 10% of the characters held out)",
                 "recipe": str(args.recipe.relative_to(ROOT)) if args.recipe.is_relative_to(ROOT)
                 else str(args.recipe), "minutes": args.minutes, "steps": done.step,
                 "seconds": round(done.elapsed, 1),
                 "val_nats_per_char": nats, "val_scope": SCOPE}
        save_checkpoint(args.out, model, tok, step=done.step, extra=extra)
    print(f"wrote {args.out}: {done.step} steps in {done.elapsed / 60:.1f} minutes, "
          f"{nats:.4f} nats/char on {SCOPE}")


SCOPE = ("the whole held-out text (val_000000.bin), windows of the model's context, every "
         "character predicted once")


def held_out_nats_per_char(model, tok, shards: Path) -> float:
    """The benchmark's figure (benchmarks/bench_nietzsche.py): the `loss` eval over the whole
    validation shard, not the trainer's few in-loop eval batches."""
    from minigpt_cli.evals.loss import LossOptions, LossTask

    T = model.config.block_size
    r = LossTask().run(model, tok, shards, LossOptions(seq_len=T, stride=T, batch_size=32),
                       lambda *a: None)
    return r["metrics"]["bits_per_char"] * math.log(2)


if __name__ == "__main__":
    main()
