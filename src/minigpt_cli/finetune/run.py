"""`minigpt finetune` in the core: load the starting weights, check them against the data, set
up dropout / frozen blocks / LoRA, and hand everything to the one training loop. Every bad input
fails here, before anything is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.finetune.lora_weights import LoraWeights
from minigpt_cli.finetune.settings import FinetuneSettings
from minigpt_cli.model import GPT
from minigpt_cli.shard_folder import ShardFolder, open_shard_folder
from minigpt_cli.tokenizer import Tokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train import setup
from minigpt_cli.train.loop import Trainer


def load_base(s: FinetuneSettings) -> tuple[GPT, Tokenizer, str]:
    """The starting weights (float32, CPU) with the run's dropout (--dropout, else the one the
    model was trained with: a Hugging Face config's resid_pdrop, a checkpoint's dropout),
    their tokenizer, and what they are, in words."""
    if s.from_hf is not None:
        from minigpt_cli.hf import read_hf

        hf = read_hf(s.from_hf)
        model, tok = hf.model, hf.tokenizer
        trained_with = float(hf.hf_config.get("resid_pdrop") or 0.0)
        what = f"--from-hf {s.from_hf}"
    else:
        from minigpt_cli.model_file import load_checkpoint

        model, tok, _ = load_checkpoint(s.from_checkpoint)
        trained_with = model.config.dropout
        what = f"--from {s.from_checkpoint}"
    model = model.float()
    dropout = s.dropout if s.dropout is not None else trained_with
    if model.config.dropout != dropout:  # dropout lives in the modules: rebuild with it
        from minigpt_cli.model_file import TIED, build_model

        state = {k: v for k, v in model.state_dict().items()
                 if k != TIED or not model.config.tie_embeddings}
        model = build_model(replace(model.config, dropout=dropout), state, what)
    return model, tok, what


def check_vocabulary(model: GPT, tok: Tokenizer, what: str, data: ShardFolder) -> None:
    """The data's token ids must mean what the model learned they mean."""
    mine, theirs = tok.identity(), data.tokenizer.identity()
    if mine != theirs:
        how = ("--tokenizer char --char-vocab <the manifest.json of the shards the model was "
               "trained on>" if mine.name == "char" else f"--tokenizer {mine.name}")
        raise IncompatibleError(
            f"{what} was trained with tokenizer {mine} ({tok.vocab_size} ids), but --data "
            f"{data.folder} was tokenized with {theirs} ({data.tokenizer.vocab_size} ids): the "
            "same id would mean different text, so training would only scramble the model. "
            f"Re-shard the text with the model's tokenizer (`minigpt shard ... {how}`), or "
            "start from a model trained with the data's tokenizer."
        )
    if data.tokenizer.vocab_size > model.config.vocab_size:
        raise IncompatibleError(
            f"{what} predicts {model.config.vocab_size} ids but the data's tokenizer has "
            f"{data.tokenizer.vocab_size}.")


def freeze_blocks(model: GPT, k: int) -> None:
    if k > model.config.n_layer:
        raise MinigptError(f"--freeze-blocks {k}: the model has only {model.config.n_layer} "
                           "blocks. Freeze fewer.")
    for block in model.transformer.h[:k]:
        for p in block.parameters():
            p.requires_grad_(False)


def check_lora_resume(folder: Path, s: FinetuneSettings) -> None:
    """A LoRA run resumes as a LoRA run, a full one as a full one."""
    lora = (folder / LoraWeights.FILE).exists()
    if lora != (s.lora_rank is not None):
        raise MinigptError(
            f"--resume {folder} was a {'LoRA' if lora else 'full'} fine-tune; resume it "
            + ("with the same --lora-rank and --lora-targets." if lora else "without --lora-rank."))


def prepare(s: FinetuneSettings, d: D.Dist, listener: E.Listener) -> Trainer:
    data = open_shard_folder(s.data)
    model, tok, what = load_base(s)
    check_vocabulary(model, tok, what, data)
    seq_len = setup.sequence_length(s, model.config.block_size, what)
    resume = setup.resume_target(s, model.config, data, seq_len)
    if resume is not None:
        check_lora_resume(resume, s)
    freeze_blocks(model, s.freeze_blocks)
    weights, notes = None, [f"starting from {what}"]
    if s.lora_rank is not None:
        torch.manual_seed(s.seed)  # the adapters' initial A
        weights = LoraWeights.attach(model, s, what)
        notes.append(f"LoRA rank {s.lora_rank} on {', '.join(s.lora_targets)}: "
                     f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,} "
                     "trainable parameters")
    elif s.freeze_blocks:
        notes.append(f"blocks 0..{s.freeze_blocks - 1} frozen")
    return setup.build_run(s, d, data, model, seq_len, resume, listener,
                           extra={"kind": "finetune", "from": what}, notes=notes,
                           weights=weights)


def run_finetune(s: FinetuneSettings, listener: E.Listener = E.ignore) -> E.RunFinished:
    """Fine-tune; every input is checked before anything is written."""
    d = D.setup(s.device)
    clean = False
    try:
        with setup.run_lock(s.out, d):
            trainer = prepare(s, d, listener)
            setup.save_settings(s, s.out, d)
            result = trainer.run()
            clean = True
            return result
    finally:
        D.teardown(d, clean)
