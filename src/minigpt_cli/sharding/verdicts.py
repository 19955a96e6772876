"""The stateless stages' verdicts of a job's signature pass, replayed by the part's run.

A job runs the stateless stages before its dedup stages twice over the same documents: once to
compute the signatures, once in the part's run that writes the shards. The signature pass
records, for every document it reads, what those stages did: the stage that dropped it and why,
which stages changed it (the funnel's "rewritten" counts), and which stages touched it at all
(returned a new document, or changed its text or meta in place). The part's run then drops a
dropped document without running any stage, and runs a kept document only through the stages
that touched it (C4's rewrite, language id's meta): a stage that returned its input untouched
would do so again (stages are deterministic), so skipping it changes nothing -- the shards and
the manifest are byte-identical to running every stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minigpt_cli.documents import Document, Drop
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.chain import changed, check_verdict

MAX_STAGES = 64  # masks are uint64: a longer stateless prefix is simply run twice
KEPT = -1


@dataclass(frozen=True)
class Verdict:
    stage: int  # the stage that dropped the document, KEPT if none of the prefix did
    reason: str
    touched: int  # bit s: stage s must run again (a kept document)
    modified: int  # bit s: stage s changed it (funnel counts)
    upto: int  # the prefix: stages 0 .. upto-1


class Recorder:
    """Runs the stateless prefix over documents in order, recording each one's verdict."""

    def __init__(self, names: list[str], stages: list) -> None:
        self.names, self.stages = names, stages
        self.stage, self.reason, self.touched, self.modified = [], [], [], []
        self.reasons: dict[str, int] = {}

    def run(self, doc: Document) -> Document | None:
        """``doc`` through the prefix: the document reaching dedup, or None if dropped."""
        current, touched, modified = doc, 0, 0
        for s, (name, stage) in enumerate(zip(self.names, self.stages)):
            text, meta = current.text, dict(current.meta)
            out = check_verdict(name, stage(current))
            if isinstance(out, Drop):
                self._add(s, self.reasons.setdefault(out.reason, len(self.reasons)),
                          touched, modified)
                return None
            if out is not current or current.text is not text or current.meta != meta:
                touched |= 1 << s
            if changed(current, out):
                modified |= 1 << s
                current = out
        self._add(KEPT, -1, touched, modified)
        return current

    def _add(self, stage: int, reason: int, touched: int, modified: int) -> None:
        self.stage.append(stage)
        self.reason.append(reason)
        self.touched.append(touched)
        self.modified.append(modified)

    def arrays(self, ids: list[int]) -> dict[str, np.ndarray]:
        """The record, for the signature file: one row per document read (``ids``: theirs)."""
        names = "\n".join(self.reasons)  # in index order (dicts keep insertion order)
        return {"seen": np.array(ids, dtype=np.uint64),
                "verdict_stage": np.array(self.stage, dtype=np.int32),
                "verdict_reason": np.array(self.reason, dtype=np.int32),
                "verdict_touched": np.array(self.touched, dtype=np.uint64),
                "verdict_modified": np.array(self.modified, dtype=np.uint64),
                "verdict_upto": np.array([len(self.stages)], dtype=np.int32),
                "verdict_reasons": np.frombuffer(names.encode(), dtype=np.uint8).copy()}


class Verdicts:
    """A part's recorded verdicts, looked up by the documents' global ids."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.seen = table["seen"]
        self.stage, self.reason = table["verdict_stage"], table["verdict_reason"]
        self.touched, self.modified = table["verdict_touched"], table["verdict_modified"]
        self.upto = int(table["verdict_upto"][0])
        raw = table["verdict_reasons"].tobytes().decode()
        self.reasons = raw.split("\n") if raw else []

    @staticmethod
    def present(table: dict[str, np.ndarray]) -> bool:
        return "verdict_stage" in table

    def of(self, ids: list[int]) -> list[Verdict | None]:
        """The verdict of each id (None for one the signature pass did not read)."""
        if not ids:
            return []
        q = np.array(ids, dtype=np.uint64)
        at = np.minimum(np.searchsorted(self.seen, q), max(len(self.seen) - 1, 0))
        out: list[Verdict | None] = []
        for k, i in zip(q, at):
            if not len(self.seen) or self.seen[i] != k:
                out.append(None)
                continue
            r = int(self.reason[i])
            out.append(Verdict(int(self.stage[i]), self.reasons[r] if r >= 0 else "",
                               int(self.touched[i]), int(self.modified[i]), self.upto))
        return out


def replay(verdict: Verdict, names: list[str], stages: list, doc: Document, i: int, res
           ) -> tuple[Document | None, int]:
    """Replay the prefix for document ``i`` into ``res`` (a BatchResult): (the document after
    the prefix or None if dropped, the stage to go on from)."""
    mods = [s for s in range(verdict.upto) if verdict.modified >> s & 1]
    if mods:
        res.modified[i] = list(mods)
    if verdict.stage != KEPT:
        res.drops[i] = (verdict.stage, verdict.reason)
        return None, verdict.upto
    current = doc
    for s in range(verdict.upto):
        if not verdict.touched >> s & 1:
            continue
        out = check_verdict(names[s], stages[s](current))
        if isinstance(out, Drop):
            raise MinigptError(f"The stage {names[s]!r} dropped a document ({doc.id!r}: "
                               f"{out.reason}) that it kept in the job's signature pass: a "
                               "stage before dedup must decide the same way every time. Make "
                               "it deterministic, or move it after the dedup stages.")
        if changed(current, out):
            current = out
    return current, verdict.upto
