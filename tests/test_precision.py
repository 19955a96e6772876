"""precision.py: `--dtype auto` follows measurements (sample: the bf16/fp32 matrix-product
speed; training: this model's MLP step), RNG-free, kept on resume; bf16 training tracks fp32."""

from __future__ import annotations

import json

import pytest
import torch
from test_gpu import BF16_LOSS_TOL, train
from test_train_support import TINY, char_shards, run_cli

from minigpt_cli import precision
from minigpt_cli.precision import AUTO_MIN_SPEEDUP, bf16_speedup, choose_dtype

ARGS = ["--eval-every", "0", "--sample-every", "0"]


def test_an_explicit_dtype_is_taken_as_given():
    for name in ("float32", "bfloat16", "float16"):
        c = precision.choose(name, torch.device("cpu"), 1024, 768)
        assert c.dtype == getattr(torch, name) and c.reason == f"--dtype {name}"


def test_auto_on_the_cpu_follows_the_measurement_and_draws_no_random_numbers():
    before = torch.get_rng_state()
    c = precision.choose("auto", torch.device("cpu"), 256, 64)
    assert torch.equal(torch.get_rng_state(), before)
    x = precision.mlp_bf16_speedup(256, 64)  # cached: the same measurement
    assert (c.dtype == torch.bfloat16) == (x >= precision.AUTO_MIN_SPEEDUP)
    assert c.reason.startswith(f"dtype auto: {c.name}") and "256 tokens x 64 wide" in c.reason


def test_auto_keeps_the_format_of_the_run_it_resumes(tmp_path):
    data = char_shards(tmp_path / "data")
    out = tmp_path / "run"
    first = [a for a in TINY]
    first[first.index("--dtype") + 1] = "bfloat16"
    r = run_cli("pretrain", "--data", str(data), "--out", str(out), *first, *ARGS,
                "--max-steps", "2", "--checkpoint-every", "2")
    assert r.returncode == 0, r.stderr
    auto = [a for a in TINY]
    auto[auto.index("--dtype") + 1] = "auto"
    r = run_cli("pretrain", "--data", str(data), "--out", str(out), *auto, *ARGS,
                "--max-steps", "3", "--resume", "auto")
    assert r.returncode == 0, r.stderr
    assert "note: dtype auto: bfloat16, as the run being resumed" in r.stdout
    assert "cpu bfloat16" in r.stdout
    assert json.loads((out / "run.json").read_text())["hardware"]["dtype"] == "bfloat16"


@pytest.mark.usefixtures("one_thread")
def test_bf16_training_loss_tracks_fp32_on_the_cpu(tmp_path):
    """40 steps of the real loop on a tiny model: every step's loss within BF16_LOSS_TOL
    (relative; 1e-2) of fp32's, while the loss falls by over 40%."""
    cpu = torch.device("cpu")
    _, fp32 = train(cpu, torch.float32, tmp_path / "fp32", 40)
    _, bf16 = train(cpu, torch.bfloat16, tmp_path / "bf16", 40)
    assert fp32[-1] < 0.6 * fp32[0]
    gaps = [abs(b - f) / f for b, f in zip(bf16, fp32)]
    assert max(gaps) < BF16_LOSS_TOL, f"worst step {gaps.index(max(gaps)) + 1}: {max(gaps):.4f}"


def test_auto_picks_bf16_exactly_where_it_measured_fast_enough():
    s = bf16_speedup("cpu")
    assert s > 0
    assert bf16_speedup(torch.device("cpu")) == s  # measured once per process
    dtype, why = choose_dtype("auto", "cpu")
    assert dtype == (torch.bfloat16 if s >= AUTO_MIN_SPEEDUP else torch.float32)
    assert f"{s:.1f}x" in why or f"{s:.2f}x" in why


def test_named_formats_are_taken_as_asked_and_threads_are_left_alone():
    threads = torch.get_num_threads()
    for name, dtype in [("float32", torch.float32), ("bfloat16", torch.bfloat16),
                        ("float16", torch.float16)]:
        assert choose_dtype(name, "cpu") == (dtype, f"{name} (asked for)")
    precision._speedups.clear()
    bf16_speedup("cpu")  # measures on one thread, then restores the setting
    assert torch.get_num_threads() == threads
