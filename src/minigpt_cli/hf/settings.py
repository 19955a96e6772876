"""Settings of `minigpt import-hf` and `minigpt export-hf` (saved next to what they write)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from minigpt_cli.settings import Settings


class ImportHfSettings(Settings):
    source: Path = Field(description="Hugging Face GPT-2, Llama or Qwen3 folder (config.json "
                         "+ model.safetensors).")
    out: Path = Field(description="minigpt checkpoint to write: a folder or a .safetensors file.")
    force: bool = Field(False, description="Replace an existing checkpoint at OUT.")


class ExportHfSettings(Settings):
    checkpoint: Path = Field(description="minigpt checkpoint to export (file or folder).")
    out: Path = Field(description="Folder to write for transformers.")
    force: bool = Field(False, description="Replace OUT if it exists and is not empty.")
