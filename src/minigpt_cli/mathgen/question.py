"""The one normaliser: a question as people write it -> the canonical prompt the models see.

``make-math`` writes every prompt through ``canonical`` (``35+42=``), and ``minigpt sample`` (the
calculator, or any char model trained on make-math data) and ``minigpt eval math`` read
questions through ``normalise``, so what a model sees is always the one spelling it was trained
on. Accepted, in any mix:

- spaces anywhere between the parts (``35 + 42``), none at all (``35+42``);
- an ending ``=``, ``= ?``, ``=?``, ``?`` or nothing;
- a leading ``what is`` / ``what's`` / ``calculate`` / ``compute`` (any case);
- ``+``; ``-`` or the minus sign ``−``; ``*``, ``x``, ``X``, ``×`` or ``·`` for times;
  ``/``, ``÷`` or ``:`` for divided by;
- operands as non-negative whole numbers, with or without thousands separators (``1,234``);
  leading zeros are dropped (``007`` is 7).

Anything else raises ``QuestionError`` saying what was read and what the calculator can answer:
negative operands, decimals, a division by zero, more than ``MAX_DIGITS`` digits, two
operations, words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from minigpt_cli.errors import MinigptError
from minigpt_cli.mathgen.problems import MAX_DIGITS

OP_SPELLINGS = {"+": "+", "-": "-", "\u2212": "-", "*": "*", "x": "*", "X": "*", "\u00d7": "*",
                "\u00b7": "*", "/": "/", "\u00f7": "/", ":": "/"}
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_OPS = "".join(re.escape(o) for o in OP_SPELLINGS)
_LEAD = r"(?:what\s*is|what's|calculate|compute)"
QUESTION = re.compile(rf"^\s*(?:{_LEAD}\s*)?{_NUMBER}\s*([{_OPS}])\s*{_NUMBER}\s*"
                      r"(?:=\s*\??|\?)?\s*$", re.IGNORECASE)
EXAMPLES = "'35 + 42 = ?', '35+42=', 'what is 12 x 7', '1000 / 7 ?', '9 - 15'"


class QuestionError(MinigptError):
    """A question the calculator cannot read."""


@dataclass(frozen=True)
class Question:
    a: int
    op: str  # canonical: + - * /
    b: int

    @property
    def prompt(self) -> str:
        return canonical(self.op, self.a, self.b)


def canonical(op: str, a: int, b: int) -> str:
    """The prompt every make-math line starts with and every model is asked: ``35+42=``."""
    return f"{a}{op}{b}="


def normalise(text: str) -> Question:
    """Read one question; raises QuestionError (a one-paragraph message) when it cannot."""
    shown = text.strip()[:80]
    m = QUESTION.fullmatch(text.strip()) if text.isascii() or _only_known(text) else None
    if m is None:
        raise QuestionError(f"cannot read {shown!r} as an arithmetic question. The calculator "
                            "answers one operation on two whole numbers (+, -, x or *, / or "
                            f"÷), e.g. {EXAMPLES}; {_hint(shown)}")
    a, b = int(m[1].replace(",", "")), int(m[3].replace(",", ""))
    op = OP_SPELLINGS[m[2]]
    if op == "/" and b == 0:
        raise QuestionError(f"{shown!r} divides by zero, which has no answer; ask e.g. "
                            f"'{a} / 7'.")
    for n in (a, b):
        if len(str(n)) > MAX_DIGITS:
            raise QuestionError(f"{shown!r}: {n} has more than {MAX_DIGITS} digits, more than "
                                "make-math ever writes; ask with shorter numbers.")
    return Question(a, op, b)


def is_canonical(text: str) -> bool:
    """True when ``text`` is already a canonical prompt (``35+42=``)."""
    try:
        return normalise(text).prompt == text
    except QuestionError:
        return False


def _only_known(text: str) -> bool:
    return all(ch.isascii() or ch in OP_SPELLINGS for ch in text)


def _hint(shown: str) -> str:
    if re.search(r"\d[.]\d", shown):
        return "decimals are not supported (whole numbers only)."
    body = re.sub(rf"^{_LEAD}\s*", "", shown, flags=re.IGNORECASE)
    if re.match(r"-\s*\d", body) or re.search(rf"[{_OPS}]\s*-\s*\d", body):
        return "negative operands are not supported (a difference may be negative: '9 - 15')."
    if len(re.findall(rf"[{_OPS}]", shown)) > 1:
        return "only one operation per question."
    return "write the two numbers with one operation between them."
