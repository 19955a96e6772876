"""Local file sources: `text` (plain text), `jsonl` and `parquet` (a configurable text field).

Inputs are files, directories (walked recursively, keeping names with the source's suffixes)
or glob patterns, resolved once into a sorted list so that a run, its resume and every
``--part`` see the same order. Every input gets a provenance entry counting what was read and
what was wrong with it (invalid UTF-8, unparsable lines, a truncated gzip stream): bad input is
counted and reported, and reading goes on with the next record or file.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from minigpt_cli.documents import Document, PluginOptions, is_blank
from minigpt_cli.errors import MinigptError
from minigpt_cli.sources.textfile import binary_reason, decode, read_lines, read_whole

GLOB_CHARS = set("*?[")


def expand_inputs(patterns: list[str], suffixes: list[str], what: str) -> list[str]:
    """Resolve files, directories and globs into a sorted, de-duplicated list of files."""
    if not patterns:
        raise MinigptError(
            f"The {what} source has no inputs. Give files, directories or glob patterns after "
            f"the source name, e.g. `minigpt shard {what} data/*.txt --out shards/`."
        )
    found: dict[str, None] = {}
    for pattern in patterns:
        if GLOB_CHARS & set(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                raise MinigptError(f"The {what} input pattern {pattern!r} matches no files.")
        elif os.path.isdir(pattern):
            files = sorted(str(p) for p in Path(pattern).rglob("*")
                           if p.is_file() and p.name.endswith(tuple(suffixes)))
            if not files:
                raise MinigptError(
                    f"The {what} input directory {pattern} holds no files ending in "
                    f"{', '.join(suffixes)}. Name the files directly or set the `suffixes` option."
                )
        elif os.path.isfile(pattern):
            files = [pattern]
        else:
            raise MinigptError(
                f"The {what} input {pattern} does not exist. Check the path (relative paths are "
                f"taken from {os.getcwd()})."
            )
        found.update(dict.fromkeys(files))
    return list(found)


class FilesOptions(PluginOptions):
    inputs: list[str] = Field(default_factory=list,
                              description="Files, directories or glob patterns to read.")
    suffixes: list[str] = Field(default_factory=lambda: [".txt"],
                                description="File name endings kept when walking a directory.")
    encoding_errors: Literal["replace", "skip", "strict"] = Field(
        "replace", description="Invalid UTF-8: replace the bytes with U+FFFD, skip the document, "
        "or stop with an error. Counted either way.")


class FileSource:
    """Shared by the file sources: resolved inputs, per-input provenance."""

    name: ClassVar[str] = "files"
    Options: ClassVar[type[FilesOptions]] = FilesOptions

    def __init__(self, options: FilesOptions) -> None:
        self.options = options
        self._inputs = expand_inputs(list(options.inputs), list(options.suffixes), self.name)
        self._provenance: dict[str, dict[str, Any]] = {}
        self._total: int | None = None

    def inputs(self) -> list[str]:
        return list(self._inputs)

    def documents(self) -> Iterator[Document]:
        for path in self._inputs:
            yield from self.documents_from(path)

    def sniff(self, input: str) -> bool:
        """Whether to check that ``input`` is text (not a binary format, not a remote name)."""
        return not input.endswith(".parquet") and os.path.isfile(input)

    def documents_from(self, input: str) -> Iterator[Document]:
        prov = self._provenance[input] = {"input": input, "documents": 0, "bytes": 0}
        if self.sniff(input) and (why := binary_reason(input)) is not None:
            prov["binary"] = why  # skipped; the CLI warns, naming the file
            return
        for doc in self._read(input, prov):
            prov["documents"] += 1
            yield doc

    def _read(self, path: str, prov: dict[str, Any]) -> Iterator[Document]:
        raise NotImplementedError

    def provenance(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._provenance.values()]

    def progress(self) -> Progress:
        """Bytes read so far; the total when every input is a plain file (ETA by bytes)."""
        if self._total is None:
            plain = all(not p.endswith((".gz", ".parquet")) and os.path.isfile(p)
                        for p in self._inputs)
            self._total = sum(os.path.getsize(p) for p in self._inputs) if plain else 0
        return Progress(sum(p.get("bytes", 0) for p in self._provenance.values()),
                        self._total or None)


@dataclass(frozen=True)
class Progress:
    bytes_read: int
    bytes_total: int | None
    bytes_downloaded: int | None = None


class TextOptions(FilesOptions):
    split: Literal["file", "paragraph", "line"] = Field(
        "file", description="A document per file, per blank-line-separated paragraph, or per "
        "non-empty line.")


class TextSource(FileSource):
    """Plain UTF-8 text (a leading BOM is dropped, CRLF becomes LF); .gz files are read too."""

    name: ClassVar[str] = "text"
    Options: ClassVar[type[TextOptions]] = TextOptions

    def _read(self, path: str, prov: dict[str, Any]) -> Iterator[Document]:
        o = self.options
        if o.split == "file":
            raw = read_whole(path, prov)
            prov["bytes"] = len(raw)
            if b"\r" in raw:  # CRLF -> LF on bytes: several times faster than on str, same text
                raw = raw.replace(b"\r\n", b"\n")
            text = decode(raw, prov, o.encoding_errors, "utf-8-sig")  # drops a BOM, no copy
            if text is not None and not is_blank(text):
                yield Document(text=text, id=path, source=self.name, meta={"file": path})
            return
        lines: list[str] = []
        start = 0
        for n, raw in enumerate(read_lines(path, prov), start=1):
            line = decode(raw, prov, o.encoding_errors)
            if line is None:
                continue
            line = _normalize(line) if n == 1 else line.replace("\r\n", "\n")
            if o.split == "line":
                if line.strip():
                    yield self._doc(line.rstrip("\n"), f"{path}:{n}", path)
            elif line.strip():
                start = start or n
                lines.append(line)
            elif lines:
                yield self._doc("".join(lines).rstrip("\n"), f"{path}:{start}", path)
                lines, start = [], 0
        if lines:
            yield self._doc("".join(lines).rstrip("\n"), f"{path}:{start}", path)

    def _doc(self, text: str, id: str, path: str) -> Document:
        return Document(text=text, id=id, source=self.name, meta={"file": path})


def _normalize(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


class RecordOptions(FilesOptions):
    text_field: str = Field("text", description="Field holding the text (a.b for nested).")
    id_field: str | None = Field("id", description="Field used as the document id, if present.")
    meta_fields: list[str] = Field(default_factory=list,
                                   description="Fields copied into the document's metadata.")


def field(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def read_jsonl(path: str, prov: dict[str, Any], errors: str) -> Iterator[dict[str, Any]]:
    """JSON objects, one a line; unparsable lines are counted and skipped."""
    for raw in read_lines(path, prov):
        if not raw.strip():
            continue
        prov["records"] = prov.get("records", 0) + 1
        line = decode(raw, prov, errors)
        try:
            record = json.loads(line) if line is not None else None
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            yield record
        elif line is not None:
            prov["bad_records"] = prov.get("bad_records", 0) + 1


def read_parquet(path: str, prov: dict[str, Any], columns: list[str] | None) -> Iterator[dict]:
    """Rows of a parquet file, a record batch at a time (memory stays bounded)."""
    pq = require_pyarrow()
    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        wanted = [c for c in columns if c in names] if columns is not None else None
        for batch in pf.iter_batches(batch_size=1024, columns=wanted):
            prov["bytes"] = prov.get("bytes", 0) + batch.nbytes
            for row in batch.to_pylist():
                prov["records"] = prov.get("records", 0) + 1
                yield row
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        prov["unreadable"] = f"{type(e).__name__}: {e}"


def require_pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MinigptError(
            "Reading parquet files needs pyarrow, which is not installed. Install it with "
            "`pip install 'minigpt[parquet]'` (or `pip install pyarrow`)."
        ) from None
    return pq


class RecordSource(FileSource):
    """Records (JSON lines or parquet rows) with a text field become documents."""

    Options: ClassVar[type[RecordOptions]] = RecordOptions

    def _records(self, path: str, prov: dict[str, Any]) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def _read(self, path: str, prov: dict[str, Any]) -> Iterator[Document]:
        o = self.options
        for n, record in enumerate(self._records(path, prov)):
            text = field(record, o.text_field)
            if not isinstance(text, str):
                prov["missing_text"] = prov.get("missing_text", 0) + 1
                continue
            rid = field(record, o.id_field) if o.id_field else None
            meta = {"file": path} | {k: field(record, k) for k in o.meta_fields}
            yield Document(text=text, id=str(rid) if rid is not None else f"{path}:{n}",
                           source=self.name, meta=meta)


class JsonlOptions(RecordOptions):
    suffixes: list[str] = Field(default_factory=lambda: [".jsonl", ".jsonl.gz", ".ndjson"],
                                description="File name endings kept when walking a directory.")


class JsonlSource(RecordSource):
    """JSON lines (optionally .gz); lines that are not JSON objects are counted and skipped."""

    name: ClassVar[str] = "jsonl"
    Options: ClassVar[type[JsonlOptions]] = JsonlOptions

    def _records(self, path: str, prov: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return read_jsonl(path, prov, self.options.encoding_errors)


class ParquetOptions(RecordOptions):
    suffixes: list[str] = Field(default_factory=lambda: [".parquet"],
                                description="File name endings kept when walking a directory.")


class ParquetSource(RecordSource):
    """Parquet files through pyarrow (optional extra: `pip install 'minigpt[parquet]'`)."""

    name: ClassVar[str] = "parquet"
    Options: ClassVar[type[ParquetOptions]] = ParquetOptions

    def __init__(self, options: ParquetOptions) -> None:
        require_pyarrow()
        super().__init__(options)

    def _records(self, path: str, prov: dict[str, Any]) -> Iterator[dict[str, Any]]:
        o = self.options
        top = {f.split(".")[0] for f in [o.text_field, *o.meta_fields] + ([o.id_field] if o.id_field else [])}
        return read_parquet(path, prov, sorted(top))
