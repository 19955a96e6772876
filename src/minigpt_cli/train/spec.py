"""What the loop needs besides the model, the data and the settings: ``RunSpec``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from minigpt_cli.tokenizer import Tokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train.checkpointer import WeightsIO
from minigpt_cli.train.faults import Faults


@dataclass
class RunSpec:
    run_dir: Path
    tokenizer: Tokenizer
    micro_batch: int
    seq_len: int
    accum: int
    dist: D.Dist
    dtype: torch.dtype  # compute dtype (autocast); weights stay float32
    data_id: str | None = None  # manifest hash of the training data
    extra: dict = field(default_factory=dict)  # stored in every model.safetensors
    resume: Path | None = None
    notes: tuple[str, ...] = ()
    weights: WeightsIO | None = None  # custom weight saving/restoring (finetune's LoRA)
    faults: Faults | None = None  # --inject-faults (train/faults.py)

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.seq_len * self.accum * self.dist.world
