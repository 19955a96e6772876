"""Settings of `minigpt eval`: each a flag, a key of the ``[eval]`` table of a ``--config`` TOML
file (task options under ``[eval.options]``), and a ``MINIGPT_<NAME>`` environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from minigpt_cli.settings import ModelSourceSettings


class EvalSettings(ModelSourceSettings):
    data: Path | None = Field(None, description="What to score: depends on the task.")
    limit: int | None = Field(None, ge=1, description="Score at most this many items "
                              "(tokens for `loss`).")
    batch_size: int | None = Field(None, ge=1, description="Items per forward pass "
                                   "(default: the task's).")
    output: Path | None = Field(None, description="Also write the results JSON here.")
    save: bool = Field(True, description="Write eval_<task>.json beside the checkpoint.")
    compile: bool = Field(False, description="torch.compile the model first.")
    options: dict[str, Any] = Field(default_factory=dict, description="Task options "
                                    "(--option KEY=VALUE).")
