"""C4 line filters: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a
Unified Text-to-Text Transformer" (T5), section 2.2.

Page-level: a page containing "lorem ipsum" or a curly bracket "{" is dropped. Line-level
(lines are stripped first): a line that mentions "javascript", or cookie / privacy-policy /
terms-of-use boilerplate (the substrings C4's code removes), or does not end in terminal
punctuation (. ! ? or a closing quote), or has fewer than ``min_words_per_line`` words, is
removed. The page is then dropped if nothing is left or fewer than ``min_sentences`` sentences
remain. Defaults are the paper's (5 words a line, 3 sentences a page).

Not done: the paper's bad-words list, and its three-sentence-span dedup (the dedup stages
cover duplicates). Unlike C4, blank lines between kept lines stay (one blank line), so
paragraphs survive. FineWeb runs this stage without the terminal punctuation rule (it removed
too much text), which is how the default ``commoncrawl`` recipe runs it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import ClassVar

from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions

_TERMINAL = (".", "!", "?", '"', "'", "”", "’")
_POLICY = re.compile(
    r"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"
)
# A sentence ends at . ! ? (runs count once), maybe followed by closing quotes or brackets,
# then whitespace or the end of the text.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


class C4LineFilter:
    """C4's line filters: keep a page's clean lines, or drop the page when a page rule fires.

    A rewritten page is a new Document; the input is never mutated.
    """

    name: ClassVar[str] = "c4"
    stateless: ClassVar[bool] = True

    class Options(PluginOptions):
        terminal_punctuation: bool = Field(
            True, description="keep only lines ending in . ! ? or a closing quote"
        )
        min_words_per_line: int = Field(5, ge=0, description="fewest words a kept line has")
        min_sentences: int = Field(3, ge=0, description="fewest sentences a kept page has")
        drop_javascript_lines: bool = Field(True, description="remove lines saying javascript")
        drop_policy_lines: bool = Field(True, description="remove cookie/privacy/terms lines")
        drop_lorem_ipsum: bool = Field(True, description="drop pages with 'lorem ipsum'")
        drop_curly_bracket: bool = Field(True, description="drop pages with '{'")

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or self.Options()

    def __call__(self, doc: Document) -> Document | Drop:
        o = self.options
        text = doc.text
        lower = text.lower()
        if o.drop_lorem_ipsum and "lorem ipsum" in lower:
            return Drop("c4:lorem_ipsum")
        if o.drop_curly_bracket and "{" in text:
            return Drop("c4:curly_bracket")
        # Per-line substring checks only when the page has such a line at all.
        javascript = o.drop_javascript_lines and "javascript" in lower
        policy = o.drop_policy_lines and _POLICY.search(lower) is not None
        kept: list[str] = []
        gap = False
        for raw in text.split("\n"):
            line = raw.strip()
            if not line:
                gap = bool(kept)
                continue
            if o.terminal_punctuation and not line.endswith(_TERMINAL):
                continue
            if o.min_words_per_line and len(line.split()) < o.min_words_per_line:
                continue
            if javascript or policy:
                low = line.lower()
                if javascript and "javascript" in low:
                    continue
                if policy and _POLICY.search(low):
                    continue
            if gap:
                kept.append("")
                gap = False
            kept.append(line)
        if not kept:
            return Drop("c4:no_lines_left")
        cleaned = "\n".join(kept)
        if o.min_sentences and len(_SENTENCE_END.findall(cleaned)) < o.min_sentences:
            return Drop("c4:too_few_sentences")
        # A new Document, the input untouched: the pipeline sees the rewrite (and hands the
        # rewritten text, not the original, to the dedup stages after this one).
        return doc if cleaned == text else replace(doc, text=cleaned)
