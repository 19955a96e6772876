"""The filter funnel: how many documents each stage saw, kept, rewrote and dropped (and why)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TOKENIZER_ROW = "tokenizer"  # the last row: documents left empty or outside a char vocabulary


@dataclass
class Tally:
    name: str
    stateless: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    kept: int = 0
    modified: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> documents

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def add(self, other: Tally) -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.modified += other.modified
        for reason, n in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass
class Funnel:
    """Documents read from the source, then one row per stage, then the tokenizer's row."""

    rows: list[Tally]
    read: int = 0
    tokens: int = 0

    @classmethod
    def for_chain(cls, stages: list[tuple[str, bool, dict[str, Any]]]) -> Funnel:
        rows = [Tally(name, stateless, options) for name, stateless, options in stages]
        return cls(rows + [Tally(TOKENIZER_ROW)])

    @property
    def kept(self) -> int:
        return self.rows[-1].kept

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "kept": self.kept, "tokens": self.tokens,
                "stages": [asdict(r) | {"dropped_total": r.dropped_total} for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Funnel:
        rows = [Tally(**{k: v for k, v in r.items() if k != "dropped_total"}) for r in d["stages"]]
        return cls(rows, read=d["read"], tokens=d["tokens"])

    def add(self, other: Funnel) -> None:
        if [r.name for r in self.rows] != [r.name for r in other.rows]:
            raise ValueError("funnels of different stage chains cannot be added")
        self.read += other.read
        self.tokens += other.tokens
        for a, b in zip(self.rows, other.rows):
            a.add(b)
