"""The instability guard: what the loop does about a bad step.

- A non-finite loss or gradient norm skips the update (the data is consumed, the step counts,
  nothing moves).
- A sustained spike -- the loss above ``factor`` x its running mean for ``steps`` steps in a row
  -- asks for a rollback: the loop restores the last good checkpoint, keeps the data position
  where it is (the offending windows are skipped, as PaLM did: Chowdhery et al. 2022, section
  5.1) and multiplies the LR by ``lr_factor``.

The running mean is an exponential moving average over finite, non-spike losses; the first
``WARMUP`` finite steps only build it (no spike is called before there is a mean).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

WARMUP = 10
EMA_DECAY = 0.9


@dataclass
class GuardState:
    mean: float | None = None  # running mean of the loss
    seen: int = 0  # finite losses folded into the mean
    spike_run: int = 0  # consecutive spike steps so far
    spike_start: int | None = None  # first step of the current run of spikes
    skipped: int = 0  # updates skipped for non-finite values
    rollbacks: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GuardState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class Verdict:
    update: bool  # apply the optimizer step
    rollback: bool  # restore the last good checkpoint
    reason: str | None = None  # why, for the event log


class Guard:
    def __init__(self, factor: float, steps: int, state: GuardState | None = None) -> None:
        self.factor = factor
        self.steps = steps
        self.state = state or GuardState()

    def check(self, step: int, loss: float, grad_norm: float) -> Verdict:
        s = self.state
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            s.skipped += 1
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            value = loss if not math.isfinite(loss) else grad_norm
            return Verdict(False, False, f"non-finite {what} ({value}): update skipped")
        if s.mean is not None and s.seen >= WARMUP and loss > self.factor * s.mean:
            if s.spike_run == 0:
                s.spike_start = step
            s.spike_run += 1
            if s.spike_run >= self.steps:
                reason = (f"loss {loss:.4f} above {self.factor:g} x its running mean "
                          f"{s.mean:.4f} for {s.spike_run} steps (since step {s.spike_start})")
                return Verdict(True, True, reason)
            return Verdict(True, False, None)
        s.spike_run, s.spike_start = 0, None
        s.mean = loss if s.mean is None else EMA_DECAY * s.mean + (1 - EMA_DECAY) * loss
        s.seen += 1
        return Verdict(True, False, None)

    def rolled_back(self) -> int | None:
        """Note a rollback; returns the first step of the spike (checkpoints from it on are
        not good) and resets the spike count."""
        s = self.state
        first = s.spike_start
        s.rollbacks += 1
        s.spike_run, s.spike_start = 0, None
        return first
