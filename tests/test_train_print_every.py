"""`--print-every`: without a terminal, pretrain and finetune print a step line every N steps or
every so many seconds of the run (default 10 s), plus the first step and the latest step before
every other line; metrics.jsonl keeps its own cadence (--log-every)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_support import TINY, char_shards, read_metrics
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.commands.train_display import TrainDisplay
from minigpt_cli.train import events as E
from minigpt_cli.train.settings import PretrainSettings, print_interval


def step(n: int, elapsed: float, max_steps: int = 0, skipped: bool = False) -> E.StepEvent:
    return E.StepEvent(n, max_steps, 2.5, 1e-3, 0.5, 64 * n, 1000.0, None, elapsed, 0.05,
                       skipped)


def printed_steps(out: str) -> list[int]:
    return [int(x.split()[1].split("/")[0]) for x in out.splitlines() if x.startswith("step ")]


def feed(display: TrainDisplay, *events) -> None:
    for e in events:
        display(e)


def test_by_time_a_line_every_ten_seconds_of_the_run(capsys):
    d = TrainDisplay(live=False, print_every="10s")
    feed(d, *[step(n, elapsed=0.5 * n) for n in range(1, 61)])  # 30 s, no step cap
    assert printed_steps(capsys.readouterr().out) == [1, 21, 41]
    d(E.RunFinished(60, "max_time", Path("run"), None, elapsed=30.0))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("step 60 | loss 2.5000") and out[1].startswith("done step 60")


def test_every_other_line_follows_the_latest_step_and_skips_always_show(capsys):
    d = TrainDisplay(live=False, print_every="1m")
    feed(d, step(1, 1.0, 20), step(2, 2.0, 20), step(3, 3.0, 20),
         E.EvalEvent(3, 2.4, True), step(4, 4.0, 20), step(5, 5.0, 20, skipped=True),
         step(6, 6.0, 20), E.CheckpointEvent(6, Path("run/step_000006"), "periodic"),
         E.SampleEvent(6, "text"), step(7, 7.0, 20), step(20, 8.0, 20))
    lines = capsys.readouterr().out.splitlines()
    assert [x.split(" |")[0] for x in lines] == [
        "step 1/20", "step 3/20", "eval step 3", "step 5/20", "step 6/20", "checkpoint step 6",
        "sample step 6", "step 20/20"]
    assert lines[3].endswith("| skipped")


def test_by_steps_and_every_step(capsys):
    feed(TrainDisplay(live=False, print_every="4"), *[step(n, 100.0 * n, 10) for n in
                                                        range(1, 11)])
    assert printed_steps(capsys.readouterr().out) == [1, 4, 8, 10]
    feed(TrainDisplay(live=False), *[step(n, 0.0, 5) for n in range(1, 6)])
    assert printed_steps(capsys.readouterr().out) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("value", "want"), [("1", (1, None)), (25, (25, None)),
                                             ("10s", (None, 10.0)), ("1.5m", (None, 90.0)),
                                             (" 2H ", (None, 7200.0))])
def test_print_interval_reads_steps_or_a_time(value, want):
    assert print_interval(value) == want


def test_a_bad_print_every_names_the_flag(tmp_path):
    r = CliRunner().invoke(app, ["pretrain", "--data", str(tmp_path), "--print-every", "0",
                                 "--max-time", "soon"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "2 invalid settings" in text
    assert "--print-every: must be a number of steps (1 = every step, 100)" in text
    assert "(got '0')" in text
    assert PretrainSettings(data=tmp_path, print_every=30).print_every == "30"
    assert PretrainSettings(data=tmp_path).print_every == "10s"


def test_pretrain_prints_by_steps_and_logs_every_step(tmp_path, one_thread):
    data = char_shards(tmp_path / "shards")
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["pretrain", "--data", str(data), "--out", str(run), *TINY,
                                 "--max-steps", "12", "--eval-every", "6", "--sample-every", "0",
                                 "--checkpoint-every", "0", "--print-every", "5"])
    assert r.exit_code == 0, r.output
    assert printed_steps(r.output) == [1, 5, 6, 10, 12]
    assert r.output.index("step 6/12 |") < r.output.index("eval step 6 |")
    assert [m["step"] for m in read_metrics(run) if "loss" in m] == list(range(1, 13))
