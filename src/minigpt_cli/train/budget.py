"""A wall-clock budget (``--max-time`` without ``--max-steps``) that resumes to the same bits.

The LR schedule runs on the share of the budget used (schedule.lr_in_budget). Until the run's
first checkpoint that share is the clock's, ``elapsed / max_time``, so the schedule adapts to
the machine's real speed. At the first checkpoint the steps the budget allows are fixed --
``budget_steps = step + (max_time - elapsed) / pace``, with the pace measured since the first
step of this process, evaluations and checkpoints included -- and saved in the trainer state;
from then on the share is ``step / budget_steps``. The schedule is then a function of the saved
state alone, so a run resumed from any checkpoint takes exactly the steps the uninterrupted one
would have. The run ends at ``budget_steps`` or when the clock says the next step would pass the
budget, whichever comes first. A run that never checkpoints before its end (the Nietzsche
recipe: ``checkpoint_every = 0``) follows the clock to the end.
"""

from __future__ import annotations

import math

import torch

from minigpt_cli.train import distributed as D
from minigpt_cli.train.state import TrainerState


class Pace:
    """Seconds per step since the first step this process took (its start-up excluded)."""

    def __init__(self) -> None:
        self._first: tuple[int, float] | None = None

    def observe(self, step: int, elapsed: float) -> None:
        if self._first is None:
            self._first = (step, elapsed)

    def seconds_per_step(self, step: int, elapsed: float) -> float | None:
        if self._first is None or step <= self._first[0]:
            return elapsed / step if step > 0 else None  # one step only: with its start-up
        first_step, first_elapsed = self._first
        return (elapsed - first_elapsed) / (step - first_step)


def steps_allowed(step: int, elapsed: float, max_time: float, seconds_per_step: float) -> int:
    """The step the budget ends at: this one plus the whole steps the time left pays for."""
    left = max(0.0, max_time - elapsed)
    return step + max(1, math.floor(left / max(seconds_per_step, 1e-9)))


def share_used(step: int, elapsed: float, max_time: float, budget_steps: int | None) -> float:
    """The share of the budget spent, as the schedule sees it (see the module docstring)."""
    if budget_steps:
        return step / budget_steps
    return elapsed / max_time


def plan_steps(state: TrainerState, pace: Pace, now: float, max_time: float) -> None:
    """Fix ``state.budget_steps`` if it is not fixed yet (at a checkpoint, once its weights and
    optimizer state are written, so ``now`` counts what the checkpoint cost)."""
    if state.budget_steps is not None:
        return
    seconds = pace.seconds_per_step(state.step, now)
    if seconds is not None:
        state.budget_steps = steps_allowed(state.step, now, max_time, seconds)


def share_plan(state: TrainerState, d: D.Dist, device: torch.device) -> None:
    """Every rank takes rank 0's plan (a collective: all ranks call it)."""
    if not d.enabled:
        return
    mine = float(state.budget_steps or 0) if d.main else 0.0
    steps = int(D.all_sum(d, [mine], device)[0])
    state.budget_steps = steps or None


def spent(state: TrainerState, max_time: float, elapsed_after_next: float, d: D.Dist,
          device: torch.device) -> bool:
    """Are the budget's steps done, or would the next step end past ``max_time``? Every rank
    gets the same answer: stop when any rank's clock says so."""
    if state.budget_steps is not None and state.step >= state.budget_steps:
        return True
    late = elapsed_after_next > max_time
    return bool(D.all_sum(d, [float(late)], device)[0]) if d.enabled else late
