"""The character vocabulary of ``--tokenizer char`` for a streaming source.

A streaming source cannot be looked at twice for free, so the vocabulary comes from one of:
``--char-vocab FILE`` -- a JSON list of single characters, or the manifest.json of shards made
earlier (to share one vocabulary across datasets, or across the jobs of ``--part``); or, when
unset, a first pass over the documents that come out of the stage chain (the same source and
stages, nothing written) collecting every character they use. The vocabulary is saved in the
resume state and the manifest. Documents holding characters outside a given vocabulary are
dropped and counted (funnel row ``tokenizer``).
"""

from __future__ import annotations

import json
from pathlib import Path

from minigpt_cli.errors import MinigptError
from minigpt_cli.tokenizer import CharTokenizer


def from_file(path: Path) -> CharTokenizer:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MinigptError(f"--char-vocab {path} does not exist.") from None
    except (OSError, ValueError) as e:
        raise MinigptError(f"--char-vocab {path} cannot be read as JSON: {e}.") from None
    if isinstance(data, dict):  # a shard manifest
        data = (data.get("tokenizer") or {}).get("chars")
    if not isinstance(data, list) or not all(isinstance(c, str) for c in data) or not data:
        raise MinigptError(
            f"--char-vocab {path} must hold a JSON list of single characters, or be the "
            "manifest.json of char-tokenized shards."
        )
    return CharTokenizer(data)


def from_charsets(charsets: set[str]) -> CharTokenizer:
    chars = sorted(set("".join(charsets)))
    if not chars:
        raise MinigptError("The vocabulary pass found no characters: no document survived.")
    return CharTokenizer(chars)
