"""The main-process side of the chain: stateful stages in input order, and every document's
fate counted in the funnel (see chain.py for why the work is split this way)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigpt_cli.documents import Document, Drop, is_blank
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.chain import (
    EMPTY,
    OUTSIDE_VOCAB,
    BatchResult,
    build_stage,
    changed,
    check_verdict,
    is_stateless,
)
from minigpt_cli.sharding.config import StageSpec
from minigpt_cli.sharding.funnel import Funnel

Payload = np.ndarray | str  # a document's tokens (uint16), or its characters (vocabulary pass)


class MainChain:
    def __init__(self, specs: list[StageSpec], stages: list[Any], funnel: Funnel,
                 tokenizer=None) -> None:
        self.specs = specs
        self.stateful = {s: st for s, st in enumerate(stages) if not is_stateless(st)}
        self._stateless = {s: st for s, st in enumerate(stages) if is_stateless(st)}
        self.funnel = funnel
        self.tokenizer = tokenizer  # None in the vocabulary pass

    def settle(self, doc: Document, i: int, res: BatchResult, payload: Payload | None
               ) -> Payload | None:
        """Document ``i`` of a batch the workers ran: its payload if it is kept, else None."""
        f = self.funnel
        f.read += 1
        drop = res.drops.get(i)
        snaps = res.snapshots.get(i, {})
        mods = res.modified.get(i, ())
        for s, spec in enumerate(self.specs):
            row = f.rows[s]
            row.seen += 1
            if s in self.stateful:
                entering = snaps.get(s, doc)
                out = check_verdict(spec.name, self.stateful[s](entering))
                if isinstance(out, Drop):
                    row.drop(out.reason)
                    return None
                row.kept += 1
                if changed(entering, out):  # the workers' later work no longer applies
                    row.modified += 1
                    return self._finish(out, s + 1)
                continue
            if drop is not None and drop[0] == s:
                row.drop(drop[1])
                return None
            row.modified += s in mods
            row.kept += 1
        return self._tokenizer_row(drop[1] if drop is not None else None, payload)

    def _tokenizer_row(self, reason: str | None, payload: Payload | None) -> Payload | None:
        row = self.funnel.rows[-1]
        row.seen += 1
        if reason is not None or payload is None:
            row.drop(reason or EMPTY)
            return None
        row.kept += 1
        if isinstance(payload, np.ndarray):
            self.funnel.tokens += len(payload)
        return payload

    def _finish(self, doc: Document, start: int) -> Payload | None:
        """Run stages ``start..`` and the tokenizer here, after a stateful stage rewrote ``doc``."""
        for s in range(start, len(self.specs)):
            row = self.funnel.rows[s]
            row.seen += 1
            stage = self.stateful.get(s) or self._stateless_stage(s)
            out = check_verdict(self.specs[s].name, stage(doc))
            if isinstance(out, Drop):
                row.drop(out.reason)
                return None
            row.kept += 1
            if changed(doc, out):
                row.modified += 1
                doc = out
        if is_blank(doc.text):
            return self._tokenizer_row(EMPTY, None)
        if self.tokenizer is None:
            return self._tokenizer_row(None, "".join(sorted(set(doc.text))))
        try:
            ids = [self.tokenizer.eot_id, *self.tokenizer.encode(doc.text)]
        except MinigptError:
            return self._tokenizer_row(OUTSIDE_VOCAB, None)
        return self._tokenizer_row(None, np.array(ids, dtype=np.uint16))

    def _stateless_stage(self, s: int):
        if s not in self._stateless:
            self._stateless[s] = build_stage(self.specs[s])
        return self._stateless[s]
