"""How fast the commoncrawl source reads WET data, next to its floor: plain gzip decompression.

Builds a ~50 MB (uncompressed) WET file from the real CC-MAIN-2016-50 sample in ../shared/data,
re-gzipped one record per member as Common Crawl ships them, and times, in one run (median of 3):

- gzip only: decompressing the file with the standard library (the floor: no parsing at all);
- warcio only: iterating the records and reading their bodies (what the library costs);
- source, local file: CommonCrawlSource.documents() (decode, checks, Documents);
- source, HTTP: the same file streamed from a local http.server on 127.0.0.1.

The four take turns in each of the 3 rounds, so load from other processes hits them alike.

Usage: python benchmarks/commoncrawl_read.py [--copies 150]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from httpserver import serve

from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource

SAMPLE = ROOT.parent / "shared" / "data" / "commoncrawl" / "cc2016-50_filter_test_1.warc.wet.gz"


def per_record_members(raw: bytes) -> list[bytes]:
    starts = [i for i in range(len(raw)) if raw.startswith(b"WARC/1.0\r\n", i)]
    return [gzip.compress(raw[a:b], 6) for a, b in zip(starts, starts[1:] + [len(raw)])]


def timed(jobs: dict, repeats: int = 3) -> list[tuple[str, float, int]]:
    """Median seconds per job; the jobs take turns so that load from elsewhere hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    results: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in jobs.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return [(name, statistics.median(times[name]), results[name]) for name in jobs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=150)
    args = parser.parse_args()
    raw = gzip.decompress(SAMPLE.read_bytes())
    data = b"".join(per_record_members(raw)) * args.copies
    size = len(raw) * args.copies
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "bench.warc.wet.gz")
        path.write_bytes(data)

        def gzip_only() -> int:
            with gzip.open(path, "rb") as f:
                while f.read(1 << 20):
                    pass
            return 0

        def warcio_only() -> int:
            n = 0
            with gzip.open(path, "rb") as f:
                for record in ArchiveIterator(f):
                    record.content_stream().read()
                    n += record.rec_type == "conversion"
            return n

        def source(inputs) -> int:
            src = CommonCrawlSource(CommonCrawlOptions(inputs=inputs))
            return sum(1 for _ in src.documents())

        with serve({"/bench.warc.wet.gz": data}) as server:
            url = server.url("/bench.warc.wet.gz")
            rows = timed(
                {
                    "gzip only (floor)": gzip_only,
                    "warcio only": warcio_only,
                    "source, local file": lambda: source([str(path)]),
                    "source, HTTP stream": lambda: source([url]),
                }
            )
    floor = rows[0][1]
    print(
        f"input: {size / 1e6:.1f} MB WET text in {len(data) / 1e6:.1f} MB gzip "
        f"({args.copies} copies of the CC-MAIN-2016-50 sample), median of 3"
    )
    print(f"{'what':<22}{'seconds':>9}{'MB/s':>9}{'docs/s':>10}{'x floor':>9}")
    for name, seconds, docs in rows:
        docs_s = f"{docs / seconds:,.0f}" if docs else "-"
        print(
            f"{name:<22}{seconds:>9.3f}{size / seconds / 1e6:>9.1f}{docs_s:>10}"
            f"{seconds / floor:>9.2f}"
        )


if __name__ == "__main__":
    main()
