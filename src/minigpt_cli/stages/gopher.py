"""Gopher quality rules: Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
Insights from Training Gopher", appendix A.1.1 ("quality filters"), as FineWeb runs them
(datatrove 0.10.1's GopherQualityFilter, the same rule order, thresholds and counting); the
repetition rules of the same appendix live in ``repetition.py`` and are re-exported here.

Words are the tokens of spaCy's English tokenizer (``words.py``), punctuation marks included:
"don't." is "do" "n't" ".". A word made only of punctuation ("." "--" "|") is a symbol: the
word-count and mean-length rules leave symbols out, every other rule counts them (so "80% of
the words have a letter" counts "." against a page, as datatrove does). Stop words are matched
case-sensitively ("The" is not "the"). Lines are ``str.splitlines()``, blank lines included;
a bullet line starts with "•" or "-" after its indentation. Every threshold is an option and a
boundary value passes (a ratio of exactly 0.1 passes ``max_symbol_word_ratio = 0.1``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions
from minigpt_cli.stages.repetition import GopherRepetition
from minigpt_cli.stages.words import words as split_words

__all__ = ["GopherQuality", "GopherRepetition"]

# datatrove's PUNCTUATION_SET (utils/text.py): ASCII and CJK punctuation, a few symbols, the
# fullwidth digit one (sic), C0/C1 control characters but tab and newline, and sentence-ending
# marks of many scripts. A word made only of these is a symbol.
_PUNCTUATION = (
    '!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„\';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_."}►»'
    + "".join(chr(c) for a, b in ((0, 9), (11, 13), (13, 32), (127, 160)) for c in range(a, b))
    + "։؝؞؟۔܀܁܂߹࠷࠹࠽࠾।॥၊။።፧፨᙮᜵᜶។៕៖៙៚᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᭽᭾᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼⹓⹔꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗｡"
    "𐩖𐩗𐽕𐽖𐽗𐽘𐽙𐾆𐾇𐾈𐾉𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑥄𑥆𑩂𑩃𑪛𑪜𑱁𑱂𑻷𑻸"
    "\U00011f43\U00011f44𖩮𖩯𖫵𖬷𖬸𖭄𖺘𛲟𝪈"
)
_SYMBOL = re.compile("[" + re.escape(_PUNCTUATION) + "]+")
_BULLETS = ("•", "-")
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
            default_factory=lambda: list(_STOP_WORDS), description="the stop words (case-sensitive)"
        )

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or self.Options()
        self._stop = frozenset(self.options.stop_words)

    def __call__(self, doc: Document) -> Document | Drop:
        reason = self.failed_rule(doc.text)
        return Drop(f"gopher_quality:{reason}") if reason else doc

    def failed_rule(self, text: str) -> str | None:
        """The name of the first rule ``text`` fails, or None."""
        o = self.options
        tokens = split_words(text)
        n = len(tokens)
        # Most tokens are all letters (str.isalpha, in C): only the others need Python work.
        odd = [t for t in tokens if not t.isalpha()]
        symbols = [t for t in odd if _SYMBOL.fullmatch(t)]
        words = n - len(symbols)
        if (o.min_words and words < o.min_words) or (o.max_words and words > o.max_words):
            return "word_count"
        if words:  # mean length of the words that are not symbols
            mean = (sum(map(len, tokens)) - sum(map(len, symbols))) / words
            if (o.min_mean_word_length and mean < o.min_mean_word_length) or (
                    o.max_mean_word_length and mean > o.max_mean_word_length):
                return "mean_word_length"
        if n and o.max_symbol_word_ratio:  # '#' and ellipses, each against all tokens
            ellipses = text.count("...") + text.count("…")
            if max(text.count("#"), ellipses) > o.max_symbol_word_ratio * n:
                return "symbol_word_ratio"
        lines = text.splitlines()
        if lines:
            bullets = sum(1 for line in lines if line.lstrip().startswith(_BULLETS))
            if o.max_bullet_lines_ratio and bullets > o.max_bullet_lines_ratio * len(lines):
                return "bullet_lines"
            trailing = sum(1 for line in lines if line.rstrip().endswith(_ELLIPSES))
            if o.max_ellipsis_lines_ratio and trailing > o.max_ellipsis_lines_ratio * len(lines):
                return "ellipsis_lines"
        if n and o.min_alpha_words_ratio:
            alpha = n - len(odd) + sum(1 for t in odd if any(map(str.isalpha, t)))
            if alpha < o.min_alpha_words_ratio * n:
                return "alpha_words"
        if o.min_stop_words and len(self._stop.intersection(tokens)) < o.min_stop_words:
            return "stop_words"
        return None
