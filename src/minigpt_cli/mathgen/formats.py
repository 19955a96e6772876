"""How a problem is written: the prompt, and a solution in one of three formats.

Every line is ``prompt + solution``; the prompt is ``{a}{op}{b}=``; every solution ends with
``#`` and the answer, and only the text after ``#`` is parsed as the answer.

- ``plain``: ``#`` + answer. ``352+469=#821``
- ``reverse``: ``#`` + the answer's digits reversed (sign first; quotient and remainder each
  reversed). ``352+469=#128``
- ``cot``: grade-school steps, one column (one digit) at a time, digits in the order the algorithm
  makes them, each step computable from a short fixed window (Lee et al. 2023, "Teaching Arithmetic
  to Small Transformers": detailed scratchpads generalize where plain answers are memorized):

  ``+``  right to left, ``a_i+b_i+carry=<carry out><digit>``, missing digits are 0:
         ``352+469=2+9+0=11,5+6+1=12,3+4+1=08#821``
  ``-``  the sign first (``+`` if a >= b, else ``-`` and the operands swap), then right to left
         ``x_i-y_i-borrow=<borrow out><digit>`` on the larger minus the smaller:
         ``305-721=-,1-5-0=16,2-0-1=01,7-3-0=04#-416``
  ``*``  one row per multiplier digit (right to left); a row multiplies the multiplicand digit by
         digit into the running sum, ``a_k*b_j+<sum digit>+carry=<carry out><digit>``, then writes
         the new running sum ``>S`` (fixed width len(a)+j+1, leading zeros kept, so the sum digit
         a step needs sits at a fixed place); rows end with ``;``:
         ``47*86=7*6+0+0=42,4*6+0+4=28>282;7*8+8+0=64,4*8+2+6=40>4042#4042``
  ``/``  long division, left to right: bring down one digit after the last remainder (remainders
         are written len(b) wide so the partial dividend is exactly remainder + digit):
         ``857/7=08/7=1r1,15/7=2r1,17/7=2r3#122r3``

With GPT-2 BPE, "773" is one token; ``spaced`` writes every character with a space before it
(`` 3 5 2 + 4 6 9 =``), so each digit and sign is one token ``" 3"``.
"""

from __future__ import annotations

from minigpt_cli.mathgen.problems import ANSWER_MARK, answer
from minigpt_cli.mathgen.question import canonical


def add_work(a: int, b: int) -> str:
    ra, rb = str(a)[::-1], str(b)[::-1]
    n = max(len(ra), len(rb))
    ra, rb = ra.ljust(n, "0"), rb.ljust(n, "0")
    steps = []
    c = 0
    for x, y in zip(ra, rb):
        t = int(x) + int(y) + c
        out = t // 10
        steps.append(f"{x}+{y}+{c}={out}{t - 10 * out}")
        c = out
    return ",".join(steps)


def sub_work(a: int, b: int) -> str:
    sign, (x, y) = ("+", (a, b)) if a >= b else ("-", (b, a))
    rx = str(x)[::-1]
    ry = str(y)[::-1].ljust(len(rx), "0")
    steps = [sign]
    br = 0
    for p, q in zip(rx, ry):
        d = int(p) - int(q) - br
        nb = 1 if d < 0 else 0
        steps.append(f"{p}-{q}-{br}={nb}{d + 10 * nb}")
        br = nb
    return ",".join(steps)


def mul_work(a: int, b: int) -> str:
    da = [int(ch) for ch in str(a)[::-1]]
    n = len(da)
    rows = []
    total = 0  # the running sum S_{j-1}
    for j, ych in enumerate(str(b)[::-1]):
        y = int(ych)
        prev = str(total).zfill(n + j)  # S_{j-1}, n+j wide: place j+k sits at index n-1-k
        steps = []
        c = 0
        for k, x in enumerate(da):
            s = ord(prev[n - 1 - k]) - 48
            t = x * y + s + c
            out = t // 10
            steps.append(f"{x}*{y}+{s}+{c}={out}{t - 10 * out}")
            c = out
        total += a * y * 10**j
        rows.append(",".join(steps) + ">" + str(total).zfill(n + j + 1))
    return ";".join(rows)


def div_work(a: int, b: int) -> str:
    sb = str(b)
    rem = "0" * len(sb)
    steps = []
    for d in str(a):
        part = rem + d
        q, r = divmod(int(part), b)
        rem = str(r).zfill(len(sb))
        steps.append(f"{part}/{sb}={q}r{rem}")
    return ",".join(steps)


WORK = {"+": add_work, "-": sub_work, "*": mul_work, "/": div_work}


def reverse_answer(op: str, ans: str) -> str:
    """``821`` -> ``128``; ``-416`` -> ``-614``; ``122r3`` -> ``221r3``."""
    if op == "/":
        q, _, r = ans.partition("r")
        return q[::-1] + "r" + r[::-1]
    if ans.startswith("-"):
        return "-" + ans[:0:-1]
    return ans[::-1]


def prompt_text(op: str, a: int, b: int) -> str:
    """The canonical prompt, from the one normaliser (question.py): ``35+42=``."""
    return canonical(op, a, b)


def solution_text(op: str, a: int, b: int, fmt: str) -> str:
    ans = answer(op, a, b)
    if fmt == "cot":
        return WORK[op](a, b) + ANSWER_MARK + ans
    if fmt == "plain":
        return ANSWER_MARK + ans
    if fmt == "reverse":
        return ANSWER_MARK + reverse_answer(op, ans)
    raise ValueError(f"unknown format {fmt!r}")


def spaced(text: str) -> str:
    """Every character preceded by a space: one GPT-2 token per character (digits included)."""
    return " " + " ".join(text) if text else ""


def unspaced(text: str) -> str:
    return text.replace(" ", "")


def max_answer_chars(op: str, la: int, lb: int) -> int:
    n = max(la, lb)
    if op == "+":
        return n + 1
    if op == "-":
        return n if la > lb else n + 1  # a sign only when b can be the larger
    if op == "*":
        return la + lb
    lo_b = 1 if lb == 1 else 10 ** (lb - 1)
    return len(str((10**la - 1) // lo_b)) + 1 + lb  # quotient, "r", remainder


def max_work_chars(op: str, la: int, lb: int) -> int:
    n = max(la, lb)
    if op == "+":
        return 9 * n - 1  # n steps "x+y+c=CD" joined by ","
    if op == "-":
        return 9 * n + 1  # sign, then n steps "x-y-b=BD", all joined by ","
    if op == "*":
        # row j: la steps "x*y+s+c=CD" (10 chars) + commas + ">" + (la+j+1) sum; ";" between
        return sum(11 * la + la + j + 1 for j in range(lb)) + lb - 1
    return la * (3 * lb + 6) - 1  # steps "P/b=qrR": (lb+1)+1+lb+1+1+1+lb, joined by ","


def max_line_chars(op: str, la: int, lb: int, fmt: str) -> int:
    """Upper bound on len(prompt + solution) without spacing, which is also the token count under
    either tokenizer (spaced text has one token per non-space character). Exact for + - *."""
    prompt = la + lb + 2
    work = max_work_chars(op, la, lb) if fmt == "cot" else 0
    return prompt + work + 1 + max_answer_chars(op, la, lb)
