"""Fixed-size shards: documents are appended to one buffer that is written out whenever it fills.

As in build-nanogpt: shard 0 is the validation shard, every shard but the last holds exactly
``shard_size`` tokens, and documents may span shards. A shard's document count is the number of
documents that *start* in it -- the number of ``<|endoftext|>`` tokens it holds, which is what
``--verify`` counts. With ``--part i/N`` the k-th shard of part i gets the index
``k * N + (i - 1)``: names never collide across parts and only part 1 writes ``val_000000``
(``--merge`` then renumbers them so that each part's shards are consecutive).

Loss masks and packing (the math source): a document may carry ``meta["loss_from"]``; its
first ``context`` tokens (end-of-text and the prompt) then do not count toward the loss, its
other tokens and the token after it (the end-of-text that ends the example) do. Once any
document is masked, every shard from there on gets a sidecar ``<shard>.mask.bin`` in the same
llm.c format, one 0/1 per token (the trainer's loader reads it; a shard without one counts every
target). With ``pack`` set (the source's ``packing()``), a document that would cross a multiple
of ``pack`` tokens starts at the next multiple instead, the gap filled with end-of-text tokens
that are masked out and counted as ``padding``; ``shard_size`` is a multiple of ``pack``, so
training windows of ``pack`` tokens hold whole examples, each starting at the window's start.

A source that splits its data itself marks its validation documents ``meta["split"] = "val"``
and yields them first: they fill shard 0, which is closed when the first other document comes
(shorter than ``shard_size``), so ``val_000000`` holds exactly the held-out documents.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
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
    padding: int = 0  # end-of-text tokens that only pad (packing); not documents
    mask_sha256: str | None = None  # sha256 of the loss-mask sidecar, if there is one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardInfo:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def mask_name(shard: str) -> str:
    """``train_000001.bin`` -> ``train_000001.mask.bin`` (what the trainer's loader looks for)."""
    return shard.removesuffix(".bin") + ".mask.bin"


def global_index(local: int, part: Part) -> int:
    return local * part.count + (part.index - 1)


STREAM_TOKENS = 1 << 22  # a shard's tokens go to its temporary file 4M (8 MB) at a time


def _le(tokens: np.ndarray) -> memoryview:
    """The bytes of uint16 tokens as stored: little-endian (no copy on a little-endian CPU)."""
    return memoryview(tokens.astype("<u2", copy=False)).cast("B")


def _digest_during(work: Callable[[], None], head: bytes, tokens: np.ndarray) -> str:
    """sha256 of ``head`` + ``tokens``, hashed on a helper thread while ``work`` (an fsync) runs:
    both release the GIL, so the hash costs no time at the end of a run."""
    out: list[str] = []

    def digest() -> None:
        h = hashlib.sha256(head)
        h.update(_le(tokens))
        out.append(h.hexdigest())

    t = threading.Thread(target=digest, name="minigpt-sha256")
    t.start()
    try:
        work()
    finally:
        t.join()
    return out[0]


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
                 carry: np.ndarray | None = None, carry_docs: int = 0, *,
                 pack: int | None = None, pad_id: int = 0, carry_mask: np.ndarray | None = None,
                 stop_next: bool = False, carry_padding: int = 0) -> None:
        self.out = out
        self.part = part
        self.next_local = next_local
        self._buf = np.empty(shard_size, dtype=np.uint16)  # (shard_size,)
        self._fill = 0
        # The shard being filled is written to its temporary file as it fills (``_stream``):
        # its bytes reach the disk while tokenizing goes on, instead of all at the end.
        self._file: atomic.StreamedFile | None = None
        self._streamed = 0  # tokens of _buf already in _file
        self._docs = carry_docs
        self._val_marked = False  # shard 0 is being filled with documents marked "val"
        self.pack, self.pad_id = pack, pad_id
        self._mask: np.ndarray | None = None  # (shard_size,) uint16, from the first masked doc
        self.stop_next = stop_next  # the next token ends a masked example: it counts
        self.carry_padding = carry_padding  # padding tokens in the buffer
        if carry is not None and len(carry):
            self._buf[:len(carry)] = carry
            self._fill = len(carry)
        if carry_mask is not None:
            self._mask = np.ones(shard_size, dtype=np.uint16)
            self._mask[:len(carry_mask)] = carry_mask

    @property
    def carry(self) -> np.ndarray:
        """Tokens waiting for the next shard (a copy, for a checkpoint)."""
        return self._buf[:self._fill].copy()

    @property
    def carry_docs(self) -> int:
        return self._docs

    @property
    def carry_mask(self) -> np.ndarray | None:
        return self._mask[:self._fill].copy() if self._mask is not None else None

    def add(self, tokens: np.ndarray, split: str | None = None,
            context: int = -1) -> list[ShardInfo]:
        """Append one document (``context`` >= 0: its first ``context`` tokens are not trained
        on); return the shards it completed (usually none)."""
        done = []
        if split == "val":
            self._check_val(len(tokens))
        elif self._val_marked and global_index(self.next_local, self.part) == 0:
            done.append(self._flush())  # the marked validation documents end here
        if self.pack is not None:
            done += self._align(len(tokens))
        mask = None
        if context >= 0 or self._mask is not None or self.stop_next:
            mask = np.ones(len(tokens), dtype=np.uint16)  # (n,)
            mask[:max(context, 0)] = 0
            mask[:1] |= np.uint16(self.stop_next)  # this end-of-text ends the previous example
        self._docs += 1
        self.stop_next = context >= 0
        return done + self._append(tokens, mask)

    def _align(self, n: int) -> list[ShardInfo]:
        """Pad to the next multiple of ``pack`` if a document of ``n`` tokens would cross it."""
        if n > self.pack:
            raise MinigptError(f"A document of {n} tokens (with its end-of-text) is longer than "
                               f"the source's block size {self.pack}: it would be cut. Raise "
                               "the source's block size.")
        room = self.pack - self._fill % self.pack
        if n <= room or room == self.pack:
            return []
        return self._pad(room)

    def _pad(self, n: int) -> list[ShardInfo]:
        mask = np.zeros(n, dtype=np.uint16)  # (n,)
        mask[0] = self.stop_next  # the first pad ends the example before it
        self.stop_next = False
        self.carry_padding += n
        return self._append(np.full(n, self.pad_id, dtype=np.uint16), mask)

    def _append(self, tokens: np.ndarray, mask: np.ndarray | None) -> list[ShardInfo]:
        if mask is not None and self._mask is None:
            self._mask = np.ones(len(self._buf), dtype=np.uint16)  # earlier tokens all count
        done = []
        pos = 0
        while pos < len(tokens):
            take = min(len(tokens) - pos, len(self._buf) - self._fill)
            self._buf[self._fill:self._fill + take] = tokens[pos:pos + take]
            if self._mask is not None:
                self._mask[self._fill:self._fill + take] = 1 if mask is None else \
                    mask[pos:pos + take]
            self._fill += take
            pos += take
            if self._fill == len(self._buf):
                done.append(self._flush())
        if self._fill - self._streamed >= STREAM_TOKENS:
            self._stream()
        return done

    def _name(self) -> tuple[str, str, int]:
        """(file name, split, global index) of the shard being filled."""
        index = global_index(self.next_local, self.part)
        split = "val" if index == 0 else "train"
        return shards.shard_name(split, index), split, index

    def _stream(self) -> None:
        """Append the buffer's new tokens to the shard's temporary file, which starts with a
        blank header (the token count is written last)."""
        if self._file is None:
            self._file = atomic.StreamedFile(self.out / self._name()[0])
            self._file.append(bytes(shards.HEADER_BYTES))
        self._file.append(_le(self._buf[self._streamed:self._fill]))
        self._streamed = self._fill

    def discard(self) -> None:
        """Remove the unfinished shard's temporary file (a run stopping on an error; a killed
        run's is removed when it resumes, see outdir.remove_leftovers)."""
        if self._file is not None:
            self._file.discard()
            self._file, self._streamed = None, 0

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
        if self.stop_next and self._mask is not None and self._fill < len(self._buf):
            # a shorter shard: its last example ends here, with one counted end-of-text
            self._buf[self._fill], self._mask[self._fill] = self.pad_id, 1
            self._fill += 1
            self.carry_padding += 1
            self.stop_next = False
        name, split, index = self._name()
        self._stream()
        head = shards.header(self._fill).tobytes()
        assert self._file is not None
        self._file.write_at(0, head)
        digest = _digest_during(self._file.commit, head, self._buf[:self._fill])
        self._file, self._streamed = None, 0
        mask_digest = None
        if self._mask is not None:
            mask_digest = write(self.out / mask_name(name), self._mask[:self._fill])
        info = ShardInfo(name, split, index, self._fill, self._docs, digest,
                         self.carry_padding, mask_digest)
        self.next_local += 1
        self._fill = 0
        self._docs = 0
        self.carry_padding = 0
        self._val_marked = False
        return info


def shard_files(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".bin")
                  and (n.startswith(("val_", "train_"))) and not n.endswith(".mask.bin"))
