"""How a LoRA fine-tune's weights reach its checkpoints and come back (the trainer's
``RunSpec.weights`` hook): ``model.safetensors`` holds the merged model -- a plain GPT-2 that
`sample`, `eval` and `export-hf` read like any other -- and ``lora.safetensors`` the adapters
with their rank, alpha and targets. Resuming (or the guard's rollback) loads the adapters onto
the base weights given again with --from / --from-hf, so the continuation is exact."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError
from minigpt_cli.lora import adapter_state, add_lora, load_adapter_state, merged
from minigpt_cli.model_file import save_tensors


class LoraWeights:
    FILE = "lora.safetensors"

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    @classmethod
    def attach(cls, model: torch.nn.Module, s, base: str) -> LoraWeights:
        """Freeze ``model`` and give it adapters as the settings say."""
        layers = add_lora(model, s.lora_rank, s.lora_alpha, s.lora_targets, s.lora_dropout,
                          skip_blocks=s.freeze_blocks)
        if not layers:
            raise MinigptError(f"--lora-targets {','.join(s.lora_targets)} with --freeze-blocks "
                               f"{s.freeze_blocks} leaves no layer to adapt.")
        return cls({"rank": s.lora_rank, "alpha": s.lora_alpha, "targets": s.lora_targets,
                    "skip_blocks": s.freeze_blocks, "base": base, "layers": len(layers)})

    def saved_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return merged(model)

    def write_extra(self, model: torch.nn.Module, folder: Path) -> None:

        with atomic.atomic_path(folder / self.FILE) as tmp:
            save_tensors(adapter_state(model), tmp, {"lora": json.dumps(self.meta)})

    def restore(self, model: torch.nn.Module, folder: Path) -> None:

        path = folder / self.FILE
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise MinigptError(f"Checkpoint {folder}: {self.FILE} cannot be read ({e}); it "
                               "holds the LoRA adapters this run needs to resume.") from None
        load_adapter_state(model, tensors, f"Checkpoint {folder}")
