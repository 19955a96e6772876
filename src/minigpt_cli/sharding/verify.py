"""`minigpt shard --verify DIR`: re-check every shard against the manifest.

Per shard: the file exists; its header (magic, version) is valid and its size matches the token
count in the header; that count matches the manifest; the document count (the number of
``<|endoftext|>`` tokens: every document starts with one, plus the padding of packed shards)
matches; no token id is outside the vocabulary; the sha256 matches, and the loss-mask sidecar's
where the manifest lists one (same token count, only 0 and 1). Also: shard files the manifest does not list, and totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minigpt_cli import shards
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding import manifest
from minigpt_cli.sharding.writer import ShardInfo, mask_name, shard_files

CHUNK = 1 << 24  # tokens per read when counting


@dataclass
class ShardCheck:
    name: str
    tokens: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    folder: Path
    shards: list[ShardCheck]
    problems: list[str]  # about the folder as a whole

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.shards)

    @property
    def failures(self) -> int:
        return len(self.problems) + sum(not s.ok for s in self.shards)


def verify(folder: Path, on_shard: Callable[[ShardCheck], None] | None = None) -> VerifyReport:
    m = manifest.read(folder)
    tok = m.get("tokenizer", {})
    checks = []
    for info in manifest.shard_infos(m):
        check = check_shard(folder, info, int(tok.get("eot_id", -1)), int(tok.get("vocab_size", 0)))
        checks.append(check)
        if on_shard:
            on_shard(check)
    return VerifyReport(folder, checks, folder_problems(folder, m))


def check_shard(folder: Path, info: ShardInfo, eot_id: int, vocab_size: int) -> ShardCheck:
    check = ShardCheck(info.name, info.tokens)
    path = folder / info.name
    if not path.exists():
        check.problems.append("missing")
        return check
    try:
        n = shards.read_header(path)
    except MinigptError as e:
        check.problems.append(str(e))
        return check
    if n != info.tokens:
        check.problems.append(f"holds {n} tokens, the manifest says {info.tokens}")
        return check
    toks = shards.open_shard(path)
    docs, top = 0, 0
    for start in range(0, n, CHUNK):
        block = np.asarray(toks[start:start + CHUNK])
        docs += int(np.count_nonzero(block == eot_id))
        top = max(top, int(block.max()) if len(block) else 0)
    del toks
    if docs != info.documents + info.padding:
        check.problems.append(f"{docs} documents start in it, the manifest says {info.documents}"
                              + (f" (+ {info.padding} padding)" if info.padding else ""))
    if vocab_size and top >= vocab_size:
        check.problems.append(f"token id {top} is outside the vocabulary ({vocab_size})")
    if (digest := shards.file_sha256(path)) != info.sha256:
        check.problems.append(f"sha256 {digest[:16]}... differs from the manifest's "
                              f"{info.sha256[:16]}...")
    if info.mask_sha256:
        check.problems += mask_problems(folder / mask_name(info.name), n, info.mask_sha256)
    return check


def mask_problems(path: Path, n: int, sha256: str) -> list[str]:
    if not path.exists():
        return [f"its loss mask {path.name} is missing"]
    try:
        mask = shards.open_shard(path)
    except MinigptError as e:
        return [str(e)]
    if len(mask) != n:
        return [f"its loss mask {path.name} holds {len(mask)} values for {n} tokens"]
    if len(mask) and int(np.max(mask)) > 1:
        return [f"its loss mask {path.name} holds values other than 0 and 1"]
    if shards.file_sha256(path) != sha256:
        return [f"its loss mask {path.name} differs from the manifest's sha256"]
    return []


def folder_problems(folder: Path, m: dict[str, Any]) -> list[str]:
    problems = []
    listed = {s["name"] for s in m["shards"]}
    extra = [n for n in shard_files(folder) if n not in listed]
    if extra:
        problems.append(f"{len(extra)} shard file(s) not in the manifest: {', '.join(extra[:5])}")
    total = sum(s["tokens"] for s in m["shards"])
    if m.get("totals", {}).get("tokens") != total:
        problems.append(f"the manifest's total of {m.get('totals', {}).get('tokens')} tokens is "
                        f"not the sum over its shards ({total})")
    names = [s["name"] for s in m["shards"]]
    if len(set(names)) != len(names):
        problems.append("the manifest lists a shard twice")
    return problems
