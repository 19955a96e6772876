"""What a `make-math` run will take, estimated before anything is drawn or written: the memory
of the plan and the bytes of the files. A run that cannot fit is refused with both figures.

The plan is drawn in memory (every problem's operands, to keep train and test disjoint and the
output a pure function of the settings), then written a chunk of lines at a time, so memory
grows with the number of problems while the text never is held whole. Per-problem costs were
measured with peak RSS on CPython 3.11 / numpy 2 (``+:9`` with carry balancing: ~640 bytes a
problem while its cell is drawn -- rejection sampling keeps several candidates per problem and
counts their carries; other draws ~170 bytes; the finished plan ~48) and rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minigpt_cli import capacity
from minigpt_cli.mathgen.formats import max_answer_chars, max_line_chars
from minigpt_cli.mathgen.operands import ENUMERATE_LIMIT, allocate, cell_size, weights
from minigpt_cli.mathgen.problems import OpSpec

BASE_BYTES = 80 << 20  # the interpreter, numpy and this package
WORKER_BYTES = 64 << 20  # each worker process
HELD_BYTES = 48  # per problem of the finished plan (operands, cell, carries, line order)
CARRY_DRAW_BYTES = 720  # per problem while a big + or - cell is drawn balancing carries
DRAW_BYTES = 200  # per problem while another big cell is drawn
ENUMERATED_BYTES = 96  # per problem of a small cell that is enumerated whole
# a line without its numbers and text: {"a":,"b":,"op":"+","prompt":"",...,"carries":null}\n
LINE_OVERHEAD = len('{"a":,"b":,"op":"+","prompt":"","solution":"","answer":"","split":"train",'
                    '"format":"","spaced":false,"digits":[,],"carries":null}\n')


@dataclass(frozen=True)
class Footprint:
    lines: int
    memory: int  # bytes, peak
    disk: int  # bytes of train.jsonl + test.jsonl (an upper bound per line)
    largest_file: int  # bytes of train.jsonl


def estimate(specs: list[OpSpec], n: int, n_test: int, balance: str, fmt: str, spaced: bool,
             workers: int) -> Footprint:
    """The footprint of a run, from the settings alone (no problem is drawn)."""
    op_quota = allocate(n, [1 << 62] * len(specs))  # n is split evenly over the operations
    lines = peak = disk = train_bytes = 0
    for spec, q in zip(specs, op_quota):
        cells = spec.cells()
        sizes = [cell_size(spec.op, *c) for c in cells]
        w = weights(spec.op, cells, balance)
        for count, split in ((q, "train"), (n_test, "test")):
            for (la, lb), size, k in zip(cells, sizes, allocate(count, sizes, w)):
                line = (LINE_OVERHEAD + len(fmt) + la + lb + 2 + max_answer_chars(spec.op, la, lb)
                        + max_line_chars(spec.op, la, lb, fmt) * (2 if spaced else 1))
                disk += k * line
                train_bytes += k * line if split == "train" else 0
                lines += k
                peak = max(peak, _draw_bytes(spec.op, size, k, balance))
    memory = BASE_BYTES + workers * WORKER_BYTES + HELD_BYTES * lines + peak
    return Footprint(lines, memory, disk, train_bytes)


def _draw_bytes(op: str, size: int, k: int, balance: str) -> int:
    if size <= ENUMERATE_LIMIT and 8 * k > size:  # sampling.draw_cell enumerates the cell
        return ENUMERATED_BYTES * size
    return k * (CARRY_DRAW_BYTES if op in "+-" and balance == "carries" else DRAW_BYTES)


def refusal(f: Footprint, n: int, ops: str, out: Path, carry_draws: bool = False) -> str | None:
    """Why the run cannot fit here (memory, disk, file-size limit), or None when it fits."""
    problems = []
    fit = []
    memory = capacity.memory()
    if memory is not None and f.memory > memory.bytes:
        problems.append(f"about {capacity.size(f.memory)} of memory to draw the "
                        f"{f.lines:,} problems (the plan is held in memory; the lines are "
                        f"written in chunks), but {memory.what} is {capacity.size(memory.bytes)}")
        fit.append(_scaled(n, memory.bytes - BASE_BYTES, f.memory - BASE_BYTES))
    disk = capacity.disk(out)
    if disk is not None and f.disk > disk.bytes:
        problems.append(f"up to {capacity.size(f.disk)} of disk for train.jsonl and test.jsonl, "
                        f"but {disk.what} is {capacity.size(disk.bytes)}")
        fit.append(_scaled(n, disk.bytes, f.disk))
    limit = capacity.file_size()
    if limit is not None and f.largest_file > limit.bytes:
        problems.append(f"a train.jsonl of up to {capacity.size(f.largest_file)}, but "
                        f"{limit.what} is {capacity.size(limit.bytes)}")
        fit.append(_scaled(n, limit.bytes, f.largest_file))
    if not problems:
        return None
    balance = (", or --balance lengths (+ and - then take about a third of the memory)"
               if carry_draws and memory is not None and f.memory > memory.bytes else "")
    return (f"make-math with --n {n:,} and --ops {ops!r} would need " + "; and ".join(problems)
            + f". Nothing was written. Lower --n (about {_round_down(min(fit)):,} would fit), "
            f"use fewer or shorter operands in --ops{balance}, or run it where there is more "
            "room.")


def _scaled(n: int, room: int, need: int) -> int:
    """The --n that would fit ``room`` when ``n`` needs ``need`` (costs grow linearly), with a
    tenth of the room to spare."""
    return int(n * 0.9 * max(0, room) / need) if need > 0 else n


def _round_down(n: int) -> int:
    """To two significant digits: 31,666,837 -> 31,000,000."""
    if n < 100:
        return max(0, n)
    scale = 10 ** (len(str(n)) - 2)
    return n // scale * scale
