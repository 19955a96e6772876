"""A run's checkpoint folders: ``<run>/step_000500/`` holding

- ``model.safetensors``      the weights (model_file.save_checkpoint; its ``extra`` carries the
                             data manifest hash and the resolved settings)
- ``optimizer.safetensors``  AdamW / Muon state, keyed by parameter name
- ``trainer_state.json``     the TrainerState (state.py)

A folder is written under a temporary name and renamed into place, so a folder named
``step_*`` is always complete: ``kill -9`` at any moment leaves the previous checkpoints
intact. Plain files in, plain values out: no pickle, and nothing here knows the trainer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError
from minigpt_cli.model_file import WEIGHTS_NAME, save_checkpoint, save_tensors
from minigpt_cli.train.state import TrainerState

STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
STEP_DIR = re.compile(r"^step_(\d+)$")


def step_dir(run: Path, step: int) -> Path:
    return run / f"step_{step:06d}"


def step_of(path: Path) -> int:
    """The step of a ``step_NNNNNN`` folder (-1 for any other name)."""
    m = STEP_DIR.match(Path(path).name)
    return int(m.group(1)) if m else -1


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
                     state: TrainerState, extra: dict, more=None, before_state=None) -> Path:
    """``more(folder)``, when given, writes further files into the folder before it is renamed
    into place; ``before_state()`` may still change ``state`` once the weights and optimizer
    state are written (the budget plan counts what the checkpoint cost)."""

    final = step_dir(run, step)
    tmp = run / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_checkpoint(tmp, model, tokenizer, step, extra)
        with atomic.atomic_path(tmp / OPTIMIZER_NAME) as t:
            save_tensors(optimizer_tensors, t, optimizer_meta)
        if before_state is not None:
            before_state()
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
