"""The trainer's wall-clock budget (--max-time), which the Nietzsche recipe and benchmark use:
the schedule by the share of the budget spent, parsing, and a run that stops on time."""

from __future__ import annotations

import math

import pytest
import torch
from test_train_support import TINY, char_shards, read_metrics
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.train.schedule import Schedule
from minigpt_cli.train.settings import TrainSettings


def test_budget_schedule_shapes():
    cos = Schedule("cosine", 1.0, 0.1, 10, 1000, 1000, warmup_share=None)
    assert cos.lr_in_budget(0, 0.0) == pytest.approx(0.1)  # step-based warmup
    assert cos.lr_in_budget(50, 0.0) == 1.0
    assert cos.lr_in_budget(50, 0.5) == pytest.approx(0.55)
    assert cos.lr_in_budget(50, 1.0) == pytest.approx(0.1)
    assert cos.lr_in_budget(50, 7.0) == pytest.approx(0.1)  # clamped past the budget
    wsd = Schedule("wsd", 1.0, 0.0, 0, 1000, 200, warmup_share=0.05, decay_share=0.2)
    assert wsd.lr_in_budget(0, 0.025) == pytest.approx(0.5)  # warmup over 5% of the budget
    assert wsd.lr_in_budget(9, 0.5) == 1.0 and wsd.lr_in_budget(9, 0.8) == 1.0
    assert wsd.lr_in_budget(9, 0.9) == pytest.approx(0.5)
    assert wsd.lr_in_budget(9, 1.0) == pytest.approx(0.0, abs=1e-12)
    const = Schedule("constant", 2.0, 0.2, 0, 10, 10, warmup_share=0.05)
    assert const.lr_in_budget(3, 0.99) == 2.0


def test_decay_share_sets_the_wsd_decay_in_steps_and_in_a_budget():
    from minigpt_cli.train.schedule import build_schedule

    by_steps = build_schedule(TrainSettings(schedule="wsd", max_steps=100, decay_share=0.5))
    assert by_steps.decay_steps == 50 and by_steps.lr(49) == by_steps.max_lr
    assert by_steps.lr(74) == pytest.approx(by_steps.max_lr + 0.5 * (by_steps.min_lr -
                                                                     by_steps.max_lr))
    assert build_schedule(TrainSettings(schedule="wsd", max_steps=100)).decay_steps == 20
    assert build_schedule(TrainSettings(schedule="wsd", max_steps=100, decay_steps=7,
                                        decay_share=0.5)).decay_steps == 7  # steps win
    budget = build_schedule(TrainSettings(schedule="wsd", max_time="5m", decay_share=0.5))
    assert budget.lr_in_budget(99, 0.49) == budget.max_lr
    assert budget.lr_in_budget(99, 0.75) == pytest.approx((budget.max_lr + budget.min_lr) / 2)
    with pytest.raises(ValueError, match="decay_share"):
        TrainSettings(decay_share=0)


def test_max_time_parsing_and_step_cap():
    assert TrainSettings(max_time="5m").max_time == 300
    assert TrainSettings(max_time="1.5h").max_time == 5400
    assert TrainSettings(max_time=42).max_time == 42
    assert TrainSettings(max_time="90s").step_cap() is None  # no step limit unless given
    assert TrainSettings(max_time="90s", max_steps=7).step_cap() == 7
    assert TrainSettings().step_cap() == 1000
    with pytest.raises(ValueError, match="5m"):
        TrainSettings(max_time="five minutes")
    assert math.isclose(TrainSettings(max_time="0.5m").max_time, 30.0)


def pretrain(data, run, *flags: str, catch_exceptions: bool = False):
    """`minigpt pretrain` on the tiny char shards, no evals or samples, a line per step, with
    these flags."""
    return CliRunner().invoke(app, ["pretrain", "--data", str(data), "--out", str(run), *TINY,
                                    "--eval-every", "0", "--sample-every", "0",
                                    "--print-every", "1", *flags],
                              catch_exceptions=catch_exceptions)


def test_a_run_stops_at_its_time_budget(tmp_path):
    torch.set_num_threads(1)
    data = char_shards(tmp_path / "shards")
    run = tmp_path / "run"
    r = pretrain(data, run, "--max-time", "3s", "--schedule", "wsd", "--decay-share", "0.5")
    assert r.exit_code == 0, r.output
    assert "budget 3s" in r.output and "reached --max-time" in r.output
    steps = [m for m in read_metrics(run) if "loss" in m]
    assert len(steps) > 3 and "step 3 | loss" in r.output  # no step total in the line
    lrs = [m["lr"] for m in steps]
    assert max(lrs) == pytest.approx(3e-3) and lrs[-1] < lrs[len(lrs) // 2]  # decayed on time


def test_with_max_steps_too_the_steps_set_the_schedule(tmp_path):
    torch.set_num_threads(1)
    data = char_shards(tmp_path / "shards")
    run = tmp_path / "run"
    r = pretrain(data, run, "--max-time", "1h", "--max-steps", "5")
    assert r.exit_code == 0, r.output
    assert "reached --max-steps" in r.output and "step 5/5 |" in r.output
    want = Schedule("cosine", 3e-3, 3e-4, 2, 5, 5)
    lrs = [m["lr"] for m in read_metrics(run) if "loss" in m]
    assert lrs == pytest.approx([want.lr(i) for i in range(5)])


def test_proj_init_zero_starts_every_block_as_the_identity(tmp_path):
    from minigpt_cli.loading import load_model

    torch.set_num_threads(1)
    data = char_shards(tmp_path / "shards")
    run = tmp_path / "run"
    r = pretrain(data, run, "--max-steps", "1", "--optimizer", "muon", "--muon-lr", "1e-9",
                 "--lr", "1e-9", "--proj-init", "zero")
    assert r.exit_code == 0, r.output
    model, _, _ = load_model(max(run.glob("step_*")))
    for block in model.transformer.h:  # one step at LR 1e-9: still (almost) zero
        assert block.attn.c_proj.weight.abs().max() < 1e-6
        assert block.mlp.c_proj.weight.abs().max() < 1e-6
        assert block.attn.c_attn.weight.abs().max() > 1e-3  # the rest keeps GPT-2's init
    bad = pretrain(data, run, "--proj-init", "ones", catch_exceptions=True)
    assert bad.exit_code != 0 and "--proj-init" in bad.output
