"""The plan: which problems go to train and test, decided (and every setting checked) before any
file is touched.

Per operation: the test set is drawn first (``n_test`` distinct keys, balanced over cells, at
most half of any cell), then training problems avoiding every test key. ``n`` is split evenly
over operations; an operation with fewer distinct problems gives what it has and the others take
the rest (reported as a note).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minigpt_cli.errors import MinigptError
from minigpt_cli.mathgen.formats import max_line_chars
from minigpt_cli.mathgen.operands import (
    BASE,
    Draw,
    allocate,
    cell_size,
    draw_split,
    key_ids,
    test_capacity,
    train_capacity,
    weights,
)
from minigpt_cli.mathgen.problems import OpSpec


@dataclass
class OpPlan:
    spec: OpSpec
    cells: list[tuple[int, int]]
    test: Draw
    train: Draw | None = None
    train_caps: list[int] = field(default_factory=list)


@dataclass
class Plan:
    ops: list[OpPlan]
    notes: list[str]

    def count(self, split: str) -> int:
        return sum(len(getattr(p, split).a) for p in self.ops)


class SettingsProblem(MinigptError):
    pass


def check_block_size(specs: list[OpSpec], fmt: str, block_size: int | None) -> None:
    if block_size is None:
        return
    worst = max(((max_line_chars(s.op, la, lb, fmt), s.op, la, lb)
                 for s in specs for la, lb in s.cells()))
    need, op, la, lb = worst
    if need + 1 > block_size:
        raise SettingsProblem(
            f"--block-size {block_size} is too small: a {la}-digit {op} {lb}-digit example in "
            f"format '{fmt}' takes up to {need} tokens plus end-of-text ({need + 1}). Examples "
            "are never cut, so raise --block-size, use shorter --digits, or another --format.")


def make_plan(specs: list[OpSpec], n: int, n_test: int, balance: str, seed: int,
              n_test_cell: int | None = None) -> Plan:
    rng = np.random.default_rng(seed)
    plans, errors, notes = [], [], []
    for spec in specs:
        cells = spec.cells()
        caps = [test_capacity(spec.op, *c) for c in cells]
        if n_test_cell is not None:
            short = [f"{spec.op}:{la}x{lb} has {cell_size(spec.op, la, lb):,} distinct problems "
                     f"and can hold out {cap:,}" for (la, lb), cap in zip(cells, caps)
                     if cap < n_test_cell]
            if short:
                errors.append(f"--n-test-cell {n_test_cell:,} asks every length cell for that "
                              f"many held-out problems, but {'; '.join(short)} (at most half "
                              "of a cell's distinct operand pairs is held out, so training "
                              "keeps the rest). Lower --n-test-cell, drop those lengths from "
                              "--ops, or use --n-test (per operation; small cells then give "
                              "what they have).")
                continue
            quotas = [n_test_cell] * len(cells)
            test = draw_split(rng, spec.op, cells, quotas, np.zeros(0, np.int64), True, balance)
            plans.append(OpPlan(spec, cells, test,
                                train_caps=train_capacity(spec.op, cells, test)))
            continue
        if n_test > sum(caps):
            errors.append(
                f"--n-test {n_test} asks for {n_test:,} held-out {spec.describe()} problems but "
                f"at most {sum(caps):,} can be held out disjoint from training (half of each "
                "length's distinct operand pairs); lower --n-test or allow longer operands.")
            continue
        quotas = allocate(n_test, caps, weights(spec.op, cells, balance))
        test = draw_split(rng, spec.op, cells, quotas, np.zeros(0, np.int64), True, balance)
        plans.append(OpPlan(spec, cells, test, train_caps=train_capacity(spec.op, cells, test)))
    if errors:
        raise SettingsProblem(" ".join(errors))
    op_caps = [sum(p.train_caps) for p in plans]
    if n > sum(op_caps):
        detail = ", ".join(f"{p.spec.describe()}: {c:,}" for p, c in zip(plans, op_caps))
        raise SettingsProblem(
            f"--n {n:,} is more than the {sum(op_caps):,} distinct training problems these "
            f"settings allow once the test set is held out ({detail}). Lower --n or --n-test, "
            "or allow more digits.")
    op_quotas = allocate(n, op_caps)
    fair = n // max(1, len(plans))
    for p, q in zip(plans, op_quotas):
        if q < fair:
            notes.append(f"{p.spec.describe()} has only {q:,} distinct training problems left "
                         f"after the test set; the other operations got the rest of --n.")
        cell_quotas = allocate(q, p.train_caps, weights(p.spec.op, p.cells, balance))
        test_keys = np.unique(key_ids(p.spec.op, p.test.a, p.test.b))
        p.train = draw_split(rng, p.spec.op, p.cells, cell_quotas, test_keys, False, balance)
        verify_split(p)
    return Plan(plans, notes)


def verify_split(p: OpPlan) -> None:
    """No repeated problem, no repeated test key, no test key in training (else: a bug)."""
    op = p.spec.op
    train_ids = p.train.a * BASE + p.train.b
    test_keys = key_ids(op, p.test.a, p.test.b)
    if len(np.unique(train_ids)) != len(train_ids):
        raise RuntimeError(f"duplicate training problems for {op}")
    if len(np.unique(test_keys)) != len(test_keys):
        raise RuntimeError(f"duplicate test problems for {op}")
    if np.intersect1d(key_ids(op, p.train.a, p.train.b), test_keys).size:
        raise RuntimeError(f"test problems of {op} leaked into training")
    if op == "/" and ((p.train.b == 0).any() or (p.test.b == 0).any()):
        raise RuntimeError("division by zero drawn")
