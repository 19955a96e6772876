"""What a shard run reports as it goes; the CLI renders these (the core never prints)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Started:
    phase: str  # "vocabulary" (char tokenizer's first pass) | "shards"
    source: str
    stages: list[str]
    tokenizer: str
    workers: int
    out: Path
    inputs_total: int
    resumed_shards: int = 0  # shards an interrupted run had finished
    resumed_documents: int = 0
    worker_kind: str = "processes"  # "threads" | "processes" | "inline" (workers == 0)


@dataclass(frozen=True)
class Progress:
    phase: str
    documents: int  # read from the source, in all (including a resumed run's)
    kept: int
    tokens: int
    shards: int
    inputs_done: int
    inputs_total: int
    bytes_read: int | None  # as the source reports it (progress() or provenance "bytes")
    elapsed: float  # seconds in this run
    documents_at_start: int = 0  # what the resumed run had already done
    tokens_at_start: int = 0
    bytes_at_start: int = 0
    bytes_downloaded: int | None = None  # this run, when the source downloads
    bytes_total: int | None = None  # when the source knows it (local files): ETA by bytes


@dataclass(frozen=True)
class ShardDone:
    name: str
    tokens: int
    documents: int


@dataclass(frozen=True)
class Notice:
    message: str


@dataclass(frozen=True)
class Finished:
    manifest: dict[str, Any]
    out: Path
    already_complete: bool = False
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)


Event = Started | Progress | ShardDone | Notice | Finished
Listener = Callable[[Event], None]


def ignore(_: Event) -> None:
    pass
