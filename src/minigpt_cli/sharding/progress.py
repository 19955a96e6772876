"""The resume state of an unfinished run, saved atomically after every shard. No pickle.

``OUT/.shard-progress/state.json`` says which shards are finished, where the source is
(``reader.Cursor``), the funnel counts and the provenance so far, and the plain values of the
carry and of the stateful stages (head's count, a plugin's counters). Their arrays -- the
tokens waiting for the next shard, their loss mask, the dedup stages' key tables -- go to
``checkpoint_NNNNNN.safetensors`` beside it, whose sha256 state.json records. Both formats are
data only: a tampered folder can make a resume fail, never make it run code.

Order of writes: shard, then the safetensors file, then state.json (each atomic), then the older
safetensors file is removed -- a crash at any point leaves a consistent state that names an
existing file, and a shard written after it is simply written again, byte for byte the same.

A stateful stage (``stateless = False``) is saved through ``state_dict()`` / ``load_state_dict()``
when it has them (values: numpy arrays, or JSON-plain int/float/str/bool/None and lists/dicts of
them); a stage without them is saved as its instance attributes (all but ``options``), which must
be such values. A stage holding anything else makes the run not resumable, with a message.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors import numpy as safetensors_numpy

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError

FOLDER = ".shard-progress"
STATE = "state.json"
FORMAT = 2  # 1: the carry and stages were a pickle (never read by this version)


@dataclass
class State:
    fingerprint: str
    settings: dict[str, Any]
    tokenizer: dict[str, Any]
    shards: list[dict[str, Any]] = field(default_factory=list)
    cursor: dict[str, int] = field(default_factory=lambda: {"input": 0, "record": 0})
    funnel: dict[str, Any] | None = None
    provenance: list[dict[str, Any]] = field(default_factory=list)
    blob: str | None = None  # the safetensors file with the carry's and stages' arrays
    blob_sha256: str | None = None
    carry: dict[str, Any] | None = None  # the carry's plain values (see Blob)
    stages: dict[str, Any] | None = None  # stage index -> {"values": {...}, "arrays": [keys]}
    not_resumable: str | None = None  # why the stage state could not be saved


@dataclass
class Blob:
    carry: np.ndarray  # (n,) uint16 tokens of the next shard
    carry_docs: int
    stages: dict[int, Any]  # stateful stage index -> the stage object
    carry_mask: np.ndarray | None = None  # (n,) uint16 loss mask of the carry, if masked
    stop_next: bool = False  # the next token written ends a masked example (mask 1)
    carry_padding: int = 0  # padding tokens in the carry


def folder(out: Path) -> Path:
    return out / FOLDER


def load(out: Path) -> State | None:
    path = folder(out) / STATE
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        version = d.pop("format", None)
        if version == 1:
            raise MinigptError(
                f"The unfinished run in {out} was saved by an older minigpt, which kept part of "
                f"its resume state in a pickle; this version never unpickles a file. Delete "
                f"{folder(out)} and the shards in {out} (or the whole folder) and start over.")
        if version != FORMAT:
            raise ValueError(f"unknown format {version!r}")
        return State(**d)
    except (OSError, ValueError, TypeError) as e:
        raise MinigptError(
            f"The resume state {path} cannot be read ({e}). Delete {folder(out)} and the shards "
            f"in {out} to start over."
        ) from None


def load_blob(out: Path, state: State, stages: dict[int, Any]) -> Blob:
    """The carry, with ``stages`` (index -> freshly built stateful stage) put back in the state
    they had after the last shard. Refused if the file is not the one state.json names."""

    path = folder(out) / str(state.blob)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MinigptError(f"The resume checkpoint {path} cannot be read: {e}. Delete {out} and "
                           "start over.") from None
    if hashlib.sha256(raw).hexdigest() != state.blob_sha256:
        raise MinigptError(f"The resume checkpoint {path} does not match its checksum in "
                           f"{STATE}: it was changed or damaged. Delete {out} and start over.")
    try:
        arrays = safetensors_numpy.load(raw)
        carry = dict(state.carry or {})
        saved = state.stages or {}
        if set(saved) != {str(i) for i in stages}:
            raise ValueError(f"saved stage states {sorted(saved)} do not fit the chain's "
                             f"stateful stages {sorted(stages)}")
        for i, stage in stages.items():
            _restore(stage, _with_arrays(saved[str(i)], arrays, f"stage.{i}."))
        return Blob(arrays["carry"], int(carry.get("docs", 0)), stages,
                    arrays.get("carry_mask"), bool(carry.get("stop_next", False)),
                    int(carry.get("padding", 0)))
    except (SafetensorError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise MinigptError(f"The resume checkpoint {path} does not hold a state this run can "
                           f"use ({type(e).__name__}: {e}). Delete {out} and start over.") from None


def save(out: Path, state: State, blob: Blob | None) -> State:
    """Write the blob (if any) then state.json; drop the previous blob. Returns the new state."""

    old = state.blob
    if blob is not None:
        arrays: dict[str, np.ndarray] = {"carry": np.ascontiguousarray(blob.carry)}
        if blob.carry_mask is not None:
            arrays["carry_mask"] = np.ascontiguousarray(blob.carry_mask)
        try:
            stages = {str(i): _split_arrays(_capture(st), arrays, f"stage.{i}.")
                      for i, st in blob.stages.items()}
        except _Unsaveable as e:
            state.not_resumable = str(e)
            state.blob = state.blob_sha256 = state.stages = state.carry = None
        else:
            raw = safetensors_numpy.save(arrays)
            state.blob = f"checkpoint_{len(state.shards):06d}.safetensors"
            state.blob_sha256 = hashlib.sha256(raw).hexdigest()
            state.carry = {"docs": int(blob.carry_docs), "stop_next": bool(blob.stop_next),
                           "padding": int(blob.carry_padding)}
            state.stages = stages
            atomic.write_bytes(folder(out) / state.blob, raw)
    atomic.write_json(folder(out) / STATE, {"format": FORMAT, **state.__dict__})
    if old and old != state.blob:
        (folder(out) / old).unlink(missing_ok=True)
    return state


def remove(out: Path) -> None:
    shutil.rmtree(folder(out), ignore_errors=True)


# -- stage state: plain values and arrays only ----------------------------------------------
class _Unsaveable(Exception):
    pass


def _capture(stage: Any) -> dict[str, Any]:
    name = getattr(stage, "name", type(stage).__name__)
    if callable(getattr(stage, "state_dict", None)):
        d = stage.state_dict()
    else:
        d = {k: v for k, v in vars(stage).items() if k != "options"}
    if not isinstance(d, dict):
        raise _Unsaveable(f"stage {name}: state_dict() returned {type(d).__name__}, not a dict")
    for k, v in d.items():
        if not isinstance(v, np.ndarray) and not _plain(v):
            raise _Unsaveable(
                f"the state of stage {name} cannot be saved: its {k!r} is a "
                f"{type(v).__name__} (a resumable stage keeps numpy arrays and JSON values, "
                "or defines state_dict() and load_state_dict())")
    return d


def _restore(stage: Any, d: dict[str, Any]) -> None:
    if callable(getattr(stage, "load_state_dict", None)):
        stage.load_state_dict(d)
        return
    fresh = {k: v for k, v in vars(stage).items() if k != "options"}
    name = getattr(stage, "name", type(stage).__name__)
    if set(d) != set(fresh):  # exactly what a fresh stage of this class has
        raise ValueError(f"stage {name} has attributes {sorted(fresh)}, not {sorted(d)}")
    for k, v in d.items():
        was = fresh[k]
        if was is not None and not _same_kind(was, v):
            raise ValueError(f"stage {name}: {k!r} is a {type(v).__name__}, not a "
                             f"{type(was).__name__}")
        setattr(stage, k, v)


def _same_kind(was: Any, v: Any) -> bool:
    """A saved value may replace a fresh one of the same type (an int for a float too; a list
    for a tuple, which JSON turns into lists)."""
    if isinstance(was, bool) or isinstance(v, bool):
        return isinstance(was, bool) and isinstance(v, bool)
    if isinstance(was, float):
        return isinstance(v, (int, float))
    if isinstance(was, (list, tuple)):
        return isinstance(v, list)
    return isinstance(v, type(was))


def _plain(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def _split_arrays(d: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
                  ) -> dict[str, Any]:
    """``{"values": the plain values, "arrays": the keys}``; the arrays go into ``arrays``
    under ``prefix + key``."""
    values, keys = {}, []
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            arrays[prefix + k] = np.ascontiguousarray(v)
            keys.append(k)
        else:
            values[k] = v
    return {"values": values, "arrays": keys}


def _with_arrays(d: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
                 ) -> dict[str, Any]:
    if not isinstance(d, dict) or not isinstance(d.get("values"), dict):
        raise ValueError("a stage state is not a JSON object with values")
    return {**d["values"], **{k: arrays[prefix + k] for k in d.get("arrays", [])}}
