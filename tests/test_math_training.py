"""Masked training through the one trainer loop (`minigpt pretrain` on math shards) learns
1-digit addition well above chance in a few seconds, and `minigpt eval math` scores it: exact
match beside train accuracy, step validity, by operation and length, first mistakes."""

from __future__ import annotations

import json

import pytest
import torch
from shard_support import cli

from minigpt_cli.evals.arithmetic import MathOptions, MathTask
from minigpt_cli.evals.task import no_progress
from minigpt_cli.model_file import load_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("train")
    data, shards, run = root / "data", root / "shards", root / "run"
    r = cli("make-math", "--ops", "+:1", "--n", "45", "--n-test", "10", "--seed", "3",
            "--workers", "1", "--out", data)
    assert r.exit_code == 0, r.output
    r = cli("shard", "math", data, "--tokenizer", "char", "--workers", "0", "--option", "val=5",
            "--out", shards)
    assert r.exit_code == 0, r.output
    r = cli("pretrain", "--data", shards, "--model", "nano", "--n-embd", "48", "--n-head", "4",
            "--block-size", "16", "--seq-len", "16", "--micro-batch", "32", "--max-steps",
            "150", "--lr", "1e-2", "--beta2", "0.99", "--eval-every", "0", "--sample-every",
            "0", "--checkpoint-every", "0", "--peak-flops", "1e11", "--log-every", "50",
            "--seed", "0", "--out", run)
    assert r.exit_code == 0, r.output
    return data, shards, run


def test_only_solution_tokens_are_trained(trained):
    """Val loss is measured on solution tokens only: a model that is perfect on them but knows
    nothing of prompts would score the same -- the masked val loss is far below the unmasked."""
    from minigpt_cli.shard_folder import open_shard_folder
    from minigpt_cli.train.loader import ValWindows

    _, shards, run = trained
    model, _, _ = load_checkpoint(run / "step_000150")
    folder = open_shard_folder(shards)
    masked = ValWindows([folder.val], [folder.val_mask], 16)
    plain = ValWindows([folder.val], None, 16)
    with torch.no_grad():
        b, u = next(masked.batches(8, 1)), next(plain.batches(8, 1))
        _, loss_masked = model(b.x, b.y, loss_mask=b.mask)
        _, loss_all = model(u.x, u.y)
    assert float(b.mask.float().mean()) < 0.8  # the prompt and the padding are masked out
    assert float(loss_masked) < 0.5 * float(loss_all)  # prompts (random digits) are not learned


def test_it_learns_one_digit_addition_above_chance(trained):
    data, _, run = trained
    model, tok, _ = load_checkpoint(run / "step_000150")
    res = MathTask().run(model.eval(), tok, data, MathOptions(train_limit=40), no_progress)
    train = res["splits"]["train"]
    # chance: one of 19 answers (0..18); an untrained model writes no valid steps at all
    assert train["acc"] >= 0.5, train
    assert train["step_validity"] >= 0.5, train


def test_eval_math_reports_test_and_train_side_by_side(trained):
    data, _, run = trained
    r = cli("eval", "math", "--checkpoint", run, "--data", data, "--option", "train_limit=20")
    assert r.exit_code == 0, r.output
    assert "+ 1x1" in r.flat and "train exact" in r.flat and "steps valid" in r.flat
    saved = json.loads((run / "step_000150" / "eval_math.json").read_text())
    assert saved["metrics"]["train_acc"] is not None
    splits = saved["details"]["splits"]
    assert splits["test"]["n"] == 10 and splits["train"]["n"] == 20
