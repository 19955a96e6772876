"""Fixed-size shards: documents are appended to one buffer that is written out whenever it fills.

As in build-nanogpt: shard 0 is the validation shard, every shard but the last holds exactly
``shard_size`` tokens, and documents may span shards. A shard's document count is the number of
documents that *start* in it -- the number of ``<|endoftext|>`` tokens it holds, which is what
``--verify`` counts. With ``--part i/N`` the k-th shard of part i gets the index
``k * N + (i - 1)``: names never collide across parts and only part 1 writes ``val_000000``
(``--merge`` then renumbers them so that each part's shards are consecutive).

A source that splits its data itself marks its validation documents ``meta["split"] = "val"``
and yields them first: they fill shard 0, which is closed when the first other document comes
(shorter than ``shard_size``), so ``val_000000`` holds exactly the held-out documents.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigpt_cli import atomic, shards
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.config import Part


@dataclass(frozen=True)
class ShardInfo:
    name: str
    split: str
    index: int
    tokens: int
    documents: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardInfo:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def global_index(local: int, part: Part) -> int:
    return local * part.count + (part.index - 1)


def write(path: Path, tokens: np.ndarray) -> str:
    """Write a shard atomically (llm.c header + uint16 tokens); return the file's sha256."""
    toks = shards.to_uint16(tokens).astype("<u2", copy=False)
    head = shards.header(len(toks)).tobytes()
    digest = hashlib.sha256(head)
    digest.update(memoryview(toks).cast("B"))
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(head)
        f.write(memoryview(toks).cast("B"))  # no copy of a 200 MB buffer
    return digest.hexdigest()


class ShardWriter:
    def __init__(self, out: Path, shard_size: int, part: Part, next_local: int = 0,
                 carry: np.ndarray | None = None, carry_docs: int = 0) -> None:
        self.out = out
        self.part = part
        self.next_local = next_local
        self._buf = np.empty(shard_size, dtype=np.uint16)  # (shard_size,)
        self._fill = 0
        self._docs = carry_docs
        self._val_marked = False  # shard 0 is being filled with documents marked "val"
        if carry is not None and len(carry):
            self._buf[:len(carry)] = carry
            self._fill = len(carry)

    @property
    def carry(self) -> np.ndarray:
        """Tokens waiting for the next shard (a copy, for a checkpoint)."""
        return self._buf[:self._fill].copy()

    @property
    def carry_docs(self) -> int:
        return self._docs

    def add(self, tokens: np.ndarray, split: str | None = None) -> list[ShardInfo]:
        """Append one document; return the shards it completed (usually none)."""
        done = []
        if split == "val":
            self._check_val(len(tokens))
        elif self._val_marked and global_index(self.next_local, self.part) == 0:
            done.append(self._flush())  # the marked validation documents end here
        self._docs += 1
        pos = 0
        while pos < len(tokens):
            take = min(len(tokens) - pos, len(self._buf) - self._fill)
            self._buf[self._fill:self._fill + take] = tokens[pos:pos + take]
            self._fill += take
            pos += take
            if self._fill == len(self._buf):
                done.append(self._flush())
        return done

    def _check_val(self, n: int) -> None:
        if global_index(self.next_local, self.part) != 0 or (self._fill and not self._val_marked):
            raise MinigptError("The source marked a validation document after training "
                               "documents (or in a --part other than 1/N): validation documents "
                               "must come first, so that they fill val_000000.bin alone.")
        if self._fill + n > len(self._buf):
            raise MinigptError(f"The source's validation documents hold more than --shard-size "
                               f"({len(self._buf)}) tokens, but must fit in val_000000.bin; "
                               "raise --shard-size, or hold out less text.")
        self._val_marked = True

    def finish(self) -> ShardInfo | None:
        """Write the last, shorter shard if any tokens are left."""
        return self._flush() if self._fill else None

    def _flush(self) -> ShardInfo:
        index = global_index(self.next_local, self.part)
        split = "val" if index == 0 else "train"
        name = shards.shard_name(split, index)
        digest = write(self.out / name, self._buf[:self._fill])
        info = ShardInfo(name, split, index, self._fill, self._docs, digest)
        self.next_local += 1
        self._fill = 0
        self._docs = 0
        self._val_marked = False
        return info


def file_sha256(path: Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def shard_files(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".bin")
                  and (n.startswith(("val_", "train_"))))
