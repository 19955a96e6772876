"""`minigpt shard --merge PART_DIR... --out DIR`: the union of the jobs of a `--part i/N` run.

Every part is verified in full (verify.py), and the parts must agree: same part count with each
index exactly once, same tokenizer, same settings apart from ``part``. Shards are hard-linked
into the output folder (copied when it is on another file system) and renumbered part after
part -- part 1's shards (``val_000000`` first), then part 2's, ... -- so that reading the merged
shards in index order reads each part's token stream unbroken (a document that spans two of a
part's shards is not cut by another part's shard in between). One manifest describes the union:
all shards (each with the part and name it came from), all sources' provenance, the funnels
summed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minigpt_cli import atomic, lock, shards
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding import manifest, outdir
from minigpt_cli.sharding.funnel import Funnel
from minigpt_cli.sharding.verify import VerifyReport, verify
from minigpt_cli.sharding.writer import ShardInfo, mask_name

SETTINGS_PER_PART = ("part", "out", "workers", "parts", "executor", "address")


def merge(parts: list[Path], out: Path,
          on_part: Callable[[VerifyReport], None] | None = None) -> dict[str, Any]:
    """Verify the parts, place their shards in ``out``, write the union's manifest there."""
    resolved_out = out.resolve()
    if any(p.resolve() == resolved_out for p in parts):
        raise MinigptError("--out must be a new folder, not one of the parts being merged.")
    with lock.hold(out):
        return _merge(parts, out, on_part)


def _merge(parts: list[Path], out: Path, on_part: Callable[[VerifyReport], None] | None,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``extra``: keys added to the merged manifest (a job's own record: cluster/job.py)."""
    if (out / manifest.NAME).exists():
        raise MinigptError(f"{out} already holds a {manifest.NAME}; merge into a new folder.")
    outdir.check_fresh(out)
    manifests = [manifest.read(p) for p in parts]
    check_consistent(parts, manifests)
    for p in parts:
        report = verify(p)
        if on_part:
            on_part(report)
        if not report.ok:
            raise MinigptError(f"Part {p} fails verification ({report.failures} problem(s); "
                               f"`minigpt shard --verify {p}` lists them). Re-run that part.")
    out.mkdir(parents=True, exist_ok=True)
    placed: list[ShardInfo] = []
    origin: list[tuple[int, str]] = []
    for p, m in sorted(zip(parts, manifests), key=lambda pm: pm[1]["part"]["index"]):
        for info in sorted(manifest.shard_infos(m), key=lambda s: s.index):
            index = len(placed)  # each part's shards in a row: documents stay contiguous
            split = "val" if index == 0 else "train"
            new = ShardInfo(shards.shard_name(split, index), split, index, info.tokens,
                            info.documents, info.sha256, info.padding, info.mask_sha256)
            place(p / info.name, out / new.name, info.sha256)
            if info.mask_sha256:  # the loss mask travels with its shard
                place(p / mask_name(info.name), out / mask_name(new.name), info.mask_sha256)
            placed.append(new)
            origin.append((m["part"]["index"], info.name))
    merged = union(parts, manifests, placed, origin) | (extra or {})
    manifest.write(out, merged)
    return merged


def check_consistent(parts: list[Path], manifests: list[dict[str, Any]]) -> None:
    counts = {(m.get("part") or {}).get("count") for m in manifests}
    if None in counts or len(counts) != 1:
        raise MinigptError("Every folder to merge must be one part of the same `--part i/N` run "
                           "(each manifest's part count must be the same N).")
    n = counts.pop()
    indices = sorted(m["part"]["index"] for m in manifests)
    if indices != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - set(indices))
        raise MinigptError(f"The parts to merge must be 1..{n}, each once; got {indices}"
                           + (f" (missing {missing})" if missing else "") + ".")
    first = manifests[0]
    for p, m in zip(parts[1:], manifests[1:]):
        if m["tokenizer"].get("hash") != first["tokenizer"].get("hash"):
            raise MinigptError(f"{p} uses tokenizer {m['tokenizer'].get('name')} "
                               f"({m['tokenizer'].get('hash', '')[:12]}), unlike {parts[0]}.")
        if _shared_settings(m) != _shared_settings(first):
            raise MinigptError(f"{p} was made with other settings than {parts[0]} (apart from "
                               "--part, every setting must be the same).")


def _shared_settings(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m["settings"].items() if k not in SETTINGS_PER_PART}


def place(src: Path, dst: Path, sha256: str) -> None:
    """Hard-link (or copy) a shard into place under its final name, atomically."""
    if dst.exists() and shards.file_sha256(dst) == sha256:
        return
    with atomic.atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or no hard links here
            shutil.copyfile(src, tmp)


def union(parts: list[Path], manifests: list[dict[str, Any]], placed: list[ShardInfo],
          origin: list[tuple[int, str]]) -> dict[str, Any]:
    funnels = [Funnel.from_dict({"read": m["totals"]["documents_read"],
                                 "tokens": m["totals"]["tokens"], "stages": m["stages"]})
               for m in manifests]
    funnel = funnels[0]
    for f in funnels[1:]:
        funnel.add(f)
    first = manifests[0]
    sources = [s | {"part": m["part"]["index"]} for m in manifests for s in m["sources"]]
    fingerprint = hashlib.sha256("".join(sorted(m["fingerprint"] for m in manifests))
                                 .encode()).hexdigest()
    entries = [s.to_dict() | {"part": part, "part_name": name}
               for s, (part, name) in zip(placed, origin)]
    merged = {**first, "shards": entries,
              "totals": manifest.totals(placed, funnel), "sources": sources,
              "stages": funnel.to_dict()["stages"], "part": None,
              "settings": _shared_settings(first), "fingerprint": fingerprint,
              "warnings": [w for m in manifests for w in m.get("warnings", [])],
              "merged_from": [{"folder": str(p), "part": m["part"]["index"],
                               "shards": len(m["shards"]), "tokens": m["totals"]["tokens"]}
                              for p, m in zip(parts, manifests)],
              "created": manifest.now()}
    return merged
