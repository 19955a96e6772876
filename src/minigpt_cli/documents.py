"""What flows through `minigpt shard`: documents from sources, through stages, to the writer.

A **source** plugin (entry-point group ``minigpt.sources``) yields ``Document``s; a **stage**
plugin (``minigpt.stages``) keeps, rewrites or drops each one with a reason. Both take their
options as a pydantic model (``Options``, unknown keys are errors), and built-ins are registered
through entry points exactly as a third-party package would register its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Protocol

from pydantic import BaseModel, ConfigDict


class PluginOptions(BaseModel):
    """Base for plugin options: unknown keys are an error, values are validated (numbers must
    be finite: an inf or nan threshold would silently keep or drop everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def is_blank(text: str) -> bool:
    """Empty or only whitespace: such a document is dropped. (``not text.strip()`` would copy a
    whole file's text to find out.)"""
    return not text or text.isspace()


@dataclass
class Document:
    text: str
    id: str = ""  # stable within its source (record id, file:line, URL)
    source: str = ""  # plugin name
    meta: dict[str, Any] = field(default_factory=dict)  # url, date, language, file, ...


@dataclass(frozen=True)
class Drop:
    """A stage's verdict that a document goes no further, and why (counted in the manifest)."""

    reason: str


class Source(Protocol):
    name: ClassVar[str]
    Options: ClassVar[type[PluginOptions]]

    def __init__(self, options: PluginOptions) -> None: ...

    def documents(self) -> Iterator[Document]:
        """Yield documents one at a time; memory must not grow with the input."""
        ...

    def provenance(self) -> list[dict[str, Any]]:
        """Where documents came from so far: [{"input": file-or-URL, "records": n, ...}]."""
        ...


class MultiInputSource(Source, Protocol):
    """Optional extension of ``Source`` for sources that read several independent inputs.

    The pipeline checks for these methods with ``hasattr``. With them, ``minigpt shard --part
    i/N`` gives each job a disjoint subset of the inputs, and a resumed run skips finished
    inputs without reading them again. Without them a source is read whole (and, on resume,
    re-read up to where the run stopped). ``provenance()`` entries should use the input string
    as their ``"input"`` value. A source may also offer ``progress()`` returning an object with
    ``bytes_read``, ``bytes_downloaded`` and ``bytes_total`` (int or None) for the progress line.

    Any source may also offer ``packing()`` (an int: no document crosses a multiple of that many
    tokens; the gap is padded) and ``char_vocab()`` (the characters for ``--tokenizer char``),
    and give a document ``meta["loss_from"]`` (a character offset: only the text from there on,
    and the end-of-text after it, is trained on; see sharding/writer.py and sources/math.py).
    """

    def inputs(self) -> list[str]:
        """The inputs (files, URLs) in a stable order; globs and listings already resolved."""
        ...

    def documents_from(self, input: str) -> Iterator[Document]:
        """The documents of one input, in order."""
        ...


class Stage(Protocol):
    name: ClassVar[str]
    Options: ClassVar[type[PluginOptions]]
    # False for stages with state across documents (dedup, head): they run in one process, in
    # input order, and their state is saved with the resume state after every shard (their
    # optional state_dict() / load_state_dict(), else their attributes; numpy arrays and JSON
    # values only, see sharding/progress.py); stateless stages may run inside tokenizer
    # worker processes.
    stateless: ClassVar[bool]

    def __init__(self, options: PluginOptions) -> None: ...

    def __call__(self, doc: Document) -> Document | Drop: ...
