"""benchmarks/bench_arch.py's table and verdict (the training runs themselves are the lead's
benchmark; `--quick` checks them end to end in about 30 seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from minigpt_cli.model import GPT, GPTConfig

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_arch as B  # noqa: E402


def row(name, seed, val, tps=1000.0):
    return {"set": name, "seed": seed, "val_loss": val, "steps": 100, "tok_per_s": tps,
            "params": 1_000_000, "train_s": 600.0}


def test_every_set_builds_a_valid_model():
    for switches in B.SETS.values():
        GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=1, n_head=2, n_embd=32,
                      **switches))


def test_table_and_verdict():
    results = [row("gpt2", 1, 5.00), row("rope", 1, 4.90), row("modern", 1, 4.93),
               row("gpt2", 2, 5.02), row("rope", 2, 4.99), row("modern", 2, 4.95)]
    lines = B.table(results, ["gpt2", "rope", "modern"])
    assert lines[1].split()[:4] == ["gpt2", "1,000,000", "5.0100", "+0.0000"]
    assert lines[2].split()[:4] == ["rope", "1,000,000", "4.9450", "-0.0650"]
    verdict = B.verdict(results)
    assert verdict.startswith("best set: modern, at least +0.0700") and "not met" not in verdict
    assert "not met" in B.verdict([row("gpt2", 1, 5.0), row("rope", 1, 4.98)])
    assert B.verdict([row("rope", 1, 4.9)]) == "no GPT-2 runs: no verdict"


@pytest.mark.parametrize("argv", [["--sets", "gpt2,bogus"]])
def test_unknown_sets_are_refused(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_arch.py", *argv])
    with pytest.raises(SystemExit, match="bogus"):
        B.main()


def test_a_one_seed_row_is_compared_with_gpt2_on_its_own_seed():
    results = [row("gpt2", 1, 5.00), row("gpt2", 2, 5.10), row("rope", 1, 4.90),
               row("modern", 1, 4.80), row("modern", 2, 4.95)]
    lines = B.table(results, ["gpt2", "rope", "modern"])
    assert lines[2].split()[:4] == ["rope", "1,000,000", "4.9000", "-0.1000"]
    assert lines[3].split()[:4] == ["modern", "1,000,000", "4.8750", "-0.1750"]
    # the verdict takes only sets run on every seed
    assert B.verdict(results).startswith("best set: modern, at least +0.1500")
