"""The architecture switches through the commands (CliRunner, real shard files): pretrain with
each switch as a flag, exact resume, bad combinations, the dry-run's counts, finetune (frozen
blocks, LoRA), sample past the context with RoPE, eval and report."""

from __future__ import annotations

import pytest
import torch
from test_train_support import TINY, char_shards, step_losses
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.model_file import load_checkpoint, read_checkpoint

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

SETS = {
    "rope-rmsnorm-nogain": ["--positions", "rope", "--rope-base", "1000", "--norm", "rmsnorm",
                            "--no-norm-gain"],
    "qknorm-relu2-softcap": ["--qk-norm", "--mlp", "relu2", "--logit-softcap", "10"],
    "swiglu-nobias-untied": ["--mlp", "swiglu", "--mlp-hidden", "40", "--no-bias",
                             "--no-tie-embeddings"],
}
MODERN = ["--positions", "rope", "--norm", "rmsnorm", "--qk-norm", "--mlp", "swiglu",
          "--no-bias", "--no-tie-embeddings", "--logit-softcap", "15", "--block-size", "32"]
QUIET = ["--eval-every", "0", "--sample-every", "0"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return char_shards(tmp_path_factory.mktemp("arch") / "shards")


@pytest.fixture(scope="module")
def modern_run(shards, tmp_path_factory):
    run = tmp_path_factory.mktemp("arch_run") / "run"
    r = invoke("pretrain", "--data", shards, "--out", run, *TINY, *MODERN, "--max-steps", 6,
               "--checkpoint-every", 3, "--eval-every", 3, "--sample-every", 3,
               "--sample-tokens", 40)
    assert r.exit_code == 0, r.output
    return run


@pytest.mark.parametrize("name", SETS)
def test_each_switch_trains_and_is_recorded(shards, tmp_path, name):
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", shards, "--out", run, *TINY, *SETS[name], "--max-steps", 4,
               *QUIET)
    assert r.exit_code == 0, r.output
    losses = step_losses(run)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    cfg = read_checkpoint(run / "step_000004", load_tensors=False).config
    flags = dict(zip(SETS[name][::2], SETS[name][1::2]))
    if "--positions" in SETS[name]:
        assert cfg.positions == "rope" and cfg.rope_base == 1000 and cfg.norm == "rmsnorm"
        assert not cfg.norm_gain
    elif "--qk-norm" in SETS[name]:
        assert cfg.qk_norm and cfg.mlp == "relu2" and cfg.logit_softcap == 10
    else:
        assert cfg.mlp == "swiglu" and cfg.mlp_hidden == 40 and not cfg.bias
        assert not cfg.tie_embeddings
    assert flags  # the flags were taken from the command line above


def test_resume_is_bitwise_with_every_switch(shards, modern_run, tmp_path):
    part = tmp_path / "part"
    r = invoke("pretrain", "--data", shards, "--out", part, *TINY, *MODERN, "--max-steps", 6,
               "--checkpoint-every", 3, "--eval-every", 3, "--sample-every", 3,
               "--sample-tokens", 40, "--resume", modern_run / "step_000003")
    assert r.exit_code == 0, r.output
    a, b = step_losses(modern_run), step_losses(part)
    assert sorted(b) == [4, 5, 6] and all(a[k] == b[k] for k in b)  # bitwise, CPU float32
    wa = load_checkpoint(modern_run / "step_000006")[0].state_dict()
    wb = load_checkpoint(part / "step_000006")[0].state_dict()
    assert "lm_head.weight" in wa and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_activation_checkpointing_gives_the_same_losses(shards, modern_run, tmp_path):
    run = tmp_path / "ac"
    r = invoke("pretrain", "--data", shards, "--out", run, *TINY, *MODERN, "--max-steps", 3,
               "--activation-checkpointing", *QUIET)
    assert r.exit_code == 0, r.output
    a, b = step_losses(modern_run), step_losses(run)
    assert all(abs(a[k] - b[k]) < 1e-5 for k in b)


def test_resume_with_another_switch_is_refused_naming_it(shards, modern_run, tmp_path):
    r = invoke("pretrain", "--data", shards, "--out", tmp_path / "x", *TINY, *MODERN[:-4],
               "--block-size", "32", "--max-steps", 6, "--resume", modern_run / "step_000003")
    assert r.exit_code != 0
    assert "logit_softcap=15.0 there, 0.0 here" in r.output


@pytest.mark.parametrize("args, needle", [
    (["--rope-base", "500"], "rope_base is set (500) but positions is 'learned'"),
    (["--positions", "rope", "--n-embd", "30", "--n-head", "2"], "even head size"),
    (["--mlp", "geglu"], "--mlp:"),
    (["--norm", "batchnorm"], "--norm:"),
    (["--logit-softcap", "-2"], "--logit-softcap:"),
])
def test_bad_switches_are_refused_before_anything_is_written(shards, tmp_path, args, needle):
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", shards, "--out", run, *TINY, *args, "--max-steps", 1)
    assert r.exit_code != 0 and needle in " ".join(r.output.split())
    assert not run.exists()


def test_dry_run_counts_the_real_parameters(shards, modern_run, tmp_path):
    r = invoke("pretrain", "--data", shards, "--out", tmp_path / "run", *TINY, *MODERN,
               "--dry-run")
    assert r.exit_code == 0, r.output
    model = load_checkpoint(modern_run / "step_000006")[0]  # the same flags, trained
    assert f" {model.num_params():,} " in r.output


def test_finetune_frozen_blocks_and_lora_with_switches(shards, modern_run, tmp_path):
    base = modern_run / "step_000006"
    fast = ["--data", shards, "--seq-len", 32, "--micro-batch", 4, "--device", "cpu",
            "--dtype", "float32", "--peak-flops", "1e11", *QUIET, "--max-steps", 2]
    r = invoke("finetune", "--from", base, "--out", tmp_path / "frozen", *fast,
               "--freeze-blocks", 1)
    assert r.exit_code == 0, r.output
    before = load_checkpoint(base)[0].state_dict()
    after = load_checkpoint(tmp_path / "frozen" / "step_000002")[0].state_dict()
    block0 = [k for k in before if k.startswith("transformer.h.0.")]
    assert any("q_norm" in k for k in block0)
    assert all(torch.equal(before[k], after[k]) for k in block0)
    r = invoke("finetune", "--from", base, "--out", tmp_path / "lora", *fast, "--lora-rank", 2,
               "--lora-targets", "c_attn,c_fc")
    assert r.exit_code == 0, r.output
    plain, _, ckpt = load_checkpoint(tmp_path / "lora" / "step_000002")
    assert ckpt.config == read_checkpoint(base, load_tensors=False).config


def test_sample_eval_and_report_with_switches(modern_run, tmp_path):
    ckpt = modern_run / "step_000006"
    r = runner.invoke(app, ["sample", "-c", str(ckpt), "-p", "ab", "-n", "80", "-t", "0",
                            "--device", "cpu", "--dtype", "float32"])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.rstrip("\n")) >= 60  # past the 32-token context (RoPE slides)
    text = tmp_path / "t.txt"
    text.write_text("that the terrible seriousness of philosophers " * 8)
    r = invoke("eval", "loss", "-c", ckpt, "--data", text, "--no-save")
    assert r.exit_code == 0, r.output
    r = invoke("report", modern_run, "--out", tmp_path / "card")
    assert r.exit_code == 0, r.output
    card = (tmp_path / "card" / "report.md").read_text()
    assert "RoPE, RMSNorm, QK-norm, SwiGLU, no bias, untied embeddings" in card
