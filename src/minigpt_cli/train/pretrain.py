"""`minigpt pretrain` in the core: a fresh GPT-2 from the settings, handed to the one run set-up
(setup.py) and the one loop (or to the planner for --dry-run). Every bad input fails before
anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from minigpt_cli.errors import MinigptError
from minigpt_cli.model import GPT, GPTConfig, preset_config
from minigpt_cli.shard_folder import open_shard_folder
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train import setup
from minigpt_cli.train.dry_run import Plan, make_plan
from minigpt_cli.train.loop import Trainer
from minigpt_cli.train.settings import PretrainSettings
from minigpt_cli.train.step_folder import read_state

ARCH_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "positions", "rope_base", "norm",
             "norm_gain", "norm_eps", "qk_norm", "mlp", "mlp_hidden", "bias", "tie_embeddings",
             "logit_softcap")  # settings that override the preset's model config


def model_config(s: PretrainSettings, vocab_size: int) -> GPTConfig:
    """The preset with the run's overrides; a bad combination fails here, naming the keys."""
    pad = s.pad_vocab_to if s.pad_vocab_to is not None else (64 if vocab_size > 1024 else 1)
    config = preset_config(s.model, vocab_size=vocab_size, pad_vocab_to=pad, dropout=s.dropout,
                           **{k: getattr(s, k) for k in ARCH_KEYS})
    problems = config.validate()
    if problems:
        raise MinigptError(
            f"The model of this run (--model {s.model} with its overrides) is not valid: "
            + "; ".join(problems) + ". Change the flags or [pretrain] keys named "
            "(docs/model.md lists the switches).")
    return config


@dataclass
class Prepared:
    trainer: Trainer
    resume: Path | None


def prepare(s: PretrainSettings, d: D.Dist, listener: E.Listener) -> Prepared:
    data = open_shard_folder(s.data)
    config = model_config(s, data.tokenizer.vocab_size)
    seq_len = setup.sequence_length(s, config.block_size, f"--model {s.model}")
    resume = setup.resume_target(s, config, data, seq_len)
    torch.manual_seed(s.seed)  # the same initial weights on every rank
    model = GPT(config)
    if s.proj_init == "zero" and resume is None:
        model.zero_residual_projections()
    trainer = setup.build_run(s, d, data, model, seq_len, resume, listener,
                              extra={"kind": "pretrain"})
    return Prepared(trainer, resume)


def run_pretrain(s: PretrainSettings, listener: E.Listener = E.ignore) -> E.RunFinished | Plan:
    """Train (or plan, with ``dry_run``); every input is checked before anything is written."""
    d = D.setup(s.device)
    clean = False
    try:
        with setup.run_lock(s.out, d, s.dry_run):
            prepared = prepare(s, d, listener)
            if s.dry_run:
                start = 0
                if prepared.resume is not None:
                    start = read_state(prepared.resume).step
                plan = make_plan(prepared.trainer, s, start)
                clean = True
                return plan
            setup.save_settings(s, s.out, d)
            result = prepared.trainer.run()
            clean = True
            return result
    finally:
        D.teardown(d, clean)
