"""The dedup stages of a part of a job: the verdicts global dedup reached, replayed in order.

A part's run (sharding/run.py) builds its chain as usual, but in place of ``exact_dedup`` and
``minhash_dedup`` it gets a ``ListedDrops``: a stateful stage that counts the documents reaching
it and drops the ones whose ordinal global dedup listed. Documents reach it in the same order
and number as in the signature pass (the stages before it are stateless and deterministic), so
ordinal k here is ordinal k there. Its state is that count: a resumed part goes on from it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from minigpt_cli.documents import Document, Drop


class ListedDrops:
    stateless: ClassVar[bool] = False

    def __init__(self, name: str, options: Any, ordinals: np.ndarray, reason: str) -> None:
        self.name = name
        self.options = options  # the replaced stage's options: the manifest stays the same
        self._drop = {int(k) for k in ordinals}
        self._reason = reason
        self.seen = 0

    def __call__(self, doc: Document) -> Document | Drop:
        k, self.seen = self.seen, self.seen + 1
        return Drop(self._reason) if k in self._drop else doc

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.seen = int(d["seen"])
