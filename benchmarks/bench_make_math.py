"""How fast `minigpt make-math` writes checked problems: worker processes vs one process.

    python benchmarks/bench_make_math.py                  # 1,000,000 problems, 3 runs each
    python benchmarks/bench_make_math.py --n 200000 --runs 1 --format plain

Prints, per configuration, the median wall time and problems/s over the runs, the ratio, and the
CPU time per problem of the single-process run (what 1M problems cost on free cores). Each run
is the real thing end to end: plan, format, check every line, write train/test JSONL + meta.
The load average is printed too: on a shared machine wall times move with other people's work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from minigpt_cli.mathgen.dataset import make_math
from minigpt_cli.mathgen.settings import MakeMathSettings


def one_run(n: int, workers: int, fmt: str, ops: str, out: Path) -> tuple[float, float, int]:
    s = MakeMathSettings(out=out, n=n, workers=workers, format=fmt, ops=ops)
    cpu, wall = time.process_time(), time.perf_counter()
    meta = make_math(s)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(out)
    return wall, cpu, meta["counts"]["train"] + meta["counts"]["test"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="processes of the parallel run")
    ap.add_argument("--format", default="cot", choices=("cot", "plain", "reverse"))
    ap.add_argument("--ops", default="+,-,*,/")
    args = ap.parse_args()
    print(f"make-math: --n {args.n:,} --ops {args.ops} --format {args.format}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    tmp = Path(tempfile.mkdtemp(prefix="bench_make_math_"))
    results: dict[int, list[tuple[float, float, int]]] = {}
    try:
        for r in range(args.runs):  # interleave configurations so load changes hit both
            for w in (args.workers, 1):
                res = one_run(args.n, w, args.format, args.ops, tmp / f"w{w}_r{r}")
                results.setdefault(w, []).append(res)
                print(f"  run {r + 1}: {w} process(es): {res[0]:.1f}s wall", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print(f"{'processes':>9} | {'median wall s':>13} | {'problems/s':>10}")
    medians = {}
    for w, rows in results.items():
        wall = statistics.median(x[0] for x in rows)
        lines = rows[0][2]
        medians[w] = wall
        print(f"{w:>9} | {wall:>13.1f} | {lines / wall:>10,.0f}")
    single_cpu = statistics.median(x[1] for x in results[1])
    main_cpu = statistics.median(x[1] for x in results[args.workers])
    lines = results[1][0][2]
    print(f"CPU of the main process in the {args.workers}-process run: {main_cpu:.1f}s "
          "(the workers format and check; it plans, writes and hashes)")
    print(f"speed-up with {args.workers} processes: {medians[1] / medians[args.workers]:.2f}x")
    print(f"CPU per problem (1 process): {single_cpu / lines * 1e6:.1f} us "
          f"-> {single_cpu / lines * 1e6:.0f} s of CPU per 1M problems")


if __name__ == "__main__":
    main()
