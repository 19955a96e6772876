"""The README's main command, at a tiny scale: make-math -> shard -> pretrain -> eval math, all
read from examples/math-quick.toml (the same config, smaller numbers by flags), ending with the
accuracy table."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import torch
from conftest import ROOT
from shard_support import cli

CONFIG = ROOT / "examples" / "math-quick.toml"


def main_command() -> str:
    """The line under ``<!-- main-command -->`` in the README's ```bash fence."""
    lines = (ROOT / "README.md").read_text().splitlines()
    i = lines.index("<!-- main-command -->")
    assert lines[i + 1] == "```bash"
    return lines[i + 2]


def test_the_readme_main_command_is_install_then_the_math_pipeline():
    line = main_command()
    assert "pip install torch==2.13.0 ." in line
    steps = [shlex.split(part) for part in line.split("&&")]
    minigpt = [s[1:] for s in steps if s[0] == "minigpt"]
    config = str(CONFIG.relative_to(ROOT))
    assert minigpt == [["make-math", "--config", config], ["shard", "--config", config],
                       ["pretrain", "--config", config], ["eval", "math", "--config", config],
                       ["sample", "--model", "calculator", "--prompt", "35 + 42 = ?"]]


def test_the_pipeline_runs_end_to_end_and_ends_with_the_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's paths are relative: runs/math-quick/...
    torch.set_num_threads(1)
    cfg = ("--config", str(CONFIG))
    r = cli("make-math", *cfg, "--n", "300", "--n-test", "40", "--workers", "1")
    assert r.exit_code == 0, r.output
    r = cli("shard", *cfg, "--workers", "0", "--option", "val=20", "--option", "block_size=40")
    assert r.exit_code == 0, r.output
    r = cli("pretrain", *cfg, "--max-steps", "12", "--micro-batch", "8", "--n-layer", "1",
            "--n-embd", "32", "--n-head", "2")
    assert r.exit_code == 0, r.output
    run = Path("runs/math-quick/run")
    assert (run / "step_000012" / "model.safetensors").exists()
    r = cli("eval", "math", *cfg, "--limit", "16", "--option", "train_limit=8")
    assert r.exit_code == 0, r.output
    assert re.search(r"acc\s.*train_acc\s.*step_validity", r.flat)
    assert "+ 3x3" in r.flat and "test | train" in r.flat
    assert (run / "step_000012" / "eval_math.json").exists()
