"""Tampered inputs are refused before they are used, with nothing written: a shard with one byte
flipped (same size, same header), a manifest that lies about a count."""

from __future__ import annotations

import json

import pytest
from test_train_support import TINY, char_shards
from typer.testing import CliRunner

from minigpt_cli.cli import app


def _pretrain(data, run):
    return CliRunner().invoke(app, ["pretrain", "--data", str(data), "--out", str(run), *TINY,
                                    "--max-steps", "2", "--eval-every", "0",
                                    "--sample-every", "0"])


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("shard", ["val_000000.bin", "train_000002.bin"])
def test_a_flipped_byte_in_a_shard_is_refused_before_training(tmp_path, shard):
    data = char_shards(tmp_path / "data")
    path = data / shard
    raw = bytearray(path.read_bytes())
    raw[2000] ^= 0x04  # a token id changes to another valid one: only the sha256 can tell
    path.write_bytes(bytes(raw))
    run = tmp_path / "run"
    r = _pretrain(data, run)
    assert r.exit_code != 0
    msg = _flat(r.output)
    assert f"Shard file {path} does not match the sha256 manifest.json records" in msg
    assert "its bytes changed" in msg and "Traceback" not in r.output
    assert not run.exists()  # nothing written, not even the folder
    raw[2000] ^= 0x04
    path.write_bytes(bytes(raw))
    assert _pretrain(data, run).exit_code == 0


def test_a_manifest_that_lies_about_a_count_is_refused(tmp_path):
    data = char_shards(tmp_path / "data")
    m = json.loads((data / "manifest.json").read_text())
    m["shards"][1]["tokens"] += 1
    (data / "manifest.json").write_text(json.dumps(m))
    run = tmp_path / "run"
    r = _pretrain(data, run)
    assert r.exit_code != 0
    assert "but manifest.json says" in _flat(r.output) and not run.exists()


def test_checkpoint_metadata_edited_to_another_config_is_refused_on_resume_and_sample(tmp_path):
    """n_head 4 written over a checkpoint trained with 4 -> 2 heads: every shape still fits;
    the model-config hash saved beside the weights tells, before anything is used."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    data = char_shards(tmp_path / "data")
    run = tmp_path / "run"
    assert _pretrain(data, run).exit_code == 0
    weights = run / "step_000002" / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["model_config"])
    cfg["n_head"] = 2 if cfg["n_head"] != 2 else 4
    save_file(tensors, str(weights), metadata={**meta, "model_config": json.dumps(cfg)})
    before = sorted(p.name for p in run.iterdir())
    r = CliRunner().invoke(app, ["pretrain", "--data", str(data), "--out", str(run), *TINY,
                                 "--max-steps", "4", "--eval-every", "0", "--sample-every", "0",
                                 "--resume", "auto"])
    assert r.exit_code != 0 and "edited" in _flat(r.output) and "Traceback" not in r.output
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written
    r = CliRunner().invoke(app, ["sample", "-c", str(weights), "--prompt", "a",
                                 "--max-new-tokens", "3"])
    assert r.exit_code != 0 and "edited" in _flat(r.output)
