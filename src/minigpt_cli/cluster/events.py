"""What a job reports as it goes; the CLI renders one progress display from these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobStarted:
    executor: str
    workers: int
    parts: int
    stages: dict[str, int]  # stage -> tasks, in the order they run


@dataclass(frozen=True)
class TaskDone:
    stage: str
    index: int
    done: int
    total: int
