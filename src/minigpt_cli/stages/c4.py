"""C4 line filters: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a
Unified Text-to-Text Transformer" (T5), section 2.2, as FineWeb runs them (datatrove 0.10.1's
C4QualityFilter: the same line and page rules in the same order).

Each line (``str.splitlines()``, stripped) is checked in turn: a line with a word (whitespace
token) longer than ``max_word_length`` is removed; Wikipedia-style citations ("[1]", "[edit]",
"[citation needed]") are cut out of it; it is removed if it does not end in . ! ? or a straight
quote, or ends in "..." (the terminal punctuation rule); or has fewer than
``min_words_per_line`` words (counted before the citations were cut). A line still standing
that says "lorem ipsum" drops the page; one mentioning "javascript" is removed; one with a
curly bracket "{" drops the page; one with cookie / privacy-policy / terms-of-use boilerplate
(the substrings C4's code removes) is removed. So a page-level rule fires only on a line that
survived the line rules before it, as in datatrove. The page is dropped if nothing is left or
its kept lines hold fewer than ``min_sentences`` sentences, counted per line as spaCy's
sentencizer splits them (``words.py``; datatrove runs spaCy itself). Defaults are the paper's
(5 words a line, 3 sentences a page); FineWeb uses 3 and 5.

Not done: the paper's bad-words list, and its three-sentence-span dedup (the dedup stages
cover duplicates). Unlike datatrove, blank lines between kept lines stay (one blank line), so
paragraphs survive; the decisions are the same. FineWeb runs this stage without the terminal
punctuation rule (it removed too much text), which is how the default ``commoncrawl`` recipe
runs it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import ClassVar

from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions
from minigpt_cli.stages.words import sentence_count

_TERMINAL = (".", "!", "?", '"', "'")
_ELLIPSIS = "..."
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_POLICY = re.compile(
    r"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"
)


class C4LineFilter:
    """C4's line filters: keep a page's clean lines, or drop the page when a page rule fires.

    A rewritten page is a new Document; the input is never mutated.
    """

    name: ClassVar[str] = "c4"
    stateless: ClassVar[bool] = True

    class Options(PluginOptions):
        terminal_punctuation: bool = Field(
            True, description="keep only lines ending in . ! ? \" or ' (not ...)"
        )
        min_words_per_line: int = Field(5, ge=0, description="fewest words a kept line has")
        min_sentences: int = Field(3, ge=0, description="fewest sentences a kept page has")
        max_word_length: int = Field(
            1000, ge=0, description="remove lines with a longer word (0: no limit)"
        )
        remove_citations: bool = Field(True, description="cut [1], [edit], [citation needed]")
        drop_javascript_lines: bool = Field(True, description="remove lines saying javascript")
        drop_policy_lines: bool = Field(True, description="remove cookie/privacy/terms lines")
        drop_lorem_ipsum: bool = Field(True, description="drop pages with a 'lorem ipsum' line")
        drop_curly_bracket: bool = Field(True, description="drop pages with a '{' line")

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or self.Options()

    def __call__(self, doc: Document) -> Document | Drop:
        o = self.options
        text = doc.text
        lower = text.lower()
        # Per-line substring checks only when the page has such a text at all.
        lorem = o.drop_lorem_ipsum and "lorem ipsum" in lower
        javascript = o.drop_javascript_lines and "javascript" in lower
        curly = o.drop_curly_bracket and "{" in text
        policy = o.drop_policy_lines and _POLICY.search(lower) is not None
        citations = o.remove_citations and "[" in text
        kept: list[str] = []
        sentences = 0
        gap = False
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                gap = bool(kept)
                continue
            n_words = len(line.split())  # counted before the citations are cut, as datatrove
            if o.max_word_length and len(line) > o.max_word_length and any(
                    len(w) > o.max_word_length for w in line.split()):
                continue
            if citations:
                line = _CITATION.sub("", line)
            if o.terminal_punctuation and (
                    not line.endswith(_TERMINAL) or line.endswith(_ELLIPSIS)):
                continue
            if n_words < o.min_words_per_line:
                continue
            if lorem or javascript or curly or policy:
                low = line.lower()
                if lorem and "lorem ipsum" in low:
                    return Drop("c4:lorem_ipsum")
                if javascript and "javascript" in low:
                    continue
                if curly and "{" in line:
                    return Drop("c4:curly_bracket")
                if policy and _POLICY.search(low):
                    continue
            if o.min_sentences:
                sentences += sentence_count(line)
            if gap:
                kept.append("")
                gap = False
            kept.append(line)
        if not kept:
            return Drop("c4:no_lines_left")
        if sentences < o.min_sentences:
            return Drop("c4:too_few_sentences")
        cleaned = "\n".join(kept)
        # A new Document, the input untouched: the pipeline sees the rewrite (and hands the
        # rewritten text, not the original, to the dedup stages after this one).
        return doc if cleaned == text else replace(doc, text=cleaned)
