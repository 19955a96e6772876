"""Where a model comes from: a minigpt checkpoint, a Hugging Face GPT-2 folder, or one of the
built-in models embedded in the package (no network): the small character-level Nietzsche model
(the default) and the calculator (``--model calculator``, the default of `eval math`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from minigpt_cli.errors import MinigptError
from minigpt_cli.hf import load_hf
from minigpt_cli.model import GPT
from minigpt_cli.model_file import load_checkpoint
from minigpt_cli.tokenizer import Tokenizer

DEFAULT_MODEL_NAME = "nietzsche-char-tiny"
CALCULATOR = "calculator"
BUILTIN_MODELS = {  # name -> what it is, for --help and messages
    DEFAULT_MODEL_NAME: "a tiny character-level model of Nietzsche's prose (scripts/"
                        "build_default_model.py)",
    CALCULATOR: "+, -, x, / with steps, one small char model (scripts/build_calculator.py)",
}


def default_checkpoint(name: str = DEFAULT_MODEL_NAME) -> Path:
    """The file of a built-in model; raises MinigptError for an unknown name or a missing file."""
    if name not in BUILTIN_MODELS:
        raise MinigptError(f"--model {name!r} is not a built-in model; choose "
                           f"{' or '.join(BUILTIN_MODELS)} (or pass --checkpoint / --from-hf).")
    path = Path(str(resources.files("minigpt_cli") / "assets" / f"{name}.safetensors"))
    if not path.exists():
        raise MinigptError(f"the built-in model {name!r} is missing from this installation "
                           f"({path}); rebuild it with the script named in the README.")
    return path


def load_model(
    checkpoint: Path | None = None,
    from_hf: Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    builtin: str | None = None,
) -> tuple[GPT, Tokenizer, str]:
    """Return (model in eval mode on ``device`` in ``dtype``, its tokenizer, a description)."""
    if from_hf is not None:

        model, tokenizer = load_hf(from_hf)
        what = f"Hugging Face GPT-2 {from_hf}"
    else:

        name = builtin or DEFAULT_MODEL_NAME
        path = checkpoint if checkpoint is not None else default_checkpoint(name)
        model, tokenizer, ckpt = load_checkpoint(path)
        what = f"checkpoint {ckpt.path}" if checkpoint is not None else \
            f"built-in model {name}"
    model = model.to(device=device, dtype=dtype).eval()
    return model, tokenizer, what
