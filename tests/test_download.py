"""download.py against a real HTTP server on 127.0.0.1: retries, Range resume, checksums."""

from __future__ import annotations

import gzip
import hashlib
import time

import pytest
from httpserver import closed_port_url, serve

from minigpt_cli.download import (
    DownloadError,
    RemoteFile,
    RetryPolicy,
    cache_path,
    download,
    fetch_bytes,
)

FAST = RetryPolicy(retries=3, backoff=0.01, backoff_max=0.05, jitter=0.0, timeout=5.0)
WET = "commoncrawl/cc2016-50_filter_test_1.warc.wet.gz"


@pytest.fixture(scope="module")
def wet_bytes(shared_data) -> bytes:
    return (shared_data / WET).read_bytes()


def test_download_writes_file_and_reports_progress(tmp_path, wet_bytes):
    events = []
    with serve({"/a.gz": wet_bytes}) as server:
        dest = download(
            server.url("/a.gz"), tmp_path / "sub" / "a.gz", policy=FAST, on_progress=events.append
        )
    assert dest.read_bytes() == wet_bytes
    assert events[-1].done == events[-1].total == len(wet_bytes)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert not list(tmp_path.glob("sub/.*part"))  # no temp file left behind


def test_broken_connection_resumes_with_range(tmp_path, wet_bytes):
    with serve({"/a.gz": wet_bytes}) as server:
        server.state.break_after["/a.gz"] = 40_000
        dest = download(server.url("/a.gz"), tmp_path / "a.gz", policy=FAST)
        log = list(server.state.requests)
    assert dest.read_bytes() == wet_bytes
    assert [(r.range, r.status) for r in log] == [(None, 200), ("bytes=40000-", 206)]


def test_server_ignoring_range_still_gives_the_right_bytes(wet_bytes):
    with serve({"/a.gz": wet_bytes}) as server:
        server.state.break_after["/a.gz"] = 30_000
        server.state.ignore_range = True
        with RemoteFile(server.url("/a.gz"), FAST) as remote:
            data = remote.read()
            assert remote.reconnects == 1
        assert [r.status for r in server.state.requests] == [200, 200]
    assert data == wet_bytes


def test_stream_through_gzip_survives_a_break(wet_bytes):
    with serve({"/a.gz": wet_bytes}) as server:
        server.state.break_after["/a.gz"] = 12_345
        with RemoteFile(server.url("/a.gz"), FAST) as remote:
            text = gzip.GzipFile(fileobj=remote).read()
    assert text == gzip.decompress(wet_bytes)


def test_transient_errors_are_retried_with_backoff():
    with serve({"/f": b"hello"}) as server:
        server.state.fail_first["/f"] = (2, 503)
        policy = RetryPolicy(retries=3, backoff=0.05, backoff_max=1.0, jitter=0.0)
        start = time.monotonic()
        assert fetch_bytes(server.url("/f"), policy) == b"hello"
        waited = time.monotonic() - start
        assert [r.status for r in server.state.requests] == [503, 503, 200]
    assert waited >= 0.05 + 0.1  # slept backoff * 2**0 then backoff * 2**1


def test_retries_exhausted_is_a_clear_error():
    with serve({"/f": b"hello"}) as server:
        server.state.fail_first["/f"] = (10, 503)
        with pytest.raises(DownloadError, match=r"after 4 attempt\(s\): HTTP 503"):
            fetch_bytes(server.url("/f"), FAST)
        assert len(server.state.requests) == 4  # first try + 3 retries


def test_404_fails_at_once_without_retries(tmp_path):
    with serve({}) as server:
        with pytest.raises(DownloadError, match="HTTP 404") as info:
            download(server.url("/missing.gz"), tmp_path / "m.gz", policy=FAST)
        assert len(server.state.requests) == 1
    assert info.value.status == 404
    assert not (tmp_path / "m.gz").exists()


def test_connection_refused_is_a_clear_error():
    with pytest.raises(DownloadError, match="(?i)refused"):
        fetch_bytes(closed_port_url(), FAST)


def test_checksum_match_and_mismatch(tmp_path, wet_bytes):
    good = hashlib.sha256(wet_bytes).hexdigest()
    with serve({"/a.gz": wet_bytes}) as server:
        dest = download(server.url("/a.gz"), tmp_path / "a.gz", sha256=good, policy=FAST)
        assert dest.read_bytes() == wet_bytes
        # already there with the right checksum: no second request
        download(server.url("/a.gz"), tmp_path / "a.gz", sha256=good.upper(), policy=FAST)
        assert len(server.state.requests) == 1
        with pytest.raises(DownloadError, match="sha256"):
            download(server.url("/a.gz"), tmp_path / "b.gz", sha256="0" * 64, policy=FAST)
    assert not (tmp_path / "b.gz").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]  # no part file either


def test_killed_download_resumes_from_part_file(tmp_path, wet_bytes):
    """A .part left by an earlier run (killed mid-transfer) is continued with a Range request."""
    dest = tmp_path / "a.gz"
    (tmp_path / ".a.gz.part").write_bytes(wet_bytes[:50_000])
    with serve({"/a.gz": wet_bytes}) as server:
        download(
            server.url("/a.gz"), dest, sha256=hashlib.sha256(wet_bytes).hexdigest(), policy=FAST
        )
        assert [r.range for r in server.state.requests] == ["bytes=50000-"]
    assert dest.read_bytes() == wet_bytes


def test_complete_part_file_is_finished_via_416(tmp_path, wet_bytes):
    (tmp_path / ".a.gz.part").write_bytes(wet_bytes)
    with serve({"/a.gz": wet_bytes}) as server:
        download(server.url("/a.gz"), tmp_path / "a.gz", policy=FAST)
        assert [r.status for r in server.state.requests] == [416]
    assert (tmp_path / "a.gz").read_bytes() == wet_bytes


def test_non_http_url_is_refused():
    with pytest.raises(DownloadError, match="only http"):
        RemoteFile("ftp://example.org/x", FAST)


def test_cache_path_stays_inside_the_cache(tmp_path):
    p = cache_path(tmp_path, "https://data.commoncrawl.org/crawl-data/../../etc/x.gz")
    assert p == tmp_path / "data.commoncrawl.org" / "crawl-data" / "etc" / "x.gz"


def test_stalled_transfer_times_out_and_resumes(wet_bytes):
    policy = RetryPolicy(retries=2, backoff=0.01, jitter=0.0, timeout=0.3)
    with serve({"/a.gz": wet_bytes}) as server:
        server.state.stall["/a.gz"] = (20_000, 3.0)  # far longer than the 0.3 s timeout
        start = time.monotonic()
        assert fetch_bytes(server.url("/a.gz"), policy) == wet_bytes
        assert time.monotonic() - start < 2.5
        first, second = server.state.requests  # resumed at the last byte it had taken in
        assert first.range is None and 0 < int(second.range[6:-1]) <= 20_000
