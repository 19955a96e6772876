"""Settings of `minigpt finetune`: the training loop's settings (train/settings.py) with
fine-tuning defaults, plus where the weights come from, frozen blocks and LoRA. Each field's
description is its `--help` text; every field is also a key of the ``[finetune]`` table of a
``--config`` TOML file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from minigpt_cli.lora import TARGETS
from minigpt_cli.train.settings import TrainSettings

LORA_LR = 1e-3  # the default --lr with LoRA: adapters start at zero and need a larger step


class FinetuneSettings(TrainSettings):
    """`minigpt finetune`: continue training pretrained weights on new data."""

    from_checkpoint: Path | None = Field(
        None, description="The weights to start from: a minigpt checkpoint (model.safetensors "
        "or its step folder).")
    from_hf: Path | None = Field(
        None, description="The weights to start from: a Hugging Face GPT-2 folder "
        "(config.json + model.safetensors).")
    data: Path = Field(description="Folder of shards written by `minigpt shard` with the "
                       "model's tokenizer (manifest.json, val_000000.bin, train_*.bin).")
    out: Path = Field(Path("runs/finetune"), description="Run folder: checkpoints, "
                      "metrics.jsonl, settings.json.")
    resume: str | None = Field(
        None, description="Continue from a checkpoint folder of this fine-tune, or 'auto': the "
        "newest one in --out. Give the same --from/--from-hf as the first run.")
    freeze_blocks: int = Field(
        0, ge=0, description="Freeze the first k transformer blocks (with LoRA: no adapters "
        "there). The embeddings (tied with the output layer) stay trainable without LoRA.")
    lora_rank: int | None = Field(
        None, ge=1, description="Train LoRA adapters of this rank instead of the full model "
        "(every base weight frozen). Checkpoints hold the merged model (plain GPT-2) plus "
        "lora.safetensors with the adapters.")
    lora_alpha: float = Field(16.0, gt=0, description="LoRA scale numerator: the update is "
                              "(alpha / rank) B A.")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input.")
    lora_targets: list[str] = Field(
        default_factory=lambda: ["c_attn"], description="Layers that get adapters, among "
        "c_attn (attention q,k,v), c_proj (both output projections) and c_fc (MLP input).")
    # fine-tuning defaults for the loop's settings
    max_steps: int = Field(500, ge=1, description="Optimizer steps to train for (with "
                           "--max-time and no --max-steps given: no step limit).")
    lr: float = Field(1e-4, gt=0, description=f"Peak learning rate (default 1e-4; {LORA_LR:g} "
                      "with LoRA).")
    warmup_steps: int | None = Field(20, ge=0, description="Linear warmup steps.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Floor of the decay as a fraction "
                                "of --lr.")
    dropout: float | None = Field(
        None, ge=0, lt=1, description="Dropout probability while training. Default: the one "
        "the model was pretrained with (a Hugging Face config's resid_pdrop, 0.1 for OpenAI's "
        "GPT-2; a minigpt checkpoint's own): dropout a model never saw only costs accuracy.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decay on >= 2-D weights only.")
    eval_every: int = Field(50, ge=0, description="Validation loss every this many steps "
                            "(0 = only at the end).")
    early_stop_patience: int | None = Field(
        3, ge=1, description="Stop after this many evals without a better val loss.")
    checkpoint_every: int = Field(100, ge=0, description="Save a checkpoint every this many "
                                  "steps (0 = only at the end and on Ctrl-C / SIGTERM).")
    sample_every: int = Field(100, ge=0, description="Print a sample every this many steps "
                              "(0 = never).")

    @field_validator("lora_targets", mode="before")
    @classmethod
    def _split_targets(cls, v):
        if isinstance(v, str):
            v = [t for t in v.replace(",", " ").split() if t]
        return v

    @field_validator("lora_targets")
    @classmethod
    def _known_targets(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in TARGETS]
        if unknown or not v:
            raise ValueError(f"must be among {', '.join(TARGETS)} (got {', '.join(v) or 'none'})")
        return v

    @model_validator(mode="before")
    @classmethod
    def _lora_lr(cls, data):
        if isinstance(data, dict) and data.get("lora_rank") is not None and "lr" not in data:
            data = {**data, "lr": LORA_LR}
        return data

    @model_validator(mode="after")
    def _one_source(self):
        if (self.from_checkpoint is None) == (self.from_hf is None):
            raise ValueError("give the weights to start from: --from CHECKPOINT or --from-hf "
                             "HF_DIR (one of them)")
        if self.resume is not None and not self.resume.strip():
            raise ValueError("--resume needs a checkpoint folder or 'auto'")
        return self

    @property
    def source(self) -> Path:
        return self.from_checkpoint if self.from_checkpoint is not None else self.from_hf
