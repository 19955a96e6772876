"""The main text of a WARC ``response`` record holding an HTML page: Common Crawl's WARC files
(the crawl itself) rather than its WET files (the text Common Crawl extracted, boilerplate and
all). The same stages then run on it as on WET text.

The extractor is resiliparse (``pip install "minigpt[warc]"``): its ``main_content`` mode
drops navigation, headers, footers and link lists. trafilatura (FineWeb's choice) is the
other maintained one; benchmarks/bench_extract.py measures both on the same pages (figures
in docs/data.md): resiliparse extracted ~19x more pages a second per core (1,391 against 73),
with the same main text (100% against 99.8% of the page's words, no boilerplate from either),
and a crawl dump is ~3 billion pages, so it is the default; ``extractor=trafilatura`` picks
the other.

Bytes are decoded as the HTTP header's charset says, else as resiliparse detects it; a page
that is not text/html (images, PDFs, redirects) is counted and skipped.
"""

from __future__ import annotations

from typing import Any

from minigpt_cli.documents import Document

MAX_HTML = 16 << 20  # bytes; Common Crawl truncates its WARC payloads at 1 MiB


class ExtractorMissing(Exception):
    pass


def html_of(record) -> tuple[bytes, str | None] | None:
    """(body, charset) of an HTML response record, or None if the record is no HTML page."""
    http = record.http_headers
    if http is None or not (http.get_statuscode() or "").startswith("2"):
        return None
    kind = (http.get_header("Content-Type") or "").lower()
    if "html" not in kind:
        return None
    charset = kind.partition("charset=")[2].split(";")[0].strip().strip('"') or None
    return record.content_stream().read(MAX_HTML), charset


def decode(body: bytes, charset: str | None) -> str:
    try:
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    except ImportError:  # trafilatura without resiliparse: the header's charset, else UTF-8
        try:
            return body.decode(charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return body.decode("utf-8", errors="replace")
    return bytes_to_str(body, charset or detect_encoding(body))


def extract(html: str, extractor: str) -> str:
    """The page's main text (paragraphs separated by blank lines); "" when it has none."""
    try:
        if extractor == "trafilatura":
            import trafilatura

            return trafilatura.extract(html, include_comments=False, include_tables=True) or ""
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree
    except ImportError as e:
        raise ExtractorMissing(
            f"reading WARC (HTML) records needs the {extractor} extractor, which is not "
            f"installed ({e.name}): pip install \"minigpt[warc]\" (resiliparse) or "
            "trafilatura, or give the matching WET file instead") from None
    return extract_plain_text(HTMLTree.parse(html), main_content=True, alt_texts=False,
                              links=False, list_bullets=True)


def document(record, record_id: str, html: str, extractor: str, input: str) -> Document | None:
    text = extract(html, extractor)
    if not text.strip():
        return None
    headers = record.rec_headers
    meta: dict[str, Any] = {"url": headers.get_header("WARC-Target-URI"),
                            "date": headers.get_header("WARC-Date"), "input": input,
                            "extractor": extractor}
    return Document(text=text, id=record_id, source="commoncrawl", meta=meta)
