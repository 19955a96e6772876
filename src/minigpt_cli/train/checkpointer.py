"""Save and restore what a training run is made of -- its ``Parts`` -- as a checkpoint folder
(step_folder.py). A pure save/restore of objects the loop owns and hands in: nothing here knows
the loop. Rank 0 writes; every rank's RNG state is gathered into the file.

``check_resume`` is the one check that a checkpoint can continue this run (model, tokenizer,
data, sequence length), done by the run set-up before anything is written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.model import GPTConfig
from minigpt_cli.model_file import check_weights_match, read_checkpoint
from minigpt_cli.tokenizer import Tokenizer, check_same_tokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train.guard import Guard, GuardState
from minigpt_cli.train.loader import WindowStream
from minigpt_cli.train.optim import load_optimizer_tensors, optimizer_tensors
from minigpt_cli.train.state import TrainerState, capture_rng, restore_rng
from minigpt_cli.train.step_folder import (
    list_checkpoints,
    prune,
    read_optimizer,
    read_state,
    step_dir,
    write_checkpoint,
)


class WeightsIO(Protocol):
    """A run whose trained weights are not the plain GPT (finetune's LoRA adapters) says how
    they are saved and restored: ``model.safetensors`` always holds a plain GPT-2."""

    def saved_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The plain GPT written as model.safetensors (e.g. adapters merged in)."""
        ...

    def write_extra(self, model: torch.nn.Module, folder: Path) -> None:
        """Write any further files into the checkpoint folder being built."""
        ...

    def restore(self, model: torch.nn.Module, folder: Path) -> None:
        """Load the trained weights back from a checkpoint folder (resume, rollback)."""
        ...


@dataclass
class Parts:
    """Everything a checkpoint holds, as the loop owns it."""

    model: torch.nn.Module  # the plain module (not compiled, not DDP-wrapped)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    guard: Guard
    data: WindowStream
    state: TrainerState


@dataclass
class Checkpointer:
    run_dir: Path
    dist: D.Dist
    device: torch.device
    tokenizer: Tokenizer
    data_id: str | None
    extra: dict  # stored in every model.safetensors
    keep_last: int
    keep_best: bool
    weights: WeightsIO | None = None

    def save(self, parts: Parts, reason: str, before_state=None) -> Path:
        """Write ``step_NNNNNN/`` (collective: every rank calls it). ``before_state()`` runs on
        rank 0 once the weights and optimizer state are written, before the state is."""
        st = parts.state
        st.data = parts.data.where()
        st.guard = parts.guard.state.to_dict()
        st.scaler = parts.scaler.state_dict() if parts.scaler.is_enabled() else None
        st.reason = reason
        st.rng = D.gather_objects(self.dist, capture_rng(self.device))
        path = step_dir(self.run_dir, st.step)
        if self.dist.main:
            tensors, meta = optimizer_tensors(parts.model, parts.optimizer)
            extra = {**self.extra, "data_manifest_hash": self.data_id,
                     "tokens_seen": st.tokens_seen, "val_loss": st.val_loss}
            io = self.weights
            model = io.saved_model(parts.model) if io is not None else parts.model
            more = (lambda folder: io.write_extra(parts.model, folder)) if io is not None \
                else None
            path = write_checkpoint(self.run_dir, st.step, model, self.tokenizer, tensors, meta,
                                    st, extra, more, before_state)
            prune(self.run_dir, self.keep_last, self.keep_best, protect={path})
        D.barrier(self.dist)
        return path

    def restore(self, folder: Path, parts: Parts, tokens_per_step: int
                ) -> tuple[TrainerState, list[str]]:
        """Weights, optimizer, data position, guard and gradient scaler back as ``folder``
        saved them; returns the saved state (with this run's world and step size) and notes.
        The RNG states come back separately (``restore_rng``), right before the first step."""
        st = read_state(folder)
        notes = []
        self.load_weights(folder, parts.model)
        tensors, meta = read_optimizer(folder)
        load_optimizer_tensors(parts.model, parts.optimizer, tensors, meta,
                               f"Checkpoint {folder}")
        if st.tokens_per_step and st.tokens_per_step != tokens_per_step:
            notes.append(f"tokens per step changed from {st.tokens_per_step} to "
                         f"{tokens_per_step}: the continuation is not the same run")
        data = st.data or {}
        parts.data.restore(data.get("epoch", 0), data.get("cursor", 0))
        parts.guard.state = GuardState.from_dict(st.guard or {})
        if st.scaler and parts.scaler.is_enabled():
            parts.scaler.load_state_dict(st.scaler)
        if len(st.rng) != self.dist.world:
            notes.append(f"RNG states were saved by {len(st.rng)} process(es), not "
                         f"{self.dist.world}; dropout streams start afresh")
        st.world, st.tokens_per_step = self.dist.world, tokens_per_step
        notes.append(f"resumed from {folder} at step {st.step}")
        return st, notes

    def restore_rng(self, state: TrainerState) -> None:
        """This rank's RNG states as saved (if the checkpoint has one per rank)."""
        if len(state.rng) == self.dist.world:
            restore_rng(state.rng[self.dist.rank], self.device)

    def load_weights(self, folder: Path, model: torch.nn.Module) -> None:
        """The trained weights of ``folder`` into ``model`` (resume, the guard's rollback)."""
        if self.weights is not None:
            self.weights.restore(model, folder)
            return
        ckpt = read_checkpoint(folder)
        check_weights_match(ckpt.config, ckpt.state_dict, str(ckpt.path))
        model.load_state_dict(ckpt.state_dict, strict=False)  # lm_head is tied to wte

    def newest_before(self, step: int) -> tuple[int, Path] | None:
        good = [(k, p) for k, p in list_checkpoints(self.run_dir) if k < step]
        return good[-1] if good else None

    def drop_from(self, step: int) -> None:
        """Delete the checkpoints of ``step`` and later (rank 0; the others wait)."""
        D.barrier(self.dist)
        if self.dist.main:
            for k, path in list_checkpoints(self.run_dir):
                if k >= step:
                    shutil.rmtree(path, ignore_errors=True)


def check_resume(folder: Path, config: GPTConfig, tokenizer: Tokenizer, data_id: str | None,
                 seq_len: int, data_flag: str) -> None:
    """``folder`` can continue this run: the same model, tokenizer, data and --seq-len (read
    without its tensors). ``data_flag`` names the data in messages (``--data DIR``)."""
    ckpt = read_checkpoint(folder, load_tensors=False)
    if ckpt.config != config:
        a, b = ckpt.config.to_dict(), config.to_dict()
        diff = ", ".join(f"{k}={a[k]!r} there, {b[k]!r} here" for k in a if a[k] != b[k])
        raise IncompatibleError(
            f"--resume {folder} is a different model than this run builds ({diff}). Resume "
            "with the settings it was trained with (settings.json in its run folder) or use a "
            "new --out."
        )
    check_same_tokenizer(ckpt.identity, tokenizer.identity(), f"--resume {folder}", data_flag)
    state = read_state(folder)
    if state.manifest_hash and data_id and state.manifest_hash != data_id:
        raise IncompatibleError(
            f"--resume {folder} trained on other shards (manifest {state.manifest_hash[:12]}) "
            f"than {data_flag} (manifest {data_id[:12]}); its data position means nothing "
            "there. Resume with the data it trained on, or use a new --out."
        )
    if state.seq_len and state.seq_len != seq_len:
        raise MinigptError(f"--resume {folder} trained with --seq-len {state.seq_len}, not "
                           f"{seq_len}; resume with --seq-len {state.seq_len}.")
