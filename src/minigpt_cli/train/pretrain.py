"""`minigpt pretrain` in the core: check every input, build the model and data, hand them to the
one loop (or to the planner for --dry-run). Every bad input fails here, before training."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from minigpt_cli import atomic, lock
from minigpt_cli.checkpoint import read_checkpoint
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.model import GPT, GPTConfig, preset_config
from minigpt_cli.settings import dump
from minigpt_cli.tokenizer import check_same_tokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train.batching import accumulation
from minigpt_cli.train.data import check_fits, open_shard_folder
from minigpt_cli.train.faults import parse_faults
from minigpt_cli.train.loader import ValWindows, WindowStream
from minigpt_cli.train.loop import RunSpec, Trainer
from minigpt_cli.train.plan import Plan, auto_micro_batch, make_plan, state_bytes
from minigpt_cli.train.settings import PretrainSettings, TrainSettings
from minigpt_cli.train.state import check_resumable, list_checkpoints, read_state

SETTINGS_NAME = "settings.json"


def compute_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else torch.float32
    return getattr(torch, name)


def enable_tf32(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def model_config(s: PretrainSettings, vocab_size: int) -> GPTConfig:
    pad = s.pad_vocab_to if s.pad_vocab_to is not None else (64 if vocab_size > 1024 else 1)
    return preset_config(s.model, vocab_size=vocab_size, pad_vocab_to=pad, dropout=s.dropout,
                         n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd,
                         block_size=s.block_size)


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


def check_resume_target(folder: Path, config: GPTConfig, data, settings, seq_len: int) -> None:
    """The checkpoint's model and tokenizer must be this run's (read without its tensors)."""
    ckpt = read_checkpoint(folder, load_tensors=False)
    if ckpt.config != config:
        a, b = ckpt.config, config
        raise IncompatibleError(
            f"--resume {folder} is a different model (n_layer={a.n_layer}, n_head={a.n_head}, "
            f"n_embd={a.n_embd}, vocab={a.vocab_size}, block={a.block_size}) than --model "
            f"{settings.model} on this data (n_layer={b.n_layer}, n_head={b.n_head}, "
            f"n_embd={b.n_embd}, vocab={b.vocab_size}, block={b.block_size}). Resume with the "
            "settings it was trained with (settings.json in its run folder) or use a new --out."
        )
    check_same_tokenizer(ckpt.identity, data.tokenizer.identity(), f"--resume {folder}",
                         f"--data {settings.data}")
    state = read_state(folder)
    if state.manifest_hash and state.manifest_hash != data.manifest_hash:
        raise IncompatibleError(
            f"--resume {folder} trained on other shards (manifest {state.manifest_hash[:12]}) "
            f"than --data {settings.data} (manifest {data.manifest_hash[:12]}); its data "
            "position means nothing there. Resume with the data it trained on, or use a new --out."
        )
    if state.seq_len and state.seq_len != seq_len:
        raise MinigptError(f"--resume {folder} trained with --seq-len {state.seq_len}, not "
                           f"{seq_len}; resume with --seq-len {state.seq_len}.")


@dataclass
class Prepared:
    trainer: Trainer
    resume: Path | None


def prepare(s: PretrainSettings, d: D.Dist, listener: E.Listener) -> Prepared:
    data = open_shard_folder(s.data)
    config = model_config(s, data.tokenizer.vocab_size)
    seq_len = s.seq_len or config.block_size
    if seq_len > config.block_size:
        raise MinigptError(f"--seq-len {seq_len} is longer than the context of --model {s.model} "
                           f"({config.block_size} positions). Use --seq-len {config.block_size} "
                           "or less.")
    check_fits(data, seq_len)
    resume = find_resume(s.resume, s.out)
    if resume is not None:
        check_resume_target(resume, config, data, s, seq_len)
    device = d.device
    dtype = compute_dtype(s.dtype, device)
    enable_tf32(device)
    torch.manual_seed(s.seed)  # the same initial weights on every rank
    model = GPT(config)
    if s.proj_init == "zero" and resume is None:
        model.zero_residual_projections()
    micro = s.micro_batch
    notes = []
    if micro == "auto":
        micro = auto_micro_batch(config, state_bytes(model, s.optimizer), s.tokens_per_step,
                                 seq_len, d.world, device, dtype, s.activation_checkpointing)
        notes.append(f"--micro-batch auto chose {micro}")
    tokens = s.tokens_per_step or micro * seq_len * d.world
    accum = accumulation(tokens, micro, seq_len, d.world)
    torch.manual_seed(s.seed + d.rank)  # dropout streams differ per rank
    train = WindowStream(data.train, data.train_masks, seq_len, seed=s.seed)
    val = ValWindows([data.val], [data.val_mask], seq_len)
    extra = {"kind": "pretrain", "settings": dump(s), "data": str(s.data)}
    spec = RunSpec(s.out, data.tokenizer, micro, seq_len, accum, d, dtype,
                   data_id=data.manifest_hash, extra=extra, resume=resume, notes=tuple(notes),
                   faults=parse_faults(s.inject_faults))
    return Prepared(Trainer(model, train, val, s, spec, listener), resume)


def save_settings(s: TrainSettings, out: Path, d: D.Dist) -> None:
    if d.main:
        atomic.write_json(out / SETTINGS_NAME, dump(s))


def run_lock(out: Path, d: D.Dist, dry_run: bool = False) -> contextlib.AbstractContextManager:
    """The run folder's writer lock, held by the process that writes it (rank 0) from before
    the resume checks to the end; a dry run writes nothing and takes none."""
    return lock.hold(out) if d.main and not dry_run else contextlib.nullcontext()


def run_pretrain(s: PretrainSettings, listener: E.Listener = E.ignore) -> E.RunFinished | Plan:
    """Train (or plan, with ``dry_run``); every input is checked before anything is written."""
    d = D.setup(s.device)
    try:
        with run_lock(s.out, d, s.dry_run):
            prepared = prepare(s, d, listener)
            if s.dry_run:
                start = 0
                if prepared.resume is not None:
                    start = read_state(prepared.resume).step
                return make_plan(prepared.trainer, s, start)
            save_settings(s, s.out, d)
            return prepared.trainer.run()
    finally:
        D.teardown(d)
