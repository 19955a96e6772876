"""Token streams to score: a shard folder (manifest.json + llm.c shards), one .bin shard, or a
UTF-8 text file; windows over them with a stride; the bytes and characters they stand for.

Windows: targets are tokens 1..N-1 of a stream (token t is predicted from the tokens before
it). The first window scores its ``seq_len`` targets; each next window moves its end by
``stride`` targets and scores only those new ones, seeing the ``seq_len - stride`` tokens before
them as context. Every target is scored exactly once. A shard's loss mask (``.mask.bin``), when
present, further limits which targets count, as in training.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minigpt_cli import shards
from minigpt_cli.errors import MinigptError
from minigpt_cli.shard_folder import manifest_tokenizer, read_manifest
from minigpt_cli.tokenizer import Tokenizer, check_same_tokenizer

MANIFEST = "manifest.json"


@dataclass
class Stream:
    tokens: np.ndarray  # (N,) token ids
    mask: np.ndarray | None = None  # (N,) 1 where the token counts as a target


@dataclass
class WindowBatch:
    x: torch.Tensor  # (B, T) inputs
    y: torch.Tensor  # (B, T) targets
    mask: torch.Tensor  # (B, T) bool, True where the target is scored
    scored_ids: np.ndarray  # the scored target ids, in stream order


def window_ends(n_targets: int, seq_len: int, stride: int) -> list[int]:
    """Index of the last target of each window (targets are 1..n_targets)."""
    if n_targets < 1:
        return []
    ends = [min(seq_len, n_targets)]
    while ends[-1] < n_targets:
        ends.append(min(ends[-1] + stride, n_targets))
    return ends


def windows(stream: Stream, seq_len: int, stride: int, batch_size: int) -> Iterator[WindowBatch]:
    toks = stream.tokens
    n_targets = len(toks) - 1
    L = min(seq_len, n_targets)
    ends = window_ends(n_targets, L, stride)
    prev = 0
    for i in range(0, len(ends), batch_size):
        rows, keep = [], []
        for e in ends[i : i + batch_size]:
            start = e - L
            rows.append(np.asarray(toks[start : e + 1], dtype=np.int64))  # (L + 1,)
            k = np.arange(start + 1, e + 1) > prev  # (L,) targets not scored before
            if stream.mask is not None:
                k &= np.asarray(stream.mask[start + 1 : e + 1]) != 0
            keep.append(k)
            prev = e
        t = torch.from_numpy(np.stack(rows))  # (B, L + 1)
        m = np.stack(keep)  # (B, L)
        y = t[:, 1:]
        yield WindowBatch(t[:, :-1], y, torch.from_numpy(m), y.numpy()[m])


class ScoredText:
    """Counts what the scored targets stand for: tokens, UTF-8 bytes and characters.

    End-of-text separators count as targets but as no text. Characters come from an
    incremental UTF-8 decoder, so a character split across two BPE tokens counts once.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok = tokenizer
        self.targets = self.bytes = self.chars = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, ids: np.ndarray) -> None:
        self.targets += len(ids)
        ids = ids[ids != self.tok.eot_id]
        if len(ids):
            b = self.tok.decode_bytes(ids.tolist())
            self.bytes += len(b)
            self.chars += len(self._decoder.decode(b))


def open_streams(data: Path | None, tokenizer: Tokenizer, split: str,
                 limit: int | None) -> tuple[list[Stream], str]:
    """The streams to score and a description; every problem is a MinigptError naming --data."""
    if data is None:
        raise MinigptError("`minigpt eval loss` needs --data: a shard folder (manifest.json + "
                           ".bin shards), one .bin shard, or a UTF-8 text file.")
    data = Path(data)
    if data.is_dir():
        streams, what = _shard_folder(data, tokenizer, split)
    elif not data.exists():
        raise MinigptError(f"--data {data}: no such file or folder.")
    elif data.suffix == ".bin":
        streams, what = _one_shard(data, tokenizer)
    else:
        streams, what = _text_file(data, tokenizer)
    streams = _cap(streams, limit)
    if sum(max(0, len(s.tokens) - 1) for s in streams) == 0:
        raise MinigptError(f"--data {data}: nothing to score ({what} holds fewer than two "
                           "tokens). Point --data at more text.")
    return streams, what


def _cap(streams: list[Stream], limit: int | None) -> list[Stream]:
    if limit is None:
        return streams
    out, left = [], limit
    for s in streams:
        if left <= 0:
            break
        n = min(len(s.tokens), left + 1)
        out.append(Stream(s.tokens[:n], None if s.mask is None else s.mask[:n]))
        left -= max(0, n - 1)
    return out


def _with_mask(path: Path) -> Stream:
    arr = shards.open_shard(path)
    mpath = path.with_name(path.stem + ".mask.bin")
    mask = shards.open_shard(mpath) if mpath.exists() else None
    if mask is not None and len(mask) != len(arr):
        raise MinigptError(f"Loss mask {mpath} has {len(mask)} values for {len(arr)} tokens in "
                           f"{path}; re-create the shards.")
    return Stream(arr, mask)


def _check_ids(path: Path, stream: Stream, tokenizer: Tokenizer) -> None:
    if len(stream.tokens) and int(stream.tokens.max()) >= tokenizer.vocab_size:
        raise MinigptError(
            f"Shard {path} holds token id {int(stream.tokens.max())}, but the model's tokenizer "
            f"({tokenizer.identity()}) has only {tokenizer.vocab_size} ids: the shards were "
            "made with another tokenizer. Evaluate a model trained on this data, or re-shard "
            "the text with this model's tokenizer."
        )


def _check_manifest(folder: Path, tokenizer: Tokenizer) -> dict | None:
    if not (folder / MANIFEST).exists():
        return None

    manifest, _ = read_manifest(folder)
    data_tok = manifest_tokenizer(folder, manifest)
    check_same_tokenizer(tokenizer.identity(), data_tok.identity(), "The model",
                         f"the shards in {folder}")
    return manifest


def _shard_folder(folder: Path, tokenizer: Tokenizer, split: str) -> tuple[list[Stream], str]:
    if _check_manifest(folder, tokenizer) is None:
        raise MinigptError(f"--data {folder}: a folder must hold {MANIFEST} and the .bin shards "
                           "written by `minigpt shard`.")
    names = [p for p in sorted(folder.glob("*.bin")) if not p.name.endswith(".mask.bin")]
    if split != "all":
        names = [p for p in names if p.name.startswith(split + "_")]
    if not names:
        raise MinigptError(f"--data {folder}: no {split} shards (expected files like "
                           f"{shards.shard_name(split if split != 'all' else 'val', 0)}).")
    streams = []
    for p in names:
        s = _with_mask(p)
        _check_ids(p, s, tokenizer)
        streams.append(s)
    return streams, f"{split} shards of {folder}"


def _one_shard(path: Path, tokenizer: Tokenizer) -> tuple[list[Stream], str]:
    _check_manifest(path.parent, tokenizer)
    s = _with_mask(path)
    _check_ids(path, s, tokenizer)
    return [s], f"shard {path}"


def _text_file(path: Path, tokenizer: Tokenizer) -> tuple[list[Stream], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MinigptError(f"--data {path} is not UTF-8 text ({e}). Pass a text file, a .bin "
                           "shard or a shard folder.") from None
    except OSError as e:
        raise MinigptError(f"--data {path} cannot be read: {e}.") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is not text
    if not text:
        raise MinigptError(f"--data {path} is empty: there is nothing to score.")
    try:
        ids = tokenizer.encode(text)
    except MinigptError as e:
        raise MinigptError(f"--data {path} cannot be tokenized for this model: {e}") from None
    tokens = np.array([tokenizer.eot_id, *ids], dtype=np.int64)  # <|endoftext|> first
    return [Stream(tokens)], f"text file {path}"
