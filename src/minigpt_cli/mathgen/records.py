"""JSONL records: a chunk of drawn problems -> checked, serialized lines (runs in workers).

Every line is checked by the independent checker before it is serialized; a line that fails is
a generator bug and stops the run. All text is ASCII digits and ``+-*/=,#r>;`` (and spaces), so
the JSON is written directly rather than through ``json.dumps`` (the tests parse it back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minigpt_cli.mathgen.checker import check
from minigpt_cli.mathgen.formats import prompt_text, solution_text, spaced
from minigpt_cli.mathgen.problems import Problem, answer

SAFE_CHARS = frozenset("0123456789+-*/=,#r>; ")  # nothing here needs escaping in JSON


class GeneratorBug(RuntimeError):
    """A generated solution failed the checker: never written, always a bug to report."""


@dataclass
class Chunk:
    """Problems to render, as plain lists (cheap to send to a worker process)."""

    split: str
    ops: list[str]
    a: list[int]
    b: list[int]
    la: list[int]
    lb: list[int]
    carries: list[int]  # -1: not counted for this operation
    fmt: str
    spaced: bool


@dataclass
class Rendered:
    split: str
    text: str  # JSONL, one record per line
    count: int
    max_tokens: dict[tuple[str, int, int], int] = field(default_factory=dict)  # (op, la, lb)
    chars: set[str] = field(default_factory=set)  # every character of prompt + solution


def render(chunk: Chunk) -> Rendered:
    fmt, sp, split = chunk.fmt, chunk.spaced, chunk.split
    out = []
    longest: dict[tuple[str, int, int], int] = {}
    seen = []
    for op, a, b, la, lb, car in zip(chunk.ops, chunk.a, chunk.b, chunk.la, chunk.lb,
                                     chunk.carries):
        prompt = prompt_text(op, a, b)
        sol = solution_text(op, a, b, fmt)
        tokens = len(prompt) + len(sol)
        if sp:
            prompt, sol = spaced(prompt), spaced(sol)
        result = check(Problem(a, b, op, fmt, sp), sol)
        if not result.ok:
            raise GeneratorBug(f"the checker rejects the generated line {prompt + sol!r}: "
                               f"{result.error}")
        cell = (op, la, lb)
        if tokens > longest.get(cell, 0):
            longest[cell] = tokens
        seen.append(prompt)
        seen.append(sol)
        out.append(
            f'{{"a":{a},"b":{b},"op":"{op}","prompt":"{prompt}","solution":"{sol}",'
            f'"answer":"{answer(op, a, b)}","split":"{split}","format":"{fmt}",'
            f'"spaced":{"true" if sp else "false"},"digits":[{la},{lb}],'
            f'"carries":{car if car >= 0 else "null"}}}\n'
        )
    chars = set("".join(seen))
    if not chars <= SAFE_CHARS:
        raise GeneratorBug(f"unexpected characters {sorted(chars - SAFE_CHARS)} in a line")
    return Rendered(split, "".join(out), len(out), longest, chars)
