"""`minigpt pretrain`: train a GPT-2 preset from scratch on shards (one process, or DDP under
torchrun). Every flag is also a key of the [pretrain] table of a --config TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from minigpt_cli.commands.options import ConfigOpt, DeviceOpt
from minigpt_cli.commands.render import err_console

DATA, MODEL, BATCH, OPT = "Data and model", "Model", "Batch", "Optimizer and schedule"
ARCH = "Architecture switches (docs/model.md)"
RUN, GUARD, EVAL, PLAN = "Runtime", "Instability guard", "Eval, samples, checkpoints", "Plan"


def _o(help: str, panel: str, *names: str, hidden: bool = False):
    return typer.Option(*names, help=help, rich_help_panel=panel, hidden=hidden)


def pretrain(
    data: Annotated[Path | None, _o("Shard folder from `minigpt shard` (manifest.json, "
                    "val_000000.bin, train_*.bin).", DATA)] = None,
    model: Annotated[str | None, _o("Preset: gpt2, gpt2-medium, gpt2-large, gpt2-xl, baby, "
                     "micro, nano \\[default: gpt2].", DATA)] = None,
    out: Annotated[Path | None, _o("Run folder \\[default: runs/pretrain].", DATA)] = None,
    resume: Annotated[str | None, _o("Checkpoint folder to continue, or 'auto' (newest in "
                      "--out).", DATA)] = None,
    tokens_per_step: Annotated[int | None, _o("Tokens per optimizer step over all processes "
                               "(e.g. 524288) \\[default: one micro-batch per process].",
                               BATCH)] = None,
    micro_batch: Annotated[str | None, _o("Sequences per forward pass, or auto \\[default: 8].",
                           BATCH)] = None,
    seq_len: Annotated[int | None, _o("Tokens per sequence \\[default: the model's context].",
                       BATCH)] = None,
    max_steps: Annotated[int | None, _o("Optimizer steps \\[default: 1000].", BATCH)] = None,
    max_time: Annotated[str | None, _o("Wall-clock budget (300, 5m, 1.5h): stop before a step "
                        "would pass it; the LR schedule follows the budget.", BATCH)] = None,
    lr: Annotated[float | None, _o("Peak learning rate \\[default: 6e-4].", OPT)] = None,
    min_lr_ratio: Annotated[float | None, _o("Decay floor / peak \\[default: 0.1].", OPT)] = None,
    schedule: Annotated[str | None, _o("cosine | constant | wsd \\[default: cosine].", OPT)] = None,
    warmup_steps: Annotated[int | None, _o("Warmup steps \\[default: 5% of --max-steps].",
                            OPT)] = None,
    decay_steps: Annotated[int | None, _o("cosine: step of the floor; wsd: decay length.",
                           OPT)] = None,
    decay_share: Annotated[float | None, _o("wsd: share of the run the decay takes when "
                           "--decay-steps is not given \\[default: 0.2].", OPT)] = None,
    weight_decay: Annotated[float | None, _o("AdamW weight decay \\[default: 0.1].", OPT)] = None,
    optimizer: Annotated[str | None, _o("adamw | muon (Muon for the hidden matrices, AdamW for "
                         "the rest) \\[default: adamw].", OPT)] = None,
    muon_lr: Annotated[float | None, _o("Muon's peak learning rate \\[default: 0.02].",
                       OPT)] = None,
    muon_momentum: Annotated[float | None, _o("Muon's momentum \\[default: 0.95].", OPT)] = None,
    beta1: Annotated[float | None, _o("AdamW beta1 \\[default: 0.9].", OPT)] = None,
    beta2: Annotated[float | None, _o("AdamW beta2 \\[default: 0.95].", OPT)] = None,
    eps: Annotated[float | None, _o("AdamW epsilon \\[default: 1e-8].", OPT)] = None,
    grad_clip: Annotated[float | None, _o("Gradient-norm clip, 0 = off \\[default: 1.0].",
                         OPT)] = None,
    dropout: Annotated[float | None, _o("Dropout \\[default: 0.0].", MODEL)] = None,
    pad_vocab_to: Annotated[int | None, _o("Round the vocabulary up to a multiple of this.",
                            MODEL)] = None,
    n_layer: Annotated[int | None, _o("Override the preset's layers.", MODEL)] = None,
    n_head: Annotated[int | None, _o("Override the preset's heads.", MODEL)] = None,
    n_embd: Annotated[int | None, _o("Override the preset's width.", MODEL)] = None,
    block_size: Annotated[int | None, _o("Override the preset's context.", MODEL)] = None,
    proj_init: Annotated[str | None, _o("Residual projections' initial weights: gpt2 | zero "
                         "\\[default: gpt2].", MODEL)] = None,
    positions: Annotated[str | None, _o("learned | rope \\[default: the preset's].",
                         ARCH)] = None,
    rope_base: Annotated[float | None, _o("RoPE base (theta) \\[default: 10000].",
                         ARCH)] = None,
    norm: Annotated[str | None, _o("layernorm | rmsnorm \\[default: the preset's].",
                    ARCH)] = None,
    norm_gain: Annotated[bool | None, _o("Learned gains in the norms \\[default: on].", ARCH,
                         "--norm-gain/--no-norm-gain")] = None,
    norm_eps: Annotated[float | None, _o("Norm epsilon \\[default: 1e-5].", ARCH)] = None,
    qk_norm: Annotated[bool | None, _o("RMSNorm of queries and keys per head \\[default: "
                       "off].", ARCH, "--qk-norm/--no-qk-norm")] = None,
    mlp: Annotated[str | None, _o("gelu | relu2 | swiglu \\[default: the preset's].",
                   ARCH)] = None,
    mlp_hidden: Annotated[int | None, _o("MLP hidden width \\[default: 4C, 8C/3 for "
                          "swiglu].", ARCH)] = None,
    bias: Annotated[bool | None, _o("Biases in Linear layers and norms \\[default: the "
                    "preset's].", ARCH, "--bias/--no-bias")] = None,
    tie_embeddings: Annotated[bool | None, _o("Output layer = token embedding \\[default: "
                              "on].", ARCH, "--tie-embeddings/--no-tie-embeddings")] = None,
    logit_softcap: Annotated[float | None, _o("c tanh(logits / c), 0 = off \\[default: 0].",
                             ARCH)] = None,
    device: DeviceOpt = None,
    dtype: Annotated[str | None, _o("auto | float32 | bfloat16 | float16 \\[default: auto].",
                     RUN)] = None,
    compile: Annotated[bool | None, _o("torch.compile the model.", RUN,
                       "--compile/--no-compile")] = None,
    activation_checkpointing: Annotated[bool | None, _o("Recompute activations in backward "
                                        "(less memory).", RUN, "--activation-checkpointing/"
                                        "--no-activation-checkpointing")] = None,
    seed: Annotated[int | None, _o("Seed for weights, data order, dropout \\[default: 1337].",
                    RUN)] = None,
    tensorboard: Annotated[bool | None, _o("Also write TensorBoard logs.", RUN,
                           "--tensorboard/--no-tensorboard")] = None,
    peak_flops: Annotated[float | None, _o("Peak FLOP/s per device for MFU \\[default: "
                          "measured].", RUN)] = None,
    log_every: Annotated[int | None, _o("A metrics line every N steps \\[default: 1].",
                         RUN)] = None,
    print_every: Annotated[str | None, _o("Without a terminal (a log, a pipe): a step line "
                           "every N steps (1, 100) or every so often (30s, 5m) \\[default: 10s].",
                           RUN)] = None,
    eval_every: Annotated[int | None, _o("Val loss every N steps \\[default: 250].", EVAL)] = None,
    eval_batches: Annotated[int | None, _o("Val micro-batches per eval \\[default: 20].",
                            EVAL)] = None,
    sample_every: Annotated[int | None, _o("A sample every N steps, 0 = never \\[default: 500].",
                            EVAL)] = None,
    sample_tokens: Annotated[int | None, _o("Tokens per sample \\[default: 64].", EVAL)] = None,
    sample_prompt: Annotated[str | None, _o("Prompt of the samples.", EVAL)] = None,
    checkpoint_every: Annotated[int | None, _o("Checkpoint every N steps \\[default: 500].",
                                EVAL)] = None,
    keep_last: Annotated[int | None, _o("Checkpoints kept \\[default: 3] (plus the best).",
                         EVAL)] = None,
    keep_best: Annotated[bool | None, _o("Keep the best-by-val checkpoint.", EVAL,
                         "--keep-best/--no-keep-best")] = None,
    early_stop_patience: Annotated[int | None, _o("Stop after N evals without improvement.",
                                   EVAL)] = None,
    guard_spike_factor: Annotated[float | None, _o("Spike = loss above k x running mean "
                                  "\\[default: 2.0].", GUARD)] = None,
    guard_spike_steps: Annotated[int | None, _o("Spike steps in a row before a rollback "
                                 "\\[default: 10].", GUARD)] = None,
    guard_lr_factor: Annotated[float | None, _o("LR multiplier on rollback \\[default: 0.5].",
                               GUARD)] = None,
    guard_max_rollbacks: Annotated[int | None, _o("Give up after N rollbacks \\[default: 5].",
                                   GUARD)] = None,
    inject_faults: Annotated[str | None, _o("Testing hook: nan@STEP, spike@A-B:X, hang@STEP:S.",
                             GUARD, hidden=True)] = None,
    dry_run: Annotated[bool | None, _o("Print the plan (params, FLOPs, memory, measured "
                       "tokens/s, ETA, disk) and exit.", PLAN, "--dry-run")] = None,
    target_tokens: Annotated[int | None, _o("Plan: ETA to this many tokens.", PLAN)] = None,
    cost_per_hour: Annotated[float | None, _o("Plan: price per device-hour.", PLAN)] = None,
    config: ConfigOpt = None,
) -> None:
    """Pretrain GPT-2 from scratch on shards: AdamW, warmup + cosine, gradient accumulation,
    mixed precision, exact resume, DDP under torchrun."""
    flags = dict(locals())
    flags.pop("config")
    from minigpt_cli.settings import resolve
    from minigpt_cli.train.settings import PretrainSettings

    s = resolve(PretrainSettings, "pretrain", flags, config)

    from minigpt_cli.commands.train_display import TrainDisplay, plan_table
    from minigpt_cli.train.dry_run import Plan
    from minigpt_cli.train.pretrain import run_pretrain

    with TrainDisplay(print_every=s.print_every) as display:
        result = run_pretrain(s, display)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports
    if isinstance(result, Plan):
        display.console.print(plan_table(result))
    elif result.reason == "signal":
        err_console.print(f"[yellow]stopped by a signal at step {result.step}; resume with "
                          f"--resume auto --out {s.out}[/yellow]")
