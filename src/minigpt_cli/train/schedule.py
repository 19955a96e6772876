"""Learning-rate schedules, as a pure function of the step (so resume needs only the step).

- cosine: linear warmup, then cosine decay to ``min_lr`` at ``decay_end``, then flat (GPT-3,
  Brown et al. 2020, appendix B: warmup, cosine to 10% of the peak).
- constant: linear warmup, then the peak.
- wsd: warmup-stable-decay (Hu et al. 2024, "MiniCPM"): warmup, the peak, then a linear decay
  to ``min_lr`` over the last ``decay_steps`` steps.
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


def build_schedule(settings) -> Schedule:
    """From TrainSettings: warmup defaults to 5% of the run, decay to the run's end (cosine)
    or its last 20% (wsd)."""
    steps = settings.max_steps
    warmup = settings.warmup_steps if settings.warmup_steps is not None else steps // 20
    if settings.schedule == "wsd":
        decay = settings.decay_steps if settings.decay_steps is not None else max(1, steps // 5)
    else:
        decay = settings.decay_steps if settings.decay_steps is not None else steps
    return Schedule(
        kind=settings.schedule,
        max_lr=settings.lr,
        min_lr=settings.lr * settings.min_lr_ratio,
        warmup_steps=warmup,
        max_steps=steps,
        decay_steps=decay,
    )
