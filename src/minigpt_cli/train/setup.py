"""One run set-up for pretrain and finetune: from settings, a shard folder and the starting
model to a ready ``Trainer``. The two commands differ only in where the initial weights come
from and which are trainable (pretrain.py, finetune/run.py); everything else -- the resume
target and its checks, the compute dtype, the micro-batch, gradient accumulation, each rank's
seed, the window streams, the run spec -- is decided here, and every bad input fails before
anything is written.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from minigpt_cli import atomic, lock, precision
from minigpt_cli.errors import MinigptError
from minigpt_cli.model import GPTConfig
from minigpt_cli.runtime import DTYPES
from minigpt_cli.settings import dump
from minigpt_cli.shard_folder import ShardFolder, check_fits
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train.batching import accumulation
from minigpt_cli.train.checkpointer import WeightsIO, check_resume
from minigpt_cli.train.dry_run import auto_micro_batch, state_bytes
from minigpt_cli.train.faults import parse_faults
from minigpt_cli.train.loader import ValWindows, WindowStream
from minigpt_cli.train.loop import Trainer
from minigpt_cli.train.metrics import check_tensorboard
from minigpt_cli.train.spec import RunSpec
from minigpt_cli.train.step_folder import check_resumable, list_checkpoints, read_state

SETTINGS_NAME = "settings.json"


def compute_dtype(s, d: D.Dist, rows: int, d_model: int, resume: Path | None
                  ) -> precision.Choice:
    """--dtype; for auto, what this machine runs fastest (precision.py), the same on every
    rank (rank 0 measures), and on --resume the format the run was trained in: a resumed run
    continues bit for bit, whatever a new measurement would say."""
    if s.dtype == "auto" and resume is not None:
        kept = read_state(resume).dtype
        if kept in DTYPES:
            return precision.Choice(DTYPES[kept],
                                    f"dtype auto: {kept}, as the run being resumed")
    choice = precision.choose(s.dtype, d.device, rows, d_model) if d.main else None
    if not d.enabled:
        return choice
    name, reason = D.broadcast_object(d, (choice.name, choice.reason) if choice else None)
    return precision.Choice(DTYPES[name], reason)


def enable_tf32(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def sequence_length(s, block_size: int, what: str) -> int:
    """--seq-len, or the model's context; never longer than that context."""
    seq_len = s.seq_len or block_size
    if seq_len > block_size:
        raise MinigptError(f"--seq-len {seq_len} is longer than the context of {what} "
                           f"({block_size} positions). Use --seq-len {block_size} or less.")
    return seq_len


def find_resume(resume: str | None, out: Path) -> Path | None:
    existing = list_checkpoints(out)
    if resume is None:
        if existing:
            raise MinigptError(
                f"--out {out} already holds checkpoints (newest {existing[-1][1].name}). Pass "
                "--resume auto to continue that run, or choose another --out."
            )
        return None
    if resume == "auto":
        return existing[-1][1] if existing else None
    return check_resumable(Path(resume))


def resume_target(s, config: GPTConfig, data: ShardFolder, seq_len: int) -> Path | None:
    """The checkpoint to continue (--resume), checked against this run's model, tokenizer,
    data and --seq-len before anything is written; None for a fresh start."""
    folder = find_resume(s.resume, s.out)
    if folder is not None:
        check_resume(folder, config, data.tokenizer, data.manifest_hash, seq_len,
                     f"--data {s.data}")
    return folder


def build_run(s, d: D.Dist, data: ShardFolder, model: torch.nn.Module, seq_len: int,
              resume: Path | None, listener: E.Listener, *, extra: dict,
              notes: list[str] | None = None, weights: WeightsIO | None = None) -> Trainer:
    """The trainer for ``model`` (its initial weights set, the frozen ones frozen) on ``data``."""
    check_fits(data, seq_len)
    if s.tensorboard:
        check_tensorboard()
    notes = list(notes or [])
    device = d.device
    rows = seq_len * (s.micro_batch if isinstance(s.micro_batch, int) else 1)
    choice = compute_dtype(s, d, rows, model.config.n_embd, resume)
    dtype = choice.dtype
    if s.dtype == "auto":
        notes.append(choice.reason)
    enable_tf32(device)
    micro = s.micro_batch
    if micro == "auto":
        micro = auto_micro_batch(model.config, state_bytes(model, s.optimizer), s.tokens_per_step,
                                 seq_len, d.world, device, dtype, s.activation_checkpointing)
        notes.append(f"--micro-batch auto chose {micro}")
    tokens = s.tokens_per_step or micro * seq_len * d.world
    accum = accumulation(tokens, micro, seq_len, d.world)
    torch.manual_seed(s.seed + d.rank)  # dropout streams differ per rank
    train = WindowStream(data.train, data.train_masks, seq_len, seed=s.seed)
    val = ValWindows([data.val], [data.val_mask], seq_len)
    spec = RunSpec(s.out, data.tokenizer, micro, seq_len, accum, d, dtype,
                   data_id=data.manifest_hash, extra={**extra, "settings": dump(s),
                                                      "data": str(s.data)},
                   resume=resume, notes=tuple(notes), weights=weights,
                   faults=parse_faults(s.inject_faults))
    return Trainer(model, train, val, s, spec, listener)


def save_settings(s, out: Path, d: D.Dist) -> None:
    if d.main:
        atomic.write_json(out / SETTINGS_NAME, dump(s))


def run_lock(out: Path, d: D.Dist, dry_run: bool = False) -> contextlib.AbstractContextManager:
    """The run folder's writer lock, held by the process that writes it (rank 0) from before
    the resume checks to the end; a dry run writes nothing and takes none."""
    return lock.hold(out) if d.main and not dry_run else contextlib.nullcontext()
