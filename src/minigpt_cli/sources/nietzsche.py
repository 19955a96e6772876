"""The `nietzsche` source: Nietzsche's works in English from Project Gutenberg, pinned.

Each work of the catalogue (nietzsche_catalogue.py: ebook number and sha256) is downloaded once
into a cache (``cache_dir``, default ``~/.cache/minigpt/nietzsche`` or under
``$MINIGPT_CACHE_DIR``) and verified; a file whose checksum does not match is refused and
nothing is cached. ``from_dir`` reads local copies named ``<work>.txt`` instead (verified too,
unless ``verify=false``). Every work is cleaned the same way (``clean_work``): byte-order mark
and Windows line endings dropped, the Project Gutenberg header (everything through the
``*** START OF THE/THIS PROJECT GUTENBERG EBOOK`` line, and a ``Produced by`` credit paragraph
right after it) and footer (everything from the ``*** END OF`` line, and an ``End of (the)
Project Gutenberg...`` line right before it) removed, blank lines at both ends trimmed.

Train / validation split (``split``):

- ``work`` (default): the works in ``val_works`` are held out whole. They are yielded first,
  marked ``meta["split"] = "val"``, so that `minigpt shard` writes them, and only them, to
  ``val_000000.bin``; the other works follow, one document each, in file-name order.
- ``chunk``: the works are joined in file-name order with a blank line between them (the
  benchmark's corpus, ``corpus_text``); the last ``val_fraction`` of its characters is one
  validation document, yielded first, and the rest one training document.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from minigpt_cli.documents import Document, PluginOptions
from minigpt_cli.download import DownloadError, cache_path, cache_root, download
from minigpt_cli.errors import MinigptError
from minigpt_cli.sources.nietzsche_catalogue import (
    BY_KEY,
    DEFAULT_VAL_WORKS,
    GUTENBERG_BASE,
    Work,
)

START = re.compile(r"^\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.MULTILINE | re.IGNORECASE)
END = re.compile(r"^\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.MULTILINE | re.IGNORECASE)
CREDIT = re.compile(r"\A\s*Produced by .*?(?:\n[ \t]*\n|\Z)", re.DOTALL)
END_LINE = re.compile(r"\n[ \t]*End of (?:the )?Project Gutenberg[^\n]*(?:\n[^\n]+)?\Z", re.IGNORECASE)
SEPARATOR = "\n\n"  # between works in the chunk split and the benchmark corpus


def clean_work(text: str, credits: bool = True) -> str:
    """A Gutenberg text without BOM, CRLF, header, footer and licence (see the module doc).

    A text without the START marker keeps its beginning, one without the END marker its end
    (a copy that was already stripped passes through unchanged)."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if (m := START.search(text)) is not None:
        text = text[m.end():]
    if (m := END.search(text)) is not None:
        text = text[:m.start()]
    if credits:
        text = CREDIT.sub("", text, count=1)
        text = END_LINE.sub("", text.rstrip(), count=1)
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()


def corpus_text(works: list[str]) -> str:
    """Cleaned works joined in the given order with a blank line between them."""
    return SEPARATOR.join(works)


def split_chunk(text: str, val_fraction: float) -> tuple[str, str]:
    """(train, val): val is the last ``val_fraction`` of the characters."""
    cut = len(text) - round(len(text) * val_fraction)
    return text[:cut], text[cut:]


class NietzscheOptions(PluginOptions):
    works: list[str] | None = Field(
        None, description="Catalogue keys of the works to use: file names without .txt, "
        "e.g. beyond_good_and_evil (default: all 21; docs/finetuning.md lists them).")
    from_dir: Path | None = Field(
        None, description="Read local copies (<work>.txt, Gutenberg headers included or not) "
        "from this folder instead of downloading.")
    cache_dir: Path | None = Field(
        None, description="Download cache (default ~/.cache/minigpt/nietzsche, or "
        "$MINIGPT_CACHE_DIR/nietzsche).")
    base_url: str = Field(GUTENBERG_BASE, description="Where the works are downloaded from: "
                          "<base_url>/<ebook>/pg<ebook>.txt.")
    verify: bool = Field(True, description="Check every file against its pinned sha256 "
                         "(downloads and from_dir copies).")
    split: Literal["work", "chunk"] = Field(
        "work", description="work: hold out whole works (val_works) for validation; chunk: "
        "the last val_fraction of the joined corpus's characters.")
    val_works: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VAL_WORKS),
        description="split=work: the works held out for validation.")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="split=chunk: the validation "
                                "share of the characters.")
    credits: bool = Field(True, description="Also drop the 'Produced by' credit paragraph and "
                          "the 'End of Project Gutenberg...' line around the text.")

    @field_validator("works", "val_works", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("works", "val_works")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        unknown = [k for k in v or [] if k not in BY_KEY]
        if unknown:
            raise ValueError(f"unknown work(s) {', '.join(unknown)}; known: "
                             f"{', '.join(BY_KEY)}")
        return v

    @model_validator(mode="after")
    def _splits_not_empty(self):
        chosen = self.works if self.works is not None else list(BY_KEY)
        if not chosen:
            raise ValueError("works is empty: choose at least one work")
        if self.split == "work":
            held = [k for k in chosen if k in self.val_works]
            if not held:
                given = ", ".join(self.val_works) or "none"
                raise ValueError(
                    f"the validation split is empty: none of val_works ({given}) is among the "
                    "chosen works. Add one to works, choose other val_works, or use split=chunk")
            if len(held) == len(chosen):
                raise ValueError("the training split is empty: every chosen work is in val_works. "
                                 "Choose more works, fewer val_works, or use split=chunk")
        return self


class NietzscheSource:
    """Nietzsche's works in English from Project Gutenberg: pinned, cached, header-stripped."""

    name: ClassVar[str] = "nietzsche"
    Options: ClassVar[type[NietzscheOptions]] = NietzscheOptions

    def __init__(self, options: NietzscheOptions) -> None:
        self.options = options
        keys = sorted(options.works if options.works is not None else BY_KEY)
        self.works = [BY_KEY[k] for k in keys]  # file-name order
        if options.from_dir is not None and not Path(options.from_dir).is_dir():
            raise MinigptError(f"The nietzsche source's from_dir {options.from_dir} is not a "
                               "folder. Point it at a folder of <work>.txt copies.")
        self._provenance: list[dict[str, Any]] = []

    # -- reading ---------------------------------------------------------------------------
    def documents(self) -> Iterator[Document]:
        o = self.options
        self._provenance = []
        if o.split == "work":
            held = [w for w in self.works if w.key in o.val_works]
            rest = [w for w in self.works if w.key not in o.val_works]
            for split, group in (("val", held), ("train", rest)):
                for w in group:
                    yield self._doc(self.text(w), w.key, split, [w])
            return
        text = corpus_text([self.text(w) for w in self.works])
        train, val = split_chunk(text, o.val_fraction)
        if not val.strip() or not train.strip():
            raise MinigptError(f"split=chunk with val_fraction={o.val_fraction} leaves an empty "
                               "split for the chosen works; choose more works or another "
                               "val_fraction.")
        yield self._doc(val, "chunk:val", "val", self.works)
        yield self._doc(train, "chunk:train", "train", self.works)

    def _doc(self, text: str, id: str, split: str, works: list[Work]) -> Document:
        meta = {"split": split, "works": [w.key for w in works]}
        if len(works) == 1:
            meta |= {"title": works[0].title, "ebook": works[0].ebook}
        return Document(text=text, id=id, source=self.name, meta=meta)

    def text(self, work: Work) -> str:
        """The cleaned text of one work (downloaded or read, verified, decoded, stripped)."""
        raw, where = self._raw(work)
        prov = {"input": where, "work": work.key, "ebook": work.ebook, "bytes": len(raw)}
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise MinigptError(f"{where} is not UTF-8 text ({e.reason} at byte {e.start}): the "
                               f"nietzsche source expects Project Gutenberg's plain-text file "
                               f"of ebook #{work.ebook}. Replace the file.") from None
        if "\x00" in text:
            raise MinigptError(f"{where} is not a text file (it holds NUL bytes): the nietzsche "
                               f"source expects Project Gutenberg's plain-text file of ebook "
                               f"#{work.ebook}. Replace the file.")
        cleaned = clean_work(text, self.options.credits)
        prov["chars"] = len(cleaned)
        prov["gutenberg_markers"] = bool(START.search(text)) and bool(END.search(text))
        if not cleaned.strip():
            raise MinigptError(f"{where} holds no text once the Project Gutenberg header and "
                               "footer are removed. Replace the file.")
        self._provenance.append(prov)
        return cleaned

    def _raw(self, work: Work) -> tuple[bytes, str]:
        o = self.options
        if o.from_dir is not None:
            path = Path(o.from_dir) / work.file_name
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raise MinigptError(
                    f"The nietzsche source's from_dir {o.from_dir} has no {work.file_name} "
                    f"(\"{work.title}\", Gutenberg ebook #{work.ebook}). Add it, or leave it out "
                    "with the works option.") from None
            except OSError as e:
                raise MinigptError(f"{path} cannot be read: {e}.") from None
            if o.verify:
                digest = hashlib.sha256(raw).hexdigest()
                if digest != work.sha256:
                    raise MinigptError(
                        f"{path} has sha256 {digest}, not the pinned {work.sha256} of "
                        f"\"{work.title}\" (ebook #{work.ebook}): it is another edition or a "
                        "modified copy. Use the pinned file, or pass --option verify=false to "
                        "read it anyway.")
            return raw, str(path)
        return self._download(work), work.url(o.base_url)

    def _download(self, work: Work) -> bytes:

        o = self.options
        url = work.url(o.base_url)
        cache = Path(o.cache_dir).expanduser() if o.cache_dir else cache_root() / "nietzsche"
        dest = cache_path(cache, url)
        try:
            path = download(url, dest, sha256=work.sha256 if o.verify else None)
        except DownloadError as e:
            hint = (" Project Gutenberg may have re-issued the file: pass --option "
                    "from_dir=DIR with the pinned copies, or --option verify=false to accept "
                    "the new one.") if "sha256" in str(e) else ""
            raise MinigptError(f"\"{work.title}\" (ebook #{work.ebook}): {e}{hint}") from None
        return path.read_bytes()

    def provenance(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._provenance]
