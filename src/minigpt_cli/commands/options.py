"""Options shared by several commands (typer.Option with help text and panels)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MODEL_PANEL = "Model"
RUNTIME_PANEL = "Runtime"
SETTINGS_PANEL = "Settings"

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file of settings (a \\[command] table and/or top-level keys). "
        "Flags win over it; it wins over MINIGPT_* environment variables.",
        rich_help_panel=SETTINGS_PANEL,
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(help="auto | cpu | cuda | mps \\[default: auto]", rich_help_panel=RUNTIME_PANEL),
]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        help="float32 | bfloat16 | float16 \\[default: float32]", rich_help_panel=RUNTIME_PANEL
    ),
]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="minigpt checkpoint: a model.safetensors file or the folder holding it. "
        "Without it (and without --from-hf) the built-in tiny Nietzsche char model is used.",
        rich_help_panel=MODEL_PANEL,
    ),
]
BuiltinOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A built-in model: nietzsche-char-tiny (sample's default) or calculator (+, -, x, "
        "/ with steps; eval math's default). No network needed.",
        rich_help_panel=MODEL_PANEL,
    ),
]
FromHfOpt = Annotated[
    Path | None,
    typer.Option(
        "--from-hf",
        help="Hugging Face GPT-2, Llama or Qwen3 folder (config.json + model.safetensors) to "
        "use instead.",
        rich_help_panel=MODEL_PANEL,
    ),
]
