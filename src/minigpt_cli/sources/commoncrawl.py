"""The ``commoncrawl`` source: page text from Common Crawl WET files, local or over HTTP, or
the main text of the HTML pages of its WARC files (extracted here: sources/warc.py).

Inputs, in any mix: WET files (``.warc.wet``, ``.warc.wet.gz``), WARC files (``.warc.gz``),
folders (searched recursively for WET files), globs, ``http(s)://`` URLs, and crawl ids such as
``CC-MAIN-2024-22``. A crawl id is resolved through that crawl's
``crawl-data/<ID>/wet.paths.gz`` (``kind=warc``: ``warc.paths.gz``) listing on ``base_url``
(Common Crawl's public data host unless set), taking ``segments`` files from ``first_segment`` on.

Remote files are streamed through the gzip/WARC reader as they arrive (a broken connection is
resumed with a Range request at the byte reached), or, with ``cache_dir``, downloaded there first
(resumable across runs, reused by later runs). Each ``conversion`` record becomes a Document with
meta ``url``, ``date``, ``language`` (where the record has one) and ``input``. What went wrong per
input is counted in ``provenance()``; only when no input could be read at all is it an error.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

from pydantic import Field, field_validator

from minigpt_cli.documents import Document, PluginOptions
from minigpt_cli.download import (
    DownloadError,
    DownloadProgress,
    RemoteFile,
    RetryPolicy,
    cache_path,
    download,
    fetch_bytes,
)
from minigpt_cli.errors import MinigptError
from minigpt_cli.sources.crawl_inputs import CRAWL_ID, URL_PREFIXES, check_inputs, local_size
from minigpt_cli.sources.wet import WetStats, read_wet


class CommonCrawlOptions(PluginOptions):
    inputs: list[str] = Field(
        default_factory=list,
        description="WET files (.warc.wet, .warc.wet.gz), folders, globs, http(s) URLs, or crawl "
        "ids such as CC-MAIN-2024-22",
    )
    segments: int | None = Field(
        None, ge=1, description="with a crawl id: how many of its WET files to read (default all)"
    )
    first_segment: int = Field(
        0, ge=0, description="with a crawl id: index of the first WET file in its wet.paths.gz"
    )
    base_url: str = Field(
        "https://data.commoncrawl.org/",
        description="Common Crawl data host that crawl ids are resolved against (or a mirror)",
    )
    cache_dir: Path | None = Field(
        None,
        description="download remote files here first (resumable, reused by later runs); "
        "default: stream them without storing",
    )
    retries: int = Field(5, ge=0, description="retries after a failed or broken HTTP transfer")
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry, doubling")
    backoff_max: float = Field(60.0, ge=0, description="longest wait between retries, seconds")
    timeout: float = Field(60.0, gt=0, description="HTTP connect/read timeout, seconds")
    max_failed_inputs: int = Field(
        3, ge=1, description="stop after this many inputs in a row could not be read at all"
    )
    invalid_utf8: Literal["replace", "skip"] = Field(
        "replace", description="invalid UTF-8 bytes: replace with U+FFFD, or skip the document"
    )
    extractor: Literal["resiliparse", "trafilatura"] = Field(
        "resiliparse", description="WARC (HTML) inputs: the main-text extractor "
        "(pip install \"minigpt[warc]\")"
    )
    kind: Literal["wet", "warc"] = Field(
        "wet", description="with a crawl id: read its WET files (text) or WARC files (HTML, "
        "extracted here)"
    )

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | Path) else value

    @field_validator("cache_dir")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not value.startswith(URL_PREFIXES):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"


@dataclass(frozen=True)
class SourceProgress:
    """A snapshot for progress bars: inputs started, bytes read/downloaded, total if known."""

    inputs_started: int
    inputs_total: int
    input: str | None
    bytes_read: int
    bytes_downloaded: int
    bytes_total: int | None  # known when every input is a local file


class CommonCrawlSource:
    name: ClassVar[str] = "commoncrawl"
    Options: ClassVar[type[PluginOptions]] = CommonCrawlOptions

    def __init__(self, options: PluginOptions | dict | None = None) -> None:
        if not isinstance(options, CommonCrawlOptions):
            raw = options.model_dump() if isinstance(options, PluginOptions) else options or {}
            options = CommonCrawlOptions.model_validate(raw)
        self.options = options
        self.policy = RetryPolicy(
            retries=options.retries,
            backoff=options.backoff,
            backoff_max=options.backoff_max,
            timeout=options.timeout,
        )
        self._entries = check_inputs(options)  # local paths, URLs and crawl ids, in order
        self._inputs: list[str] | None = None
        self._stats: dict[str, WetStats] = {}  # by input, in the order read
        self._failed_in_a_row = 0
        self._local_bytes: int | None = None  # total size when every input is local, else 0

    def inputs(self) -> list[str]:
        """Every file and URL this source reads, in order (crawl ids resolved: needs network)."""
        if self._inputs is None:
            resolved: list[str] = []
            for entry in self._entries:
                is_crawl = CRAWL_ID.fullmatch(entry)
                resolved += self._crawl_urls(entry.upper()) if is_crawl else [entry]
            self._inputs = list(dict.fromkeys(resolved))
        return self._inputs

    def documents(self) -> Iterator[Document]:
        for name in self.inputs():
            yield from self.documents_from(name)

    def documents_from(self, input: str) -> Iterator[Document]:
        """The documents of one input (a file or URL from ``inputs()``), in order."""
        stats = WetStats(input=input)
        self._stats.pop(input, None)  # read again (a resumed run): the new count replaces it
        self._stats[input] = stats
        try:
            raw = self._open(input, stats)
        except DownloadError as e:
            stats.error(str(e))
        except OSError as e:
            stats.error(f"Cannot read {input}: {e.strerror or e}.")
        else:
            with raw:
                yield from read_wet(raw, stats, self.options.invalid_utf8,
                                    self.options.extractor)
                stats.reconnects = getattr(raw, "reconnects", 0)
        self._stop_if_failing(stats)

    def provenance(self) -> list[dict[str, Any]]:
        return [stats.as_dict() for stats in self._stats.values()]

    def progress(self) -> SourceProgress:
        inputs = self._inputs if self._inputs is not None else self._entries
        if self._local_bytes is None:
            self._local_bytes = local_size(inputs)
        started = list(self._stats.values())
        return SourceProgress(
            inputs_started=len(started),
            inputs_total=len(inputs),
            input=started[-1].input if started else None,
            bytes_read=sum(s.bytes for s in started),
            bytes_downloaded=sum(s.downloaded for s in started),
            bytes_total=self._local_bytes or None,
        )

    def _open(self, name: str, stats: WetStats) -> BinaryIO:
        if not name.startswith(URL_PREFIXES):
            return open(name, "rb")

        def on_progress(event: DownloadProgress) -> None:
            stats.downloaded = event.done

        if self.options.cache_dir is None:
            return RemoteFile(name, self.policy, on_progress)
        local = download(
            name,
            cache_path(self.options.cache_dir, name),
            policy=self.policy,
            on_progress=on_progress,
        )
        return open(local, "rb")

    def _crawl_urls(self, crawl_id: str) -> list[str]:
        base = self.options.base_url
        listing = f"{base}crawl-data/{crawl_id}/{self.options.kind}.paths.gz"
        try:
            if self.options.cache_dir is None:
                data = fetch_bytes(listing, self.policy)
            else:
                data = download(
                    listing, cache_path(self.options.cache_dir, listing), policy=self.policy
                ).read_bytes()
        except DownloadError as e:
            if e.status == 404:
                raise MinigptError(
                    f"Common Crawl has no crawl {crawl_id!r}: {listing} answered 404. Crawl ids "
                    "look like CC-MAIN-2024-22 (the list is at "
                    "https://index.commoncrawl.org/collinfo.json); base_url sets the host."
                ) from None
            raise
        try:
            paths = gzip.decompress(data).decode("utf-8").split()
        except (OSError, EOFError, UnicodeDecodeError):
            raise MinigptError(
                f"{listing} is not a gzipped list of WET paths; is base_url "
                f"({base}) a Common Crawl data host?"
            ) from None
        first, count = self.options.first_segment, self.options.segments
        picked = paths[first : None if count is None else first + count]
        if not picked:
            raise MinigptError(
                f"{crawl_id} lists {len(paths)} WET files; first_segment {first} is past the end."
            )
        return [base + path.lstrip("/") for path in picked]

    def _stop_if_failing(self, stats: WetStats) -> None:
        """Going on is sound while some inputs can be read; stop when none can, or when
        ``max_failed_inputs`` in a row could not be read at all (network down, wrong host):
        skipping the rest would only turn an outage into silently missing data."""
        if stats.records or not stats.error_count:
            self._failed_in_a_row = 0
            return
        self._failed_in_a_row += 1
        tried = list(self._stats.values())
        every_input_failed = set(self.inputs()) <= self._stats.keys() and not any(
            s.records for s in tried
        )
        if every_input_failed:
            failed = tried
            what = f"No WARC record could be read from any of the {len(tried)} commoncrawl input(s)"
        elif self._failed_in_a_row >= self.options.max_failed_inputs:
            failed = tried[-self._failed_in_a_row :]
            what = (
                f"{len(failed)} commoncrawl inputs in a row could not be read at all; stopping "
                "rather than skipping the rest (max_failed_inputs sets how many)"
            )
        else:
            return
        shown = " ".join(s.errors[0] for s in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        raise MinigptError(f"{what}. {shown}{more}")
