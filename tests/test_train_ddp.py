"""DDP on CPU: `torchrun --nproc_per_node 2` (gloo) gives the same losses as one process with
twice the gradient accumulation, and only rank 0 writes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_train_support import TINY, char_shards, cli_env, read_metrics, run_cli, step_losses

ARGS = [*TINY, "--max-steps", "5", "--tokens-per-step", "512", "--checkpoint-every", "0",
        "--eval-every", "5", "--sample-every", "0"]


SWITCHES = ["--positions", "rope", "--norm", "rmsnorm", "--qk-norm", "--mlp", "swiglu",
            "--no-bias", "--no-tie-embeddings", "--logit-softcap", "15"]  # docs/model.md


@pytest.mark.parametrize("switches", [[], SWITCHES], ids=["gpt2", "switches"])
def test_two_gloo_processes_match_one_process_with_twice_the_accumulation(tmp_path, switches):
    args = [*ARGS, *switches]
    data = char_shards(tmp_path / "shards")
    one, two = tmp_path / "one", tmp_path / "two"
    r = run_cli("pretrain", "--data", str(data), "--out", str(one), *args)
    assert r.returncode == 0, r.stderr
    assert "x 1 process x 4 accumulation" in r.stdout
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "minigpt_cli", "pretrain", "--data", str(data), "--out", str(two), *args]
    r = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "x 2 processes x 2 accumulation" in r.stdout
    a, b = step_losses(one), step_losses(two)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5]  # one line per step: only rank 0 wrote
    np.testing.assert_allclose([b[k] for k in sorted(b)], [a[k] for k in sorted(a)], rtol=1e-5)
    np.testing.assert_allclose(_column(two, "grad_norm"), _column(one, "grad_norm"), rtol=1e-4)
    np.testing.assert_allclose(_column(two, "val_loss"), _column(one, "val_loss"), rtol=1e-5)
    assert sorted(p.name for p in two.iterdir()) == ["metrics.jsonl", "run.json",
                                                     "settings.json", "step_000005"]
    assert json.loads((two / "run.json").read_text())["hardware"]["processes"] == 2


def _column(run, key):
    return [m[key] for m in read_metrics(run) if key in m]
