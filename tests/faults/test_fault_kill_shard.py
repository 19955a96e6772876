"""`kill -9` of `minigpt shard` at seeded points -- a shard complete under its temporary name, the
resume state half-saved, the manifest not yet renamed into place -- then the same command again:
byte-identical shards and manifest counts, no temporary file left, and the folder verifies."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from shard_support import cli, example_plugin, shard_bytes  # noqa: F401 (fixture)
from test_train_support import cli_env

KILLER = Path(__file__).with_name("killer.py")
SEED = 20261202
# point -> the range of occurrences the seeded draw picks from (the run writes ~10 shards)
POINTS = {"shard": (2, 8), "progress": (3, 9), "manifest": (1, 1)}


def _args(shared_data: Path, out: Path) -> list[str]:
    books = [str(shared_data / "nietzsche" / n) for n in
             ("we_philologists.txt", "the_case_of_wagner.txt")]
    # a stateless stage in the worker processes, a stateful one (a running count) in the main
    return ["shard", "text", *books, "-o", "split=paragraph", "--stage", "min_words",
            "--stage", "numbered", "-S", "numbered.drop_every=7", "--shard-size", "4000",
            "--out", str(out), "-j", "2"]


def _run(args: list[str], kill: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    env = cli_env()
    if kill:
        env["MINIGPT_TEST_KILL"] = f"{kill[0]}:{kill[1]}"
    return subprocess.run([sys.executable, str(KILLER), *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _counts(out: Path) -> dict:
    m = json.loads((out / "manifest.json").read_text())
    return {"shards": [(s["name"], s["tokens"], s["documents"], s["sha256"]) for s in m["shards"]],
            "stages": m["stages"]}


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_9_then_the_same_command_gives_identical_shards(shared_data, tmp_path, point,
                                                             example_plugin):  # noqa: F811
    whole = tmp_path / "whole"
    r = _run(_args(shared_data, whole))
    assert r.returncode == 0, r.stderr
    rng = random.Random(f"{SEED}:{point}")
    n = rng.randint(*POINTS[point])
    out = tmp_path / "killed"
    r = _run(_args(shared_data, out), kill=(point, n))
    assert r.returncode == -signal.SIGKILL, f"not killed at {point}:{n}: {r.stderr[-2000:]}"
    assert not (out / "manifest.json").exists()
    r = _run(_args(shared_data, out))
    assert r.returncode == 0, r.stderr
    assert shard_bytes(out) == shard_bytes(whole), f"killed at {point}:{n}"
    assert _counts(out) == _counts(whole)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not (out / ".shard-progress").exists() and not (out / ".minigpt.lock").exists()
    v = cli("shard", "--verify", out)
    assert v.exit_code == 0, v.output
