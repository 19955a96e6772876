"""``head``: the first N documents that reach this stage, for quick runs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions


class Head:
    """Keep the first ``n`` documents, drop the rest with reason ``head:limit``.

    Put it last to get ``n`` documents that passed every filter, first to filter only ``n``.
    ``exhausted`` turns true once ``n`` documents went through, so a pipeline may stop reading.
    """

    name: ClassVar[str] = "head"
    stateless: ClassVar[bool] = False

    class Options(PluginOptions):
        n: int = Field(1000, ge=0, description="documents to keep")

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or self.Options()
        self.kept = 0

    @property
    def exhausted(self) -> bool:
        return self.kept >= self.options.n

    def __call__(self, doc: Document) -> Document | Drop:
        if self.kept >= self.options.n:
            return Drop("head:limit")
        self.kept += 1
        return doc
