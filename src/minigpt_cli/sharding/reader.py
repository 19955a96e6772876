"""Reading a source from a cursor: this part's share of the inputs, resumable mid-input.

A ``Cursor`` says how far the documents written so far reach: ``input`` indexes this part's
inputs and ``record`` counts the documents of that input already taken. Sources with
``inputs()``/``documents_from()`` (documents.MultiInputSource) skip whole finished inputs on
resume; other sources are one input, re-read from the start and skipped through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from minigpt_cli.documents import Document
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.config import Part

WHOLE_SOURCE = "<source>"  # the one input of a source that does not list its inputs


@dataclass(frozen=True)
class Cursor:
    input: int = 0
    record: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cursor:
        return cls(int(d["input"]), int(d["record"]))


def multi_input(source) -> bool:
    return callable(getattr(source, "inputs", None)) and \
        callable(getattr(source, "documents_from", None))


class Reader:
    def __init__(self, source, source_name: str, part: Part) -> None:
        self.source = source
        if multi_input(source):
            every = list(source.inputs())
            self.inputs = every[part.index - 1::part.count]
            if not self.inputs:
                raise MinigptError(
                    f"--part {part} gets no inputs: the {source_name} source has only "
                    f"{len(every)} input(s) to split across {part.count} parts. Use fewer parts."
                )
        elif part.count > 1:
            raise MinigptError(
                f"The {source_name} source cannot be split with --part: it does not list its "
                "inputs (it has no inputs()/documents_from() methods). Run it as one job."
            )
        else:
            self.inputs = [WHOLE_SOURCE]

    def documents(self, start: Cursor) -> Iterator[tuple[Cursor, Document]]:
        """Documents from ``start`` on, each with the cursor just after it."""
        for k in range(start.input, len(self.inputs)):
            skip = start.record if k == start.input else 0
            docs = self.source.documents() if self.inputs[k] == WHOLE_SOURCE else \
                self.source.documents_from(self.inputs[k])
            for j, doc in enumerate(docs):
                if j >= skip:
                    yield Cursor(k, j + 1), doc

    def finished_provenance(self, cursor: Cursor) -> list[dict[str, Any]]:
        """Provenance of the inputs entirely before ``cursor`` (kept across a resume)."""
        done = set(self.inputs[:cursor.input])
        return [p for p in self.source.provenance() if p.get("input") in done]

    def provenance(self, earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """All provenance: what an interrupted run had finished, then this run's reading."""
        seen = {p.get("input") for p in earlier}
        return earlier + [p for p in self.source.provenance() if p.get("input") not in seen
                          or p.get("input") is None]
