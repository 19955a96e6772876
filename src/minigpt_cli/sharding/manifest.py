"""manifest.json: what a folder of shards holds and how it was made.

Tokenizer identity (name + hash, and the characters of a char vocabulary), every shard with its
token and document counts and sha256, the sources with their provenance, the funnel (per stage:
seen, kept, rewritten, dropped with reasons), totals, the resolved settings and the tool
version. Written atomically, last, when every shard is on disk: a folder with a manifest is
complete.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minigpt_cli import __version__, atomic
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.funnel import Funnel
from minigpt_cli.sharding.writer import ShardInfo

NAME = "manifest.json"
FORMAT = "minigpt-shards"
FORMAT_VERSION = 1


def build(*, tokenizer, shards: list[ShardInfo], source: dict[str, Any], funnel: Funnel,
          settings: dict[str, Any], fingerprint: str, shard_size: int,
          part: dict[str, int] | None, warnings: list[str], pack: int | None = None,
          loss_mask: bool = False) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": {"name": "minigpt", "version": __version__},
        "created": now(),
        "tokenizer": tokenizer_entry(tokenizer),
        "shard_size": shard_size,
        "shards": [s.to_dict() for s in shards],
        "totals": totals(shards, funnel),
        "sources": [source],
        "stages": funnel.to_dict()["stages"],
        "part": part,
        "settings": settings,
        "fingerprint": fingerprint,
        "warnings": warnings,
        # examples never cross a multiple of ``pack`` tokens (train with --seq-len a multiple)
        "pack": pack,
        "loss_mask": loss_mask,  # shards have <name>.mask.bin sidecars (writer.py)
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def tokenizer_entry(tokenizer) -> dict[str, Any]:
    return {**tokenizer.identity().to_dict(), "vocab_size": tokenizer.vocab_size,
            "eot_id": tokenizer.eot_id, **tokenizer.to_dict()}


def totals(shards: list[ShardInfo], funnel: Funnel) -> dict[str, Any]:
    return {
        "shards": len(shards),
        "tokens": sum(s.tokens for s in shards),
        "val_tokens": sum(s.tokens for s in shards if s.split == "val"),
        "train_tokens": sum(s.tokens for s in shards if s.split == "train"),
        "documents_read": funnel.read,
        "documents_kept": funnel.kept,
    }


def write(out: Path, manifest: dict[str, Any]) -> None:
    atomic.write_json(out / NAME, manifest)


def read(folder: Path) -> dict[str, Any]:
    path = folder / NAME
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise MinigptError(
            f"{folder} has no {NAME}: it is not a finished `minigpt shard` output (an unfinished "
            "run resumes when you run the same command again)."
        ) from None
    except (OSError, ValueError) as e:
        raise MinigptError(f"{path} cannot be read as JSON ({e}). Re-create the shards.") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise MinigptError(f"{path} is not a minigpt shard manifest.")
    if m.get("format_version") != FORMAT_VERSION:
        raise MinigptError(f"{path} has format version {m.get('format_version')}; this minigpt "
                           f"reads version {FORMAT_VERSION}. Re-create the shards or upgrade.")
    return m


def shard_infos(m: dict[str, Any]) -> list[ShardInfo]:
    return [ShardInfo.from_dict(s) for s in m["shards"]]
