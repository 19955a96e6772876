"""Gopher quality rules: Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
Insights from Training Gopher", appendix A.1.1 ("quality filters"); the repetition rules of the
same appendix live in ``repetition.py`` and are re-exported here.

Words are the whitespace-separated tokens of the text. For the mean word length a token is
measured without the punctuation at its ends ("word," -> 4) and a token of punctuation only
("-", "|") is not a word; every other rule counts all tokens. Every threshold is an option and
a boundary value passes (a ratio of exactly 0.1 passes ``max_symbol_word_ratio = 0.1``).
"""

from __future__ import annotations

import re
import string
from typing import ClassVar

from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions
from minigpt_cli.stages.repetition import GopherRepetition

__all__ = ["GopherQuality", "GopherRepetition"]

_EDGE_PUNCT = string.punctuation + "“”‘’«»‹›„…–—·•¡¿"
_LETTER = re.compile(r"[^\W\d_]")  # a letter in any script
_BULLETS = ("•", "●", "○", "◦", "▪", "▫", "■", "□", "‣", "⁃", "➢", "►", "▶", "*", "-", "–")
_ELLIPSES = ("...", "…")
_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


class GopherQuality:
    """Drop documents that fail a Gopher quality rule; the reason names the rule."""

    name: ClassVar[str] = "gopher_quality"
    stateless: ClassVar[bool] = True

    class Options(PluginOptions):
        min_words: int = Field(50, ge=0, description="fewest words")
        max_words: int = Field(100_000, ge=0, description="most words")
        min_mean_word_length: float = Field(3.0, ge=0, description="shortest mean word, chars")
        max_mean_word_length: float = Field(10.0, ge=0, description="longest mean word, chars")
        max_symbol_word_ratio: float = Field(
            0.1, ge=0, description="most '#' per word, and most ellipses per word"
        )
        max_bullet_lines_ratio: float = Field(
            0.9, ge=0, le=1, description="largest share of lines starting with a bullet"
        )
        max_ellipsis_lines_ratio: float = Field(
            0.3, ge=0, le=1, description="largest share of lines ending with an ellipsis"
        )
        min_alpha_words_ratio: float = Field(
            0.8, ge=0, le=1, description="smallest share of words with a letter"
        )
        min_stop_words: int = Field(2, ge=0, description="fewest distinct stop words present")
        stop_words: list[str] = Field(
            default_factory=lambda: list(_STOP_WORDS), description="the stop words (lowercase)"
        )

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or self.Options()
        words = "|".join(re.escape(w.lower()) for w in self.options.stop_words) or "(?!)"
        self._stop = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)

    def __call__(self, doc: Document) -> Document | Drop:
        reason = self.failed_rule(doc.text)
        return Drop(f"gopher_quality:{reason}") if reason else doc

    def failed_rule(self, text: str) -> str | None:
        """The name of the first rule ``text`` fails, or None."""
        o = self.options
        tokens = text.split()
        n = len(tokens)
        if n < o.min_words or n > o.max_words:
            return "word_count"
        # Most tokens are all letters (str.isalpha, in C): only the others need Python work.
        odd = [t for t in tokens if not t.isalpha()]  # punctuation, digits, symbols inside
        stripped = [t.strip(_EDGE_PUNCT) for t in odd]
        words = n - stripped.count("")  # punctuation-only tokens are not words
        chars = sum(map(len, tokens)) - sum(map(len, odd)) + sum(map(len, stripped))
        mean = chars / words if words else 0.0
        if not o.min_mean_word_length <= mean <= o.max_mean_word_length:
            return "mean_word_length"
        if n:  # symbol ratios: '#' and ellipses, each against the word count
            ellipses = text.count("...") + text.count("…")
            if max(text.count("#"), ellipses) > o.max_symbol_word_ratio * n:
                return "symbol_word_ratio"
        lines = [line.strip() for line in text.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            bullets = sum(1 for line in lines if line.startswith(_BULLETS))
            if bullets > o.max_bullet_lines_ratio * len(lines):
                return "bullet_lines"
            trailing = sum(1 for line in lines if line.endswith(_ELLIPSES))
            if trailing > o.max_ellipsis_lines_ratio * len(lines):
                return "ellipsis_lines"
        alpha = n - len(odd) + sum(1 for t in odd if _LETTER.search(t))
        if alpha < o.min_alpha_words_ratio * n:
            return "alpha_words"
        if o.min_stop_words and self._stop_words_present(text) < o.min_stop_words:
            return "stop_words"
        return None

    def _stop_words_present(self, text: str) -> int:
        found: set[str] = set()
        for m in self._stop.finditer(text):
            found.add(m.group().lower())
            if len(found) >= self.options.min_stop_words:
                break
        return len(found)
