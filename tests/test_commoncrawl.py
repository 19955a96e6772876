"""The commoncrawl source on the real WET samples, locally and over a real HTTP server."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest
from httpserver import closed_port_url, serve

from minigpt_cli import plugins
from minigpt_cli.errors import MinigptError
from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource

OLD = "cc2014-35_npm-warc_CC-MAIN-20140820021334-00006.warc.wet"  # 3 conversions, plain
ASTHMA = "cc2016-50_filter_test_1.warc.wet.gz"  # 25 conversions, one gzip member
WHIRL = "cc2024-22_whirlwind_whirlwind.warc.wet.gz"  # 1 conversion, language header
FAST = {"retries": 2, "backoff": 0.01, "backoff_max": 0.05, "timeout": 5.0}


def source(*inputs, **options) -> CommonCrawlSource:
    return CommonCrawlSource(CommonCrawlOptions(inputs=[str(i) for i in inputs], **options))


def wet_record(kind: str, body: bytes, **headers: str) -> bytes:
    lines = (
        ["WARC/1.0", f"WARC-Type: {kind}"]
        + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        + [f"Content-Length: {len(body)}"]
    )
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body + b"\r\n\r\n"


def conversion(i: int, body: bytes) -> bytes:
    return wet_record(
        "conversion",
        body,
        WARC_Target_URI=f"http://example.org/{i}",
        WARC_Date="2024-05-18T01:58:10Z",
        WARC_Record_ID=f"<urn:test:{i}>",
    )


@pytest.fixture(scope="module")
def cc(shared_data):
    return shared_data / "commoncrawl"


def test_registered_as_a_source_plugin():
    assert plugins.load("source", "commoncrawl") is CommonCrawlSource


def test_real_samples_become_documents_with_metadata(cc):
    src = source(cc / WHIRL, cc / ASTHMA, cc / OLD)
    docs = list(src.documents())
    assert len(docs) == 1 + 25 + 3
    whirl = docs[0]
    assert whirl.id == "<urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d>"
    assert whirl.source == "commoncrawl"
    assert whirl.meta == {
        "url": "https://an.wikipedia.org/wiki/Escopete",
        "date": "2024-05-18T01:58:10Z",
        "language": "spa",
        "input": str(cc / WHIRL),
    }
    assert "language" not in docs[1].meta  # 2016 WET files had no language header
    assert all(d.meta["url"].startswith("http") and d.text.strip() for d in docs)
    prov = {p["input"]: p for p in src.provenance()}
    assert [(p["records"], p["documents"], p["error_count"]) for p in prov.values()] == [
        (2, 1, 0),
        (26, 25, 0),
        (4, 3, 0),
    ]
    assert prov[str(cc / ASTHMA)]["bytes"] == (cc / ASTHMA).stat().st_size
    assert src.progress().bytes_read == src.progress().bytes_total


def test_text_is_the_record_body_exactly(cc):
    """Cross-check against the bytes: the body is what Content-Length delimits after the header."""
    raw = gzip.decompress((cc / WHIRL).read_bytes())
    start = raw.index(b"WARC-Type: conversion")
    header, rest = raw[start:].split(b"\r\n\r\n", 1)
    length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    (doc,) = source(cc / WHIRL).documents()
    assert doc.text == rest[:length].decode("utf-8")


def test_folders_and_globs_expand_sorted_without_duplicates(cc):
    by_folder = source(cc)
    assert by_folder.inputs() == sorted(str(p) for p in cc.iterdir())
    by_glob = source(cc / "*.warc.wet.gz", cc / ASTHMA)
    assert by_glob.inputs() == [str(cc / ASTHMA), str(cc / WHIRL)]


def test_every_input_problem_is_reported_at_once(tmp_path):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(MinigptError) as info:
        source(
            tmp_path / "missing.warc.wet.gz",
            tmp_path / "empty_dir",
            tmp_path / "*.nothing",
            segments=2,
        )
    message = str(info.value)
    for part in (
        "missing.warc.wet.gz does not exist",
        "empty_dir holds no",
        "no file matches",
        "only apply to a crawl id",
    ):
        assert part in message
    with pytest.raises(MinigptError, match="no inputs"):
        CommonCrawlSource(CommonCrawlOptions())
    with pytest.raises(ValueError, match="http"):
        CommonCrawlOptions(inputs=["x"], base_url="ftp://mirror/")
    with pytest.raises(ValueError, match="extra"):
        CommonCrawlOptions(inputs=["x"], segmnets=3)


def test_truncated_gzip_keeps_records_before_the_cut(cc, tmp_path):
    full = list(source(cc / ASTHMA).documents())
    cut = tmp_path / "cut.warc.wet.gz"
    cut.write_bytes((cc / ASTHMA).read_bytes()[:60_000])  # a download cut off mid-file
    src = source(cut, cc / WHIRL)  # the run goes on to the next input
    docs = list(src.documents())
    kept = [d for d in docs if d.meta["input"] == str(cut)]
    assert 0 < len(kept) < 25
    assert [d.text for d in kept] == [d.text for d in full[: len(kept)]]
    assert docs[-1].meta["input"] == str(cc / WHIRL)
    cut_prov, whirl_prov = src.provenance()
    assert cut_prov["error_count"] == 1 and "truncated" in cut_prov["errors"][0]
    assert cut_prov["documents"] == len(kept)
    assert whirl_prov["error_count"] == 0


def test_truncated_plain_wet_skips_the_cut_record(cc, tmp_path):
    data = (cc / OLD).read_bytes()
    cut = tmp_path / "cut.warc.wet"
    cut.write_bytes(data[: data.rindex(b"WARC/1.0") + 700])  # inside the last record's body
    src = source(cut)
    assert len(list(src.documents())) == 2
    (prov,) = src.provenance()
    assert prov["malformed_records"] == 1 and "cut off" in prov["errors"][0]


def test_malformed_warc_headers_are_counted(cc, tmp_path):
    data = (cc / OLD).read_bytes()
    third = data.index(b"WARC/1.0", data.index(b"WARC-Type: conversion") + 1)
    junk = tmp_path / "junk.warc.wet"  # a record that does not start with WARC/1.0
    junk.write_bytes(data[:third] + b"XARC/1.0 not a header\r\n" + data[third + 8 :])
    bad_length = tmp_path / "bad_length.warc.wet"  # a record with a wrong Content-Length
    bad_length.write_bytes(
        data[:third]
        + wet_record("conversion", b"x" * 50)[:-54]
        + b"x" * 80
        + b"\r\n\r\n"
        + data[third:]
    )
    src = source(junk, bad_length)
    docs = list(src.documents())
    junk_prov, length_prov = src.provenance()
    assert junk_prov["documents"] == 1 and junk_prov["malformed_records"] == 1
    assert "malformed WARC record" in junk_prov["errors"][0]
    # the record whose length lies is skipped; the parser finds the next record again
    assert length_prov["documents"] == 3 and length_prov["malformed_records"] == 1
    assert "separator" in length_prov["errors"][0]
    assert len(docs) == 4


def test_invalid_utf8_is_replaced_and_counted_or_skipped(tmp_path):
    path = tmp_path / "bytes.warc.wet.gz"
    records = [
        wet_record("warcinfo", b"software: test\r\n"),
        conversion(1, "caf\u00e9 \ufffd ok".encode() + b" \xe9t\xe9 \xff"),
        conversion(2, b"clean text"),
        conversion(3, b"  \r\n "),
    ]
    path.write_bytes(b"".join(gzip.compress(r) for r in records))  # one member per record
    src = source(path)
    docs = list(src.documents())
    assert [d.text for d in docs] == ["caf\u00e9 \ufffd ok \ufffdt\ufffd \ufffd", "clean text"]
    (prov,) = src.provenance()
    assert (prov["invalid_utf8_documents"], prov["invalid_utf8_sequences"]) == (1, 3)
    assert prov["empty_documents"] == 1 and prov["records"] == 4
    skipping = source(path, invalid_utf8="skip")
    assert [d.id for d in skipping.documents()] == ["<urn:test:2>"]


def test_empty_file_alone_is_an_error_but_beside_others_is_counted(cc, tmp_path):
    empty = tmp_path / "empty.warc.wet.gz"
    empty.write_bytes(b"")
    with pytest.raises(MinigptError, match="No WARC record could be read.*empty"):
        list(source(empty).documents())
    src = source(empty, cc / WHIRL)
    assert len(list(src.documents())) == 1
    assert "empty" in src.provenance()[0]["errors"][0]


def test_warc_without_conversions_gets_a_hint(tmp_path):
    path = tmp_path / "page.warc"
    path.write_bytes(
        wet_record("response", b"HTTP/1.1 200 OK\r\n\r\nhi", WARC_Target_URI="http://example.org/")
    )
    src = source(path)
    assert list(src.documents()) == []
    assert "is a WARC file of crawled pages" in src.provenance()[0]["errors"][0]
    assert "none of its 1 HTTP response records is an HTML page" in \
        src.provenance()[0]["errors"][0]


def test_parser_crash_on_odd_header_is_counted_not_raised(cc, tmp_path):
    path = tmp_path / "odd.warc"  # a response record without WARC-Target-URI trips warcio
    path.write_bytes(conversion(1, b"kept") + wet_record("response", b"HTTP/1.1 200 OK\r\n\r\nhi"))
    src = source(path, cc / WHIRL)
    assert [d.text for d in src.documents()][:1] == ["kept"]
    assert src.provenance()[0]["malformed_records"] == 1


def test_http_stream_matches_local_and_survives_a_broken_connection(cc):
    files = {f"/{name}": (cc / name).read_bytes() for name in (OLD, ASTHMA, WHIRL)}
    local = [(d.id, d.text) for d in source(cc / OLD, cc / ASTHMA, cc / WHIRL).documents()]
    with serve(files) as server:
        server.state.break_after[f"/{ASTHMA}"] = 50_000
        src = source(*(server.url(p) for p in files), **FAST)
        remote = [(d.id, d.text) for d in src.documents()]
        ranges = [r.range for r in server.state.requests if r.path == f"/{ASTHMA}"]
    assert remote == local
    assert ranges == [None, "bytes=50000-"]
    prov = src.provenance()
    assert [p["reconnects"] for p in prov] == [0, 1, 0]
    assert [p["bytes"] for p in prov] == [len(b) for b in files.values()]
    assert src.progress().bytes_downloaded == sum(len(b) for b in files.values())


def test_crawl_id_resolves_through_wet_paths_listing(cc, tmp_path):
    crawl = "CC-MAIN-2099-01"
    names = [OLD, ASTHMA, WHIRL]
    paths = [f"crawl-data/{crawl}/segments/{i}/wet/{n}" for i, n in enumerate(names)]
    files = {f"/{p}": (cc / n).read_bytes() for p, n in zip(paths, names)}
    files[f"/crawl-data/{crawl}/wet.paths.gz"] = gzip.compress("\n".join(paths).encode() + b"\n")
    with serve(files) as server:
        base = server.url("/")
        src = source(crawl.lower(), segments=2, first_segment=1, base_url=base, **FAST)
        assert src.inputs() == [base + p for p in paths[1:]]
        assert len(list(src.documents())) == 25 + 1
        cached = source(crawl, base_url=base, cache_dir=tmp_path / "cache", **FAST)
        assert len(list(cached.documents())) == 3 + 25 + 1
        before = len(server.state.requests)
        again = source(crawl, base_url=base, cache_dir=tmp_path / "cache", **FAST)
        assert len(list(again.documents())) == 29
        assert len(server.state.requests) == before  # the cache answered everything
        with pytest.raises(MinigptError, match="no crawl 'CC-MAIN-2099-02'.*404"):
            source("CC-MAIN-2099-02", base_url=base, **FAST).inputs()
        with pytest.raises(MinigptError, match="past the end"):
            source(crawl, first_segment=3, base_url=base, **FAST).inputs()
    assert (tmp_path / "cache" / "127.0.0.1" / paths[1]).read_bytes() == files[f"/{paths[1]}"]


def test_unreachable_inputs_are_counted_and_all_unreachable_stops(cc):
    refused = closed_port_url("/a.warc.wet.gz")
    with serve({}) as server:
        missing = server.url("/missing.warc.wet.gz")
        src = source(refused, missing, cc / WHIRL, **FAST)
        assert len(list(src.documents())) == 1
        errors = [p["errors"] for p in src.provenance()]
        assert "refused" in errors[0][0].lower() and "HTTP 404" in errors[1][0]
        with pytest.raises(MinigptError, match="No WARC record could be read from any of the 2"):
            list(source(refused, missing, **FAST).documents())


def test_download_that_cannot_resume_keeps_what_was_read(cc):
    data = (cc / ASTHMA).read_bytes()
    with serve({"/a.warc.wet.gz": data}) as server:
        server.state.break_after["/a.warc.wet.gz"] = 60_000
        server.state.after_break["/a.warc.wet.gz"] = 410  # the file vanished meanwhile
        src = source(server.url("/a.warc.wet.gz"), **FAST)
        docs = list(src.documents())
    (prov,) = src.provenance()
    assert 0 < len(docs) < 25 and prov["documents"] == len(docs)
    assert "could not be resumed" in prov["errors"][0] and "410" in prov["errors"][0]


def test_memory_does_not_grow_with_input(tmp_path):
    """~12 MB of records stream through with a small, input-independent peak."""
    path = tmp_path / "big.warc.wet.gz"
    body = ("All work and no play makes a dull model. " * 60).encode()  # ~2.5 KB
    with open(path, "wb") as f:
        f.writelines(gzip.compress(conversion(i, body), compresslevel=1) for i in range(5000))
    src = source(path)
    tracemalloc.start()
    count = sum(1 for _ in src.documents())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 5000
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB while streaming 12 MB"


def test_inputs_read_one_at_a_time_for_parts_and_resume(cc):
    """inputs()/documents_from() (documents.MultiInputSource): a re-read replaces its entry."""
    src = source(cc / OLD, cc / WHIRL)
    assert [len(list(src.documents_from(i))) for i in reversed(src.inputs())] == [1, 3]
    assert len(list(src.documents_from(str(cc / WHIRL)))) == 1
    assert [p["input"] for p in src.provenance()] == [str(cc / OLD), str(cc / WHIRL)]
    assert [p["documents"] for p in src.provenance()] == [3, 1]


def test_many_unreadable_inputs_in_a_row_stop_the_run(cc):
    with serve({}) as server:
        missing = [server.url(f"/{i}.warc.wet.gz") for i in range(4)]
        with pytest.raises(MinigptError, match="3 commoncrawl inputs in a row could not be read"):
            list(source(*missing, cc / WHIRL, **FAST).documents())
        lenient = source(*missing, cc / WHIRL, max_failed_inputs=5, **FAST)
        assert len(list(lenient.documents())) == 1
        assert [p["error_count"] for p in lenient.provenance()] == [1, 1, 1, 1, 0]


def test_shard_command_reads_a_crawl_over_http(cc, tmp_path):
    """End to end: `minigpt shard commoncrawl CRAWL-ID -o ...` against a local data host."""
    pytest.importorskip("minigpt_cli.commands.shard")
    import json

    from typer.testing import CliRunner

    from minigpt_cli.cli import app

    crawl = "CC-MAIN-2099-01"
    paths = [f"crawl-data/{crawl}/segments/{i}/wet/{n}" for i, n in enumerate([ASTHMA, WHIRL])]
    files = {f"/{p}": (cc / n).read_bytes() for p, n in zip(paths, [ASTHMA, WHIRL])}
    files[f"/crawl-data/{crawl}/wet.paths.gz"] = gzip.compress("\n".join(paths).encode())
    with serve(files) as server:
        server.state.break_after[f"/{paths[0]}"] = 30_000
        args = [
            "shard",
            "commoncrawl",
            crawl,
            "--out",
            str(tmp_path / "out"),
            "--no-stages",
            "--workers",
            "0",
            "-o",
            "segments=2",
            "-o",
            f"base_url={server.url('/')}",
            "-o",
            "backoff=0.01",
        ]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (src,) = manifest["sources"]
    assert [(p["documents"], p["reconnects"]) for p in src["provenance"]] == [(25, 1), (1, 0)]
    assert (tmp_path / "out" / "val_000000.bin").is_file()
