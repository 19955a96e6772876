"""`make-math` end to end: plan -> render and check lines in worker processes -> write
``train.jsonl``, ``test.jsonl``, ``meta.json`` and ``settings.json`` atomically.

The core never prints: it calls ``on_event`` with the dataclasses below, which the CLI renders.
Output is identical for any number of workers (the plan is drawn up front, chunks keep order).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minigpt_cli import __version__, atomic, capacity, lock
from minigpt_cli.errors import MinigptError
from minigpt_cli.mathgen import budget
from minigpt_cli.mathgen.formats import max_line_chars
from minigpt_cli.mathgen.problems import ANSWER_MARK
from minigpt_cli.mathgen.records import Chunk, Rendered, render
from minigpt_cli.mathgen.settings import MakeMathSettings
from minigpt_cli.mathgen.split import Plan, SettingsProblem, check_block_size, make_plan
from minigpt_cli.settings import dump

CHUNK = 10_000  # lines per worker task
IN_PROCESS_BELOW = 40_000  # small runs skip the worker pool (its start costs more than it saves)
FILES = {"train": "train.jsonl", "test": "test.jsonl"}
BIG = 1 << 30  # a run estimated above this many bytes (memory or disk) says so first


@dataclass(frozen=True)
class Planned:
    train: int
    test: int
    workers: int
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class Written:
    out: Path
    train: int
    test: int
    seconds: float
    meta: dict


Event = Planned | Progress | Written


def make_math(s: MakeMathSettings, on_event: Callable[[Event], None] | None = None) -> dict:
    """Generate, check and write the data set; returns the meta.json contents. --out is
    locked while it is written (lock.py), and a folder the run made is removed again if the
    run fails and leaves it empty."""
    check_block_size(s.op_specs(), s.format, s.block_size)
    if s.out.exists() and not s.out.is_dir():
        raise MinigptError(f"--out {s.out} is a file; give a folder to write the data set into.")
    with lock.hold(s.out):
        return _make_math(s, on_event)


def _make_math(s: MakeMathSettings, on_event: Callable[[Event], None] | None) -> dict:
    emit = on_event or (lambda e: None)
    t0 = time.perf_counter()
    specs = s.op_specs()
    n_test = s.n_test if s.n_test_cell is None else s.n_test_cell * max(
        len(x.cells()) for x in specs)
    asked = s.n + n_test * len(specs)
    footprint = budget.estimate(specs, s.n, n_test, s.balance, s.format, s.spaced,
                                _workers(s.workers, asked))
    carry_draws = s.balance == "carries" and any(x.op in "+-" for x in specs)
    if (why := budget.refusal(footprint, s.n, s.resolved_ops, s.out, carry_draws)) is not None:
        raise SettingsProblem(why)
    plan = make_plan(specs, s.n, s.n_test, s.balance, s.seed, s.n_test_cell)
    rng = np.random.default_rng([s.seed, 1])  # line order; separate from the problem draw
    workers = _workers(s.workers, plan.count("train") + plan.count("test"))
    notes = tuple(plan.notes)
    if max(footprint.memory, footprint.disk) > BIG:
        notes += ((f"estimated at up to {capacity.size(footprint.memory)} of memory and "
                   f"{capacity.size(footprint.disk)} of disk"),)
    emit(Planned(plan.count("train"), plan.count("test"), workers, notes))
    total = plan.count("train") + plan.count("test")
    longest: dict[tuple[str, int, int], int] = {}
    chars: set[str] = set()
    hashes = {split: hashlib.sha256() for split in FILES}
    done = 0
    with ExitStack() as stack:
        handles = {split: stack.enter_context(
                       open(stack.enter_context(atomic.atomic_path(s.out / name)), "wb"))
                   for split, name in FILES.items()}
        for r in _rendered(_chunks(plan, rng, s), workers):
            data = r.text.encode("ascii")
            handles[r.split].write(data)
            hashes[r.split].update(data)
            for cell, m in r.max_tokens.items():
                longest[cell] = max(longest.get(cell, 0), m)
            chars |= r.chars
            done += r.count
            emit(Progress(done, total))
    meta = _meta(s, plan, longest, chars, hashes, time.perf_counter() - t0)
    atomic.write_json(s.out / "settings.json", dump(s))
    atomic.write_json(s.out / "meta.json", meta)
    emit(Written(s.out, plan.count("train"), plan.count("test"), meta["seconds"], meta))
    return meta


def _workers(asked: int, lines: int) -> int:
    if lines < IN_PROCESS_BELOW and asked == 0:
        return 1
    return max(1, min(asked or min(8, os.cpu_count() or 1), -(-lines // CHUNK)))


def _chunks(plan: Plan, rng: np.random.Generator, s: MakeMathSettings) -> Iterator[Chunk]:
    """The lines of each split in a random order, ``CHUNK`` at a time. The order is one
    permutation over the operations' draws laid end to end; each chunk gathers its problems
    from the draws directly (no concatenated copy of every split's arrays)."""
    names = [p.spec.op for p in plan.ops]
    for split in FILES:
        parts = [getattr(p, split) for p in plan.ops]
        starts = np.cumsum([0] + [len(d.a) for d in parts])  # (ops + 1,)
        order = rng.permutation(int(starts[-1]))  # mix operations and lengths through the file
        for lo in range(0, len(order), CHUNK):
            idx = order[lo:lo + CHUNK]
            which = np.searchsorted(starts, idx, side="right") - 1  # the op of each line
            local = idx - starts[which]
            a, b, cell, carries = (np.empty(len(idx), np.int64) for _ in range(4))
            for i in np.unique(which).tolist():
                at = which == i
                d, j = parts[i], local[at]
                a[at], b[at], cell[at], carries[at] = d.a[j], d.b[j], d.cell[j], d.carries[j]
            o, c = which.tolist(), cell.tolist()
            cells = [plan.ops[i].cells[j] for i, j in zip(o, c)]
            yield Chunk(split, [names[i] for i in o], a.tolist(), b.tolist(),
                        [x for x, _ in cells], [y for _, y in cells], carries.tolist(),
                        s.format, s.spaced)


def _rendered(chunks: Iterator[Chunk], workers: int) -> Iterator[Rendered]:
    if workers <= 1:
        yield from map(render, chunks)
        return
    # forkserver/spawn, not fork: the caller may run threads (a progress bar) when we start.
    # An executor, not a Pool: a worker that dies raises BrokenProcessPool instead of hanging.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        pending: deque = deque()
        for chunk in chunks:  # at most two chunks per worker in flight; results stay in order
            pending.append(pool.submit(render, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _meta(s: MakeMathSettings, plan: Plan, longest, chars, hashes, seconds: float) -> dict:
    cells, by_op, max_tokens = {}, {}, {}
    for p in plan.ops:
        op = p.spec.op
        rows = []
        for i, (la, lb) in enumerate(p.cells):
            rows.append({
                "digits": [la, lb],
                "train": int((p.train.cell == i).sum()),
                "test": int((p.test.cell == i).sum()),
                "max_tokens": longest.get((op, la, lb), 0),
                "bound_tokens": max_line_chars(op, la, lb, s.format),
            })
        cells[op] = rows
        by_op[op] = {"digits": p.spec.describe(), "train": len(p.train.a), "test": len(p.test.a),
                     "carries": {split: _histogram(getattr(p, split).carries)
                                 for split in FILES}}
        max_tokens[op] = max(r["max_tokens"] for r in rows)
    longest_all = max(max_tokens.values(), default=0)
    return {
        "tool": "minigpt make-math",
        "version": __version__,
        "format": s.format,
        "tokenizer": s.tokenizer,
        "spaced": s.spaced,
        "answer_mark": ANSWER_MARK,
        "counts": {"train": plan.count("train"), "test": plan.count("test")},
        "ops": by_op,
        "max_tokens": max_tokens,  # prompt + solution, one token per non-space character
        "max_chars": {op: m * (2 if s.spaced else 1) for op, m in max_tokens.items()},
        "block_size_needed": longest_all + 1,  # the longest example plus end-of-text
        "cells": cells,
        "vocab": "".join(sorted(chars)),
        "files": {name: {"lines": plan.count(split), "sha256": hashes[split].hexdigest()}
                  for split, name in FILES.items()},
        "notes": plan.notes,
        "seconds": round(seconds, 3),
        "settings": dump(s),
    }


def _histogram(carries: np.ndarray) -> dict[str, int] | None:
    if carries.size == 0 or carries.min() < 0:
        return None
    counts = np.bincount(carries)
    return {str(i): int(c) for i, c in enumerate(counts) if c}
