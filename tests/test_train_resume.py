"""Exact resume: a run killed with kill -9 and resumed gives bitwise the same losses (CPU, fp32)
as one that never stopped; SIGTERM finishes the step, saves and exits 0. Real subprocesses of
the real CLI."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from safetensors.torch import load_file
from test_train_support import (
    TINY,
    char_shards,
    cli_env,
    minigpt_cmd,
    read_metrics,
    run_cli,
    step_losses,
)

COMMON = [*TINY, "--max-steps", "12", "--checkpoint-every", "4", "--eval-every", "4",
          "--sample-every", "4", "--dropout", "0.1", "--tokens-per-step", "256"]


def _wait_for(predicate, proc, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended early (rc {proc.returncode}):\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the run")


def _metric_steps(run):
    try:
        return {m["step"] for m in read_metrics(run) if "loss" in m}
    except (FileNotFoundError, ValueError):
        return set()


def test_kill_9_then_resume_matches_an_uninterrupted_run_bitwise(tmp_path):
    data = char_shards(tmp_path / "shards")
    full, cut = tmp_path / "full", tmp_path / "cut"
    # dropout 0.1 makes the RNG part of the state; micro-batch 4 x 32 x 2 accumulation steps
    first = run_cli("pretrain", "--data", str(data), "--out", str(full), *COMMON)
    assert first.returncode == 0, first.stderr
    # the same run, hung inside step 7 (after the step-4 checkpoint and step 6's metrics line)
    proc = subprocess.Popen(
        minigpt_cmd("pretrain", "--data", str(data), "--out", str(cut), *COMMON,
                    "--inject-faults", "hang@7:600"),
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: 6 in _metric_steps(cut) and (cut / "step_000004").is_dir(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (cut / "step_000008").exists()
    r = run_cli("pretrain", "--data", str(data), "--out", str(cut), *COMMON, "--resume", "auto")
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stdout and "step_000004" in r.stdout
    a, b = step_losses(full), step_losses(cut)
    assert sorted(a) == sorted(b) == list(range(1, 13))
    assert [a[k] for k in sorted(a)] == [b[k] for k in sorted(b)]  # bitwise
    assert _vals(full) == _vals(cut)
    wa = load_file(str(full / "step_000012" / "model.safetensors"))
    wb = load_file(str(cut / "step_000012" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    # samples have their own RNG: the same text after the resume (steps 8 and 12)
    assert _samples(r.stdout) == _samples(first.stdout)[1:] and len(_samples(r.stdout)) == 2


def test_sigterm_finishes_the_step_saves_and_exits_0(tmp_path):
    data = char_shards(tmp_path / "shards")
    run = tmp_path / "run"
    proc = subprocess.Popen(
        minigpt_cmd("pretrain", "--data", str(data), "--out", str(run), *TINY,
                    "--max-steps", "50", "--checkpoint-every", "0", "--eval-every", "0",
                    "--sample-every", "0", "--inject-faults", "hang@3:2"),
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: 2 in _metric_steps(run), proc)
    proc.send_signal(signal.SIGTERM)  # arrives while step 3 sleeps
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped by a signal" in out
    assert (run / "step_000003" / "optimizer.safetensors").exists()
    assert max(_metric_steps(run)) == 3


def _vals(run):
    return [(m["step"], m["val_loss"]) for m in read_metrics(run) if "val_loss" in m]


def _samples(out):
    return [x for x in out.splitlines() if x.startswith("sample step")]
