"""`minigpt pretrain` end to end through the CLI (CliRunner, real shard files): a run, its
folder, --config, --dry-run, the example configs, every bad input of the issue, and
`minigpt shard` -> `minigpt pretrain` on the FineWeb sample."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ROOT
from test_train_support import TINY, char_corpus, char_shards, read_metrics, write_shards
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.settings import resolve
from minigpt_cli.tokenizer import CharTokenizer
from minigpt_cli.train.settings import PretrainSettings

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def shards_dir(tmp_path_factory):
    return char_shards(tmp_path_factory.mktemp("train_cli") / "shards")


@pytest.fixture(scope="module")
def finished_run(shards_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("train_cli_run") / "run"
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(run), *TINY, "--max-steps",
               "2", "--eval-every", "0", "--sample-every", "0")
    assert r.exit_code == 0, r.output
    return run


def test_pretrain_end_to_end_with_a_config_file(shards_dir, tmp_path):
    run = tmp_path / "run"
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'[pretrain]\ndata = "{shards_dir}"\nmodel = "nano"\nseq_len = 32\n'
                   'micro_batch = 4\nmax_steps = 50\neval_every = 3\ncheckpoint_every = 3\n'
                   'sample_every = 3\nsample_tokens = 16\nkeep_last = 1\ndevice = "cpu"\n'
                   'peak_flops = 1e11\n')
    r = invoke("pretrain", "--config", str(cfg), "--max-steps", "7", "--out", str(run),
               "--print-every", "1")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert sum(x.startswith("step ") for x in lines) == 7  # one plain line per step
    assert "step 7/7 | loss " in r.output and "| mfu " in r.output
    assert "eval step 3 | val_loss" in r.output and "sample step 6 |" in r.output
    assert "done step 7 | reached --max-steps" in r.output
    steps = [m for m in read_metrics(run) if "loss" in m]
    assert [m["step"] for m in steps] == list(range(1, 8))
    assert set(steps[0]) >= {"loss", "lr", "grad_norm", "tokens_seen", "tok_per_s", "mfu",
                             "elapsed"}
    assert steps[-1]["tokens_seen"] == 7 * 4 * 32
    assert [m["step"] for m in read_metrics(run) if "val_loss" in m] == [3, 6, 7]
    settings = json.loads((run / "settings.json").read_text())
    assert settings["max_steps"] == 7 and settings["model"] == "nano"  # flag over config
    # keep_last 1 plus the best by val loss (the newest here, so one or two folders)
    kept = sorted(p.name for p in run.glob("step_*"))
    assert kept[-1] == "step_000007" and set(kept) <= {"step_000006", "step_000007"}
    meta = json.loads((run / "step_000007" / "trainer_state.json").read_text())
    assert meta["step"] == 7 and meta["data"]["cursor"] == 7 * 4 and len(meta["rng"]) == 1
    from safetensors import safe_open

    with safe_open(str(run / "step_000007" / "model.safetensors"), "pt") as f:
        extra = json.loads(f.metadata()["extra"])
    manifest = (shards_dir / "manifest.json").read_bytes()
    import hashlib

    assert extra["data_manifest_hash"] == hashlib.sha256(manifest).hexdigest()
    assert extra["settings"]["seq_len"] == 32
    r = invoke("sample", "--checkpoint", str(run / "step_000007"), "--prompt", "Truth ", "-n",
               "10", "--seed", "1")
    assert r.exit_code == 0 and "\nTruth " in r.output


def test_dry_run_prints_the_plan_and_writes_nothing(shards_dir, tmp_path):
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(run), *TINY,
               "--tokens-per-step", "512", "--max-steps", "1000", "--dry-run",
               "--target-tokens", "1000000", "--cost-per-hour", "2.5")
    assert r.exit_code == 0, r.output
    for key in ("parameters", "FLOPs per step", "4 accumulation", "memory (estimate)",
                "tokens/s", "ETA", "ETA to target", "cost", "disk"):
        assert key in r.output, key
    assert not run.exists()


def test_micro_batch_auto_keeps_tokens_per_step(shards_dir, tmp_path):
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(tmp_path / "r"),
               *[a for a in TINY if a not in ("--micro-batch", "4")], "--micro-batch", "auto",
               "--tokens-per-step", "384", "--max-steps", "1", "--eval-every", "0",
               "--sample-every", "0")
    assert r.exit_code == 0, r.output
    assert "--micro-batch auto chose 12" in r.output  # 384 / 32 = 12 sequences: 1 micro-step
    assert "x 1 accumulation" in r.output


@pytest.mark.parametrize("name", ["gpt2-124m.toml", "tiny-cpu.toml", "nietzsche-char.toml",
                                  "nietzsche-char-modern.toml"])
def test_example_configs_are_valid(name):
    s = resolve(PretrainSettings, "pretrain", {}, ROOT / "examples" / name)
    if name == "gpt2-124m.toml":
        assert (s.tokens_per_step, s.micro_batch, s.seq_len, s.lr, s.warmup_steps,
                s.max_steps, s.min_lr_ratio, s.dtype) == (524288, 16, 1024, 6e-4, 715, 19073,
                                                          0.1, "bfloat16")
        assert s.tokens_per_step // (s.micro_batch * s.seq_len * 8) == 4  # 8 GPUs: 4 accum
    elif name == "nietzsche-char-modern.toml":
        from minigpt_cli.train.pretrain import model_config

        c = model_config(s, 65)
        assert (c.positions, c.qk_norm, c.norm, c.mlp, c.block_size) == ("rope", True,
                                                                          "layernorm", "gelu",
                                                                          128)
    else:
        assert s.model == "baby" and s.device == "cpu"
    if name.startswith("nietzsche-char"):
        assert (s.optimizer, s.muon_lr, s.max_time) == ("muon", 0.02, 300)


def _copy(src, tmp_path):
    return shutil.copytree(src, tmp_path / "data")


def _bad_magic(d):
    raw = bytearray((d / "train_000001.bin").read_bytes())
    raw[:4] = b"\x00\x01\x02\x03"
    (d / "train_000001.bin").write_bytes(bytes(raw))


def _truncated(d):
    raw = (d / "train_000002.bin").read_bytes()
    (d / "train_000002.bin").write_bytes(raw[:-10])


def _tokenizer_hash(d):
    m = json.loads((d / "manifest.json").read_text())
    m["tokenizer"]["hash"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(m))


def _vocab(d):
    tok = CharTokenizer(list("abc"))
    write_shards(d, tok, np.arange(200) % 3, [np.full(300, 40)])  # id 40 >= vocab of 4


def _no_val(d):
    (d / "val_000000.bin").unlink()


def _no_manifest(d):
    (d / "manifest.json").unlink()


BAD_DATA = {
    "wrong magic": (_bad_magic, ["has magic number", "not an llm.c-format"]),
    "truncated": (_truncated, ["train_000002.bin", "truncated"]),
    "tokenizer hash": (_tokenizer_hash, ["tokenized with", "re-shard"]),
    "vocabulary": (_vocab, ["token id 40", "only 4 ids"]),
    "no val shard": (_no_val, ["no validation shard val_000000.bin"]),
    "no manifest": (_no_manifest, ["no manifest.json"]),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_is_a_clear_error_before_training(case, shards_dir, tmp_path):
    data = _copy(shards_dir, tmp_path)
    damage, phrases = BAD_DATA[case]
    damage(data)
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", str(data), "--out", str(run), *TINY, "--max-steps", "1")
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    for p in phrases:
        assert p.lower() in text.lower(), (p, text)
    assert not run.exists()  # nothing written


def test_tokens_per_step_that_does_not_divide_proposes_valid_values(shards_dir, tmp_path):
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(tmp_path / "r"), *TINY,
               "--tokens-per-step", "1000")
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "--tokens-per-step 1000 is not a multiple of --micro-batch 4 x --seq-len 32" in text
    assert "--tokens-per-step 896 (7 accumulation steps)" in text
    assert "--tokens-per-step 1024 (8 accumulation steps)" in text
    assert not (tmp_path / "r").exists()


def test_resume_from_a_different_model_is_refused(shards_dir, finished_run):
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(finished_run), *TINY,
               "--model", "micro", "--resume", "auto")
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "is a different model than this run builds (" in text
    assert "n_layer=2 there, 4 here" in text


def test_resume_on_other_data_is_refused(finished_run, tmp_path):
    other = char_shards(tmp_path / "other", repeat=20)
    r = invoke("pretrain", "--data", str(other), "--out", str(finished_run), *TINY,
               "--resume", "auto")
    assert r.exit_code == 2
    assert "tokenizer" in r.output or "trained on other shards" in r.output
    assert json.loads((finished_run / "settings.json").read_text())["data"] != str(other)


def test_existing_run_folder_needs_resume(shards_dir, finished_run):
    before = sorted(p.name for p in finished_run.iterdir())
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(finished_run), *TINY)
    assert r.exit_code == 2
    assert "already holds checkpoints" in r.output and "--resume auto" in r.output
    assert sorted(p.name for p in finished_run.iterdir()) == before


def test_other_bad_settings(shards_dir, tmp_path):
    out = str(tmp_path / "r")
    r = invoke("pretrain", "--data", str(shards_dir), "--out", out, *TINY, "--seq-len", "65")
    assert r.exit_code == 2 and "longer than the context" in r.output
    r = invoke("pretrain", "--data", str(shards_dir), "--out", out, *TINY, "--resume",
               str(tmp_path))
    assert r.exit_code == 2 and "not a training checkpoint" in r.output
    r = invoke("pretrain", "--data", str(shards_dir), "--out", out, *TINY, "--micro-batch", "0",
               "--model", "nope", "--inject-faults", "boom@1")
    assert r.exit_code == 2
    assert "3 invalid settings" in r.output
    assert not (tmp_path / "r").exists()


def test_shard_then_pretrain_on_the_fineweb_sample(shared_data, tmp_path):
    src = shared_data / "fineweb" / "fineweb_subset_300.jsonl"
    shards_out, run = tmp_path / "shards", tmp_path / "run"
    r = invoke("shard", "fineweb", str(src), "--out", str(shards_out), "--shard-size", "50000",
               "--workers", "0")
    assert r.exit_code == 0, r.output
    r = invoke("pretrain", "--data", str(shards_out), "--out", str(run), "--model", "nano",
               "--seq-len", "64", "--micro-batch", "4", "--tokens-per-step", "512",
               "--max-steps", "6", "--eval-every", "3", "--eval-batches", "2",
               "--sample-every", "0", "--checkpoint-every", "3", "--lr", "3e-3",
               "--device", "cpu", "--peak-flops", "1e11")
    assert r.exit_code == 0, r.output
    assert "x 2 accumulation" in r.output
    losses = [m["loss"] for m in read_metrics(run) if "loss" in m]
    assert len(losses) == 6 and losses[0] > 10.0 and losses[-1] < losses[0]  # ~ln(50257)
    assert (run / "step_000006" / "model.safetensors").exists()


def test_in_loop_validation_is_the_eval_loss_task(tmp_path):
    """The trainer's val loss and `minigpt eval loss` on the same windows are one computation
    (evals.loss.evaluate_loss): the figures agree to float rounding. The val shard holds
    20 x 32 + 1 tokens, so both score the same 20 windows of 32 targets."""
    text = char_corpus(40)
    tok = CharTokenizer.from_text(text)
    ids = np.array(tok.encode(text))
    shards_dir = write_shards(tmp_path / "shards", tok, ids[:20 * 32 + 1],
                              np.array_split(ids[20 * 32 + 1:], 2))
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", str(shards_dir), "--out", str(run), *TINY, "--max-steps",
               "3", "--eval-every", "3", "--eval-batches", "1000", "--sample-every", "0")
    assert r.exit_code == 0, r.output
    val = [m["val_loss"] for m in read_metrics(run) if "val_loss" in m][-1]
    ckpt = run / "step_000003"
    out = tmp_path / "loss.json"
    r = invoke("eval", "loss", "-c", str(ckpt), "--data", str(shards_dir), "--option",
               "seq_len=32", "--option", "stride=32", "--output", str(out), "--no-save")
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["metrics"]["loss"] == pytest.approx(val, rel=1e-5)
