"""Example minigpt plugins: how a package adds a source and stages.

A source yields ``Document``s; a stage returns the document (maybe rewritten) or ``Drop(reason)``.
Both declare their options as a pydantic model (``PluginOptions``: unknown keys are errors), and
a stage says whether it is ``stateless`` (then it may run in worker processes).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions


class FortuneOptions(PluginOptions):
    inputs: list[str] = Field(default_factory=list, description="Fortune files or globs.")
    separator: str = Field("%", description="The line that separates two fortunes.")


class FortuneSource:
    """Fortune-cookie files: fortunes separated by a line holding only '%'."""

    name: ClassVar[str] = "fortune"
    Options: ClassVar[type[FortuneOptions]] = FortuneOptions

    def __init__(self, options: FortuneOptions) -> None:
        self.options = options
        self._files = sorted({f for p in options.inputs for f in glob.glob(p)})
        self._read: dict[str, int] = {}

    # inputs() + documents_from() let `minigpt shard --part i/N` split the files across jobs and
    # let a resumed run skip the files it finished; documents() alone would also work.
    def inputs(self) -> list[str]:
        return list(self._files)

    def documents(self) -> Iterator[Document]:
        for path in self._files:
            yield from self.documents_from(path)

    def documents_from(self, input: str) -> Iterator[Document]:
        self._read[input] = 0
        with open(input, encoding="utf-8") as f:
            chunks = f.read().split(f"\n{self.options.separator}\n")
        for n, chunk in enumerate(chunks):
            if chunk.strip():
                self._read[input] += 1
                yield Document(text=chunk.strip(), id=f"{input}#{n}", source=self.name,
                               meta={"file": input})

    def provenance(self) -> list[dict]:
        return [{"input": path, "records": n} for path, n in self._read.items()]


class MinWordsOptions(PluginOptions):
    n: int = Field(3, ge=0, description="Fewest words a kept document has.")


class MinWords:
    """Drop documents with fewer than n words."""

    name: ClassVar[str] = "min_words"
    Options: ClassVar[type[MinWordsOptions]] = MinWordsOptions
    stateless: ClassVar[bool] = True

    def __init__(self, options: MinWordsOptions) -> None:
        self.options = options

    def __call__(self, doc: Document) -> Document | Drop:
        if len(doc.text.split()) < self.options.n:
            return Drop(f"fewer than {self.options.n} words")
        return doc


class ShoutOptions(PluginOptions):
    pass


class Shout:
    """Upper-case the text (a stage that rewrites documents)."""

    name: ClassVar[str] = "shout"
    Options: ClassVar[type[ShoutOptions]] = ShoutOptions
    stateless: ClassVar[bool] = True

    def __init__(self, options: ShoutOptions) -> None:
        self.options = options

    def __call__(self, doc: Document) -> Document | Drop:
        return Document(doc.text.upper(), doc.id, doc.source, doc.meta)


class NumberedOptions(PluginOptions):
    drop_every: int = Field(0, ge=0, description="Drop every k-th document (0: none).")
    prefix: bool = Field(True, description="Write the number in front of the text.")


class Numbered:
    """Prefix each document with its running number (a stateful stage that rewrites)."""

    name: ClassVar[str] = "numbered"
    Options: ClassVar[type[NumberedOptions]] = NumberedOptions
    stateless: ClassVar[bool] = False  # its count depends on every document before

    def __init__(self, options: NumberedOptions) -> None:
        self.options = options
        self.count = 0

    def __call__(self, doc: Document) -> Document | Drop:
        self.count += 1
        k = self.options.drop_every
        if k and self.count % k == 0:
            return Drop(f"every {k}th document")
        if not self.options.prefix:
            return doc
        return Document(f"[{self.count}] {doc.text}", doc.id, doc.source, doc.meta)
