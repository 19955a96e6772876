"""Documents/s of each filter stage and of the default ``commoncrawl`` recipe, on real WET pages.

Reads the 29 conversion records of the Common Crawl WET samples in ../shared/data/commoncrawl
(web pages of ~11 kB of text on average), repeats them ``--repeat`` times, and times, in one
run, each stage alone over every document, the whole default recipe (language ->
gopher_repetition -> gopher_quality -> c4 -> exact_dedup -> minhash_dedup, each document
stopping at its first drop), and, as the baseline the stages sit next to in ``minigpt shard``,
GPT-2 tokenization of the same documents (tiktoken ``encode_ordinary``, one thread). Every
measurement takes turns with the others in each of ``--runs`` rounds (fresh stage objects each
round, so dedup starts empty) and the median is reported, so load from other processes hits all
of them alike.

Repeated records make the dedup stages see exact copies after the first pass: they still hash
every document, which is their whole cost. Also prints the memory the dedup key set takes per
key, next to a Python ``set`` of the same keys.

Usage: python benchmarks/bench_stages.py [--repeat 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from minigpt_cli import plugins
from minigpt_cli.documents import Document, Drop
from minigpt_cli.sources.commoncrawl import CommonCrawlSource
from minigpt_cli.stages import default_stages
from minigpt_cli.stages.hashset import U64Set
from minigpt_cli.tokenizer import GPT2Tokenizer

ROOT = Path(__file__).resolve().parents[1]
WET_DIR = ROOT.parent / "shared" / "data" / "commoncrawl"
# (label, stage, options)
STAGES = [(name, name, {}) for name in ("language", "gopher_repetition", "gopher_quality", "c4",
                                        "exact_dedup", "minhash_dedup", "head")]
STAGES.insert(1, ("language max_chars=2000", "language", {"max_chars": 2000}))


def build(name: str, options: dict | None = None):
    cls = plugins.load("stage", name)
    return cls(cls.Options(**(options or {})))


def time_stage(name: str, options: dict, docs: list[Document]) -> float:
    stage = build(name, options)
    stage(Document("warm up: load models and compile what is lazy."))
    docs = [copy.copy(d) for d in docs]  # c4 rewrites doc.text; keep the inputs intact
    start = time.perf_counter()
    for d in docs:
        stage(d)
    return time.perf_counter() - start


def time_recipe(docs: list[Document]) -> tuple[float, int]:
    stages = [build(name, opts) for name, opts in default_stages("commoncrawl")]
    stages[0](Document("warm up"))
    docs = [copy.copy(d) for d in docs]
    kept = 0
    start = time.perf_counter()
    for d in docs:
        for stage in stages:
            d = stage(d)
            if isinstance(d, Drop):
                break
        else:
            kept += 1
    return time.perf_counter() - start, kept


def time_tokenizer(docs: list[Document]) -> float:
    enc = GPT2Tokenizer()
    start = time.perf_counter()
    for d in docs:
        enc.encode(d.text)
    return time.perf_counter() - start


def bytes_per_key(n: int) -> tuple[float, float]:
    keys = np.random.default_rng(0).integers(1, 1 << 63, size=n, dtype=np.uint64)
    table = U64Set()
    for chunk in np.array_split(keys, n // 14):  # one document's 14 band keys at a time
        table.add(chunk)
    tracemalloc.start()
    py = set(keys.tolist())
    py_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del py
    return table.nbytes / n, py_bytes / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="copies of the 29 WET records")
    parser.add_argument("--runs", type=int, default=5, help="rounds; the median is reported")
    args = parser.parse_args()
    if not WET_DIR.is_dir():
        sys.exit(f"WET samples not found at {WET_DIR}")

    records = list(CommonCrawlSource({"inputs": [str(WET_DIR)]}).documents())
    docs = [copy.copy(d) for _ in range(args.repeat) for d in records]
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"{len(records)} WET records x {args.repeat} = {len(docs)} documents, {mb:.1f} MB of "
          f"text; median of {args.runs} rounds\n")

    labels = [label for label, _, _ in STAGES]
    times: dict[str, list[float]] = {label: [] for label in [*labels, "recipe", "tokenizer"]}
    kept = 0
    for _ in range(args.runs):
        for label, name, options in STAGES:
            times[label].append(time_stage(name, options, docs))
        elapsed, kept = time_recipe(docs)
        times["recipe"].append(elapsed)
        times["tokenizer"].append(time_tokenizer(docs))

    base = statistics.median(times["tokenizer"])
    print(f"{'measured':34s} {'docs/s':>9s} {'MB/s':>7s} {'time / tokenizer':>17s}")
    for name, label in [*((s, f"stage {s}") for s in labels),
                        ("recipe", "default commoncrawl recipe"),
                        ("tokenizer", "baseline: GPT-2 tiktoken encode")]:
        t = statistics.median(times[name])
        print(f"{label:34s} {len(docs) / t:9.0f} {mb / t:7.2f} {t / base:16.2f}x")
    print(f"\nrecipe kept {kept} of {len(docs)} documents (of the {len(records)} distinct "
          "records; their repeats go at exact dedup)")

    ours, python = bytes_per_key(1_400_000)
    print(f"dedup key memory, 1.4M keys: U64Set {ours:.1f} bytes/key, Python set "
          f"{python:.1f} bytes/key ({python / ours:.1f}x)")


if __name__ == "__main__":
    main()
