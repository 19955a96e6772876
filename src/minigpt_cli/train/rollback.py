"""The guard's rollback (guard.py decides, this acts): back to the newest checkpoint from before
the spike, the data position kept (the windows that caused it are skipped, as PaLM did), the LR
lowered; too many rollbacks stop the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from minigpt_cli.errors import MinigptError
from minigpt_cli.train.checkpointer import Checkpointer, Parts


def roll_back(step: int, parts: Parts, checkpointer: Checkpointer, settings,
              report: Callable[[int, str, str], None]) -> Path | None:
    """Roll back after ``step``; returns the checkpoint restored (None: there was none, only
    the LR was lowered). ``report(step, action, message)`` logs what happened."""
    st, guard, s = parts.state, parts.guard, settings
    first_bad = guard.rolled_back() or step
    if guard.state.rollbacks > s.guard_max_rollbacks:
        raise MinigptError(
            f"Training is unstable: the loss spiked again after {s.guard_max_rollbacks} "
            f"rollback(s) (last at step {step}). Lower --lr, raise --warmup-steps, or check the "
            "data; the run folder keeps the last good checkpoints.")
    st.lr_scale *= s.guard_lr_factor
    good = checkpointer.newest_before(first_bad)
    if good is None:
        report(step, "lr", f"no checkpoint before step {first_bad} to roll back to; LR scaled "
               f"to {st.lr_scale:g} x the schedule")
        return None
    k, path = good
    checkpointer.load_weights(path, parts.model)
    st.step = k
    checkpointer.drop_from(first_bad)
    report(step, "rollback-done", f"rolled back to step {k} ({path.name}); the data of steps "
           f"{k + 1}..{step} is skipped; LR scaled to {st.lr_scale:g} x the schedule")
    return path
