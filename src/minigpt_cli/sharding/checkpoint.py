"""The resume state of an unfinished run, saved atomically after every shard.

``OUT/.shard-progress/state.json`` says which shards are finished, where the source is
(``reader.Cursor``), the funnel counts and the provenance so far; a pickle beside it,
``checkpoint_NNNNNN.pkl``, holds what JSON cannot: the tokens waiting for the next shard and the
stateful stages (dedup tables, head's count) as they were after the last document written.
Order of writes: shard, then pickle, then state.json (each atomic), then the older pickle is
removed -- a crash at any point leaves a consistent state that names an existing pickle, and a
shard written after it is simply written again, byte for byte the same.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError

FOLDER = ".shard-progress"
STATE = "state.json"
FORMAT = 1


@dataclass
class State:
    fingerprint: str
    settings: dict[str, Any]
    tokenizer: dict[str, Any]
    shards: list[dict[str, Any]] = field(default_factory=list)
    cursor: dict[str, int] = field(default_factory=lambda: {"input": 0, "record": 0})
    funnel: dict[str, Any] | None = None
    provenance: list[dict[str, Any]] = field(default_factory=list)
    blob: str | None = None  # pickle with carry tokens and stage state
    blob_sha256: str | None = None
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
        if d.pop("format", None) != FORMAT:
            raise ValueError("unknown format")
        return State(**d)
    except (OSError, ValueError, TypeError) as e:
        raise MinigptError(
            f"The resume state {path} cannot be read ({e}). Delete {folder(out)} and the shards "
            f"in {out} to start over."
        ) from None


def load_blob(out: Path, state: State) -> Blob:
    path = folder(out) / str(state.blob)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MinigptError(f"The resume checkpoint {path} cannot be read: {e}.") from None
    if hashlib.sha256(raw).hexdigest() != state.blob_sha256:
        raise MinigptError(f"The resume checkpoint {path} does not match its checksum in "
                           f"{STATE}. Delete {out} and start over.")
    return pickle.loads(raw)


def save(out: Path, state: State, blob: Blob | None) -> State:
    """Write the blob (if any) then state.json; drop the previous blob. Returns the new state."""
    old = state.blob
    if blob is not None:
        try:
            raw = pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 -- a stage holding something unpicklable
            state.not_resumable = f"the stage state cannot be saved ({type(e).__name__}: {e})"
            state.blob = state.blob_sha256 = None
        else:
            state.blob = f"checkpoint_{len(state.shards):06d}.pkl"
            state.blob_sha256 = hashlib.sha256(raw).hexdigest()
            atomic.write_bytes(folder(out) / state.blob, raw)
    atomic.write_json(folder(out) / STATE, {"format": FORMAT, **state.__dict__})
    if old and old != state.blob:
        (folder(out) / old).unlink(missing_ok=True)
    return state


def remove(out: Path) -> None:
    shutil.rmtree(folder(out), ignore_errors=True)
