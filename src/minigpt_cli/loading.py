"""Where a model comes from: a minigpt checkpoint, a Hugging Face GPT-2 folder, or the small
character-level Nietzsche model embedded in the package (the no-network default)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from minigpt_cli.hf import load_hf
from minigpt_cli.model import GPT
from minigpt_cli.model_file import load_checkpoint
from minigpt_cli.tokenizer import Tokenizer

DEFAULT_MODEL_NAME = "nietzsche-char-tiny"


def default_checkpoint() -> Path:
    return Path(str(resources.files("minigpt_cli") / "assets" / f"{DEFAULT_MODEL_NAME}.safetensors"))


def load_model(
    checkpoint: Path | None = None,
    from_hf: Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[GPT, Tokenizer, str]:
    """Return (model in eval mode on ``device`` in ``dtype``, its tokenizer, a description)."""
    if from_hf is not None:

        model, tokenizer = load_hf(from_hf)
        what = f"Hugging Face GPT-2 {from_hf}"
    else:

        path = checkpoint if checkpoint is not None else default_checkpoint()
        model, tokenizer, ckpt = load_checkpoint(path)
        what = f"checkpoint {ckpt.path}" if checkpoint is not None else \
            f"built-in model {DEFAULT_MODEL_NAME}"
    model = model.to(device=device, dtype=dtype).eval()
    return model, tokenizer, what
