"""Learning-rate schedules, as a pure function of the step (so resume needs only the step).

- cosine: linear warmup, then cosine decay to ``min_lr`` at ``decay_end``, then flat (GPT-3,
  Brown et al. 2020, appendix B: warmup, cosine to 10% of the peak).
- constant: linear warmup, then the peak.
- wsd: warmup-stable-decay (Hu et al. 2024, "MiniCPM"): warmup, the peak, then a linear decay
  to ``min_lr`` over the last ``decay_steps`` steps.

Under a wall-clock budget (``--max-time``) the same shapes run on the share of the budget used
instead of the step (``lr_in_budget``): the number of steps that fit is not known in advance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    kind: str  # cosine | constant | wsd
    max_lr: float
    min_lr: float
    warmup_steps: int
    max_steps: int
    decay_steps: int  # cosine: step where the floor is reached; wsd: length of the decay
    warmup_share: float | None = None  # budget mode: warmup over this share (None: by steps)
    decay_share: float = 0.2  # budget mode, wsd: the decay takes this last share

    def lr(self, it: int) -> float:
        """LR for the update that follows ``it`` completed steps (0-based)."""
        if it < self.warmup_steps:
            return self.max_lr * (it + 1) / self.warmup_steps
        if self.kind == "constant":
            return self.max_lr
        if self.kind == "wsd":
            start = self.max_steps - self.decay_steps
            if it < start:
                return self.max_lr
            frac = min(1.0, (it - start + 1) / self.decay_steps)
            return self.max_lr + frac * (self.min_lr - self.max_lr)
        # cosine
        end = self.decay_steps
        if it >= end:
            return self.min_lr
        ratio = (it - self.warmup_steps) / max(1, end - self.warmup_steps)
        coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
        return self.min_lr + coeff * (self.max_lr - self.min_lr)


    def lr_in_budget(self, it: int, used: float) -> float:
        """LR for the update after ``it`` steps when the share ``used`` (0..1) of a time budget
        is spent: warmup (by steps, or over ``warmup_share``), then cosine to ``min_lr`` at
        the end of the budget, the peak (constant), or the peak then a linear decay over the
        last ``decay_share`` (wsd)."""
        used = min(max(used, 0.0), 1.0)
        if self.warmup_share is None and it < self.warmup_steps:
            return self.max_lr * (it + 1) / self.warmup_steps
        if self.warmup_share is not None and used < self.warmup_share:
            return self.max_lr * max(used / self.warmup_share, 1.0 / 1000)
        if self.kind == "constant":
            return self.max_lr
        if self.kind == "wsd":
            start = 1.0 - self.decay_share
            if used < start:
                return self.max_lr
            return self.max_lr + (used - start) / self.decay_share * (self.min_lr - self.max_lr)
        coeff = 0.5 * (1.0 + math.cos(math.pi * used))  # 1 -> 0 over the budget
        return self.min_lr + coeff * (self.max_lr - self.min_lr)


def build_schedule(settings) -> Schedule:
    """From TrainSettings: warmup defaults to 5% of the run, decay to the run's end (cosine)
    or its last ``decay_share`` (wsd, 20% by default)."""
    steps = settings.max_steps
    warmup = settings.warmup_steps if settings.warmup_steps is not None else steps // 20
    if settings.schedule == "wsd":
        decay = settings.decay_steps if settings.decay_steps is not None else \
            max(1, int(steps * settings.decay_share))
    else:
        decay = settings.decay_steps if settings.decay_steps is not None else steps
    budget = getattr(settings, "max_time", None) is not None and settings.step_cap() is None
    return Schedule(
        kind=settings.schedule,
        max_lr=settings.lr,
        min_lr=settings.lr * settings.min_lr_ratio,
        warmup_steps=warmup,
        max_steps=steps,
        decay_steps=decay,
        warmup_share=0.05 if budget and settings.warmup_steps is None else None,
        decay_share=settings.decay_share,
    )
