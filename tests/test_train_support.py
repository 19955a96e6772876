"""Helpers for the trainer tests: real shard folders (llm.c shards + manifest.json with the
fields `minigpt shard` writes), tiny settings, subprocess runs of the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from minigpt_cli import shards
from minigpt_cli.tokenizer import CharTokenizer

TEXT = (
    "Supposing that Truth is a woman--what then? Is there not ground for suspecting that all "
    "philosophers, in so far as they have been dogmatists, have failed to understand women--"
    "that the terrible seriousness and clumsy importunity with which they have usually paid "
    "their addresses to Truth, have been unskilled and unseemly methods for winning a woman? "
)


def char_corpus(repeat: int = 40) -> str:
    """A few kilobytes of text, varied enough that windows differ."""
    rng = np.random.default_rng(0)
    words = TEXT.split()
    return " ".join(words[i] for i in rng.integers(0, len(words), size=repeat * len(words)))


def manifest_for(tok, entries: list[dict]) -> dict:
    return {
        "format": "minigpt-shards",
        "format_version": 1,
        "tokenizer": {**tok.identity().to_dict(), "vocab_size": tok.vocab_size,
                      "eot_id": tok.eot_id, **tok.to_dict()},
        "shards": entries,
    }


def write_shards(folder: Path, tok, val_ids, train_parts, masks: dict | None = None) -> Path:
    """val_000000.bin + train_00000k.bin (+ optional .mask.bin) + manifest.json."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    named = [("val", 0, val_ids)] + [("train", i + 1, p) for i, p in enumerate(train_parts)]
    for split, i, ids in named:
        name = shards.shard_name(split, i)
        n = shards.write_shard(folder / name, np.asarray(ids))
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        entries.append({"name": name, "split": split, "index": i, "tokens": n, "documents": 1,
                        "sha256": digest})
        if masks and name in masks:
            shards.write_shard(folder / name.replace(".bin", ".mask.bin"), masks[name])
    (folder / "manifest.json").write_text(json.dumps(manifest_for(tok, entries), indent=1))
    return folder


def char_shards(folder: Path, n_train: int = 2, repeat: int = 40) -> Path:
    text = char_corpus(repeat)
    tok = CharTokenizer.from_text(text)
    ids = np.array(tok.encode(text))
    n_val = len(ids) // 8
    parts = np.array_split(ids[n_val:], n_train)
    return write_shards(folder, tok, ids[:n_val], parts)


TINY = ["--model", "nano", "--seq-len", "32", "--micro-batch", "4", "--device", "cpu",
        "--dtype", "float32", "--lr", "3e-3", "--warmup-steps", "2", "--peak-flops", "1e11"]


def cli_env() -> dict:
    """One BLAS thread: the machine is shared, and results must not depend on thread count."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def minigpt_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "minigpt_cli", *args]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(minigpt_cmd(*args), env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]


def step_losses(run: Path) -> dict[int, float]:
    return {m["step"]: m["loss"] for m in read_metrics(run) if "loss" in m}
