"""What the loop reports, as plain dataclasses: the CLI renders them; tests read them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RunStarted:
    run_dir: Path
    step: int  # first step to run is step + 1
    max_steps: int
    params: int
    tokens_per_step: int
    micro_batch: int
    seq_len: int
    accum: int
    world: int
    device: str
    dtype: str
    resumed_from: Path | None = None
    notes: tuple[str, ...] = ()
    max_time: float | None = None  # seconds: a wall-clock budget (max_steps 0 = no step cap)


@dataclass(frozen=True)
class StepEvent:
    step: int
    max_steps: int
    loss: float
    lr: float
    grad_norm: float
    tokens_seen: int
    tok_per_s: float
    mfu: float | None  # fraction of the peak, or None when unknown
    elapsed: float  # seconds, over all segments of the run
    step_time: float  # seconds of this step
    skipped: bool = False  # update skipped by the guard
    max_time: float | None = None  # the run's wall-clock budget, if any
    page_faults: int | None = None  # minor page faults of this process during the step


@dataclass(frozen=True)
class EvalEvent:
    step: int
    val_loss: float
    best: bool


@dataclass(frozen=True)
class SampleEvent:
    step: int
    text: str


@dataclass(frozen=True)
class CheckpointEvent:
    step: int
    path: Path
    reason: str  # periodic | final | signal | best


@dataclass(frozen=True)
class GuardEvent:
    step: int
    action: str  # skip | rollback | lr
    message: str


@dataclass(frozen=True)
class RunFinished:
    step: int
    reason: str  # max_steps | max_time | signal | early_stop
    run_dir: Path
    last_checkpoint: Path | None
    best_val: float | None = None
    best_step: int | None = None
    elapsed: float = 0.0
    extra: dict = field(default_factory=dict)


Event = (RunStarted | StepEvent | EvalEvent | SampleEvent | CheckpointEvent | GuardEvent
         | RunFinished)
Listener = Callable[[Event], None]


def ignore(_: Event) -> None:
    """A listener that drops every event."""
