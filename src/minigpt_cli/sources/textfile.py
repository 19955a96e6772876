"""A local input file's bytes: opened through gzip when its name ends in .gz, read whole or
line by line, with what is wrong with it recorded in its provenance entry rather than raised --
a truncated or corrupt gzip stream keeps the text before the damage; a file that looks binary
(NUL bytes, or mostly invalid UTF-8 at its start) is named so that it can be skipped."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from minigpt_cli.errors import MinigptError

SNIFF_BYTES = 8192  # the start of a file that is checked for binary content
MAX_INVALID_SHARE = 0.1  # of the sniffed bytes not UTF-8: more, and the file is not text
READ_BLOCK = 1 << 20
TRUNCATED = (EOFError, gzip.BadGzipFile, zlib.error, OSError)  # a cut or corrupt (gzip) file


def open_binary(path: str) -> BinaryIO:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # type: ignore


def binary_reason(path: str) -> str | None:
    """Why ``path`` is not text (NUL bytes, or mostly invalid UTF-8 at its start), or None.
    Text in UTF-16 or another wide encoding has NUL bytes too: it is not UTF-8 either."""
    try:
        with open_binary(path) as f:
            head = f.read(SNIFF_BYTES)
    except TRUNCATED:
        return None  # reading it reports what is wrong with it
    if b"\0" in head:
        return ("it looks binary (NUL bytes in its first "
                f"{min(len(head), SNIFF_BYTES):,} bytes), not text; if it is text in another "
                "encoding (UTF-16?), convert it to UTF-8")
    text = head.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - head.count(b"\xef\xbf\xbd")
    if len(head) >= 64 and invalid > MAX_INVALID_SHARE * len(head):
        return (f"it looks binary ({invalid:,} of its first {len(head):,} bytes are not UTF-8), "
                "not text; if it is text in another encoding, convert it to UTF-8")
    return None


def decode(raw: bytes, prov: dict[str, Any], errors: str, codec: str = "utf-8") -> str | None:
    """UTF-8 text of ``raw``; invalid bytes are counted, then replaced, skipped or refused."""
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as e:
        prov["invalid_utf8"] = prov.get("invalid_utf8", 0) + 1
        if errors == "strict":
            raise MinigptError(
                f"{prov['input']} holds bytes that are not UTF-8 ({e.reason} at byte "
                f"{e.start}). Convert it to UTF-8, or set the option encoding_errors=replace."
            ) from None
        return raw.decode(codec, errors="replace") if errors == "replace" else None


def read_whole(path: str, prov: dict[str, Any]) -> bytes:
    """The (decompressed) bytes of a file; a truncated or corrupt gzip stream gives all that
    came before the damage, and is recorded in ``prov``."""
    blocks: list[bytes] = []
    try:
        with open(path, "rb") as f:
            for block in _blocks(f, path):
                blocks.append(block)
    except TRUNCATED as e:
        prov["truncated"] = _damage(e, sum(map(len, blocks)))
    return b"".join(blocks)


def _gunzip(f: BinaryIO) -> Iterator[bytes]:
    """Decompressed blocks of a gzip file, one member after another, up to the last byte that
    can be decompressed (``gzip.GzipFile.read`` drops what it had when the stream is cut)."""
    d, fed = zlib.decompressobj(wbits=31), False
    while chunk := f.read(READ_BLOCK):
        while chunk:
            fed = True
            yield d.decompress(chunk)
            chunk = b""
            if d.eof:  # a member ended: the next one starts in what is left over
                chunk, d, fed = d.unused_data, zlib.decompressobj(wbits=31), False
    if fed and not d.eof:
        yield d.flush()
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _damage(e: BaseException, at: int) -> str:
    what = "cut off (the gzip stream ends early)" if isinstance(e, EOFError) else \
        f"corrupt ({type(e).__name__}: {e})"
    return f"{what} after {at:,} bytes; the text before it was kept"


def read_lines(path: str, prov: dict[str, Any]) -> Iterator[bytes]:
    """Raw lines (ending in b"\\n", the last one perhaps not) of a (possibly gzipped) file; a
    truncated or corrupt gzip stream ends it after the last whole line before the damage (the
    line it cuts is dropped), recorded in ``prov``."""
    rest = b""
    try:
        with open(path, "rb") as f:
            for block in _blocks(f, path):
                *lines, rest = (rest + block).split(b"\n")
                for line in lines:
                    prov["bytes"] = prov.get("bytes", 0) + len(line) + 1
                    yield line + b"\n"
    except TRUNCATED as e:
        prov["truncated"] = _damage(e, prov.get("bytes", 0))
        return
    if rest:
        prov["bytes"] = prov.get("bytes", 0) + len(rest)
        yield rest


def _blocks(f: BinaryIO, path: str) -> Iterator[bytes]:
    return _gunzip(f) if path.endswith(".gz") else iter(lambda: f.read(READ_BLOCK), b"")
