"""WARC (HTML) input to the commoncrawl source: the main text extracted, then the same stages.

The pages are built from the real WET texts of ../shared/data/commoncrawl, each wrapped in
navigation, a cookie banner and a footer that a main-text extractor must leave out."""

from __future__ import annotations

import gzip
import html

import pytest
from shard_support import cli, documents, manifest

from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource
from minigpt_cli.tokenizer import GPT2Tokenizer

pytest.importorskip("resiliparse", reason="the warc extra is not installed "
                    "(pip install \"minigpt[warc]\")")

NAV = "Home | Products | Blog | Contact us | Sign in"
FOOTER = "Copyright 2024 Example Inc. All rights reserved. Privacy policy. Terms of service."


def page(text: str) -> str:
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line)
    links = "".join(f'<li><a href="/{w}">{w}</a></li>' for w in NAV.split(" | "))
    return (f"<!doctype html><html><head><meta charset=utf-8><title>t</title></head><body>"
            f"<header><nav><ul>{links}</ul></nav></header><main><article>{paragraphs}</article>"
            f"</main><footer><p>{FOOTER}</p></footer></body></html>")


def response(i: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> bytes:
    http = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    head = ["WARC/1.0", "WARC-Type: response", f"WARC-Target-URI: http://example.org/{i}",
            "WARC-Date: 2024-05-18T01:58:10Z", f"WARC-Record-ID: <urn:test:{i}>",
            "Content-Type: application/http; msgtype=response", f"Content-Length: {len(http)}"]
    return gzip.compress("\r\n".join(head).encode() + b"\r\n\r\n" + http + b"\r\n\r\n")


@pytest.fixture(scope="module")
def warc_file(shared_data, tmp_path_factory):
    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(shared_data / "commoncrawl")]))
    texts = [d.text for d in src.documents()]
    path = tmp_path_factory.mktemp("warc") / "CC-MAIN-test-00000.warc.gz"
    records = [response(i, page(t).encode()) for i, t in enumerate(texts)]
    records.append(response(len(texts), b"\x89PNG...", "image/png"))  # not a page
    path.write_bytes(b"".join(records))  # one gzip member a record, as Common Crawl writes
    return path, texts


def test_warc_pages_are_extracted_without_boilerplate(warc_file):
    path, texts = warc_file
    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(path)]))
    docs = list(src.documents())
    stats = src.provenance()[0]
    assert stats["html_pages"] == len(texts) and stats["not_html"] == 1
    assert len(docs) + stats["no_main_text"] == len(texts) and len(docs) >= len(texts) - 3
    longest = max(docs, key=lambda d: len(d.text))
    assert NAV.split(" | ")[1] not in longest.text and FOOTER[:20] not in longest.text
    words = max(texts, key=len).split()
    assert sum(w in longest.text for w in words) / len(words) > 0.9  # the main text is there
    assert longest.meta["extractor"] == "resiliparse" and longest.meta["url"]


def test_warc_is_filtered_and_sharded(warc_file, tmp_path):
    path, _ = warc_file
    out = tmp_path / "out"
    r = cli("shard", "commoncrawl", path, "-S", "language.min_score=0", "--shard-size", 2000,
            "-j", 0, "--out", out)
    assert r.exit_code == 0, r.output
    m = manifest(out)
    assert [s["name"] for s in m["stages"]][:2] == ["language", "gopher_repetition"]
    assert m["sources"][0]["provenance"][0]["html_pages"] > 0
    kept = [GPT2Tokenizer().decode(d.tolist()) for d in documents(out)]
    assert kept and not any(FOOTER[:20] in t for t in kept)


def test_trafilatura_is_the_other_choice(warc_file):
    pytest.importorskip("trafilatura", reason="trafilatura is in the bench extra")
    path, texts = warc_file
    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(path)], extractor="trafilatura"))
    docs = list(src.documents())
    assert docs and all(d.meta["extractor"] == "trafilatura" for d in docs)


def test_without_the_extractor_the_input_says_what_to_install(warc_file, monkeypatch, tmp_path):
    import sys

    for name in ("resiliparse", "resiliparse.extract.html2text", "resiliparse.parse.html",
                 "resiliparse.parse.encoding"):
        monkeypatch.setitem(sys.modules, name, None)  # as if the warc extra were missing
    r = cli("shard", "commoncrawl", warc_file[0], "--out", tmp_path / "o", "-j", 0)
    assert r.exit_code == 2
    assert 'needs the resiliparse extractor, which is not installed' in r.flat
    assert 'pip install "minigpt[warc]"' in r.flat
