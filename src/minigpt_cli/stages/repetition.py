"""Gopher repetition rules: Rae et al. 2021 (Gopher), appendix A.1.1 and table A1.

Definitions used here (the paper gives the measures, not their exact counting):
- lines are the non-empty stripped lines; paragraphs the non-empty stripped blocks between
  blank lines. A line (paragraph) is a *duplicate* when an identical one came earlier in the
  document; the fractions are duplicates / all, and their characters / all characters of the
  lines (paragraphs).
- words are whitespace-separated tokens and an n-gram's characters are its words' characters
  (no separators). *Top n-gram share* (n = 2, 3, 4): characters of the most frequent n-gram
  times its count (counted only when it occurs more than once), over all words' characters;
  overlapping occurrences each count, so "ha ha ha ha" scores above 1.
- *duplicate n-gram fraction* (n = 5..10): characters of the words covered by a repeated
  occurrence of an n-gram (not its first one), each word counted once however many repeats
  cover it, over all words' characters.
Since a repeated (n+1)-gram covers only words that repeated n-grams cover, the duplicate
fraction never grows with n; the checks stop as soon as every larger n must pass.

Word n-grams are compared through 64-bit polynomial hashes of per-word hashes (Python's
``hash``: a collision, ~2**-64 a pair, could only ever merge two n-grams within one document).
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from minigpt_cli.documents import Document, Drop, PluginOptions

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_P = np.uint64(0x100000001B3)  # multiplier for the rolling n-gram hash (odd: no lost bits)
_TOP = {2: 0.20, 3: 0.18, 4: 0.16}
_DUP = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def duplicate_fractions(items: list[str]) -> tuple[float, float]:
    """(share of items equal to an earlier one, share of their characters) for ``items``."""
    seen: set[str] = set()
    dup = dup_chars = total_chars = 0
    for item in items:
        total_chars += len(item)
        if item in seen:
            dup += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    if not items:
        return 0.0, 0.0
    return dup / len(items), dup_chars / max(total_chars, 1)


class NgramStats:
    """Word n-gram hashes of one text, built incrementally for n = 1, 2, 3, ..."""

    def __init__(self, words: list[str]) -> None:
        n = len(words)
        self.lengths = np.fromiter(map(len, words), dtype=np.int64, count=n)  # (W,)
        self.total = int(self.lengths.sum())
        self.cum = np.concatenate(([0], np.cumsum(self.lengths)))  # (W+1,) chars before word i
        self._ids = np.fromiter(map(hash, words), dtype=np.int64, count=n).view(np.uint64)
        self._hashes = {1: self._ids}

    def hashes(self, n: int) -> np.ndarray:
        """(W-n+1,) one hash per n-gram start (empty when there are fewer than n words)."""
        if n not in self._hashes:
            prev = self.hashes(n - 1)
            self._hashes[n] = prev[:-1] * _P + self._ids[n - 1 :]
        return self._hashes[n]

    def top_share(self, n: int) -> float:
        h = self.hashes(n)
        if len(h) < 2 or self.total == 0:
            return 0.0
        _, first, counts = np.unique(h, return_index=True, return_counts=True)
        best = int(counts.argmax())
        if counts[best] < 2:
            return 0.0
        start = int(first[best])
        chars = int(self.cum[start + n] - self.cum[start])
        return chars * int(counts[best]) / self.total

    def duplicate_share(self, n: int) -> float:
        h = self.hashes(n)
        if len(h) < 2 or self.total == 0:
            return 0.0
        _, first = np.unique(h, return_index=True)
        if len(first) == len(h):
            return 0.0
        repeat = np.ones(len(h), dtype=bool)
        repeat[first] = False
        starts = np.flatnonzero(repeat)  # (R,) starts of repeated occurrences
        cover = np.zeros(len(self.lengths) + 1, dtype=np.int32)  # (W+1,) +1 in, -1 out
        cover[starts] += 1
        cover[starts + n] -= 1
        covered = np.cumsum(cover[:-1]) > 0  # (W,) word inside some repeated n-gram
        return int(self.lengths[covered].sum()) / self.total


class GopherRepetition:
    """Drop documents that repeat themselves; the reason names the rule (e.g. ``dup_5gram``)."""

    name: ClassVar[str] = "gopher_repetition"
    stateless: ClassVar[bool] = True

    class Options(PluginOptions):
        max_dup_line_fraction: float = Field(
            0.30, ge=0, le=1, description="largest share of lines repeating an earlier line"
        )
        max_dup_line_char_fraction: float = Field(
            0.20, ge=0, le=1, description="largest share of line characters in repeated lines"
        )
        max_dup_paragraph_fraction: float = Field(
            0.30, ge=0, le=1, description="largest share of paragraphs repeating an earlier one"
        )
        max_dup_paragraph_char_fraction: float = Field(
            0.20, ge=0, le=1, description="largest share of characters in repeated paragraphs"
        )
        max_top_ngram_share: dict[int, float] = Field(
            default_factory=lambda: dict(_TOP), description="n -> largest top n-gram share"
        )
        max_dup_ngram_fraction: dict[int, float] = Field(
            default_factory=lambda: dict(_DUP), description="n -> largest duplicate fraction"
        )

        @field_validator("max_top_ngram_share", "max_dup_ngram_fraction")
        @classmethod
        def _sizes(cls, value: dict[int, float]) -> dict[int, float]:
            if any(n < 1 for n in value):
                raise ValueError("n-gram sizes (the keys) must be at least 1")
            return value

    def __init__(self, options: Options | None = None) -> None:
        self.options = o = options or self.Options()
        self._top = sorted(o.max_top_ngram_share.items())
        dup = sorted(o.max_dup_ngram_fraction.items())
        # (n, threshold, smallest threshold of any larger n): stop once frac <= the latter
        self._dup = [(n, t, min([u for _, u in dup[i + 1 :]], default=-1.0))
                     for i, (n, t) in enumerate(dup)]

    def __call__(self, doc: Document) -> Document | Drop:
        reason = self.failed_rule(doc.text)
        return Drop(f"gopher_repetition:{reason}") if reason else doc

    def failed_rule(self, text: str) -> str | None:
        """The name of the first rule ``text`` fails, or None."""
        o = self.options
        lines = [line for line in (s.strip() for s in text.split("\n")) if line]
        frac, char_frac = duplicate_fractions(lines)
        if frac > o.max_dup_line_fraction:
            return "dup_line_fraction"
        if char_frac > o.max_dup_line_char_fraction:
            return "dup_line_char_fraction"
        paragraphs = [p for p in (s.strip() for s in _PARAGRAPH_BREAK.split(text)) if p]
        frac, char_frac = duplicate_fractions(paragraphs)
        if frac > o.max_dup_paragraph_fraction:
            return "dup_paragraph_fraction"
        if char_frac > o.max_dup_paragraph_char_fraction:
            return "dup_paragraph_char_fraction"
        stats = NgramStats(text.split())
        for n, limit in self._top:
            if stats.top_share(n) > limit:
                return f"top_{n}gram"
        for n, limit, later in self._dup:
            share = stats.duplicate_share(n)
            if share > limit:
                return f"dup_{n}gram"
            if share <= later:
                break
        return None
