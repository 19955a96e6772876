"""Muon (train/muon.py): the orthogonalisation, the update rule against a direct computation,
the AdamW/Muon split of the weights, and `minigpt pretrain --optimizer muon` end to end with an
exact resume (CliRunner, real shard files)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train_support import TINY, char_shards, read_metrics
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.model import GPT, preset_config
from minigpt_cli.train import muon
from minigpt_cli.train.muon import Chain, Muon, orthogonalize
from minigpt_cli.train.optim import build_optimizer
from minigpt_cli.train.settings import TrainSettings

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.mark.parametrize("shape", [(64, 16), (16, 64), (32, 32)])
def test_orthogonalize_flattens_the_singular_values(shape):
    torch.manual_seed(0)
    k = min(shape)
    u0, _ = torch.linalg.qr(torch.randn(shape[0], k))
    v0, _ = torch.linalg.qr(torch.randn(shape[1], k))
    g = u0 @ torch.diag(torch.logspace(-2, 0, k)) @ v0.T  # singular values 0.01 .. 1
    s = torch.linalg.svdvals(orthogonalize(g, 5))
    assert s.min() > 0.5 and s.max() < 1.25, s  # the quintic's band around 1, not exactly 1
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    cos = torch.nn.functional.cosine_similarity(orthogonalize(g, 5).flatten(),
                                                (u @ vh).flatten(), dim=0)
    assert cos > 0.95, cos  # close to U V^T = u0 v0^T


@pytest.mark.parametrize("shape", [(3, 16, 64), (3, 96, 24), (2, 20, 40)])
def test_gram_form_is_the_same_iteration(shape, monkeypatch):
    torch.manual_seed(3)
    g = torch.randn(shape) * torch.logspace(-3, 0, shape[-1])  # ill-conditioned
    gram, gram64 = orthogonalize(g, 5), orthogonalize(g.double(), 5)  # wide: the Gram form
    monkeypatch.setattr(muon, "GRAM_FORM_RATIO", 10**9)  # the plain iteration
    plain64 = orthogonalize(g.double(), 5)
    torch.testing.assert_close(gram64, plain64, atol=1e-10, rtol=0)  # the same function
    # float32: G = X X^T squares the condition number, so the smallest directions lose
    # digits (2e-4 here at worst); far inside the bfloat16 iteration GPUs run (~1e-2)
    torch.testing.assert_close(gram.double(), plain64, atol=5e-4, rtol=0)


def test_batched_equals_one_matrix_at_a_time():
    torch.manual_seed(1)
    g = torch.randn(3, 24, 40)
    batched = orthogonalize(g, 5)
    for i in range(3):
        torch.testing.assert_close(batched[i], orthogonalize(g[i], 5), atol=1e-5, rtol=1e-5)


def test_muon_step_is_the_documented_update():
    torch.manual_seed(2)
    ps = [torch.nn.Parameter(torch.randn(24, 8)) for _ in range(2)]
    ps.append(torch.nn.Parameter(torch.randn(8, 24)))
    ref = [p.detach().clone() for p in ps]
    bufs = [torch.zeros_like(p) for p in ps]
    opt = Muon(ps, lr=0.05, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in ps]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        opt.step()
        for i, g in enumerate(grads):
            bufs[i] = 0.9 * bufs[i] + g
            u = orthogonalize(g + 0.9 * bufs[i], 5)
            scale = max(1.0, ref[i].shape[0] / ref[i].shape[1]) ** 0.5
            ref[i] = ref[i] * (1 - 0.05 * 0.1) - 0.05 * scale * u
    for p, r in zip(ps, ref):
        torch.testing.assert_close(p.detach(), r, atol=1e-5, rtol=1e-5)


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    model = GPT(preset_config("nano", vocab_size=40))
    s = TrainSettings(optimizer="muon", lr=1e-3, muon_lr=0.02, weight_decay=0.1)
    opt = build_optimizer(model, s, torch.device("cpu"))
    assert isinstance(opt, Chain)
    adamw, muon = opt.parts
    names = {id(p): n for n, p in model.named_parameters()}
    muon_names = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    assert muon_names == {n for n, p in model.named_parameters() if p.dim() == 2 and ".h." in n}
    adam_names = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    assert "transformer.wte.weight" in adam_names and "transformer.wpe.weight" in adam_names
    assert not adam_names & muon_names
    assert len(adam_names | muon_names) == len(list(model.parameters()))
    (group,) = muon.param_groups
    assert group["lr_ratio"] == pytest.approx(20.0)
    assert group["lr"] * group["weight_decay"] == pytest.approx(1e-3 * 0.1)  # AdamW's decay
    assert not isinstance(build_optimizer(model, TrainSettings(), torch.device("cpu")), Chain)


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_dry_run_state_estimate_matches_the_real_optimizer(optimizer):
    """--dry-run and --micro-batch auto count weights, gradients and optimizer state per
    parameter as the optimizer really holds them after a step: Muon keeps one buffer where
    AdamW keeps two, and a frozen parameter only its weight."""
    from minigpt_cli.train.dry_run import state_bytes

    model = GPT(preset_config("nano", vocab_size=40))
    model.transformer.h[0].requires_grad_(False)  # a frozen block, as finetune --freeze-blocks
    opt = build_optimizer(model, TrainSettings(optimizer=optimizer), torch.device("cpu"))
    idx = torch.randint(0, 40, (2, 16))
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    held = sum(p.numel() * 4 for p in model.parameters())
    held += sum(p.grad.numel() * 4 for p in model.parameters() if p.grad is not None)
    held += sum(t.numel() * t.element_size() for st in opt.state_dict()["state"].values()
                for t in st.values() if torch.is_tensor(t) and t.dim() > 0)
    assert state_bytes(model, optimizer) == held


def _losses(run):
    return {m["step"]: m["loss"] for m in read_metrics(run) if "loss" in m}


def test_pretrain_with_muon_learns_and_resumes_exactly(tmp_path):
    data = char_shards(tmp_path / "shards")
    common = ["pretrain", "--data", str(data), *TINY, "--optimizer", "muon", "--muon-lr",
              "0.02", "--schedule", "constant", "--warmup-steps", "0", "--eval-every", "0",
              "--sample-every", "0", "--checkpoint-every", "6"]
    full = tmp_path / "full"
    r = runner.invoke(app, [*common, "--out", str(full), "--max-steps", "12"])
    assert r.exit_code == 0, r.output
    assert "note: Muon on 8 matrices" in r.output  # nano: 2 blocks x 4 Linear layers
    losses = _losses(full)
    assert losses[12] < losses[1] - 0.3, losses
    state = load_file(str(full / "step_000012" / "optimizer.safetensors"))
    assert "transformer.h.0.mlp.c_fc.weight.momentum_buffer" in state
    assert "transformer.wte.weight.exp_avg" in state
    cut = tmp_path / "cut"
    r = runner.invoke(app, [*common, "--out", str(cut), "--max-steps", "6"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*common, "--out", str(cut), "--max-steps", "12", "--resume", "auto"])
    assert r.exit_code == 0, r.output
    resumed = _losses(cut)
    assert [resumed[s] for s in range(7, 13)] == [losses[s] for s in range(7, 13)]


def test_unknown_optimizer_names_the_flag(tmp_path):
    data = char_shards(tmp_path / "shards")
    r = runner.invoke(app, ["pretrain", "--data", str(data), "--out", str(tmp_path / "r"), *TINY,
                            "--optimizer", "sgd", "--muon-lr", "-1"])
    assert r.exit_code == 2
    assert "--optimizer" in r.output and "--muon-lr" in r.output
    assert not (tmp_path / "r").exists()


def test_finetune_takes_muon_too(tmp_path):
    data = char_shards(tmp_path / "shards")
    pre = tmp_path / "pre"
    r = runner.invoke(app, ["pretrain", "--data", str(data), "--out", str(pre), *TINY,
                            "--max-steps", "2", "--eval-every", "0", "--sample-every", "0"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["finetune", "--from", str(pre / "step_000002"), "--data", str(data),
                            "--out", str(tmp_path / "ft"), "--optimizer", "muon", "--muon-lr",
                            "0.01", "--max-steps", "3", "--micro-batch", "4", "--seq-len", "32",
                            "--eval-every", "0", "--sample-every", "0", "--device", "cpu",
                            "--dtype", "float32"])
    assert r.exit_code == 0, r.output
    assert "note: Muon on 8 matrices" in r.output
    state = load_file(str(tmp_path / "ft" / "step_000003" / "optimizer.safetensors"))
    assert "transformer.h.1.attn.c_attn.weight.momentum_buffer" in state
