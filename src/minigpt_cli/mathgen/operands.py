"""Drawing operands: balanced over lengths and carries, without duplicates, test split by key.

Uniform operands starve short problems (Lee et al. 2023 saw 0% on 1-digit sums) and long carry
chains, so a problem is drawn length first: the count is split evenly over the (len a, len b)
*cells* of an operation, then, for + and -, evenly over the number of carries / borrows within a
cell. Where a cell or a carry count has fewer distinct problems than its share, the rest goes to
the others (water-filling). ``balance="lengths"`` keeps only the first split, ``"none"`` draws
cells in proportion to their size (uniform over all problems: the baseline for ablations).

A cell asked for more than an eighth of its problems is enumerated and sampled without
replacement (exact counts, exact capacities; up to ``ENUMERATE_LIMIT`` problems); otherwise
operands are drawn at random and repeats rejected. A cell too big to enumerate gives at most
half its problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minigpt_cli.mathgen.problems import COMMUTATIVE, count_of_length, numbers_of_length

BASE = np.int64(10**9)  # a problem's id is a * BASE + b (operands have at most 9 digits)
ENUMERATE_LIMIT = 2_000_000
MAX_TEST_SHARE = 0.5  # of a cell's keys, so training always keeps the other half
BALANCES = ("carries", "lengths", "none")
CARRY_BLOCK = 1 << 18  # problems per block of carry_counts


def cell_size(op: str, la: int, lb: int) -> int:
    return count_of_length(la) * count_of_length(lb, divisor=op == "/")


def test_capacity(op: str, la: int, lb: int) -> int:
    """How many held-out keys this cell may give (``a+b`` and ``b+a`` are one key)."""
    na, nb = count_of_length(la), count_of_length(lb, divisor=op == "/")
    if op in COMMUTATIVE:
        keys = na * (na + 1) // 2 if la == lb else na * nb // 2  # the mirror cell has the rest
    else:
        keys = na * nb
    return int(MAX_TEST_SHARE * keys)


def key_ids(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if op in COMMUTATIVE:
        return np.minimum(a, b) * BASE + np.maximum(a, b)
    return a * BASE + b


def carry_counts(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Carries of a + b, or borrows of max(a, b) - min(a, b), per problem (int8). Computed
    ``CARRY_BLOCK`` problems at a time: the digit temporaries stay small however many there
    are (a few million candidates would otherwise take gigabytes)."""
    count = np.zeros(a.shape, np.int8)
    top = int(max(a.max(initial=0), b.max(initial=0)))
    for lo in range(0, len(a), CARRY_BLOCK):
        x, y = a[lo:lo + CARRY_BLOCK], b[lo:lo + CARRY_BLOCK]
        if op == "-":
            x, y = np.maximum(x, y), np.minimum(x, y)
        out = count[lo:lo + CARRY_BLOCK]
        flag = np.zeros(x.shape, np.int8)
        place = 1
        while place <= top:
            dx, dy = (x // place) % 10, (y // place) % 10
            flag = ((dx + dy + flag >= 10) if op == "+" else (dx - dy - flag < 0)).astype(np.int8)
            out += flag
            place *= 10
    return count


def allocate(total: int, caps: list[int], weights: list[float] | None = None) -> list[int]:
    """Split ``total`` over slots in proportion to ``weights`` (equal by default), never above a
    slot's cap, handing what a full slot cannot take to the others. Deterministic."""
    n = len(caps)
    quota = [0] * n
    weights = weights or [1.0] * n
    left = min(total, sum(caps))
    open_ = [i for i in range(n) if caps[i] > 0]
    while left > 0 and open_:
        wsum = sum(weights[i] for i in open_)
        share = {i: int(left * weights[i] / wsum) for i in open_}
        if not any(share.values()):  # fewer left than open slots: one each, in order
            for i in open_[:left]:
                share[i] = 1
        for i in open_:
            take = min(share[i], caps[i] - quota[i])
            quota[i] += take
            left -= take
        open_ = [i for i in open_ if quota[i] < caps[i]]
    return quota


@dataclass
class Draw:
    """Problems of one operation and split: operands, cell index, carry count (-1 if n/a)."""

    a: np.ndarray
    b: np.ndarray
    cell: np.ndarray
    carries: np.ndarray

    @classmethod
    def concat(cls, parts: list[Draw]) -> Draw:
        if not parts:
            e = np.zeros(0, np.int64)
            return cls(e, e, e, e)
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("a", "b", "cell", "carries")))


def draw_cell(rng: np.random.Generator, op: str, cell: tuple[int, int], k: int,
              exclude: np.ndarray, unique_keys: bool, balance: str) -> tuple[np.ndarray, ...]:
    """``k`` distinct problems of one cell, none whose key is in ``exclude`` (sorted)."""
    la, lb = cell
    (alo, ahi), (blo, bhi) = numbers_of_length(la), numbers_of_length(lb, divisor=op == "/")
    if k <= 0:
        e = np.zeros(0, np.int64)
        return e, e, e
    size = cell_size(op, la, lb)
    if size <= ENUMERATE_LIMIT and 8 * k > size:  # dense: enumerate, sample without replacement
        a = np.repeat(np.arange(alo, ahi + 1, dtype=np.int64), bhi - blo + 1)
        b = np.tile(np.arange(blo, bhi + 1, dtype=np.int64), ahi - alo + 1)
        a, b = _candidates(rng, op, a, b, exclude, unique_keys and op in COMMUTATIVE)
        return _stratified(op, a, b, k, balance)
    a, b = np.zeros(0, np.int64), np.zeros(0, np.int64)
    rounds = 0
    while True:  # rejection: big cells are at most half taken, so few rounds are needed
        m = 2 * k + 1024
        a = np.concatenate([a, rng.integers(alo, ahi + 1, m, dtype=np.int64)])
        b = np.concatenate([b, rng.integers(blo, bhi + 1, m, dtype=np.int64)])
        a, b = _candidates(None, op, a, b, exclude, True, unique_keys)
        rounds += 1
        # a few more rounds give rare carry counts (long chains) candidates to pick from
        if len(a) >= k and (rounds >= 4 or balance != "carries" or op not in "+-"):
            return _stratified(op, a, b, k, balance)


def _candidates(rng, op, a, b, exclude, dedupe, by_key=True):
    """Drop excluded keys and (``dedupe``) repeats of a key (``by_key``) or of a problem; shuffle
    first when ``rng`` is given, so that any prefix is a fair sample."""
    if exclude.size:
        keep = ~np.isin(key_ids(op, a, b), exclude)
        a, b = a[keep], b[keep]
    if rng is not None:
        order = rng.permutation(len(a))
        a, b = a[order], b[order]
    if dedupe:
        _, first = np.unique(key_ids(op, a, b) if by_key else a * BASE + b, return_index=True)
        first.sort()  # keep the first of each in drawing order
        a, b = a[first], b[first]
    return a, b


def _stratified(op, a, b, k, balance):
    """The first ``k`` candidates, spread evenly over carry counts when balancing carries."""
    if op not in "+-":
        return a[:k], b[:k], np.full(min(k, len(a)), -1, np.int64)
    if balance != "carries":
        a, b = a[:k], b[:k]
        return a, b, carry_counts(op, a, b).astype(np.int64)
    carries = carry_counts(op, a, b)
    counts = np.bincount(carries)
    quota = allocate(k, counts.tolist())
    picks = [np.flatnonzero(carries == s)[:q] for s, q in enumerate(quota) if q]
    sel = np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)
    return a[sel], b[sel], carries[sel].astype(np.int64)


def draw_split(rng, op: str, cells: list[tuple[int, int]], quotas: list[int],
               exclude: np.ndarray, unique_keys: bool, balance: str) -> Draw:
    parts = []
    for i, (cell, k) in enumerate(zip(cells, quotas)):
        a, b, c = draw_cell(rng, op, cell, k, exclude, unique_keys, balance)
        if len(a) != k:
            raise RuntimeError(f"cell {cell} of {op} gave {len(a)} problems, not {k}")
        parts.append(Draw(a, b, np.full(len(a), i, np.int64), c))
        if unique_keys and op in COMMUTATIVE:  # a mirror cell must not repeat these keys
            exclude = np.union1d(exclude, key_ids(op, a, b))
    return Draw.concat(parts)


def weights(op: str, cells: list[tuple[int, int]], balance: str) -> list[float] | None:
    return [float(cell_size(op, *c)) for c in cells] if balance == "none" else None


def train_capacity(op: str, cells: list[tuple[int, int]], test: Draw) -> list[int]:
    """Problems each cell can still give to training once the test keys are taken out."""
    caps = []
    x, y = test.a, test.b
    for la, lb in cells:
        (alo, ahi), (blo, bhi) = numbers_of_length(la), numbers_of_length(lb, divisor=op == "/")
        hit = ((x >= alo) & (x <= ahi) & (y >= blo) & (y <= bhi)).sum()
        if op in COMMUTATIVE:  # the swapped problem shares the key
            hit += ((y >= alo) & (y <= ahi) & (x >= blo) & (x <= bhi) & (x != y)).sum()
        size = cell_size(op, la, lb)
        usable = size if size <= ENUMERATE_LIMIT else size // 2
        caps.append(int(max(0, min(usable, size - hit))))
    return caps
