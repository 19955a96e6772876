"""Reading one Common Crawl WET stream record by record, counting everything that goes wrong.

A WET file is WARC: a ``warcinfo`` record, then one ``conversion`` record per page holding the
page's extracted text (UTF-8). Common Crawl gzips each record as its own member; other WET files
are one gzip member or not compressed at all. We decompress with the standard library (any gzip
layout, detected by its magic bytes rather than the file name) and parse the WARC records with
warcio, one record in memory at a time.

Damage is reported, not fatal: a truncated file yields the records before the cut, a malformed
record is skipped when the parser can find the next one and ends the file when it cannot, and
invalid UTF-8 is replaced (or the document skipped) and counted. All of it lands in ``WetStats``.
"""

from __future__ import annotations

import gzip
import http.client
import io
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, Literal

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from minigpt_cli.documents import Document
from minigpt_cli.download import DownloadError
from minigpt_cli.sources import warc

GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD = 64 << 20  # bytes; Common Crawl truncates pages far below this
MAX_MESSAGES = 20  # error messages kept per input (all are counted)
READ_BUFFER = 1 << 20
_WARCIO_SLIPS = (ValueError, AttributeError, KeyError, IndexError)


@dataclass
class WetStats:
    """What happened to one input; ``as_dict()`` is its provenance entry in the manifest."""

    input: str
    records: int = 0  # WARC records parsed, of every type
    documents: int = 0  # conversion records turned into documents
    bytes: int = 0  # bytes read from the file or the network (compressed)
    downloaded: int = 0  # bytes fetched over HTTP (the cached or streamed file)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    malformed_records: int = 0  # skipped: bad Content-Length, cut-off body, not a WARC record
    empty_documents: int = 0  # conversion records with no text (skipped)
    invalid_utf8_documents: int = 0  # documents with bytes that are not UTF-8
    invalid_utf8_sequences: int = 0  # replaced by U+FFFD (or skipped with the document)
    reconnects: int = 0  # HTTP transfers resumed after a broken connection
    html_pages: int = 0  # WARC response records holding HTML (text extracted: warc.py)
    not_html: int = 0  # WARC response records that are no HTML page (skipped)
    no_main_text: int = 0  # HTML pages the extractor found no main text in (skipped)

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_MESSAGES:
            self.errors.append(message)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Counted(io.RawIOBase):
    """Counts the bytes read through it into ``stats.bytes`` (compressed bytes, for progress)."""

    def __init__(self, raw: BinaryIO, stats: WetStats) -> None:
        super().__init__()
        self._raw, self._stats = raw, stats

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self._stats.bytes += n or 0
        return n


class _QuietArchiveIterator(ArchiveIterator):
    # warcio writes a warning to stderr when a record is not followed by the blank lines its
    # Content-Length promises; we count those through err_count and report them ourselves.
    INC_RECORD = ""


def read_wet(
    raw: BinaryIO,
    stats: WetStats,
    invalid_utf8: Literal["replace", "skip"] = "replace",
    extractor: str | None = None,
) -> Iterator[Document]:
    """Documents from the ``conversion`` records of one WET stream (gzipped or not), and with
    an ``extractor`` the main text of the HTML ``response`` records of a WARC stream."""
    buffered = io.BufferedReader(_Counted(raw, stats), READ_BUFFER)
    head = buffered.peek(2)[:2]
    if not head:
        stats.error(f"{stats.input} is empty (0 bytes): no WARC records.")
        return
    stream = gzip.GzipFile(fileobj=buffered, mode="rb") if head == GZIP_MAGIC else buffered
    records = _QuietArchiveIterator(stream)
    conversions = 0
    kinds: dict[str, int] = {}
    try:
        for record in records:
            stats.records += 1
            if record.rec_type == "response" and extractor:
                kinds["response"] = kinds.get("response", 0) + 1
                doc = _page(record, stats, extractor)
                if doc is not None:
                    stats.documents += 1
                    yield doc
                continue
            if record.rec_type != "conversion":
                kinds[record.rec_type] = kinds.get(record.rec_type, 0) + 1
                continue
            conversions += 1
            doc = _document(record, records, stats, invalid_utf8)
            if doc is not None:
                stats.documents += 1
                yield doc
        if stream is not buffered:
            stream.read(1)  # warcio stops quietly at a gzip stream cut before its first record
    except EOFError:
        stats.error(
            f"{stats.input} is truncated: the gzip data ends mid-record after {stats.bytes:,} "
            f"compressed bytes (a download cut off?). The {stats.documents} documents before the "
            "cut were kept; fetch the file again for the rest."
        )
    except (gzip.BadGzipFile, zlib.error) as e:
        stats.error(
            f"{stats.input} has corrupt gzip data near byte {stats.bytes:,} ({e}); "
            "the rest of the file was skipped."
        )
    except (ArchiveLoadFailed, *_WARCIO_SLIPS) as e:
        # warcio raises ArchiveLoadFailed for most bad headers, and plain errors for some
        # (a response record without WARC-Target-URI gives an AttributeError)
        first_line = (str(e).strip().splitlines() or [repr(e)])[0]
        stats.malformed_records += 1
        stats.error(
            f"{stats.input}: malformed WARC record after record {stats.records} "
            f"({first_line}); the rest of the file was skipped."
        )
    except DownloadError as e:
        stats.error(
            f"{stats.input}: the download broke off after {stats.bytes:,} bytes and "
            f"could not be resumed: {e}"
        )
    except (OSError, http.client.HTTPException) as e:
        stats.error(f"{stats.input}: read error after {stats.bytes:,} bytes: {e!r}.")
    except warc.ExtractorMissing as e:
        stats.error(f"{stats.input}: {e}.")
        return
    if stats.records and not conversions and not stats.html_pages:
        stats.error(not_wet(stats.input, stats.records, kinds))


def _page(record, stats: WetStats, extractor: str) -> Document | None:
    """The main text of a WARC response record (warc.py), or None (counted)."""
    html = warc.html_of(record)
    if html is None:
        stats.not_html += 1
        return None
    stats.html_pages += 1
    record_id = record.rec_headers.get_header("WARC-Record-ID") or \
        f"{stats.input}#{stats.records}"
    doc = warc.document(record, record_id, warc.decode(*html), extractor, stats.input)
    if doc is None:
        stats.no_main_text += 1
    return doc


def not_wet(name: str, records: int, kinds: dict[str, int]) -> str:
    """What a WARC stream without 'conversion' records is, and which file to use instead."""
    http = sum(kinds.get(k, 0) for k in ("response", "request", "revisit", "resource"))
    if http:
        return (f"{name} is a WARC file of crawled pages, but none of its "
                f"{kinds.get('response', 0)} HTTP response records is an HTML page (status "
                "2xx, Content-Type text/html) to extract text from, and it has no WET "
                "'conversion' records: there is no page text in it.")
    if kinds.get("metadata"):
        return (f"{name} is a WAT file ({kinds['metadata']} 'metadata' records of JSON about "
                "pages), not a WET file: it holds no page text. Use the matching WET file: the "
                "same path with /wat/ -> /wet/ and .warc.wat.gz -> .warc.wet.gz.")
    shown = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "none readable"
    return (f"{name} holds {records} WARC records ({shown}) but no 'conversion' records, so "
            "no page text: the commoncrawl source reads WET files (*.warc.wet.gz).")


def _document(
    record, records: ArchiveIterator, stats: WetStats, invalid_utf8: str
) -> Document | None:
    """The record as a Document, or None (counted) when it is malformed, empty or undecodable."""
    headers = record.rec_headers
    record_id = headers.get_header("WARC-Record-ID") or f"{stats.input}#{stats.records}"
    declared = (headers.get_header("Content-Length") or "").strip()
    body = record.content_stream().read(MAX_RECORD + 1)
    errors_before = records.err_count
    records.read_to_end()  # consumes the separator; counts an error if the length was wrong
    problem = None
    if not declared.isdigit():
        problem = f"Content-Length {declared or 'missing'!r}"
    elif len(body) > MAX_RECORD:
        problem = f"larger than {MAX_RECORD >> 20} MiB"
    elif len(body) < int(declared):
        problem = f"body cut off at {len(body)} of {declared} bytes"
    elif records.err_count > errors_before:
        problem = "not followed by a record separator (wrong Content-Length?)"
    if problem:
        stats.malformed_records += 1
        stats.error(f"{stats.input}: skipped malformed record {record_id}: {problem}.")
        return None
    text = body.decode("utf-8", errors="replace")
    # U+FFFD in the text that the bytes did not spell out marks an invalid sequence
    invalid = text.count("\ufffd") - body.count(b"\xef\xbf\xbd")
    if invalid:
        stats.invalid_utf8_documents += 1
        stats.invalid_utf8_sequences += invalid
        if invalid_utf8 == "skip":
            return None
    if not text.strip():
        stats.empty_documents += 1
        return None
    meta: dict[str, Any] = {
        "url": headers.get_header("WARC-Target-URI"),
        "date": headers.get_header("WARC-Date"),
        "input": stats.input,
    }
    language = headers.get_header("WARC-Identified-Content-Language")
    if language:
        meta["language"] = language
    return Document(text=text, id=record_id, source="commoncrawl", meta=meta)
