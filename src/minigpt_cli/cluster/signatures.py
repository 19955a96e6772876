"""Per part: each document that reaches the dedup stages, with its global id, exact key and
MinHash band keys -- the first stage of a job (FineWeb's signature step).

The chain is split at its dedup stages (``DedupChain``): the stages before them must be
stateless (they run here, on every document; a part's run replays their verdicts, recorded
here for every document read -- sharding/verdicts.py), the dedup stages must be adjacent. The
result goes to ``signatures/part-NNNN.safetensors`` (atomic; a part whose file exists is done).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import numpy as safetensors_numpy

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.chain import build_stage, is_stateless
from minigpt_cli.sharding.config import Part, ShardSettings, StageSpec
from minigpt_cli.sharding.reader import Cursor, Reader
from minigpt_cli.sharding.verdicts import MAX_STAGES, Recorder
from minigpt_cli.stages.dedup import normalized_bytes
from minigpt_cli.stages.minhash import MinHasher

DEDUP = ("exact_dedup", "minhash_dedup")
EMPTY = np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True)
class DedupChain:
    """Where the chain's dedup stages are: ``start`` (None: no dedup), which of the two."""

    start: int | None
    exact: StageSpec | None
    minhash: StageSpec | None

    @classmethod
    def of(cls, specs: list[StageSpec]) -> DedupChain:
        at = [i for i, s in enumerate(specs) if s.name in DEDUP]
        if not at:
            return cls(None, None, None)
        if at != list(range(at[0], at[0] + len(at))) or len({specs[i].name for i in at}) != len(at):
            raise MinigptError("A job (--parts/--executor) deduplicates globally and needs the "
                               "chain's dedup stages (exact_dedup, minhash_dedup) next to each "
                               "other, each once; got " + ", ".join(s.name for s in specs) + ".")
        before = [specs[i] for i in range(at[0]) if not is_stateless(build_stage(specs[i]))]
        if before:
            raise MinigptError(f"A job deduplicates globally, so the stages before dedup must be "
                               f"stateless; {before[0].name} is not. Move it after the dedup "
                               "stages or run without --parts/--executor.")
        by = {specs[i].name: specs[i] for i in at}
        return cls(at[0], by.get("exact_dedup"), by.get("minhash_dedup"))

    def hasher(self) -> tuple[MinHasher, int, int] | None:
        if self.minhash is None:
            return None
        o = build_stage(self.minhash).options
        return MinHasher(num_perm=o.bands * o.rows, ngram=o.ngram, seed=o.seed), o.bands, o.rows


def global_id(part: Part, cursor: Cursor) -> int:
    """Input order across the job: part i reads inputs i-1, i-1+N, ... (Reader's stride)."""
    return ((part.index - 1 + cursor.input * part.count) << 32) | (cursor.record - 1)


def compute(settings: ShardSettings, specs: list[StageSpec], source, part: Part
            ) -> dict[str, np.ndarray]:
    """{"ids": (n,), "exact": (n,), "bands": (n, bands)} uint64 for this part's documents that
    reach the dedup stages, in order; and the stateless stages' verdicts on every document read
    ("seen", "verdict_*": verdicts.Recorder) when there are at most MAX_STAGES of them."""
    chain = DedupChain.of(specs)
    prefix = specs[:chain.start]
    recorder = Recorder([s.name for s in prefix], [build_stage(s) for s in prefix])
    hashing = chain.hasher()
    reader = Reader(source, settings.source, part)
    ids, exact, bands, seen = [], [], [], []
    for cursor, doc in reader.documents(Cursor()):
        seen.append(global_id(part, cursor))
        doc = recorder.run(doc)
        if doc is not None:
            text = normalized_bytes(doc.text)
            ids.append(global_id(part, cursor))
            if chain.exact is not None:
                exact.append(hashlib.blake2b(text, digest_size=8).digest())
            if hashing is not None:
                hasher, b, r = hashing
                bands.append(hasher.band_keys(hasher.signature(text), b, r))  # (bands,)
    out = {"ids": np.array(ids, dtype=np.uint64)}
    if chain.start is not None and len(prefix) <= MAX_STAGES:
        out |= recorder.arrays(seen)
    if chain.exact is not None:
        out["exact"] = np.frombuffer(b"".join(exact), dtype=np.uint64).copy()
    if hashing is not None:
        out["bands"] = (np.stack(bands) if bands else np.zeros((0, hashing[1]), np.uint64))
    return out


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic.write_bytes(path, safetensors_numpy.save(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()}))


def load(path: Path) -> dict[str, Any]:
    try:
        return safetensors_numpy.load(path.read_bytes())
    except Exception as e:  # noqa: BLE001 -- a damaged file: say which, and what to do
        raise MinigptError(f"The job file {path} cannot be read ({e}). Delete it: the job "
                           "computes it again on the next run.") from None
