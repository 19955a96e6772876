"""The eval-task interface: what a built-in or third-party task provides.

A task is a class registered under the ``minigpt.evals`` entry-point group::

    class MyTask:
        name = "mytask"
        Options = MyOptions              # an EvalOptions subclass (pydantic, extra=forbid)
        headline = ("acc",)              # metrics shown in tables and comparisons
        references = {}                  # published figures: {"label": {"acc": 0.3}}

        def run(self, model, tokenizer, data: Path | None, options, on_progress) -> dict:
            ...                          # {"metrics": {...}, "items": n, ...}

``run`` receives the model in eval mode on its device, its tokenizer, the ``--data`` path (or
None), validated options and a callback for ``Progress`` events; it returns a JSON-able dict
with at least ``metrics`` (name -> number) and ``items`` (how many were scored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import Field

from minigpt_cli.documents import PluginOptions


class EvalOptions(PluginOptions):
    """Options every task accepts (``--limit``, ``--batch-size``); tasks add their own."""

    limit: int | None = Field(None, ge=1, description="Score at most this many items.")
    batch_size: int = Field(16, ge=1, le=4096, description="Items per forward pass.")


@dataclass(frozen=True)
class Progress:
    task: str
    done: int
    total: int | None
    unit: str = "items"  # items | tokens | problems | bytes
    stage: str = ""  # what is happening now, e.g. "scoring", "test", "download"


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that drops every event."""


class EvalTask(Protocol):
    name: ClassVar[str]
    Options: ClassVar[type[EvalOptions]]
    headline: ClassVar[tuple[str, ...]]
    references: ClassVar[dict[str, dict[str, float]]]

    def run(self, model, tokenizer, data: Path | None, options: EvalOptions,
            on_progress: ProgressFn) -> dict[str, Any]: ...
