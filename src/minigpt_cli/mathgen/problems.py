"""What a problem is: an operation, two operands, and the answer written one fixed way.

Answer format, decided up front (notes/arithmetic-cot.md, pitfall 8):
- ``+``, ``*``: the decimal number, no leading zeros (``0`` for zero).
- ``-``: the same with a leading ``-`` when negative (``-416``); never ``-0``.
- ``/``: quotient ``r`` remainder, both always written (``122r3``, ``2r0``); the divisor is >= 1.

Operand lengths are digit counts: a 1-digit operand is 0..9 (1..9 for a divisor), an L-digit one
(L >= 2) is 10**(L-1) .. 10**L - 1. The same problem written both ways round, ``a+b`` and
``b+a``, shares one *key* for ``+`` and ``*``; the held-out split is by key.
"""

from __future__ import annotations

from dataclasses import dataclass

OPS = ("+", "-", "*", "/")
OP_NAMES = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
OP_ALIASES = {**{o: o for o in OPS}, **{name: o for o, name in OP_NAMES.items()}, "x": "*"}
COMMUTATIVE = frozenset("+*")
FORMATS = ("cot", "plain", "reverse")
MAX_DIGITS = 9  # operands up to 999,999,999: keys fit an int64, products fit too
ANSWER_MARK = "#"  # the one delimiter before the final answer; only what follows is parsed


def answer(op: str, a: int, b: int) -> str:
    """The canonical answer text of ``a op b``."""
    if op == "+":
        return str(a + b)
    if op == "-":
        return str(a - b)
    if op == "*":
        return str(a * b)
    if op == "/":
        return f"{a // b}r{a % b}"
    raise ValueError(f"unknown op {op!r}")


def numbers_of_length(length: int, divisor: bool = False) -> tuple[int, int]:
    """``(lo, hi)``, inclusive, of the operands with exactly ``length`` digits."""
    if length == 1:
        return (1 if divisor else 0), 9
    return 10 ** (length - 1), 10**length - 1


def count_of_length(length: int, divisor: bool = False) -> int:
    lo, hi = numbers_of_length(length, divisor)
    return hi - lo + 1


def key(op: str, a: int, b: int) -> tuple[int, int]:
    """Identity for the train/test split: the unordered pair for ``+`` and ``*``."""
    return (min(a, b), max(a, b)) if op in COMMUTATIVE else (a, b)


@dataclass(frozen=True)
class Problem:
    """One problem as the checker sees it: enough to parse and validate any solution text."""

    a: int
    b: int
    op: str
    format: str = "cot"
    spaced: bool = False

    @property
    def answer(self) -> str:
        return answer(self.op, self.a, self.b)

    @classmethod
    def from_record(cls, record: dict) -> Problem:
        """From a make-math JSONL record (``a``, ``b``, ``op``, ``format``, ``prompt``)."""
        spaced = record.get("spaced")
        if spaced is None:
            spaced = str(record.get("prompt", "")).startswith(" ")
        return cls(int(record["a"]), int(record["b"]), record["op"],
                   record.get("format", "cot"), bool(spaced))


@dataclass(frozen=True)
class OpSpec:
    """One operation with the operand lengths to draw: ``a`` from ``digits_a``, ``b`` from
    ``digits_b`` (inclusive ranges of digit counts)."""

    op: str
    digits_a: tuple[int, int]
    digits_b: tuple[int, int]

    def cells(self) -> list[tuple[int, int]]:
        """Every (len a, len b) this spec draws from; sampling is balanced over these."""
        return [(la, lb) for la in range(self.digits_a[0], self.digits_a[1] + 1)
                for lb in range(self.digits_b[0], self.digits_b[1] + 1)]

    def describe(self) -> str:
        def r(lo_hi: tuple[int, int]) -> str:
            lo, hi = lo_hi
            return str(lo) if lo == hi else f"{lo}-{hi}"
        return f"{self.op}:{r(self.digits_a)}x{r(self.digits_b)}"


def parse_range(text: str, what: str) -> tuple[int, int]:
    """``"3"`` -> (3, 3); ``"1-3"`` -> (1, 3). Raises ValueError naming ``what``."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            lo = hi = int(parts[0])
        elif len(parts) == 2:
            lo, hi = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a digit count like 3 or a range like 1-3") \
            from None
    if not (1 <= lo <= hi <= MAX_DIGITS):
        raise ValueError(f"{what} {text!r}: operands need 1 to {MAX_DIGITS} digits "
                         "(and a range goes low-high)")
    return lo, hi


def parse_ops(text: str, digits_a: tuple[int, int], digits_b: tuple[int, int]) -> list[OpSpec]:
    """``"+,-,*,/"`` or, with per-operation lengths, ``"+:3,-:3,*:2x2,/:4x1"`` (``OP:A`` means
    both operands have lengths A; ``OP:AxB`` gives them separately; A and B are ``3`` or ``1-3``).
    Operations may also be named add, sub, mul, div."""
    specs: list[OpSpec] = []
    items = [s.strip() for s in text.split(",")]
    if not any(items):
        raise ValueError("no operations given; use e.g. '+,-,*,/'")
    for item in items:
        if not item:
            raise ValueError(f"empty item in {text!r}")
        name, _, lengths = item.partition(":")
        op = OP_ALIASES.get(name.strip().lower())
        if op is None:
            raise ValueError(f"unknown operation {name.strip()!r}; choose from + - * / "
                             "(or add sub mul div)")
        da, db = digits_a, digits_b
        if lengths:
            a_text, sep, b_text = lengths.partition("x")
            da = parse_range(a_text, f"lengths of {op} in")
            db = parse_range(b_text, f"lengths of {op} in") if sep else da
        if any(s.op == op for s in specs):
            raise ValueError(f"operation {op} is listed twice")
        specs.append(OpSpec(op, da, db))
    return specs
