"""Main-text extraction from WARC (HTML) pages: resiliparse against trafilatura.

With ``--warc FILE`` (a Common Crawl WARC file, .warc or .warc.gz) both extractors run on
every HTML response in it and the script prints pages/s on one core and how long the texts
are. Without it, it uses the first WARC file (not WET) in ../shared/data/commoncrawl; if there
is none -- the folder holds WET files only today -- it builds pages from the real WET texts
there, each wrapped in navigation, a cookie banner and a footer, and also prints each
extractor's recall of the page's text and how often the boilerplate leaked in (the words of
those pages are known, so both can be scored).

Needs: pip install "minigpt[warc,bench]". Usage: python benchmarks/bench_extract.py
[--warc FILE] [--repeat 20] [--quick]
"""

from __future__ import annotations

import argparse
import html
import io
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "commoncrawl"
NAV = ["Home", "Products", "Blog", "Contact us", "Sign in"]
BANNER = "We use cookies to improve your experience. Accept all cookies"
FOOTER = "Copyright 2024 Example Inc. All rights reserved. Privacy policy. Terms of service."


def built_pages() -> list[tuple[str, str]]:
    """(html, main text) for each real WET record, wrapped in boilerplate."""
    from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource

    out = []
    for d in CommonCrawlSource(CommonCrawlOptions(inputs=[str(DATA)])).documents():
        body = "".join(f"<p>{html.escape(x)}</p>" for x in d.text.splitlines() if x.strip())
        nav = "".join(f'<li><a href="/{w}">{w}</a></li>' for w in NAV)
        out.append((f"<!doctype html><html><head><meta charset=utf-8><title>{d.id}</title>"
                    f"</head><body><div class=cookie>{BANNER}</div><header><nav><ul>{nav}</ul>"
                    f"</nav></header><main><article>{body}</article></main><footer><p>{FOOTER}"
                    f"</p></footer></body></html>", d.text))
    return out


def warc_pages(path: Path) -> list[tuple[str, None]]:
    from warcio.archiveiterator import ArchiveIterator

    from minigpt_cli.sources import warc

    pages = []
    with open(path, "rb") as f:
        for record in ArchiveIterator(io.BufferedReader(f)):
            if record.rec_type == "response" and (found := warc.html_of(record)) is not None:
                pages.append((warc.decode(*found), None))
    return pages


def main() -> None:
    from minigpt_cli.sources.warc import extract

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warc", type=Path)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="2 repeats, 1 run (a check)")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.runs = 2, 1
    found = args.warc or next((p for p in sorted(DATA.glob("*.warc*"))
                               if ".wet" not in p.name and ".wat" not in p.name), None)
    if found:
        pages, what = warc_pages(found), f"{found.name}"
    else:
        pages, what = built_pages(), (f"no WARC file in {DATA}: {'{'}n{'}'} pages built from "
                                      "its real WET texts wrapped in boilerplate")
    print(what.replace("{n}", str(len(pages))) + f"; x{args.repeat}, {args.runs} run(s), one "
          "core")
    for name in ("resiliparse", "trafilatura"):
        texts = [extract(h, name) for h, _ in pages]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                for h, _ in pages:
                    extract(h, name)
            times.append(time.perf_counter() - t0)
        rate = len(pages) * args.repeat / statistics.median(times)
        line = (f"{name:12s} {rate:8,.0f} pages/s/core; {sum(map(len, texts)) / len(texts):,.0f} "
                f"chars a page; empty: {sum(not t.strip() for t in texts)}")
        if pages[0][1] is not None:
            recall = statistics.mean(
                sum(w in t for w in set(truth.split())) / max(1, len(set(truth.split())))
                for (_, truth), t in zip(pages, texts))
            leaks = sum(FOOTER[:30] in t or BANNER[:25] in t or "Sign in" in t for t in texts)
            line += f"; word recall {100 * recall:.1f}%; boilerplate leaked into {leaks} pages"
        print(line)


if __name__ == "__main__":
    main()
