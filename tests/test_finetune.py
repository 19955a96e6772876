"""`minigpt finetune` end to end through the CLI on real shard files and tiny models: from a
minigpt checkpoint and from a Hugging Face folder, early stopping, frozen blocks, LoRA (merged
checkpoints give the adapters' logits), exact resume, and every bad input of the issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train_support import char_shards, read_metrics, write_shards
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.hf import export_hf
from minigpt_cli.lora import add_lora, load_adapter_state, merged
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.model_file import load_checkpoint, save_checkpoint
from minigpt_cli.tokenizer import GPT2Tokenizer, tokenizer_from_dict

runner = CliRunner()
FAST = ["--seq-len", "32", "--micro-batch", "4", "--device", "cpu", "--dtype", "float32",
        "--peak-flops", "1e11", "--sample-every", "0", "--eval-batches", "2", "--lr", "3e-3"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return char_shards(tmp_path_factory.mktemp("ft") / "shards")


@pytest.fixture(scope="module")
def base(data, tmp_path_factory) -> Path:
    """A tiny 'pretrained' char checkpoint with the data's vocabulary."""
    tok = tokenizer_from_dict(json.loads((data / "manifest.json").read_text())["tokenizer"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2,
                          n_embd=32))
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base", model, tok, step=100)


def weights(path: Path) -> dict[str, torch.Tensor]:
    model, _, _ = load_checkpoint(path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def losses(run: Path) -> dict[int, float]:
    return {m["step"]: m["loss"] for m in read_metrics(run) if "loss" in m}


def test_finetune_from_a_checkpoint(data, base, tmp_path):
    run = tmp_path / "run"
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 6,
               "--eval-every", 3)
    assert r.exit_code == 0, r.output
    assert f"note: starting from --from {base}" in r.output
    assert "eval step 3 | val_loss" in r.output and "done step 6 | reached --max-steps" in r.output
    final = run / "step_000006"
    _, _, ckpt = load_checkpoint(final)
    assert ckpt.extra["kind"] == "finetune" and ckpt.config.dropout == 0.0  # the base's own
    before, after = weights(base), weights(final)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    settings = json.loads((run / "settings.json").read_text())
    assert settings["lr"] == 3e-3 and settings["warmup_steps"] == 20 and \
        settings["from_checkpoint"] == str(base)
    assert [m["step"] for m in read_metrics(run) if "val_loss" in m] == [3, 6]


def test_finetune_from_a_hugging_face_folder(data, base, tmp_path):
    model, tok, _ = load_checkpoint(base)
    hf = export_hf(model, tmp_path / "hf", tok)
    assert (hf / "config.json").exists()
    run = tmp_path / "run"
    config = json.loads((hf / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**config, "resid_pdrop": 0.1}))
    r = invoke("finetune", "--from-hf", hf, "--data", data, "--out", run, *FAST, "--max-steps",
               3)
    assert r.exit_code == 0, r.output
    assert f"--from-hf {hf}" in r.output
    _, _, ckpt = load_checkpoint(run / "step_000003")
    assert ckpt.config.n_layer == 2 and ckpt.extra["from"] == f"--from-hf {hf}"
    assert ckpt.config.dropout == 0.1  # GPT-2's own dropout, from its config


def test_early_stopping_fires(data, base, tmp_path):
    # an LR so small that no float32 weight moves: the val loss never improves on the first
    run = tmp_path / "run"
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--lr", 1e-30,
               "--dropout", 0, "--max-steps", 100, "--eval-every", 2, "--early-stop-patience",
               2)
    assert r.exit_code == 0, r.output
    assert "done step 6 | early stop: val loss stopped improving" in r.output
    assert "best val_loss" in r.output and "at step 2" in r.output
    assert [m["step"] for m in read_metrics(run) if "val_loss" in m] == [2, 4, 6]


def test_frozen_blocks_do_not_change(data, base, tmp_path):
    run = tmp_path / "run"
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 4,
               "--freeze-blocks", 1)
    assert r.exit_code == 0, r.output
    assert "blocks 0..0 frozen" in r.output
    before, after = weights(base), weights(run / "step_000004")
    block0 = [k for k in before if k.startswith("transformer.h.0.")]
    block1 = [k for k in before if k.startswith("transformer.h.1.")]
    assert block0 and all(torch.equal(before[k], after[k]) for k in block0)
    assert all(not torch.equal(before[k], after[k]) for k in block1 if k.endswith("weight"))
    assert not torch.equal(before["transformer.wte.weight"], after["transformer.wte.weight"])


def test_lora_merge_gives_the_adapters_logits():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
    base_logits = model(torch.arange(16).view(1, 16) % 50)[0]
    names = add_lora(model, rank=4, alpha=8, targets=["c_attn", "c_proj", "c_fc"])
    assert len(names) == 2 * 4
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    x = torch.randint(0, 50, (3, 16))
    assert torch.allclose(model(torch.arange(16).view(1, 16) % 50)[0], base_logits)  # B = 0
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("lora_B"):
                p.normal_(0, 0.2)
    plain = merged(model)
    assert type(plain) is GPT and not any("lora" in k for k in plain.state_dict())
    model.eval()
    assert torch.allclose(plain(x)[0], model(x)[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(plain(x)[0], GPT(model.config)(x)[0], atol=1e-3)


def test_lora_finetune_saves_a_plain_merged_model(data, base, tmp_path):
    run = tmp_path / "run"
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 4,
               "--lora-rank", 2, "--lora-targets", "c_attn,c_fc", "--lora-alpha", 4,
               "--dropout", 0)
    assert r.exit_code == 0, r.output
    assert "note: LoRA rank 2 on c_attn, c_fc" in r.output
    final = run / "step_000004"
    assert (final / "lora.safetensors").exists()
    plain, _, ckpt = load_checkpoint(final)  # a plain GPT-2 checkpoint: no adapter tensors
    assert json.loads((run / "settings.json").read_text())["lora_rank"] == 2
    # base weights + the saved adapters give the merged model's logits
    from safetensors.torch import load_file

    model, _, _ = load_checkpoint(base)
    add_lora(model, 2, 4, ["c_attn", "c_fc"])
    load_adapter_state(model, load_file(str(final / "lora.safetensors")), "test")
    x = torch.randint(0, ckpt.config.vocab_size, (2, 32))
    model.eval(), plain.eval()
    assert torch.allclose(plain(x)[0], model(x)[0], atol=1e-5, rtol=1e-5)
    untouched = weights(base)
    assert not torch.equal(untouched["transformer.h.0.attn.c_attn.weight"],
                           plain.state_dict()["transformer.h.0.attn.c_attn.weight"])
    assert torch.equal(untouched["transformer.h.0.attn.c_proj.weight"],
                       plain.state_dict()["transformer.h.0.attn.c_proj.weight"])


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resume_continues_exactly(data, base, tmp_path, lora):
    extra = ["--lora-rank", 2] if lora else []
    whole = tmp_path / "whole"
    args = ["--from", base, "--data", data, *FAST, "--max-steps", 6, "--checkpoint-every", 3,
            "--eval-every", 3, *extra]
    r = invoke("finetune", *args, "--out", whole)
    assert r.exit_code == 0, r.output
    part = tmp_path / "part"
    r = invoke("finetune", *args, "--out", part, "--resume", whole / "step_000003")
    assert r.exit_code == 0, r.output
    assert "resumed from" in r.output
    a, b = losses(whole), losses(part)
    assert sorted(b) == [4, 5, 6] and all(a[k] == b[k] for k in b)  # bitwise, CPU float32
    assert torch.equal(weights(whole / "step_000006")["transformer.h.1.mlp.c_fc.weight"],
                       weights(part / "step_000006")["transformer.h.1.mlp.c_fc.weight"])


def test_lora_gets_a_larger_default_lr(data, base):
    from minigpt_cli.finetune.settings import FinetuneSettings
    from minigpt_cli.settings import resolve

    def lr(**flags):
        return resolve(FinetuneSettings, "finetune", {"from_checkpoint": base, "data": data,
                                                      **flags}).lr

    assert (lr(), lr(lora_rank=4), lr(lora_rank=4, lr=2e-4)) == (1e-4, 1e-3, 2e-4)


# -- bad input ---------------------------------------------------------------------------------
def test_vocabulary_mismatch_is_refused_before_anything_is_written(base, tmp_path):
    tok = GPT2Tokenizer()
    ids = tok.encode("The philosopher of the future. " * 40)
    gpt2_data = write_shards(tmp_path / "gpt2", tok, ids[:100], [ids[100:]])
    run = tmp_path / "run"
    r = invoke("finetune", "--from", base, "--data", gpt2_data, "--out", run, *FAST)
    assert r.exit_code == 2
    assert "was trained with tokenizer char" in r.output and "tokenized with gpt2" in r.output
    assert "Re-shard the text with the model's tokenizer" in r.output
    assert not run.exists()


def test_bad_arguments(data, base, tmp_path):
    run = tmp_path / "run"
    r = invoke("finetune", "--data", data, "--out", run)
    assert r.exit_code == 2 and "--from CHECKPOINT or --from-hf HF_DIR" in r.output
    r = invoke("finetune", "--from", base, "--from-hf", tmp_path, "--data", data, "--out", run)
    assert r.exit_code == 2 and "one of them" in r.output
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, "--lora-rank", 2,
               "--lora-targets", "c_attn,wte")
    assert r.exit_code == 2 and "--lora-targets" in r.output and "c_fc" in r.output
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST,
               "--freeze-blocks", 3)
    assert r.exit_code == 2 and "has only 2 blocks" in r.output
    r = invoke("finetune", "--from", tmp_path / "nope", "--data", data, "--out", run, *FAST)
    assert r.exit_code == 2 and "cannot be read" in r.output
    r = invoke("finetune", "--from", base, "--data", tmp_path / "nodata", "--out", run, *FAST)
    assert r.exit_code == 2 and "no such folder" in r.output
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--seq-len", 65)
    assert r.exit_code == 2 and "longer than the context" in r.output
    assert not run.exists()


def test_resume_of_another_kind_of_run_is_refused(data, base, tmp_path):
    run = tmp_path / "run"
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 2)
    assert r.exit_code == 0, r.output
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 4,
               "--resume", "auto", "--lora-rank", 2)
    assert r.exit_code == 2 and "was a full fine-tune" in r.output
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 4,
               "--resume", "auto", "--dropout", 0.3)
    assert r.exit_code == 2 and "is a different model" in r.output
    r = invoke("finetune", "--from", base, "--data", data, "--out", run, *FAST, "--max-steps", 4)
    assert r.exit_code == 2 and "--resume auto" in r.output
