"""The generation benchmark runs end to end (a smoke run on the nano preset; no timing asserts)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generate.py"


def test_quick_run_prints_the_table():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-transformers"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "preset nano" in out and "24 new tokens" in out and "3 interleaved runs" in out
    assert "copy bandwidth:" in out and "bandwidth bound" in out
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    cache, recompute = rows["minigpt KV cache"], rows["minigpt recompute (nanoGPT loop)"]
    assert cache.rstrip().endswith("same")  # greedy tokens identical to recomputing
    assert recompute.rstrip().endswith("reference")
    assert "MiB" in cache and "%" in cache
