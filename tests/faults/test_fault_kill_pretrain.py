"""`kill -9` of `minigpt pretrain` at seeded points (mid optimizer step, mid checkpoint), then the
same command with --resume auto: the losses of every later step and the final weights are
bitwise those of a run that was never interrupted -- with the settings users run with (no
--peak-flops, so the start-up FLOP/s measurement runs; the default dtype) and with dropout,
Muon, gradient accumulation, the guard's rollback, bf16 autocast, DDP (2 gloo processes) and a
--max-time budget."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from test_train_support import char_shards, cli_env, read_metrics

KILLER = Path(__file__).with_name("killer.py")
SEED = 20261202
# what users run: no --peak-flops, no --dtype (auto); tiny sizes
BASE = ["--model", "nano", "--seq-len", "32", "--micro-batch", "4", "--device", "cpu",
        "--lr", "3e-3", "--warmup-steps", "2", "--eval-every", "3", "--sample-every", "0",
        "--checkpoint-every", "3", "--keep-last", "1000"]

# name -> (extra flags, steps, kill points as (point, first, last) ranges for the seeded draw)
SCENARIOS = {
    "dropout": (["--dropout", "0.1"], 10, [("step", 5, 9), ("checkpoint", 2, 3)]),
    "muon-accumulation": (["--optimizer", "muon", "--tokens-per-step", "512",
                           "--dropout", "0.1"], 8, [("step", 4, 7)]),
    # spikes in steps 12-14 roll back to the step-9 checkpoint (the guard needs 10 steps of
    # history); the kill comes after the replay, so the run resumes with the guard's state
    "guard-rollback": (["--inject-faults", "spike@12-14:50", "--guard-spike-steps", "3"], 20,
                       [("step", 17, 19)]),
    "bf16": (["--dtype", "bfloat16", "--dropout", "0.1"], 8, [("step", 4, 7)]),
}


def _draw(ranges: list[tuple[str, int, int]], name: str) -> tuple[str, int]:
    rng = random.Random(f"{SEED}:{name}")
    point, lo, hi = rng.choice(ranges)
    return point, rng.randint(lo, hi)


def _run(args: list[str], kill: tuple[str, int] | None = None, torchrun: bool = False,
         timeout: float = 300) -> subprocess.CompletedProcess:
    env = cli_env()
    if kill:
        env["MINIGPT_TEST_KILL"] = f"{kill[0]}:{kill[1]}"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2"] if torchrun else [sys.executable]
    return subprocess.run([*launcher, str(KILLER), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _losses(run: Path) -> dict[int, float]:
    out: dict[int, float] = {}
    for m in read_metrics(run):
        if "loss" in m:
            out[m["step"]] = m["loss"]  # a replayed step (rollback, resume): the last one
    return out


def _weights(run: Path, step: int) -> dict:
    return load_file(str(run / f"step_{step:06d}" / "model.safetensors"))


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def _check_kill_and_resume(tmp_path: Path, name: str, flags: list[str], steps: int,
                           ranges, torchrun: bool = False) -> None:
    data = char_shards(tmp_path / "data")
    args = ["pretrain", "--data", str(data), *BASE, *flags, "--max-steps", str(steps)]
    full, cut = tmp_path / "full", tmp_path / "cut"
    r = _run([*args, "--out", str(full)], torchrun=torchrun)
    assert r.returncode == 0, r.stdout + r.stderr
    kill = _draw(ranges, name)
    r = _run([*args, "--out", str(cut)], kill=kill, torchrun=torchrun)
    if torchrun:
        assert r.returncode != 0, f"the run was not killed at {kill}"
    else:
        assert r.returncode == -signal.SIGKILL, f"not killed at {kill}: {r.stderr[-2000:]}"
    assert not (cut / f"step_{steps:06d}").exists()
    r = _run([*args, "--out", str(cut), "--resume", "auto"], torchrun=torchrun)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resumed from" in r.stdout, f"nothing to resume after the kill at {kill}"
    a, b = _losses(full), _losses(cut)
    assert sorted(a) == sorted(b) == list(range(1, steps + 1))
    assert [a[k] for k in sorted(a)] == [b[k] for k in sorted(b)], f"killed at {kill}"
    assert _same_weights(_weights(full, steps), _weights(cut, steps)), f"killed at {kill}"
    assert not [p for p in cut.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_kill_9_then_resume_is_bitwise(tmp_path, name):
    flags, steps, ranges = SCENARIOS[name]
    _check_kill_and_resume(tmp_path, name, flags, steps, ranges)
    if name == "guard-rollback":
        events = [m.get("event") for m in read_metrics(tmp_path / "full") if "event" in m]
        assert "rollback-done" in events  # the scenario did roll back


def test_kill_9_then_resume_is_bitwise_under_ddp(tmp_path):
    _check_kill_and_resume(tmp_path, "ddp", ["--dropout", "0.1", "--tokens-per-step", "256"],
                           8, [("step", 4, 7), ("checkpoint", 2, 2)], torchrun=True)


def test_a_time_budget_resumes_to_the_same_steps(tmp_path):
    """Under --max-time alone the schedule follows the clock until the first checkpoint fixes
    the steps the budget allows (train/budget.py); a run resumed from any later checkpoint then
    takes exactly the steps of the uninterrupted one -- here, the uninterrupted run's own step-6
    checkpoint resumed in a fresh folder, which is what a kill -9 after step 6 leaves."""
    data = char_shards(tmp_path / "data")
    args = ["pretrain", "--data", str(data), *BASE, "--dropout", "0.1", "--max-time", "4s",
            "--schedule", "wsd", "--decay-share", "0.5"]
    full = tmp_path / "full"
    r = _run([*args, "--out", str(full)])
    assert r.returncode == 0, r.stderr
    state = json.loads((full / "step_000006" / "trainer_state.json").read_text())
    planned = state["budget_steps"]
    assert planned and planned > 9
    assert json.loads((full / "step_000003" / "trainer_state.json").read_text())[
        "budget_steps"] == planned  # fixed once, at the first checkpoint
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copytree(full / "step_000006", cut / "step_000006")
    shutil.copy(full / "metrics.jsonl", cut / "metrics.jsonl")
    r = _run([*args, "--out", str(cut), "--resume", "auto"])
    assert r.returncode == 0, r.stderr
    a, b = _losses(full), _losses(cut)
    common = sorted(set(a) & set(b))
    assert common[-1] >= 9, (sorted(a), sorted(b))  # the resumed run got past step 9
    assert [a[k] for k in common] == [b[k] for k in common]
    lrs_a = {m["step"]: m["lr"] for m in read_metrics(full) if "lr" in m}
    lrs_b = {m["step"]: m["lr"] for m in read_metrics(cut) if "lr" in m}
    assert [lrs_a[k] for k in common] == [lrs_b[k] for k in common]
    if max(a) == max(b) == planned:  # both ended on the planned step, not by the clock (a
        # loaded machine may stop either one early): the same final weights
        assert _same_weights(_weights(full, planned), _weights(cut, planned))


def test_killer_points_are_real_sigkills(tmp_path):
    """The seam itself: the process dies by SIGKILL at the point, leaving its temporary
    checkpoint folder behind (which the next run removes)."""
    data = char_shards(tmp_path / "data")
    run = tmp_path / "run"
    args = ["pretrain", "--data", str(data), "--out", str(run), *BASE, "--max-steps", "4"]
    r = _run(args, kill=("checkpoint", 1))
    assert r.returncode == -signal.SIGKILL
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".step_000003.tmp")]
    assert leftovers and not (run / "step_000003").exists()
    r = _run([*args, "--resume", "auto"])
    assert r.returncode == 0, r.stderr
    assert "resumed from" not in r.stdout  # no complete checkpoint was there: a fresh start
    assert not [p for p in run.iterdir() if ".tmp" in p.name] and (run / "step_000004").is_dir()
    assert os.environ.get("MINIGPT_TEST_KILL") is None
