"""Benchmark `minigpt shard`: tokens/s against raw tiktoken, filter documents/s, peak RSS.

1. Text from ../shared/data/nietzsche copied to >= --mb MB (default 200) in a temporary folder.
   Baseline: raw tiktoken ``encode_ordinary`` (the offline GPT-2 encoding minigpt uses, ids
   identical to tiktoken's "gpt2") over the same texts, already in memory, in one thread of
   this process. Pipeline: `minigpt shard text DIR --no-stages --workers 2` as a subprocess,
   timed end to end (process start, reading, worker start-up, writing, fsync, manifest).
   Target: pipeline >= 1.6x the baseline rate on a 2-core machine. Also printed: raw
   tiktoken in --workers forked processes with no pipeline at all (texts already in memory, no
   start-up), the most those cores give; the pipeline (worker processes) can only approach it.
2. The default Common Crawl filter recipe (FineWeb-like) over the real WET samples in
   ../shared/data/commoncrawl, copied --wet-copies times (the copies are duplicates, so the
   dedup stages drop them -- after every other filter has run on them).
3. Peak RSS of the whole process tree (main + workers), sampled every 50 ms.

Each measurement is repeated --repeats times (baseline and pipeline alternate, so both see the
same machine load); medians are printed. Run: python benchmarks/bench_shard.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MINIGPT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def build_text(folder: Path, mb: int) -> list[Path]:
    books = sorted((DATA / "nietzsche").glob("*.txt"))
    files, size, k = [], 0, 0
    while size < mb * 1_000_000:
        for b in books:
            dst = folder / f"copy{k:03d}_{b.name}"
            shutil.copyfile(b, dst)
            files.append(dst)
            size += dst.stat().st_size
        k += 1
    return files


def fresh(texts: list[str]) -> list[str]:
    """New copies of the texts: tiktoken caches a str's UTF-8 form inside the str object the
    first time it encodes it (~3% of the encoding time here), so each timed run gets strings
    that have never been encoded, as the pipeline's freshly read documents are."""
    return [t.encode("utf-8").decode("utf-8") for t in texts]


def baseline(texts: list[str]) -> tuple[int, float, float]:
    """Raw tiktoken, one thread: tokens, wall seconds, CPU seconds."""
    from minigpt_cli.tokenizer import _gpt2_encoding

    enc = _gpt2_encoding()  # a plain tiktoken.Encoding
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for t in texts:
        n += len(enc.encode_ordinary(t)) + 1  # + the <|endoftext|> the pipeline adds
    return n, time.perf_counter() - t0, time.process_time() - c0


class TreeRSS:
    """Peak summed RSS of a process and all its descendants, and the CPU time they used."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.peak_single = pid, 0, 0
        self.cpu: dict[int, float] = {}  # pid -> user + system seconds, last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                    parents[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        tree, frontier = [self.pid], [self.pid]
        while frontier:
            frontier = [p for p, pp in parents.items() if pp in frontier]
            tree += frontier
        return tree

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _cpu(self, pid: int) -> None:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            self.cpu[pid] = (int(f[11]) + int(f[12])) / self.TICK
        except (OSError, ValueError, IndexError):
            pass

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    def _run(self) -> None:
        tree, scanned = [self.pid], 0.0
        while not self._stop.is_set():
            if time.monotonic() - scanned > 1.0:  # walking /proc costs CPU the pipeline needs
                tree, scanned = self._tree(), time.monotonic()
            for p in tree:
                self._cpu(p)
            sizes = [self._rss(p) for p in tree]
            self.peak = max(self.peak, sum(sizes))
            self.peak_single = max(self.peak_single, max(sizes, default=0))
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def forked(texts: list[str], workers: int) -> float:
    """Raw tiktoken in ``workers`` forked processes, each encoding every workers-th text (they
    inherit the texts and the encoding): what this machine's cores give a tokenizer with no
    pipeline around it -- the ceiling for the pipeline's worker processes. Returns seconds."""
    from minigpt_cli.tokenizer import _gpt2_encoding

    enc = _gpt2_encoding()
    t0 = time.perf_counter()
    pids = []
    for k in range(workers):
        pid = os.fork()
        if pid == 0:  # the child: never returns into the benchmark
            try:
                for t in texts[k::workers]:
                    enc.encode_ordinary(t)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return time.perf_counter() - t0


def run_shard(args: list[str], out: Path) -> tuple[dict, float, TreeRSS]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "minigpt_cli", "shard", *args, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss = TreeRSS(proc.pid)
    _, err = proc.communicate()
    seconds = time.perf_counter() - t0
    rss.stop()
    if proc.returncode != 0:
        sys.exit(f"minigpt shard failed ({proc.returncode}):\n{err}")
    return json.loads((out / "manifest.json").read_text()), seconds, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="text size in MB (>= 200 per the issue)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wet-copies", type=int, default=40)
    a = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no shared data at {DATA} (set MINIGPT_SHARED_DATA)")
    with tempfile.TemporaryDirectory(prefix="bench_shard_") as tmp:
        tmp = Path(tmp)
        (tmp / "text").mkdir()
        files = build_text(tmp / "text", a.mb)
        mb = sum(f.stat().st_size for f in files) / 1e6
        texts = [f.read_text(encoding="utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
                 for f in files]
        print(f"text: {len(files)} files, {mb:.1f} MB; cpus: {os.cpu_count()}; "
              f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
        base, pipe, rss, rss1, cpu_b, cpu_p, tokens = [], [], [], [], [], [], None
        ceil, ratios, ceil_ratios = [], [], []
        for r in range(a.repeats):
            n, s, c = baseline(fresh(texts))
            base.append(n / s)
            cpu_b.append(c)
            s_t = forked(fresh(texts), a.workers)
            ceil.append(n / s_t)
            ceil_ratios.append(s / s_t)
            m, s2, tree = run_shard(["text", str(tmp / "text"), "--no-stages",
                                     "--workers", str(a.workers)], tmp / "out")
            tokens = m["totals"]["tokens"]
            assert tokens == n, f"pipeline wrote {tokens} tokens, baseline counted {n}"
            pipe.append(tokens / s2)
            ratios.append(s / s2)
            rss.append(tree.peak)
            rss1.append(tree.peak_single)
            cpu_p.append(tree.cpu_seconds)
            print(f"  repeat {r + 1}: raw tiktoken {n / s / 1e6:.2f} M tok/s ({s:.1f} s, "
                  f"{c:.1f} CPU-s), raw in {a.workers} processes {n / s_t / 1e6:.2f} M tok/s, "
                  f"shard pipeline {tokens / s2 / 1e6:.2f} M tok/s ({s2:.1f} s, "
                  f"{tree.cpu_seconds:.1f} CPU-s in all processes), load "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
        del texts
        wet = wet_benchmark(tmp, a)
    b, p = statistics.median(base), statistics.median(pipe)
    print()
    print(f"| measurement ({a.repeats} repeats, medians)                | value")
    print("|---------------------------------------------------------|------------------")
    print(f"| tokens                                                  | {tokens:,}")
    print(f"| raw tiktoken encode_ordinary, 1 thread                  | {b / 1e6:.2f} M tok/s")
    print(f"| minigpt shard text --no-stages --workers {a.workers}, end to end | "
          f"{p / 1e6:.2f} M tok/s")
    print(f"| ratio (target >= 1.6x), median of the paired repeats    | "
          f"{statistics.median(ratios):.2f}x (repeats: "
          f"{', '.join(f'{x:.2f}' for x in ratios)})")
    print(f"| ceiling: raw tiktoken in {a.workers} processes, no pipeline   | "
          f"{statistics.median(ceil) / 1e6:.2f} M tok/s = "
          f"{statistics.median(ceil_ratios):.2f}x (repeats: "
          f"{', '.join(f'{x:.2f}' for x in ceil_ratios)})")
    cb, cp = statistics.median(cpu_b), statistics.median(cpu_p)
    print(f"| CPU seconds: raw tiktoken / pipeline (all processes)    | {cb:.1f} / {cp:.1f} "
          f"(pipeline overhead {100 * (cp / cb - 1):+.0f}%)")

    print(f"| peak RSS, all processes (largest single process)        | "
          f"{statistics.median(rss) / 2**20:.0f} MiB ({statistics.median(rss1) / 2**20:.0f} MiB)")
    if wet:
        print(f"| filter recipe on WET samples x{a.wet_copies}: documents/s          | "
              f"{wet['docs_per_s']:.0f} docs/s ({wet['read']:,} read, {wet['kept']:,} kept, "
              f"{wet['seconds']:.1f} s end to end)")
        print(f"| filter recipe: peak RSS, all processes                  | "
              f"{wet['rss'] / 2**20:.0f} MiB")
    else:
        print("| filter recipe on WET samples                            | n/a (no commoncrawl "
              "source or stages installed)")


def wet_benchmark(tmp: Path, a) -> dict | None:
    from minigpt_cli import plugins

    names = {p.name for p in plugins.available("source")}
    if "commoncrawl" not in names:
        return None
    wet = tmp / "wet"
    wet.mkdir()
    for k in range(a.wet_copies):
        for f in sorted((DATA / "commoncrawl").glob("*.wet*")):
            shutil.copyfile(f, wet / f"copy{k:03d}_{f.name}")
    runs = []
    for _ in range(a.repeats):
        m, s, tree = run_shard(["commoncrawl", str(wet), "--workers", str(a.workers),
                                "--shard-size", "1000000"], tmp / "wet_out")
        runs.append({"docs_per_s": m["totals"]["documents_read"] / s, "seconds": s,
                     "read": m["totals"]["documents_read"], "kept": m["totals"]["documents_kept"],
                     "rss": tree.peak})
    return sorted(runs, key=lambda r: r["docs_per_s"])[len(runs) // 2]


if __name__ == "__main__":
    main()
