"""A resumable HTTP(S) byte stream: retries with backoff, Range resume, progress events.

``RemoteFile(url)`` is a read-only stream over a GET. When the connection breaks (reset, timeout,
early close before Content-Length), it reconnects with ``Range: bytes=<offset>-`` and carries on
at the byte it had reached, so a gzip/WARC reader on top never notices. A server that ignores
Range (200 instead of 206) is handled by skipping the bytes already delivered. Transient failures
(connection refused, timeouts, 429, 5xx) are retried with exponential backoff; a 4xx answer is a
``DownloadError`` at once. Only the standard library (urllib) is used; progress goes to a
callback as ``DownloadProgress`` events, never printed.
"""

from __future__ import annotations

import http.client
import io
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from minigpt_cli import __version__
from minigpt_cli.errors import MinigptError

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20  # bytes per read
PROGRESS_EVERY = 1 << 18  # bytes between progress events from a RemoteFile
_jitter = random.Random()  # not the global RNG: seeded runs elsewhere must not shift


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``retries`` attempts after the first failure in a row, sleeping
    ``backoff * 2**k`` seconds (capped at ``backoff_max``, +-``jitter`` fraction) before retry k."""

    retries: int = 5
    backoff: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.1
    timeout: float = 60.0  # seconds for connecting and for each read

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        base = min(self.backoff * (2**attempt), self.backoff_max)
        if retry_after is not None:
            base = min(max(base, retry_after), self.backoff_max)
        return base * (1 + _jitter.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True)
class DownloadProgress:
    url: str
    done: int  # bytes of the file received so far (including a resumed prefix)
    total: int | None  # the file's size when the server said it


class DownloadError(MinigptError):
    """A URL that could not be fetched (after retries, or at once for a 4xx answer)."""

    def __init__(self, message: str, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class _Transient(Exception):
    """A failure worth retrying (connection refused/reset, timeout, 5xx, 429)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _connect(
    url: str, offset: int, timeout: float
) -> tuple[http.client.HTTPResponse, int, int | None]:
    """One GET from ``offset``; returns (response, offset the body starts at, full size or None)."""
    headers = {"User-Agent": f"minigpt/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            match = re.fullmatch(r"bytes \*/(\d+)", e.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset:  # we already hold the whole file
                return _EmptyResponse(), offset, offset
        if e.code in RETRY_STATUSES:
            raise _Transient(f"HTTP {e.code} {e.reason}", _retry_after(e.headers)) from None
        raise DownloadError(
            f"Could not download {url}: the server answered HTTP {e.code} ({e.reason}). "
            "Check the URL (or the crawl id / base URL it was built from).",
            url,
            e.code,
        ) from None
    except urllib.error.URLError as e:
        raise _Transient(str(e.reason)) from None
    except ValueError as e:  # malformed URL
        raise DownloadError(f"Cannot download {url!r}: {e}.", url) from None
    except (OSError, http.client.HTTPException) as e:
        raise _Transient(repr(e)) from None
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            response.close()
            raise _Transient(f"bad Content-Range {response.headers.get('Content-Range')!r}")
        total = int(match.group(2)) if match.group(2) != "*" else None
        return response, offset, total
    return response, 0, length  # 200: the server sent the whole file


class _EmptyResponse(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        return 0


class RemoteFile(io.RawIOBase):
    """A forward-only byte stream over an HTTP(S) GET that resumes broken transfers.

    ``position`` is the byte offset reached in the remote file, ``total`` its size when known,
    ``reconnects`` how many times the transfer was resumed or restarted.
    """

    def __init__(
        self,
        url: str,
        policy: RetryPolicy | None = None,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        offset: int = 0,
    ) -> None:
        super().__init__()
        if urlsplit(url).scheme not in ("http", "https"):
            raise DownloadError(f"Cannot download {url!r}: only http:// and https:// URLs.", url)
        self.url = url
        self.policy = policy or RetryPolicy()
        self.on_progress = on_progress
        self.position = offset
        self.total: int | None = None
        self.reconnects = 0
        self._reported = offset
        self._response = None
        self._attempt = 0  # failures in a row before the current connection
        self._retry_hint: float | None = None  # a server's Retry-After, in seconds
        self._open(attempt=0)

    def readable(self) -> bool:
        return True

    def _open(self, attempt: int, last_error: str = "") -> None:
        """Connect at ``position``, retrying transient failures with backoff."""
        while True:
            if attempt > self.policy.retries:
                raise DownloadError(
                    f"Could not download {self.url} after {attempt} attempt(s): {last_error}. "
                    "Check the network and the URL; the retries and backoff options set how "
                    "hard to try.",
                    self.url,
                )
            if attempt:
                time.sleep(self.policy.delay(attempt - 1, self._retry_hint))
            try:
                response, start, total = _connect(self.url, self.position, self.policy.timeout)
            except _Transient as e:
                attempt, last_error, self._retry_hint = attempt + 1, str(e), e.retry_after
                continue
            self._retry_hint = None
            if total is not None:
                self.total = total
            try:
                _skip(response, self.position - start)  # a 200 answer to a Range request
            except (OSError, http.client.HTTPException) as e:
                response.close()
                attempt, last_error = attempt + 1, repr(e)
                continue
            self._response = response
            self._attempt = attempt
            return

    def readinto(self, buffer) -> int:
        if self._response is None:
            raise ValueError("read from a closed RemoteFile")
        while True:
            try:
                n = self._response.readinto(buffer)
            except (OSError, http.client.HTTPException) as e:
                error = repr(e)
            else:
                if n or not len(buffer) or self.total is None or self.position >= self.total:
                    self._advance(n)
                    return n
                error = f"connection closed at byte {self.position} of {self.total}"
            self._response.close()
            self.reconnects += 1
            # _advance() zeroes the count once a connection delivers data: fresh retries
            self._open(attempt=self._attempt + 1, last_error=error)

    def _advance(self, n: int) -> None:
        if n:
            self._attempt = 0
        self.position += n
        done = not n or (self.total is not None and self.position >= self.total)
        if self.on_progress and (done or self.position - self._reported >= PROGRESS_EVERY):
            self._reported = self.position
            self.on_progress(DownloadProgress(self.url, self.position, self.total))

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        super().close()


def _skip(response, n: int) -> None:
    while n > 0:
        got = response.read(min(n, CHUNK))
        if not got:
            raise http.client.IncompleteRead(b"", n)
        n -= len(got)


def fetch_bytes(url: str, policy: RetryPolicy | None = None) -> bytes:
    """A whole (small) remote file in memory, e.g. a crawl's ``wet.paths.gz`` listing."""
    with RemoteFile(url, policy) as remote:
        return remote.read()
