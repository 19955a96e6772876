"""Injected faults: the testing hook (`--inject-faults`) that proves the instability guard and
exact resume work on real runs.

Syntax: comma-separated ``KIND@STEP[-END][:ARG]``; steps are 1-based optimizer steps.
- ``nan@5``          the loss of step 5 becomes NaN (so do its gradients)
- ``spike@20-30:10`` the loss of steps 20..30 is multiplied by 10 (its gradients too)
- ``hang@6:600``     sleep 600 s in step 6 before the update (a test kills the process then)

Each step number fires once per process: after a rollback replays step numbers, the fault does
not repeat (a real spike does not either: the guard skipped its data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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


@dataclass
class FaultPlan:
    faults: tuple[Fault, ...] = ()
    fired: set[tuple[str, int]] = field(default_factory=set)

    def take(self, kind: str, step: int) -> Fault | None:
        """The fault of ``kind`` for ``step`` if it has not fired yet (it is then spent)."""
        for f in self.faults:
            if f.kind == kind and f.start <= step <= f.end and (kind, step) not in self.fired:
                self.fired.add((kind, step))
                return f
        return None


def parse_faults(spec: str | None) -> FaultPlan:
    if not spec:
        return FaultPlan()
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
    return FaultPlan(tuple(faults))
