"""Training settings: what the loop needs (TrainSettings, shared with finetune) and what
`minigpt pretrain` adds (PretrainSettings). Each field's description is its `--help` text;
every field is also a key of the ``[pretrain]`` table of a ``--config`` TOML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from minigpt_cli.settings import DeviceSettings
from minigpt_cli.train.faults import parse_faults


class TrainSettings(DeviceSettings):
    """Settings of the training loop itself (used by pretrain and finetune)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Compute format: bfloat16 autocast, float16 autocast with a gradient scaler, "
        "or float32. auto = bfloat16 on CUDA GPUs that support it and on CPUs where this "
        "model's MLP measured at least 1.5x faster in bf16 (AMX, AVX512-BF16), else float32; "
        "a resumed run keeps its format. Weights and optimizer state stay float32.",
    )
    tokens_per_step: int | None = Field(
        None, ge=1, description="Tokens per optimizer step, across all processes; gradient "
        "accumulation makes up the difference. Default: one micro-batch per process.",
    )
    micro_batch: int | Literal["auto"] = Field(
        8, description="Sequences per forward pass per process, or auto: the largest that fits "
        "the device (tokens per step stay fixed).",
    )
    seq_len: int | None = Field(
        None, ge=2, description="Tokens per training sequence. Default: the model's context.",
    )
    max_steps: int = Field(1000, ge=1, description="Optimizer steps to train for (with "
                           "--max-time and no --max-steps given: no step limit).")
    max_time: float | None = Field(
        None, gt=0, description="Wall-clock budget of the run: stop (final eval, checkpoint) "
        "before a step would end past it; compilation, evals and checkpoints count. Without "
        "--max-steps the LR schedule runs on the share of the budget used: warmup over its "
        "first 5% (or --warmup-steps), cosine to the floor at its end, wsd decaying over its "
        "last --decay-share; with --max-steps the steps set the schedule and the time is a "
        "hard stop. "
        "Seconds, or a number with s, m or h (90s, 5m, 1.5h).",
    )
    lr: float = Field(6e-4, gt=0, description="Peak learning rate.")
    min_lr_ratio: float = Field(
        0.1, ge=0, le=1, description="Floor of the decay as a fraction of --lr (GPT-3: 10%).",
    )
    schedule: Literal["cosine", "constant", "wsd"] = Field(
        "cosine", description="Learning rate after warmup: cosine decay to the floor, constant, "
        "or warmup-stable-decay (constant, then a linear decay over --decay-steps).",
    )
    warmup_steps: int | None = Field(
        None, ge=0, description="Linear warmup steps. Default: 5% of --max-steps.",
    )
    decay_steps: int | None = Field(
        None, ge=1, description="cosine: the step where the floor is reached (default "
        "--max-steps); wsd: length of the final decay (default --decay-share of --max-steps).",
    )
    decay_share: float = Field(
        0.2, gt=0, le=1, description="wsd: the share of the run its final decay takes, when "
        "--decay-steps is not given (and always under a --max-time budget).",
    )
    weight_decay: float = Field(0.1, ge=0, description="AdamW decay on >= 2-D weights only.")
    optimizer: Literal["adamw", "muon"] = Field(
        "adamw", description="adamw, or muon: Muon (orthogonalised momentum) for the 2-D weights "
        "of the transformer's Linear layers, AdamW for the embeddings, biases and gains.",
    )
    muon_lr: float = Field(0.02, gt=0, description="Muon's peak learning rate (the schedule "
                           "scales it like --lr).")
    muon_momentum: float = Field(0.95, ge=0, lt=1, description="Muon's momentum (Nesterov).")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1.")
    beta2: float = Field(0.95, ge=0, lt=1, description="AdamW beta2.")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    grad_clip: float = Field(
        1.0, ge=0, description="Clip the global gradient norm to this (0 = no clipping; the "
        "norm is logged either way).",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout probability while training.")
    seed: int = Field(1337, description="Seed for weights, data order and dropout.")
    compile: bool = Field(False, description="torch.compile the model for training.")
    activation_checkpointing: bool = Field(
        False, description="Recompute each block's activations in the backward pass: less "
        "memory, about a third more compute.",
    )
    eval_every: int = Field(
        250, ge=0, description="Validation loss every this many steps (0 = only at the end).",
    )
    eval_batches: int = Field(20, ge=1, description="Micro-batches of the val shard per eval.")
    sample_every: int = Field(500, ge=0, description="Print a sample every this many steps "
                              "(0 = never).")
    sample_tokens: int = Field(64, ge=1, description="Tokens per sample.")
    sample_prompt: str = Field("", description="Prompt of the samples (empty: end-of-text).")
    checkpoint_every: int = Field(
        500, ge=0, description="Save a checkpoint every this many steps (0 = only at the end "
        "and on Ctrl-C / SIGTERM).",
    )
    keep_last: int = Field(3, ge=1, description="Checkpoints to keep (plus the best by val).")
    keep_best: bool = Field(True, description="Also keep the checkpoint with the best val loss.")
    early_stop_patience: int | None = Field(
        None, ge=1, description="Stop after this many evals without a better val loss.",
    )
    guard_spike_factor: float = Field(
        2.0, gt=1, description="Instability guard: a loss above this times its running mean "
        "is a spike.",
    )
    guard_spike_steps: int = Field(
        10, ge=1, description="Instability guard: this many spike steps in a row roll back to "
        "the last good checkpoint, skip that data and lower the LR.",
    )
    guard_lr_factor: float = Field(
        0.5, gt=0, le=1, description="Instability guard: multiply the LR by this on rollback.",
    )
    guard_max_rollbacks: int = Field(
        5, ge=0, description="Instability guard: stop with an error after this many rollbacks.",
    )
    log_every: int = Field(1, ge=1, description="A metrics line every this many steps.")
    print_every: str = Field(
        "10s", description="When stdout is not a terminal (a log file, a pipe): a step line "
        "every N steps (1 = every step) or every so many seconds of the run (10s, 1m). The first "
        "step, and the latest step before an eval, sample, checkpoint, guard or end line, are "
        "printed too. A terminal shows a live progress bar instead.",
    )
    tensorboard: bool = Field(False, description="Also write TensorBoard event files "
                              "(needs the tensorboard package).")
    peak_flops: float | None = Field(
        None, gt=0, description="Peak FLOP/s per device for MFU. Default: measured with a "
        "large matmul at start-up.",
    )
    inject_faults: str | None = Field(
        None, description="Testing hook: comma-separated KIND@STEP[-END][:ARG] with KIND nan "
        "(the loss becomes NaN), spike (the loss is multiplied by ARG, default 10) or hang "
        "(sleep ARG seconds before the update). STEP counts the steps taken, replayed ones "
        "included, so each fires once per run, resumed or not.",
    )

    @field_validator("micro_batch", mode="before")
    @classmethod
    def _micro_batch(cls, v):
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, int) and v < 1:
            raise ValueError("must be at least 1 or 'auto'")
        return v

    @field_validator("max_time", mode="before")
    @classmethod
    def _duration(cls, v):
        if isinstance(v, str):
            text = v.strip().lower()
            scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
            try:
                return float(text[:-1] if scale else text) * (scale or 1)
            except ValueError:
                raise ValueError("must be seconds or a number with s, m or h, e.g. 300, "
                                 "5m, 1.5h") from None
        return v

    @field_validator("print_every", mode="before")
    @classmethod
    def _print_every(cls, v):
        steps, seconds = print_interval(v)
        return str(steps) if steps else f"{seconds:g}s"

    def step_cap(self) -> int | None:
        """The step limit: --max-steps, except under --max-time when it was not given."""
        if self.max_time is not None and "max_steps" not in self.model_fields_set:
            return None
        return self.max_steps

    @field_validator("inject_faults")
    @classmethod
    def _faults(cls, v):
        if v:

            parse_faults(v)
        return v


def print_interval(value: str | int) -> tuple[int | None, float | None]:
    """--print-every as (steps, None) or (None, seconds): "25" or 25 -> (25, None), "10s" ->
    (None, 10.0), "1.5m" -> (None, 90.0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = str(value).strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
    try:
        if scale is None and text.isdigit() and int(text) >= 1:
            return int(text), None
        if scale is not None and float(text[:-1]) > 0:
            return None, float(text[:-1]) * scale
    except ValueError:
        pass
    raise ValueError("must be a number of steps (1 = every step, 100) or a time with s, m or h "
                     "(10s, 1m)")


class PretrainSettings(TrainSettings):
    """`minigpt pretrain`: train a GPT-2 preset from scratch on shards."""

    data: Path = Field(description="Folder of shards written by `minigpt shard` "
                       "(manifest.json, val_000000.bin, train_*.bin).")
    model: str = Field("gpt2", description="Model preset (gpt2, gpt2-medium, ..., baby, micro, "
                       "nano).")
    pad_vocab_to: int | None = Field(
        None, ge=1, description="Round the embedding table up to a multiple of this (faster "
        "matmuls). Default: 64 for vocabularies over 1024 ids, else none.",
    )
    n_layer: int | None = Field(None, ge=1, description="Override the preset's layer count.")
    n_head: int | None = Field(None, ge=1, description="Override the preset's head count.")
    n_embd: int | None = Field(None, ge=1, description="Override the preset's width.")
    block_size: int | None = Field(None, ge=2, description="Override the preset's context "
                                   "(learned positions).")
    positions: Literal["learned", "rope"] | None = Field(
        None, description="Position encoding: learned (GPT-2's table of --block-size vectors) "
        "or rope (rotary, no table; sampling continues past the context). Default: the "
        "preset's (learned for gpt2*).",
    )
    rope_base: float | None = Field(None, gt=0, description="RoPE's base (theta) "
                                    "[default: 10000]; needs positions = rope.")
    norm: Literal["layernorm", "rmsnorm"] | None = Field(
        None, description="Normalisation: layernorm (GPT-2) or rmsnorm. Default: the preset's.")
    norm_gain: bool | None = Field(None, description="Norms with learned gains (and biases "
                                   "with --bias) [default: true].")
    norm_eps: float | None = Field(None, gt=0, description="Norm epsilon [default: 1e-5].")
    qk_norm: bool | None = Field(None, description="RMSNorm of each head's queries and keys "
                                 "before attention (Qwen3) [default: false].")
    mlp: Literal["gelu", "relu2", "swiglu"] | None = Field(
        None, description="MLP: gelu (GPT-2's tanh GELU), relu2 (squared ReLU) or swiglu "
        "(Llama's gated SiLU, hidden width 8/3 C: the GELU MLP's weight count). Default: the "
        "preset's.")
    mlp_hidden: int | None = Field(None, ge=1, description="MLP hidden width [default: 4 C; "
                                   "round(8 C / 3) for swiglu].")
    bias: bool | None = Field(None, description="Biases in every Linear layer and norm "
                              "[default: the preset's, true for gpt2*].")
    tie_embeddings: bool | None = Field(None, description="The output layer is the token "
                                        "embedding [default: true].")
    logit_softcap: float | None = Field(
        None, ge=0, description="Soft-cap the logits at c: c tanh(logits / c); 0 = off "
        "[default: 0].")
    proj_init: Literal["gpt2", "zero"] = Field(
        "gpt2", description="Initial residual projections (attn.c_proj, mlp.c_proj): gpt2, "
        "N(0, 0.02/sqrt(2 n_layer)) as in the paper; zero: all zeros, so every block starts as "
        "the identity (the architecture is unchanged; helps small models with Muon).",
    )
    out: Path = Field(Path("runs/pretrain"), description="Run folder: checkpoints, "
                      "metrics.jsonl, settings.json, run.json.")
    resume: str | None = Field(
        None, description="Continue from a checkpoint folder, or 'auto': the newest one in "
        "--out (a fresh start when there is none).",
    )
    dry_run: bool = Field(False, description="Print the plan (parameters, FLOPs, memory, "
                          "measured tokens/s, ETA, disk) and exit without training.")
    target_tokens: int | None = Field(
        None, ge=1, description="Plan: also give the ETA to this many training tokens.",
    )
    cost_per_hour: float | None = Field(
        None, ge=0, description="Plan: price of one device-hour, to estimate the cost.",
    )

    @field_validator("model")
    @classmethod
    def _preset(cls, v: str) -> str:
        from minigpt_cli.model_config import PRESETS  # no torch: settings resolve first

        if v not in PRESETS:
            raise ValueError(f"unknown preset; known presets: {', '.join(PRESETS)}")
        return v

    @model_validator(mode="after")
    def _resume(self):
        if self.resume is not None and not self.resume.strip():
            raise ValueError("--resume needs a checkpoint folder or 'auto'")
        return self
