"""`minigpt finetune`: continue training a checkpoint or a Hugging Face GPT-2 on new shards with
the one training loop (fine-tuning defaults, early stopping, frozen blocks, LoRA). Every flag is
also a key of the [finetune] table of a --config TOML file (the loop's other settings too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minigpt_cli.commands.options import ConfigOpt, DeviceOpt
from minigpt_cli.commands.render import err_console

SRC, ADAPT, BATCH, OPT = "Weights and data", "Freezing and LoRA", "Batch", "Optimizer and schedule"
RUN, EVAL = "Runtime", "Eval, samples, checkpoints"


def _o(help: str, panel: str, *names: str):
    return typer.Option(*names, help=help, rich_help_panel=panel)


def finetune(
    from_checkpoint: Annotated[Path | None, _o("Start from this minigpt checkpoint (file or step "
                               "folder).", SRC, "--from", "--from-checkpoint")] = None,
    from_hf: Annotated[Path | None, _o("Start from this Hugging Face GPT-2, Llama or Qwen3 "
                       "folder.", SRC,
                       "--from-hf")] = None,
    data: Annotated[Path | None, _o("Shard folder from `minigpt shard`, made with the model's "
                    "tokenizer.", SRC)] = None,
    out: Annotated[Path | None, _o("Run folder \\[default: runs/finetune].", SRC)] = None,
    resume: Annotated[str | None, _o("Checkpoint folder to continue, or 'auto' (newest in "
                      "--out).", SRC)] = None,
    freeze_blocks: Annotated[int | None, _o("Freeze the first k blocks \\[default: 0].",
                             ADAPT)] = None,
    lora_rank: Annotated[int | None, _o("Train LoRA adapters of this rank instead of the full "
                         "model.", ADAPT)] = None,
    lora_alpha: Annotated[float | None, _o("LoRA alpha (update scale alpha/rank) \\[default: "
                          "16].", ADAPT)] = None,
    lora_dropout: Annotated[float | None, _o("Dropout on the adapters' input \\[default: 0].",
                            ADAPT)] = None,
    lora_targets: Annotated[str | None, _o("Comma-separated among c_attn, c_proj, c_fc "
                            "\\[default: c_attn].", ADAPT)] = None,
    tokens_per_step: Annotated[int | None, _o("Tokens per optimizer step \\[default: one "
                               "micro-batch].", BATCH)] = None,
    micro_batch: Annotated[str | None, _o("Sequences per forward pass, or auto \\[default: 8].",
                           BATCH)] = None,
    seq_len: Annotated[int | None, _o("Tokens per sequence \\[default: the model's context].",
                       BATCH)] = None,
    max_steps: Annotated[int | None, _o("Optimizer steps \\[default: 500].", BATCH)] = None,
    max_time: Annotated[str | None, _o("Wall-clock budget (300, 5m, 1.5h); the LR schedule "
                        "follows it.", BATCH)] = None,
    lr: Annotated[float | None, _o("Peak learning rate \\[default: 1e-4; 1e-3 with LoRA].",
                  OPT)] = None,
    min_lr_ratio: Annotated[float | None, _o("Decay floor / peak \\[default: 0.1].", OPT)] = None,
    schedule: Annotated[str | None, _o("cosine | constant | wsd \\[default: cosine].", OPT)] = None,
    warmup_steps: Annotated[int | None, _o("Warmup steps \\[default: 20].", OPT)] = None,
    weight_decay: Annotated[float | None, _o("AdamW weight decay \\[default: 0].", OPT)] = None,
    optimizer: Annotated[str | None, _o("adamw | muon (Muon for the hidden matrices, AdamW for "
                         "the rest) \\[default: adamw].", OPT)] = None,
    muon_lr: Annotated[float | None, _o("Muon's peak learning rate \\[default: 0.02].",
                       OPT)] = None,
    grad_clip: Annotated[float | None, _o("Gradient-norm clip, 0 = off \\[default: 1.0].",
                         OPT)] = None,
    dropout: Annotated[float | None, _o("Dropout while training \\[default: the model's own "
                       "(GPT-2: 0.1)].", OPT)] = None,
    device: DeviceOpt = None,
    dtype: Annotated[str | None, _o("auto | float32 | bfloat16 | float16 \\[default: auto].",
                     RUN)] = None,
    compile: Annotated[bool | None, _o("torch.compile the model.", RUN,
                       "--compile/--no-compile")] = None,
    seed: Annotated[int | None, _o("Seed for data order, dropout, adapters \\[default: 1337].",
                    RUN)] = None,
    log_every: Annotated[int | None, _o("A metrics line every N steps \\[default: 1].",
                         RUN)] = None,
    print_every: Annotated[str | None, _o("Without a terminal (a log, a pipe): a step line "
                           "every N steps (1, 100) or every so often (30s, 5m) \\[default: 10s].",
                           RUN)] = None,
    peak_flops: Annotated[float | None, _o("Peak FLOP/s per device for MFU \\[default: "
                          "measured].", RUN)] = None,
    eval_every: Annotated[int | None, _o("Val loss every N steps \\[default: 50].", EVAL)] = None,
    eval_batches: Annotated[int | None, _o("Val micro-batches per eval \\[default: 20].",
                            EVAL)] = None,
    early_stop_patience: Annotated[int | None, _o("Stop after N evals without improvement "
                                   "\\[default: 3].", EVAL)] = None,
    sample_every: Annotated[int | None, _o("A sample every N steps, 0 = never \\[default: 100].",
                            EVAL)] = None,
    sample_prompt: Annotated[str | None, _o("Prompt of the samples.", EVAL)] = None,
    checkpoint_every: Annotated[int | None, _o("Checkpoint every N steps \\[default: 100].",
                                EVAL)] = None,
    keep_last: Annotated[int | None, _o("Checkpoints kept \\[default: 3] (plus the best).",
                         EVAL)] = None,
    config: ConfigOpt = None,
) -> None:
    """Fine-tune a checkpoint or a Hugging Face GPT-2 on shards: low LR, short warmup, early
    stopping, dropout, frozen blocks or LoRA adapters (merged into plain GPT-2 checkpoints)."""
    flags = dict(locals())
    flags.pop("config")
    from minigpt_cli.finetune.settings import FinetuneSettings
    from minigpt_cli.settings import resolve

    s = resolve(FinetuneSettings, "finetune", flags, config)

    from minigpt_cli.commands.train_display import TrainDisplay
    from minigpt_cli.finetune.run import run_finetune

    with TrainDisplay(print_every=s.print_every) as display:
        result = run_finetune(s, display)
    if result.reason == "signal":
        err_console.print(f"[yellow]stopped by a signal at step {result.step}; resume with "
                          f"the same command and --resume auto[/yellow]")
