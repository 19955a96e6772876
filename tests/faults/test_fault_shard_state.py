"""The shard pipeline's resume state holds data only (JSON + safetensors): stateful stages resume
exactly, and a tampered state -- a planted pickle, a flipped byte, an edited value, a changed
shard -- is refused before it is used, with nothing executed."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
from shard_support import Stop, shard_bytes, stop_after

from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.config import ShardSettings, StageSpec
from minigpt_cli.sharding.run import run
from minigpt_cli.stages.head import Head

PROGRESS = ".shard-progress"


def _settings(inputs: list[Path], out: Path) -> ShardSettings:
    stages = [StageSpec(name="exact_dedup"), StageSpec(name="minhash_dedup"),
              StageSpec(name="head", options={"n": 400})]
    return ShardSettings(source="jsonl", inputs=[str(p) for p in inputs], out=out,
                         shard_size=15_000, workers=0, stages=stages)


@pytest.fixture
def fineweb(shared_data, tmp_path) -> list[Path]:
    """The FineWeb sample, then a copy of its first 100 documents: duplicates that come after
    the interruption, which only the restored dedup tables can recognise."""
    src = shared_data / "fineweb" / "fineweb_subset_300.jsonl"
    copy = tmp_path / "again.jsonl"
    copy.write_text("".join(src.read_text().splitlines(keepends=True)[:100]))
    return [src, copy]


def _interrupted(src: list[Path], out: Path, after: int = 3) -> dict:
    with pytest.raises(Stop):
        run(_settings(src, out), stop_after(after))
    return json.loads((out / PROGRESS / "state.json").read_text())


def test_dedup_and_head_resume_from_data_files_byte_identical(fineweb, tmp_path):
    whole = run(_settings(fineweb, tmp_path / "whole"))
    out = tmp_path / "cut"
    state = _interrupted(fineweb, out)
    files = sorted(p.name for p in (out / PROGRESS).iterdir())
    assert files == [state["blob"], "state.json"] and state["blob"].endswith(".safetensors")
    saved = state["stages"]
    assert sorted(saved) == ["0", "1", "2"]  # the three stateful stages
    assert saved["0"]["arrays"] == ["table"] and saved["2"]["values"]["kept"] > 0
    resumed = run(_settings(fineweb, out))
    assert shard_bytes(out) == shard_bytes(tmp_path / "whole")
    assert resumed["stages"] == whole["stages"]  # the dedup tables came back whole
    dropped = {s["name"]: s["dropped"] for s in whole["stages"]}
    assert dropped["exact_dedup"] == {"exact_dedup:duplicate": 100}


def _plant(path: Path, marker: Path) -> bytes:
    class Boom:  # unpickling calls os.system("touch marker")
        def __reduce__(self):
            import os
            return os.system, (f"touch {marker}",)

    raw = pickle.dumps(Boom())
    path.write_bytes(raw)
    return raw


def test_a_planted_pickle_is_never_unpickled(fineweb, tmp_path):
    out = tmp_path / "cut"
    state = _interrupted(fineweb, out)
    marker = tmp_path / "executed"
    folder = out / PROGRESS
    # 1. the old format: state.json names a pickle (with a matching checksum)
    raw = _plant(folder / "checkpoint_000003.pkl", marker)
    old = {**state, "format": 1, "blob": "checkpoint_000003.pkl",
           "blob_sha256": hashlib.sha256(raw).hexdigest()}
    (folder / "state.json").write_text(json.dumps(old))
    with pytest.raises(MinigptError, match="never unpickles"):
        run(_settings(fineweb, out))
    assert not marker.exists()
    # 2. today's format, the pickle under the expected name and with a matching checksum
    (folder / state["blob"]).write_bytes(raw)
    (folder / "state.json").write_text(json.dumps(
        {**state, "blob_sha256": hashlib.sha256(raw).hexdigest()}))
    with pytest.raises(MinigptError, match="does not hold a state this run can use"):
        run(_settings(fineweb, out))
    assert not marker.exists()


def test_tampered_resume_state_is_refused_before_use(fineweb, tmp_path):
    out = tmp_path / "cut"
    state = _interrupted(fineweb, out)
    folder = out / PROGRESS
    blob = folder / state["blob"]
    good = blob.read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    blob.write_bytes(bytes(flipped))
    with pytest.raises(MinigptError, match="does not match its checksum"):
        run(_settings(fineweb, out))
    blob.write_bytes(good)
    # a value of the wrong type for the head stage's count
    edited = json.loads(json.dumps(state))
    edited["stages"]["2"]["values"]["kept"] = "many"
    (folder / "state.json").write_text(json.dumps({"format": 2, **edited}))
    with pytest.raises(MinigptError, match="kept"):
        run(_settings(fineweb, out))
    # an attribute the stage does not have
    edited["stages"]["2"]["values"] = {"kept": 3, "__class__": "x"}
    (folder / "state.json").write_text(json.dumps({"format": 2, **edited}))
    with pytest.raises(MinigptError, match="attributes"):
        run(_settings(fineweb, out))
    (folder / "state.json").write_text(json.dumps({"format": 2, **state}))
    # a finished shard with one byte flipped (same size, same header)
    shard = out / state["shards"][1]["name"]
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(MinigptError, match="bytes changed"):
        run(_settings(fineweb, out))
    data[-1] ^= 0x01
    shard.write_bytes(bytes(data))
    run(_settings(fineweb, out))  # put back as it was: the run resumes and finishes
    run_whole = run(_settings(fineweb, tmp_path / "whole"))
    assert shard_bytes(out) == shard_bytes(tmp_path / "whole") and run_whole["shards"]


def test_a_stage_whose_state_cannot_be_saved_says_so_on_resume(fineweb, tmp_path, monkeypatch):
    monkeypatch.setattr(Head, "__init__", _head_with_a_set)
    out = tmp_path / "cut"
    state = _interrupted(fineweb, out)
    assert state["blob"] is None and "seen" in state["not_resumable"]
    with pytest.raises(MinigptError, match="cannot be resumed.*'seen' is a set"):
        run(_settings(fineweb, out))


def _head_with_a_set(self, options=None):
    self.options = options or Head.Options()
    self.kept = 0
    self.seen = set()  # not an array or a JSON value
