"""The independent checker: parse a solution text and validate every step arithmetically.

It shares nothing with the writers in formats.py: it reads the text back, checks each step's
arithmetic (``5+6+1=12``: 5+6+1 == 12) and that the step uses the right inputs (the right digits
of the operands, the carry / borrow / running-sum digit / remainder the text wrote just before),
and parses the final answer after ``#``. The generator runs it on every line before writing it
(one published generator silently wrote random digits into its scratchpads); ``minigpt eval
math`` runs it on model outputs.

A step is *valid* when it is correct given the problem and the text before it, so one mistake
costs one step, not every step after it. ``steps_total`` is the number of steps the format asks
for, or the number written when more are written; missing and extra steps are invalid.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from minigpt_cli.mathgen.problems import ANSWER_MARK, Problem, answer

DIGITS = frozenset("0123456789")
# one step of each format; [0-9], not \\d, which also matches non-ASCII digits
ADD_STEP = re.compile(r"([0-9])\+([0-9])\+([0-9])=([0-9])([0-9])")
SUB_STEP = re.compile(r"([0-9])-([0-9])-([0-9])=([0-9])([0-9])")
MUL_STEP = re.compile(r"([0-9])\*([0-9])\+([0-9])\+([0-9])=([0-9])([0-9])")
DIV_STEP = re.compile(r"([0-9]+)/([0-9]+)=([0-9])r([0-9]+)")


class CheckResult(NamedTuple):
    answer_correct: bool  # the text after "#" is the right answer, written canonically
    steps_total: int
    steps_valid: int
    malformed: bool  # the text breaks the format's grammar (missing/extra parts, bad characters)
    answer: str | None  # the parsed answer, canonical (None when unparseable)
    expected: str
    error: str | None = None  # the first problem found, for people

    @property
    def ok(self) -> bool:
        return self.answer_correct and not self.malformed and self.steps_valid == self.steps_total


def check(problem: Problem, output: str) -> CheckResult:
    """Score ``output``, the text a model (or the generator) wrote after the prompt.

    Only the first line counts; with ``problem.spaced`` spaces are ignored.
    """
    text = output.split("\n", 1)[0].rstrip("\r")
    if problem.spaced:
        text = text.replace(" ", "")
    expected = answer(problem.op, problem.a, problem.b)
    if text.count(ANSWER_MARK) != 1:
        work, tail = text, ""
        error = f"expected exactly one '{ANSWER_MARK}' before the answer"
        malformed = True
    else:
        work, _, tail = text.partition(ANSWER_MARK)
        error, malformed = None, False
    parsed = _parse_answer(problem.op, tail, problem.format == "reverse") if not malformed \
        else None
    if parsed is None and error is None:
        error, malformed = f"answer {tail!r} is not written canonically", True
    if problem.format == "cot":
        total, valid, bad, step_error = _STEPS[problem.op](problem.a, problem.b, work)
    else:
        total, valid, bad = 0, 0, work != ""
        step_error = f"unexpected text {work!r} before '{ANSWER_MARK}'" if bad else None
    error = step_error or error  # the first wrong step, in reading order, before the answer
    if parsed is not None and parsed != expected and error is None:
        error = f"answer {parsed} but {problem.a}{problem.op}{problem.b} is {expected}"
    return CheckResult(parsed == expected, total, valid, malformed or bad, parsed, expected,
                       error)


def _canonical(s: str) -> bool:
    return bool(s) and set(s) <= DIGITS and (s == "0" or s[0] != "0")


def _parse_answer(op: str, s: str, reverse: bool) -> str | None:
    if op == "/":
        q, sep, r = s.partition("r")
        if reverse:
            q, r = q[::-1], r[::-1]
        return f"{q}r{r}" if sep and _canonical(q) and _canonical(r) else None
    neg = op == "-" and s.startswith("-")
    body = s[1:] if neg else s
    if reverse:
        body = body[::-1]
    if not _canonical(body) or (neg and body == "0"):
        return None
    return "-" + body if neg else body


def _places(n: int, width: int) -> bytes:
    """Digits of ``n`` from the units up as ints (a bytes object), zero-padded to ``width``."""
    return bytes(ord(ch) - 48 for ch in str(n)[::-1]).ljust(width, b"\0")


def _steps(work: str, sep: str = ",") -> list[str]:
    return work.split(sep) if work else []


def _tally(expected: int, written: int, valid: int, malformed: bool, error: str | None):
    malformed = malformed or written != expected
    if written != expected and error is None:
        error = f"{written} steps written, {expected} expected"
    return max(expected, written), valid, malformed, error


# After a step matched its pattern every digit sits at a fixed place: st.encode()[i] - 48.


def _check_add(a: int, b: int, work: str):
    n = max(len(str(a)), len(str(b)))
    steps = _steps(work)
    da, db = _places(a, len(steps)), _places(b, len(steps))
    valid, malformed, error = 0, False, None
    carry = 0  # the carry the text wrote last
    for i, st in enumerate(steps):
        if ADD_STEP.fullmatch(st) is None:
            malformed = True
            error = error or f"step {i + 1} {st!r} is not 'x+y+c=CD'"
            carry = (da[i] + db[i] + carry) // 10
            continue
        w = st.encode()  # "x+y+c=CD"
        x, y, c, co, s = w[0] - 48, w[2] - 48, w[4] - 48, w[6] - 48, w[7] - 48
        good = i < n and x == da[i] and y == db[i] and c == carry and x + y + c == 10 * co + s
        valid += good
        if not good and error is None:
            why = ("there is no such column" if i >= n else
                   _inputs((x, y, c), (da[i], db[i], carry), ("digit of a", "digit of b",
                                                              "carry written before"))
                   or f"{x}+{y}+{c} is {x + y + c:02d}")
            error = f"step {i + 1} {st!r} is wrong: {why}"
        carry = co
    return _tally(n, len(steps), valid, malformed, error)


def _check_sub(a: int, b: int, work: str):
    n = max(len(str(a)), len(str(b)))
    steps = _steps(work)
    valid, malformed, error = 0, False, None
    if not steps or steps[0] not in ("+", "-"):
        malformed, error = True, "the first step must be the sign, '+' or '-'"
        sign = "+" if a >= b else "-"
    else:
        sign = steps[0]
        if (sign == "+") == (a >= b):
            valid += 1
        else:
            error = f"sign {sign!r} is wrong"
    x, y = (a, b) if sign == "+" else (b, a)
    dx, dy = _places(x, len(steps)), _places(y, len(steps))
    borrow = 0
    for i, st in enumerate(steps[1:]):
        if SUB_STEP.fullmatch(st) is None:
            malformed = True
            error = error or f"column {i + 1} {st!r} is not 'x-y-b=BD'"
            borrow = int(dx[i] - dy[i] - borrow < 0)
            continue
        w = st.encode()  # "p-q-b=BD"
        p, q, br, bo, r = w[0] - 48, w[2] - 48, w[4] - 48, w[6] - 48, w[7] - 48
        good = i < n and p == dx[i] and q == dy[i] and br == borrow and bo <= 1 \
            and p - q - br == r - 10 * bo
        valid += good
        if not good and error is None:
            d = p - q - br
            why = ("there is no such column" if i >= n else
                   _inputs((p, q, br), (dx[i], dy[i], borrow), ("digit of the larger",
                           "digit of the smaller", "borrow written before"))
                   or f"{p}-{q}-{br} is {d}, written borrow {int(d < 0)} and digit {d % 10}")
            error = f"column {i + 1} {st!r} is wrong: {why}"
        borrow = bo
    return _tally(n + 1, len(steps), valid, malformed, error)


def _check_mul(a: int, b: int, work: str):
    la, lb = len(str(a)), len(str(b))
    rows = _steps(work, ";")
    da, db = _places(a, la + 1), _places(b, len(rows))
    valid, malformed, error, written = 0, False, None, 0
    prev = 0  # the running sum the text wrote last
    for j, row in enumerate(rows):
        y_true = db[j]
        body, sep, total_text = row.partition(">")
        steps = _steps(body)
        written += len(steps) + 1
        malformed |= len(steps) != la or not sep
        dp = _places(prev, j + len(steps) + 1)  # the sum digit of place j+k is dp[j+k]
        carry = 0
        for k, st in enumerate(steps):
            if MUL_STEP.fullmatch(st) is None:
                malformed = True
                error = error or f"row {j + 1} step {k + 1} {st!r} is not 'x*y+s+c=CD'"
                carry = ((da[k] if k < la else 0) * y_true + dp[j + k] + carry) // 10
                continue
            w = st.encode()  # "x*y+s+c=CD"
            x, y, s, c, co, r = w[0] - 48, w[2] - 48, w[4] - 48, w[6] - 48, w[8] - 48, w[9] - 48
            good = j < lb and k < la and x == da[k] and y == y_true and s == dp[j + k] \
                and c == carry and x * y + s + c == 10 * co + r
            valid += good
            if not good and error is None:
                why = ("there is no such step" if j >= lb or k >= la else
                       _inputs((x, y, s, c), (da[k], y_true, dp[j + k], carry),
                               ("digit of a", "digit of b", "running-sum digit", "carry"))
                       or f"{x}*{y}+{s}+{c} is {x * y + s + c:02d}")
                error = f"row {j + 1} step {k + 1} {st!r} is wrong: {why}"
            carry = co
        want = prev + a * y_true * 10**j
        if len(total_text) == la + j + 1 and total_text.isdigit() and total_text.isascii():
            good = j < lb and int(total_text) == want
            valid += good
            if not good and error is None:
                error = (f"row {j + 1} running sum {total_text!r} is wrong: it should be "
                         f"{str(want).zfill(la + j + 1)}")
            prev = int(total_text)
        else:
            malformed = True
            error = error or f"row {j + 1} running sum {total_text!r} is not {la + j + 1} digits"
            prev = want
    return _tally(lb * (la + 1), written, valid, malformed, error)


def _check_div(a: int, b: int, work: str):
    sa, sb = str(a), str(b)
    steps = _steps(work)
    valid, malformed, error = 0, False, None
    rem = "0" * len(sb)  # the remainder the text wrote last
    for i, st in enumerate(steps):
        m = DIV_STEP.fullmatch(st)
        if m is None or len(m[4]) != len(sb):
            malformed = True
            error = error or f"step {i + 1} {st!r} is not 'P/b=qrR' with R {len(sb)} wide"
            if i < len(sa):
                rem = str(int(rem + sa[i]) % b).zfill(len(sb))
            continue
        part, div, q, r = m.groups()
        good = i < len(sa) and part == rem + sa[i] and div == sb \
            and int(q) * b + int(r) == int(part) and int(r) < b
        valid += good
        if not good and error is None:
            if i >= len(sa):
                why = "there is no such digit to bring down"
            elif part != rem + sa[i]:
                why = f"it should divide {rem + sa[i]} (remainder {rem} + next digit {sa[i]})"
            elif div != sb:
                why = f"the divisor is {sb}"
            else:
                qq, rr = divmod(int(part), b)
                why = f"{part}/{sb} is {qq} r {str(rr).zfill(len(sb))}"
            error = f"step {i + 1} {st!r} is wrong: {why}"
        rem = r
    return _tally(len(sa), len(steps), valid, malformed, error)


def _inputs(written, wanted, names) -> str | None:
    """Which input of a step was copied wrong, in words (None: the inputs are right)."""
    for w, x, name in zip(written, wanted, names):
        if w != x:
            return f"the {name} is {x}, not {w}"
    return None


_STEPS = {"+": _check_add, "-": _check_sub, "*": _check_mul, "/": _check_div}
