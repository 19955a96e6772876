"""The job's tasks: plain module-level functions of a ``JobSpec`` and an index, each writing
its result under the job folder atomically and skipping itself when that result exists -- so
an engine may run one twice (a retry, a lost worker) and a resumed job never redoes one.

What travels to a worker is the JobSpec (settings and paths; dask pickles it between our own
processes) -- never anything read from a user's folder, which holds only safetensors and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from minigpt_cli.cluster import clusters, signatures
from minigpt_cli.cluster.drops import ListedDrops
from minigpt_cli.sharding.chain import build_stage
from minigpt_cli.sharding.config import Part, ShardSettings, StageSpec


@dataclass(frozen=True)
class JobSpec:
    settings: ShardSettings  # the job's settings (parts, executor set)
    specs: tuple[StageSpec, ...]  # the resolved chain
    folder: Path  # OUT/.job
    parts: int
    buckets: int  # hash buckets per dedup step: memory per task = 16 B x docs / buckets
    part_workers: int  # --workers of each part's run (0 on an engine worker: one core each)

    def part(self, i: int) -> Part:
        return Part(index=i, count=self.parts)

    def part_settings(self, i: int) -> ShardSettings:
        return self.settings.model_copy(update={
            "part": str(self.part(i)), "parts": None, "executor": None, "address": None,
            "out": self.part_folder(i), "workers": self.part_workers})

    def part_folder(self, i: int) -> Path:
        return self.folder / "parts" / f"part-{i:05d}"

    def signature_file(self, i: int) -> Path:
        return self.folder / "signatures" / f"part-{i:05d}.safetensors"

    def exact_file(self, bucket: int) -> Path:
        return self.folder / "dedup" / f"exact-{bucket:04d}.safetensors"

    def band_file(self, band: int, bucket: int) -> Path:
        return self.folder / "dedup" / f"band-{band:03d}-{bucket:04d}.safetensors"

    def drops_file(self) -> Path:
        return self.folder / "dedup" / "drops.safetensors"

    def dedup(self) -> signatures.DedupChain:
        return signatures.DedupChain.of(list(self.specs))


def signatures_task(job: JobSpec, i: int) -> int:
    """Part i's signatures; returns how many documents reach dedup."""
    path = job.signature_file(i)
    if not path.exists():
        from minigpt_cli.sharding.run import source_plugin

        s = job.part_settings(i)
        arrays = signatures.compute(s, list(job.specs), source_plugin(s), job.part(i))
        signatures.save(path, arrays)
    return int(signatures.load(path)["ids"].shape[0])


def _gather(job: JobSpec, column, bucket: int, exclude: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """(keys, ids) of every part whose key falls in ``bucket``, one part file at a time."""
    keys, ids = [], []
    for i in range(1, job.parts + 1):
        sig = signatures.load(job.signature_file(i))
        k, d = column(sig), sig["ids"]
        mine = clusters.bucket_of(k, job.buckets) == bucket
        if exclude is not None and len(exclude):
            mine &= ~np.isin(d, exclude)
        keys.append(k[mine])
        ids.append(d[mine])
    return np.concatenate(keys), np.concatenate(ids)


def exact_task(job: JobSpec, bucket: int) -> int:
    path = job.exact_file(bucket)
    if not path.exists():
        keys, ids = _gather(job, lambda s: s["exact"], bucket)
        signatures.save(path, {"ids": clusters.exact_bucket(keys, ids)})
    return int(signatures.load(path)["ids"].shape[0])


def exact_duplicates(job: JobSpec) -> np.ndarray:
    if job.dedup().exact is None:
        return signatures.EMPTY
    found = [signatures.load(job.exact_file(b))["ids"] for b in range(job.buckets)]
    return np.sort(np.concatenate(found))


def band_task(job: JobSpec, index: int) -> int:
    band, bucket = divmod(index, job.buckets)
    path = job.band_file(band, bucket)
    if not path.exists():
        keys, ids = _gather(job, lambda s: s["bands"][:, band], bucket, exact_duplicates(job))
        signatures.save(path, {"pairs": clusters.band_bucket(keys, ids)})
    return int(signatures.load(path)["pairs"].shape[0])


def drops_task(job: JobSpec, bands: int) -> dict[str, int]:
    """Union-find over every band's pairs; then each part's drop ordinals, in one file."""
    path = job.drops_file()
    if not path.exists():
        exact = exact_duplicates(job)
        pairs = [signatures.load(job.band_file(b, k))["pairs"]
                 for b in range(bands) for k in range(job.buckets)]
        near = clusters.near_duplicates(pairs)
        table: dict[str, np.ndarray] = {}
        for i in range(1, job.parts + 1):
            ids = signatures.load(job.signature_file(i))["ids"]
            gone = np.isin(ids, exact)  # (n,) ordinals at the exact_dedup stage
            after = ids[~gone]  # what reaches minhash_dedup, in order
            table[f"exact.{i}"] = np.flatnonzero(gone).astype(np.int64)
            table[f"near.{i}"] = np.flatnonzero(np.isin(after, near)).astype(np.int64)
        signatures.save(path, table)
    table = signatures.load(path)
    return {"exact": sum(len(v) for k, v in table.items() if k.startswith("exact.")),
            "near": sum(len(v) for k, v in table.items() if k.startswith("near."))}


def part_task(job: JobSpec, i: int) -> dict[str, Any]:
    """Part i's shards (sharding/run.py, resumable), its dedup stages replaced by the verdicts
    of global dedup and its stateless stages before them by the signature pass's verdicts."""
    from minigpt_cli.sharding.run import run
    from minigpt_cli.sharding.verdicts import Verdicts

    chain = job.dedup()
    in_place: dict[str, Any] = {}
    replay = None
    if chain.start is not None:
        recorded = signatures.load(job.signature_file(i))
        if Verdicts.present(recorded):
            table, part = Verdicts(recorded), job.part(i)

            def replay(cursors, table=table, part=part):
                return table.of([signatures.global_id(part, c) for c in cursors])

        table = signatures.load(job.drops_file())
        for spec, key, reason in ((chain.exact, "exact", "exact_dedup:duplicate"),
                                  (chain.minhash, "near", "minhash_dedup:near_duplicate")):
            if spec is not None:
                in_place[spec.name] = ListedDrops(spec.name, build_stage(spec).options,
                                                  table[f"{key}.{i}"], reason)
    m = run(job.part_settings(i), in_place=in_place, allow_empty=True, verdicts=replay)
    return {"part": i, "tokens": m["totals"]["tokens"], "shards": len(m["shards"])}


def with_workers(job: JobSpec, part_workers: int) -> JobSpec:
    return replace(job, part_workers=part_workers)
