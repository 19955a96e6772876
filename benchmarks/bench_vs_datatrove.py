"""minigpt's quality stages side by side with datatrove's, on the same real WET records.

datatrove (HuggingFace's FineWeb pipeline library, PyPI) runs its Gopher repetition, Gopher
quality and C4 filters with FineWeb's settings (C4 without the terminal-punctuation rule, as
FineWeb runs it); minigpt runs gopher_repetition, gopher_quality and c4 with the options of its
commoncrawl recipe, c4 with FineWeb's thresholds (3 words a line, 5 sentences). Both see the 29
conversion records of ../shared/data/commoncrawl, repeated to ``--docs`` documents (each filter
decides a repeated record the same way every time, so the agreement is that of the unique
records, weighted by repetition).

Prints, per filter: the documents each side keeps, the share decided the same way (goal:
>= 98%), every disagreement's reasons (one line per unique record), and documents/s on one
core for each side and their ratio (goal: minigpt >= 2x datatrove); then the three in FineWeb's
order (each document stopping at its first drop) the same way; and lscpu's CPU model. Rounds
alternate the two sides so load from other processes hits both alike; the median is reported.

Language ID is left out: datatrove's LanguageFilter downloads its fastText model from the
Hugging Face Hub at first use, which an offline machine cannot do.

Needs: pip install "minigpt[bench]" (datatrove, and spacy for its English word splitter).
Usage: python benchmarks/bench_vs_datatrove.py [--docs 20000] [--runs 1] [--quick]
(the full run is ~45 minutes on one core, almost all of it datatrove's; --quick ~2 minutes)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WET_DIR = ROOT.parent / "shared" / "data" / "commoncrawl"
FILTERS = ("gopher_repetition", "gopher_quality", "c4")
FINEWEB_C4 = {"min_words_per_line": 3, "min_sentences": 5}


def datatrove_filters() -> dict:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {"gopher_repetition": GopherRepetitionFilter(),
            "gopher_quality": GopherQualityFilter(),
            "c4": C4QualityFilter(filter_no_terminal_punct=False)}


def minigpt_stages() -> dict:
    from minigpt_cli.sharding.chain import build_stage
    from minigpt_cli.sharding.config import StageSpec
    from minigpt_cli.stages import default_stages

    recipe = dict(default_stages("commoncrawl"))
    recipe["c4"] = recipe["c4"] | FINEWEB_C4  # FineWeb's thresholds (datatrove's defaults)
    return {n: build_stage(StageSpec(name=n, options=recipe[n])) for n in FILTERS}


def dt_verdict(f, text: str) -> tuple[bool, str]:
    from datatrove.data import Document

    out = f.filter(Document(text=text, id="x"))  # C4 rewrites doc.text: a fresh one each time
    kept, reason = out if isinstance(out, tuple) else (out, "")
    return bool(kept), reason or ""


def mg_verdict(stage, text: str) -> tuple[bool, str]:
    from minigpt_cli.documents import Document, Drop

    out = stage(Document(text=text, id="x"))
    return (False, out.reason) if isinstance(out, Drop) else (True, "")


def rate(fn, items, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        times.append(time.perf_counter() - t0)
    return len(items) / statistics.median(times)


def chain(verdicts):
    def run(text):
        for v in verdicts:
            if not v(text)[0]:
                return False
        return True
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=1, help="timed passes (median); datatrove's "
                    "~30 docs/s/core make one pass over 20k documents ~40 minutes")
    ap.add_argument("--quick", action="store_true", help="2,000 documents, 1 run (a check)")
    args = ap.parse_args()
    if args.quick:
        args.docs, args.runs = 2_000, 1
    from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource

    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(WET_DIR)]))
    unique = [d.text for d in src.documents()]
    docs = (unique * (args.docs // len(unique) + 1))[:args.docs]
    print(f"{len(docs):,} documents ({len(unique)} unique real WET records from {WET_DIR}), "
          f"{args.runs} run(s) each, one core")
    dt, mg = datatrove_filters(), minigpt_stages()
    for text in unique[:1]:  # datatrove loads spacy on first use: not part of the timing
        for n in FILTERS:
            dt_verdict(dt[n], text)
    weight = Counter(docs)
    unique = list(weight)  # two of the 29 records are the same page
    for n in FILTERS:
        same, kept_dt, kept_mg, rows = 0, 0, 0, []
        for t in unique:
            (a, ra), (b, rb) = dt_verdict(dt[n], t), mg_verdict(mg[n], t)
            kept_dt += a * weight[t]
            kept_mg += b * weight[t]
            if a == b:
                same += weight[t]
            else:
                rows.append(f"    {t[:50]!r}: datatrove {'keeps' if a else 'drops: ' + ra}; "
                            f"minigpt {'keeps' if b else 'drops: ' + rb}")
        r_dt = rate(lambda t, f=dt[n]: dt_verdict(f, t), docs, args.runs)
        r_mg = rate(lambda t, s=mg[n]: mg_verdict(s, t), docs, args.runs)
        print(f"{n:18s} kept: datatrove {kept_dt:,}, minigpt {kept_mg:,}; same decision "
              f"{100 * same / len(docs):.1f}%; docs/s/core datatrove {r_dt:,.0f}, minigpt "
              f"{r_mg:,.0f} ({r_mg / r_dt:.2f}x)")
        if rows:
            print(f"  disagreements ({len(rows)} of {len(unique)} unique records):")
            print("\n".join(rows))
    r_dt = rate(chain([lambda t, f=dt[n]: dt_verdict(f, t) for n in FILTERS]), docs, args.runs)
    r_mg = rate(chain([lambda t, s=mg[n]: mg_verdict(s, t) for n in FILTERS]), docs, args.runs)
    print(f"{'all three, chained':18s} docs/s/core datatrove {r_dt:,.0f}, minigpt {r_mg:,.0f} "
          f"({r_mg / r_dt:.2f}x)")
    print("language id: left out (datatrove's fastText model is downloaded from the Hub)")
    model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    print("cpu:", next((line.split(":", 1)[1].strip() for line in model.splitlines()
                        if line.startswith("Model name")), "unknown"))


if __name__ == "__main__":
    main()
