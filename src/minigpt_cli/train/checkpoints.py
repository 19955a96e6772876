"""The trainer's checkpoints: save (rank 0 writes, every rank's RNG included), exact restore for
``--resume``, and the guard's rollback to the last good checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

import torch

from minigpt_cli.checkpoint import check_weights_match, read_checkpoint
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.tokenizer import check_same_tokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train.guard import GuardState
from minigpt_cli.train.optim import load_optimizer_tensors, optimizer_tensors
from minigpt_cli.train.state import (
    STEP_DIR,
    capture_rng,
    list_checkpoints,
    prune,
    read_optimizer,
    read_state,
    restore_rng,
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


def step_of(path: Path) -> int:
    m = STEP_DIR.match(Path(path).name)
    return int(m.group(1)) if m else -1


def save(tr, reason: str) -> Path:
    st, spec, s = tr.state, tr.spec, tr.s
    st.data = tr.train_data.where()
    st.guard = tr.guard.state.to_dict()
    st.scaler = tr.scaler.state_dict() if tr.scaler.is_enabled() else None
    st.reason = reason
    st.rng = D.gather_objects(tr.d, capture_rng(tr.device))  # collective: every rank
    path = step_dir(spec.run_dir, st.step)
    if tr.d.main:
        tensors, meta = optimizer_tensors(tr.raw, tr.optimizer)
        extra = {**spec.extra, "data_manifest_hash": spec.data_id, "tokens_seen": st.tokens_seen,
                 "val_loss": st.val_loss}
        io = spec.weights
        model = io.saved_model(tr.raw) if io is not None else tr.raw
        more = (lambda folder: io.write_extra(tr.raw, folder)) if io is not None else None
        path = write_checkpoint(spec.run_dir, st.step, model, spec.tokenizer, tensors, meta, st,
                                extra, more, before_state=tr.plan_budget)
        prune(spec.run_dir, s.keep_last, s.keep_best, protect={path})
        tr.emit(E.CheckpointEvent(st.step, path, reason))
    tr.share_budget()  # collective (it is the barrier too): every rank gets rank 0's plan
    tr.last_ckpt = path
    return path


def _load_weights(tr, folder: Path) -> None:
    ckpt = read_checkpoint(folder)
    if ckpt.config != tr.raw.config:
        a, b = ckpt.config, tr.raw.config
        raise IncompatibleError(
            f"Checkpoint {folder} holds a different model (n_layer={a.n_layer}, n_head="
            f"{a.n_head}, n_embd={a.n_embd}, vocab={a.vocab_size}, block={a.block_size}) than "
            f"this run builds (n_layer={b.n_layer}, n_head={b.n_head}, n_embd={b.n_embd}, "
            f"vocab={b.vocab_size}, block={b.block_size}). Resume with the settings it was "
            "trained with (its run folder has settings.json), or start a new --out."
        )
    check_same_tokenizer(ckpt.identity, tr.spec.tokenizer.identity(), f"Checkpoint {folder}",
                         "the training data")
    if tr.spec.weights is not None:
        tr.spec.weights.restore(tr.raw, folder)
    else:
        check_weights_match(ckpt.config, ckpt.state_dict, str(ckpt.path))
        tr.raw.load_state_dict(ckpt.state_dict, strict=False)  # lm_head is tied to wte
    tensors, meta = read_optimizer(folder)
    load_optimizer_tensors(tr.raw, tr.optimizer, tensors, meta, f"Checkpoint {folder}")


def restore(tr, folder: Path) -> list[str]:
    """Everything back as it was when ``folder`` was saved: weights, optimizer, schedule
    position, data position, guard, gradient scaler. This rank's RNG states come back last,
    with ``restore_rng_streams`` right before the first step, so that no start-up work (a
    peak-FLOP/s measurement, a compile) can draw from them after they are restored."""
    st = read_state(folder)
    spec, notes = tr.spec, []
    if spec.data_id and st.manifest_hash and st.manifest_hash != spec.data_id:
        raise IncompatibleError(
            f"Checkpoint {folder} trained on other shards (manifest {st.manifest_hash[:12]}) "
            f"than --data (manifest {spec.data_id[:12]}); its data position means nothing "
            "there. Resume with the data it trained on, or start a new --out."
        )
    if st.seq_len and st.seq_len != spec.seq_len:
        raise MinigptError(f"Checkpoint {folder} trained with --seq-len {st.seq_len}, not "
                           f"{spec.seq_len}; resume with --seq-len {st.seq_len}.")
    _load_weights(tr, folder)
    if st.tokens_per_step and st.tokens_per_step != spec.tokens_per_step:
        notes.append(f"tokens per step changed from {st.tokens_per_step} to "
                     f"{spec.tokens_per_step}: the continuation is not the same run")
    data = st.data or {}
    tr.train_data.restore(data.get("epoch", 0), data.get("cursor", 0))
    tr.guard.state = GuardState.from_dict(st.guard or {})
    if st.scaler and tr.scaler.is_enabled():
        tr.scaler.load_state_dict(st.scaler)
    if len(st.rng) != tr.d.world:
        notes.append(f"RNG states were saved by {len(st.rng)} process(es), not {tr.d.world}; "
                     "dropout streams start afresh")
    st.world, st.tokens_per_step = tr.d.world, spec.tokens_per_step
    tr.state = st
    notes.append(f"resumed from {folder} at step {st.step}")
    return notes


def restore_rng_streams(tr) -> None:
    """This rank's RNG states as the checkpoint saved them (if it saved one per rank)."""
    if len(tr.state.rng) == tr.d.world:
        restore_rng(tr.state.rng[tr.d.rank], tr.device)


def rollback(tr, step: int) -> None:
    """Restore the newest checkpoint from before the spike; keep the data position (the bad
    windows are skipped) and lower the LR."""
    s = tr.s
    first_bad = tr.guard.rolled_back() or step
    if tr.guard.state.rollbacks > s.guard_max_rollbacks:
        raise MinigptError(
            f"Training is unstable: the loss spiked again after {s.guard_max_rollbacks} "
            f"rollback(s) (last at step {step}). Lower --lr, raise --warmup-steps, or check the "
            "data; the run folder keeps the last good checkpoints."
        )
    tr.state.lr_scale *= s.guard_lr_factor
    good = [(k, p) for k, p in list_checkpoints(tr.spec.run_dir) if k < first_bad]
    if not good:
        tr._emit_guard(step, "lr", f"no checkpoint before step {first_bad} to roll back to; "
                       f"LR scaled to {tr.state.lr_scale:g} x the schedule")
        return
    k, path = good[-1]
    _load_weights(tr, path)
    tr.state.step = k
    D.barrier(tr.d)
    if tr.d.main:
        for j, bad in list_checkpoints(tr.spec.run_dir):
            if j >= first_bad:
                shutil.rmtree(bad, ignore_errors=True)
    tr.last_ckpt = path
    tr._emit_guard(step, "rollback-done",
                   f"rolled back to step {k} ({path.name}); the data of steps {k + 1}..{step} is "
                   f"skipped; LR scaled to {tr.state.lr_scale:g} x the schedule")
