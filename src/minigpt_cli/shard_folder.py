"""A shard folder written by `minigpt shard`, opened and checked before any training or
evaluation reads it (the reading side of shards.py's format, shared by train/ and evals/).

The folder holds ``manifest.json`` (tokenizer name and hash, plus the chars of a char
tokenizer; per-shard token counts and sha256), ``val_000000.bin`` and ``train_000001.bin``...
in the llm.c format (shards.py). A shard may have a loss mask beside it, ``<name>.mask.bin``, in
the same format (one 0/1 value per token). Every problem is a MinigptError naming the file.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minigpt_cli import shards
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.tokenizer import Tokenizer, TokenizerIdentity, tokenizer_from_dict

MANIFEST = "manifest.json"
VAL_SHARD = shards.shard_name("val", 0)
_CHECK_TOKENS = 1 << 20  # ids checked at each end of a train shard (all of val)


@dataclass
class ShardFolder:
    folder: Path
    manifest: dict
    manifest_hash: str  # sha256 of manifest.json: which data a checkpoint trained on
    tokenizer: Tokenizer
    train_paths: list[Path]
    val_path: Path
    train: list[np.ndarray] = field(default_factory=list)  # memmaps
    train_masks: list[np.ndarray | None] = field(default_factory=list)
    val: np.ndarray | None = None
    val_mask: np.ndarray | None = None

    @property
    def train_tokens(self) -> int:
        return int(sum(len(a) for a in self.train))


def _fail(folder: Path, what: str) -> MinigptError:
    return MinigptError(f"--data {folder}: {what}")


def read_manifest(folder: Path) -> tuple[dict, str]:
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(folder, f"no {MANIFEST}. Point --data at a folder written by "
                    "`minigpt shard` (it holds manifest.json and the .bin shards).") from None
    except OSError as e:
        raise _fail(folder, f"{MANIFEST} cannot be read: {e}.") from None
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("tokenizer"), dict):
            raise ValueError("no 'tokenizer' object")
    except ValueError as e:
        raise _fail(folder, f"{MANIFEST} is damaged ({e}). Re-create the shards with "
                    "`minigpt shard`.") from None
    return manifest, hashlib.sha256(raw).hexdigest()


def manifest_tokenizer(folder: Path, manifest: dict) -> Tokenizer:
    entry = manifest["tokenizer"]
    try:
        tok = tokenizer_from_dict(entry)
    except MinigptError as e:
        raise _fail(folder, f"the tokenizer in {MANIFEST} cannot be rebuilt: {e}") from None
    if "hash" in entry and str(entry["hash"]) != tok.identity().hash:
        claimed = TokenizerIdentity(str(entry.get("name")), str(entry["hash"]))
        raise IncompatibleError(
            f"--data {folder}: the shards were tokenized with {claimed}, but the tokenizer "
            f"rebuilt here is {tok.identity()}: the token ids would mean different things. "
            "Re-shard the data with this installation's tokenizer."
        )
    return tok


def _entries(manifest: dict) -> list[dict]:
    """The manifest's shard entries, whichever shape they come in (a list, or name -> entry)."""
    entries = manifest.get("shards")
    if isinstance(entries, dict):
        entries = [{"name": k, **v} for k, v in entries.items() if isinstance(v, dict)]
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _shard_counts(manifest: dict) -> dict[str, int]:
    """name -> token count from the manifest, whichever spelling its entries use."""
    out: dict[str, int] = {}
    for e in _entries(manifest):
        name = e.get("name") or e.get("file") or e.get("path")
        count = e.get("tokens", e.get("n_tokens", e.get("num_tokens")))
        if name and isinstance(count, int):
            out[Path(str(name)).name] = count
    return out


def check_digests(folder: Path, manifest: dict, paths: list[Path]) -> None:
    """Every shard (and loss mask) among ``paths`` has the sha256 manifest.json records for
    it: a flipped byte is refused before any training (hashed on 2 threads, ~1 GB/s each)."""
    wanted: list[tuple[Path, str]] = []
    names = {p.name for p in paths}
    for e in _entries(manifest):
        name = Path(str(e.get("name", ""))).name
        if name not in names:
            continue
        for file, key in ((name, "sha256"), (name.removesuffix(".bin") + ".mask.bin",
                                               "mask_sha256")):
            if isinstance(e.get(key), str):
                wanted.append((folder / file, e[key]))
    if not wanted:
        return
    with ThreadPoolExecutor(max_workers=2) as pool:  # hashlib releases the GIL
        digests = list(pool.map(lambda fw: _digest(fw[0]), wanted))
    for (path, want), got in zip(wanted, digests):
        if got != want:
            why = got if got.startswith("it cannot") else \
                "its bytes changed since `minigpt shard` wrote it"
            raise MinigptError(
                f"Shard file {path} does not match the sha256 manifest.json records for it "
                f"({why}). Training on it would use damaged data: restore the folder from a "
                "copy or re-create it; `minigpt shard --verify` checks every file.")


def _digest(path: Path) -> str:
    """The file's sha256, or a reason it cannot be read."""
    try:
        return shards.file_sha256(path)
    except OSError as e:
        return f"it cannot be read: {e.strerror or e}"


def _open(path: Path, counts: dict[str, int]) -> np.ndarray:
    arr = shards.open_shard(path)  # checks magic, version, size
    want = counts.get(path.name)
    if want is not None and want != len(arr):
        raise MinigptError(
            f"Shard {path} holds {len(arr)} tokens but manifest.json says {want}: the folder "
            "mixes shards from different runs. Re-create it with `minigpt shard`."
        )
    return arr


def _open_mask(path: Path, n: int) -> np.ndarray | None:
    mpath = path.with_name(path.stem + ".mask.bin")
    if not mpath.exists():
        return None
    mask = shards.open_shard(mpath)
    if len(mask) != n:
        raise MinigptError(f"Loss mask {mpath} has {len(mask)} values for {n} tokens in {path}; "
                           "re-create the shards.")
    return mask


def _check_ids(path: Path, arr: np.ndarray, vocab: int, everything: bool) -> None:
    parts = [arr] if everything or len(arr) <= 2 * _CHECK_TOKENS else \
        [arr[:_CHECK_TOKENS], arr[-_CHECK_TOKENS:]]
    top = max((int(p.max()) for p in parts if len(p)), default=0)
    if top >= vocab:
        raise IncompatibleError(
            f"Shard {path} holds token id {top}, but its tokenizer has only {vocab} ids: the "
            "shards and manifest.json do not belong together. Re-create them with "
            "`minigpt shard`."
        )


def open_shard_folder(folder: Path | str) -> ShardFolder:
    """Open and check everything: manifest, tokenizer, val shard, train shards, token ids."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _fail(folder, "no such folder. Create shards with `minigpt shard ... --out DIR` "
                    "and pass that DIR.")
    manifest, digest = read_manifest(folder)
    tok = manifest_tokenizer(folder, manifest)
    val_path = folder / VAL_SHARD
    if not val_path.exists():
        raise _fail(folder, f"no validation shard {VAL_SHARD}. `minigpt shard` writes it as "
                    "shard 0; re-create the shards (a folder needs val and train shards).")
    counts = _shard_counts(manifest)
    listed = sorted(n for n in counts if n.startswith("train_"))
    if listed:  # the manifest is the authority on which shards belong to the data
        missing = [n for n in listed if not (folder / n).exists()]
        if missing:
            raise _fail(folder, f"manifest.json lists {len(missing)} shard(s) that are missing, "
                        f"such as {missing[0]}. Copy the whole folder, or re-create it.")
        train_paths = [folder / n for n in listed]
    else:
        train_paths = sorted(p for p in folder.glob("train_*.bin")
                             if not p.name.endswith(".mask.bin"))
    if not train_paths:
        raise _fail(folder, "no training shards (train_000001.bin, ...). Re-create the shards "
                    "with more data, or check the folder.")
    data = ShardFolder(folder, manifest, digest, tok, train_paths, val_path)
    data.val = _open(val_path, counts)
    data.val_mask = _open_mask(val_path, len(data.val))
    _check_ids(val_path, data.val, tok.vocab_size, everything=True)
    for p in train_paths:
        arr = _open(p, counts)
        _check_ids(p, arr, tok.vocab_size, everything=False)
        data.train.append(arr)
        data.train_masks.append(_open_mask(p, len(arr)))
    check_digests(folder, manifest, [val_path, *train_paths])  # last: the cheap checks first
    return data


def check_fits(data: ShardFolder, seq_len: int) -> None:
    """Enough tokens for at least one training and one validation window."""
    need = seq_len + 1
    if len(data.val) < need:
        raise _fail(data.folder, f"the validation shard {VAL_SHARD} holds {len(data.val)} "
                    f"tokens, fewer than one sequence of --seq-len {seq_len} + 1. Use a smaller "
                    "--seq-len or shard more validation text.")
    if all(len(a) < need for a in data.train):
        raise _fail(data.folder, f"no training shard holds one sequence of --seq-len {seq_len} "
                    "+ 1 tokens. Use a smaller --seq-len or shard more text.")
    pack = data.manifest.get("pack")
    if isinstance(pack, int) and pack > 0 and seq_len % pack:
        raise _fail(data.folder, f"its examples are packed into blocks of {pack} tokens (no "
                    f"example crosses a multiple of {pack}), but --seq-len {seq_len} is not a "
                    f"multiple of {pack}: windows would cut examples. Use --seq-len {pack}.")
