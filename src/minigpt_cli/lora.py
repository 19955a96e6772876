"""LoRA adapters for GPT-2's linear layers (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models"): a frozen weight W plus a trainable low-rank update, y = x W^T + b +
(alpha / r) * x A^T B^T, with A (r, in) drawn like a Linear's weight and B (out, r) zero, so
training starts exactly from the base model.

``LoRALinear`` keeps the wrapped layer's ``weight`` and ``bias`` under their own names, so the
base weights load and save as ``transformer.h.0.attn.c_attn.weight`` etc.; the adapters are
``...c_attn.lora_A`` / ``...c_attn.lora_B``. ``merged`` folds the adapters into W (W + (alpha /
r) B A) and returns a plain ``GPT``: what checkpoints and exports hold, so every other command
reads a LoRA fine-tune like any GPT-2.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from minigpt_cli.errors import IncompatibleError
from minigpt_cli.model_file import TIED, build_model, unwrap

TARGETS = ("c_attn", "c_proj", "c_fc")  # attn.c_attn, attn.c_proj + mlp.c_proj, mlp.c_fc


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight  # the same Parameter objects: names and values unchanged
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, dtype=w.dtype,
                                               device=w.device))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, dtype=w.dtype,
                                               device=w.device))  # (out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear draws a weight
        self.rank, self.alpha = rank, alpha
        self.scale = alpha / rank
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)  # (..., out)
        update = F.linear(F.linear(self.drop(x), self.lora_A), self.lora_B)  # (..., r) -> (..., out)
        return y + update * self.scale

    def delta(self) -> torch.Tensor:
        """(out, in): the update folded into the weight."""
        return (self.lora_B @ self.lora_A) * self.scale


def add_lora(model: nn.Module, rank: int, alpha: float, targets: list[str] | tuple[str, ...],
             dropout: float = 0.0, skip_blocks: int = 0) -> list[str]:
    """Freeze every parameter of ``model`` and wrap the target layers of blocks ``skip_blocks``
    and up with adapters; return the wrapped layers' names."""
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise ValueError(f"LoRA targets must be among {', '.join(TARGETS)} (got "
                         f"{', '.join(targets) or 'none'})")
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for i, block in enumerate(model.transformer.h):
        if i < skip_blocks:
            continue
        for parent_name, parent in (("attn", block.attn), ("mlp", block.mlp)):
            for name in targets:
                layer = getattr(parent, name, None)
                if isinstance(layer, nn.Linear):
                    setattr(parent, name, LoRALinear(layer, rank, alpha, dropout))
                    wrapped.append(f"transformer.h.{i}.{parent_name}.{name}")
    return wrapped


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters alone: ``<layer>.lora_A`` / ``<layer>.lora_B`` (CPU, contiguous)."""
    out = {}
    for name, layer in lora_layers(model).items():
        out[f"{name}.lora_A"] = layer.lora_A.detach().to("cpu").contiguous()
        out[f"{name}.lora_B"] = layer.lora_B.detach().to("cpu").contiguous()
    return out


def load_adapter_state(model: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Copy saved adapters into ``model``'s; names and shapes must match exactly."""

    here = {k: tuple(v.shape) for k, v in adapter_state(model).items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if here != got:
        missing = sorted(set(here) - set(got))
        extra = sorted(set(got) - set(here))
        wrong = sorted(k for k in set(here) & set(got) if here[k] != got[k])
        detail = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                  else f"{wrong[0]} is {got[wrong[0]]}, not {here[wrong[0]]}")
        raise IncompatibleError(
            f"{what}: its LoRA adapters do not fit this run ({detail}). Resume with the "
            "--lora-rank, --lora-targets and --freeze-blocks it was trained with."
        )
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            layer.lora_A.copy_(tensors[f"{name}.lora_A"])
            layer.lora_B.copy_(tensors[f"{name}.lora_B"])


@torch.no_grad()
def merged(model: nn.Module):
    """A plain GPT with every adapter folded into its weight (the LoRA model is unchanged)."""

    model = unwrap(model)
    layers = lora_layers(model)
    state = {}
    for k, v in model.state_dict().items():
        if (k == TIED and model.config.tie_embeddings) or k.endswith((".lora_A", ".lora_B")):
            continue
        owner = k.rsplit(".", 1)[0]
        if k.endswith(".weight") and owner in layers:
            v = v + layers[owner].delta().to(v.dtype)
        state[k] = v.detach().clone()
    return build_model(model.config, state, "the merged LoRA model")
