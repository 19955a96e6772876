"""Injected faults (`--inject-faults`): the hook that lets a user -- and the tests -- fire the
instability guard and stop a run at a known step, on a real run.

Syntax: comma-separated ``KIND@STEP[-END][:ARG]``:
- ``nan@5``          the loss of step 5 becomes NaN (so do its gradients)
- ``spike@20-30:10`` the loss of steps 20..30 is multiplied by 10 (its gradients too)
- ``hang@6:600``     sleep 600 s in step 6 before the update (a test kills the process then)

STEP counts the optimizer steps the run has taken, replayed ones included: the same as the step
number until the guard rolls back, after which the replayed steps count on (so a fault never
fires twice, as a real spike does not: the guard skipped its data). The count comes from the
trainer state (tokens seen / tokens per step), which checkpoints save, so a resumed run fires
exactly the faults the uninterrupted one fires.

The loop knows nothing of this module: it calls the ``Faults`` hook its RunSpec carries, if any.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

KINDS = ("nan", "spike", "hang")
_PATTERN = re.compile(
    r"^(?P<kind>[a-z]+)@(?P<start>\d+)(?:-(?P<end>\d+))?(?::(?P<arg>[0-9.eE+-]+))?$"
)


@dataclass(frozen=True)
class Fault:
    kind: str
    start: int
    end: int
    arg: float | None


@dataclass(frozen=True)
class Faults:
    """The hook: ``loss`` may change a micro-batch's loss, ``before_update`` may stall."""

    faults: tuple[Fault, ...] = ()

    def at(self, kind: str, count: int) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind and f.start <= count <= f.end),
                    None)

    def loss(self, count: int, loss):
        if self.at("nan", count):
            loss = loss * float("nan")
        if (spike := self.at("spike", count)) is not None:
            loss = loss * (spike.arg or 10.0)
        return loss

    def before_update(self, count: int) -> None:
        if (hang := self.at("hang", count)) is not None:
            time.sleep(hang.arg or 3600)


def parse_faults(spec: str | None) -> Faults | None:
    """The hook for ``spec``; None when there is nothing to inject."""
    if not spec:
        return None
    faults = []
    for part in spec.split(","):
        m = _PATTERN.match(part.strip())
        if not m or m["kind"] not in KINDS:
            raise ValueError(
                f"bad fault {part.strip()!r}: expected KIND@STEP[-END][:ARG] with KIND one of "
                f"{', '.join(KINDS)}"
            )
        start = int(m["start"])
        end = int(m["end"]) if m["end"] else start
        if end < start:
            raise ValueError(f"bad fault {part.strip()!r}: END before STEP")
        faults.append(Fault(m["kind"], start, end, float(m["arg"]) if m["arg"] else None))
    return Faults(tuple(faults))
