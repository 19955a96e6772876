"""The shard file format, shared with llm.c and modded-nanogpt.

A shard is a 256 x int32 little-endian header -- magic 20240520, version 1, token count, zeros
-- followed by the tokens as uint16. Names are ``{split}_{index:06d}.bin``; index 0 is ``val``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MAX_TOKEN_ID = np.iinfo(np.uint16).max


def shard_name(split: str, index: int) -> str:
    return f"{split}_{index:06d}.bin"


def to_uint16(tokens) -> np.ndarray:
    """Narrow token ids to uint16, refusing (never wrapping) ids that do not fit."""
    arr = np.asarray(tokens)
    if arr.size and (int(arr.max()) > MAX_TOKEN_ID or int(arr.min()) < 0):
        bad = int(arr.max()) if int(arr.max()) > MAX_TOKEN_ID else int(arr.min())
        raise MinigptError(
            f"Token id {bad} does not fit the shard format's uint16 (0..{MAX_TOKEN_ID}). The "
            "tokenizer's vocabulary is too large for llm.c-format shards."
        )
    return arr.astype(np.uint16, copy=False)


def header(n_tokens: int) -> np.ndarray:
    h = np.zeros(HEADER_INTS, dtype="<i4")
    h[0], h[1], h[2] = MAGIC, VERSION, n_tokens
    return h


def write_shard(path: Path | str, tokens) -> int:
    """Write tokens (ids < 65536) atomically; return the number of tokens written."""
    toks = to_uint16(tokens).astype("<u2", copy=False)
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header(len(toks)).tobytes())
        f.write(toks.tobytes())
    return len(toks)


def read_header(path: Path | str) -> int:
    """Check a shard's header and size; return its token count."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as e:
        raise MinigptError(f"Shard {path} cannot be read: {e}.") from None
    if len(raw) < HEADER_BYTES:
        raise MinigptError(
            f"Shard {path} is {size} bytes, shorter than the {HEADER_BYTES}-byte header: it is "
            "truncated or not a shard. Re-create it with `minigpt shard`."
        )
    h = np.frombuffer(raw, dtype="<i4")
    if h[0] != MAGIC:
        raise MinigptError(
            f"Shard {path} has magic number {int(h[0])}, not {MAGIC}: it is not an llm.c-format "
            "token shard. Re-create it with `minigpt shard`."
        )
    if h[1] != VERSION:
        raise MinigptError(f"Shard {path} has format version {int(h[1])}; only {VERSION} is read.")
    n = int(h[2])
    expected = HEADER_BYTES + 2 * n
    if size != expected:
        raise MinigptError(
            f"Shard {path} says it holds {n} tokens ({expected} bytes) but is {size} bytes: it is "
            "truncated or was overwritten. Re-create it with `minigpt shard`."
        )
    return n


def file_sha256(path: Path | str, chunk: int = 1 << 24) -> str:
    """sha256 of a file (what manifest.json records for every shard)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def open_shard(path: Path | str) -> np.ndarray:
    """Memory-map a shard's tokens (uint16, read-only) after checking its header."""
    n = read_header(path)
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(n,))
