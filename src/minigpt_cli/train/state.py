"""Trainer state and checkpoint folders.

A checkpoint is a folder ``<run>/step_000500/`` holding
- ``model.safetensors``      the weights (checkpoint.save_checkpoint; its ``extra`` carries the
                             data manifest hash and the resolved settings)
- ``optimizer.safetensors``  AdamW moments and step counts, keyed by parameter name
- ``trainer_state.json``     step, tokens seen, data position, every RNG state, LR scale,
                             guard state, best val loss, gradient-scaler state
It is written under a temporary name and renamed into place, so a folder named ``step_*`` is
always complete: ``kill -9`` at any moment leaves the previous checkpoints intact. No pickle.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minigpt_cli import atomic
from minigpt_cli.checkpoint import WEIGHTS_NAME, save_checkpoint, save_tensors
from minigpt_cli.errors import MinigptError

STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    tokens_seen: int = 0
    data: dict[str, Any] = field(default_factory=dict)  # loader position (epoch, cursor, ...)
    lr_scale: float = 1.0  # lowered by the guard on rollbacks
    guard: dict[str, Any] = field(default_factory=dict)
    val_loss: float | None = None  # measured at this step, if it was
    best_val: float | None = None
    best_step: int | None = None
    stale_evals: int = 0  # evals since the best (early stopping)
    elapsed: float = 0.0  # training wall-clock seconds so far, over all segments
    world: int = 1
    tokens_per_step: int = 0
    seq_len: int = 0
    manifest_hash: str | None = None
    rng: list[dict] = field(default_factory=list)  # one per rank
    scaler: dict | None = None
    reason: str = "periodic"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainerState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# -- RNG ------------------------------------------------------------------------------------
def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _unb64(s: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())


def capture_rng(device: torch.device) -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": _b64(torch.get_rng_state()),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if device.type == "cuda":
        out["cuda"] = _b64(torch.cuda.get_rng_state(device))
    return out


def restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(_unb64(state["torch"]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_unb64(state["cuda"]), device)


# -- folders --------------------------------------------------------------------------------
def step_dir(run: Path, step: int) -> Path:
    return run / f"step_{step:06d}"


def list_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """Complete checkpoint folders in ``run``, oldest first."""
    if not run.is_dir():
        return []
    found = []
    for p in run.iterdir():
        m = STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / STATE_NAME).exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def write_checkpoint(run: Path, step: int, model, tokenizer, optimizer_tensors, optimizer_meta,
                     state: TrainerState, extra: dict, more=None) -> Path:
    """``more(folder)``, when given, writes further files into the folder before it is renamed
    into place."""
    final = step_dir(run, step)
    tmp = run / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_checkpoint(tmp, model, tokenizer, step, extra)
        with atomic.atomic_path(tmp / OPTIMIZER_NAME) as t:
            save_tensors(optimizer_tensors, t, optimizer_meta)
        atomic.write_json(tmp / STATE_NAME, state.to_dict())
        if more is not None:
            more(tmp)
        old = None
        if final.exists():  # e.g. a signal right after a periodic save of the same step
            old = run / f".{final.name}.old-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        atomic.fsync_path(run)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_state(folder: Path) -> TrainerState:
    try:
        return TrainerState.from_dict(json.loads((folder / STATE_NAME).read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise MinigptError(f"Checkpoint {folder}: {STATE_NAME} cannot be read ({e}).") from None


def read_optimizer(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import SafetensorError, safe_open

    path = folder / OPTIMIZER_NAME
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise MinigptError(f"Checkpoint {folder}: {OPTIMIZER_NAME} cannot be read ({e}).") \
            from None


def check_resumable(folder: Path) -> Path:
    folder = Path(folder)
    if folder.is_file() and folder.name == WEIGHTS_NAME:
        folder = folder.parent
    missing = [n for n in (WEIGHTS_NAME, OPTIMIZER_NAME, STATE_NAME) if not (folder / n).exists()]
    if not folder.is_dir() or missing:
        raise MinigptError(
            f"--resume {folder}: not a training checkpoint folder (missing "
            f"{', '.join(missing) or 'the folder'}). Pass a step_NNNNNN folder of a run, or "
            "'auto' for the newest one in --out. To start from a model's weights alone, use "
            "`minigpt finetune --from`."
        )
    return folder


def prune(run: Path, keep_last: int, keep_best: bool, protect: set[Path] = frozenset()) -> None:
    """Delete all but the newest ``keep_last`` checkpoints and the best by val loss."""
    ckpts = list_checkpoints(run)
    keep = {p for _, p in ckpts[-keep_last:]} | set(protect)
    if keep_best:
        scored = [(read_state(p).val_loss, p) for _, p in ckpts]
        scored = [(v, p) for v, p in scored if v is not None]
        if scored:
            keep.add(min(scored, key=lambda vp: vp[0])[1])
    for _, p in ckpts:
        if p not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in run.glob(".step_*.tmp-*"):  # left by a process killed while saving
        if not p.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(p, ignore_errors=True)
