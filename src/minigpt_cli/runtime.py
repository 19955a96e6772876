"""Devices, number formats and seeding."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from minigpt_cli.errors import MinigptError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MinigptError("--device cuda was asked for but no CUDA GPU is visible to torch; "
                           "use --device cpu or auto.")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise MinigptError("--device mps was asked for but MPS is not available; "
                           "use --device cpu or auto.")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    return DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context for a forward pass; a no-op in float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
