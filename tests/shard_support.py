"""Helpers shared by the `minigpt shard` tests (test_shard*.py, test_plugins.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from minigpt_cli import plugins
from minigpt_cli.cli import app
from minigpt_cli.sharding import events
from minigpt_cli.shards import open_shard

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "minigpt-plugin-example"
GPT2_EOT = 50256


def cli(*args: str | Path):
    """Run `minigpt ARGS`; ``.flat`` is the output with rich's line wrapping undone."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    result.flat = " ".join(result.output.split())
    return result


def shard_args(out: Path, *extra: str | Path) -> list[str]:
    return ["--out", str(out), *[str(e) for e in extra]]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.bin"))}


def all_tokens(folder: Path) -> np.ndarray:
    """Every shard's tokens in index order (val first), as one array."""
    m = manifest(folder)
    parts = [np.asarray(open_shard(folder / s["name"])) for s in sorted(m["shards"],
                                                                        key=lambda s: s["index"])]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def documents(folder: Path, eot: int = GPT2_EOT) -> list[np.ndarray]:
    """The documents of a shard folder: token runs that each start with the end-of-text id."""
    toks = all_tokens(folder)
    starts = np.flatnonzero(toks == eot)
    assert len(toks) == 0 or starts[0] == 0, "the first token of the first shard is not EOT"
    return [toks[a + 1:b] for a, b in zip(starts, list(starts[1:]) + [len(toks)])]


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory) -> Path:
    """pip-install examples/minigpt-plugin-example into a target folder on sys.path (and on the
    PYTHONPATH of subprocesses and spawned workers). Offline: no deps, no build isolation."""
    work = tmp_path_factory.mktemp("plugin")
    src = work / "src"
    shutil.copytree(EXAMPLE_PLUGIN, src)  # build there, not in the repository
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
                   check=True, capture_output=True)
    sys.path.insert(0, str(target))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), old]))
    plugins.refresh()
    yield target
    sys.path.remove(str(target))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
    plugins.refresh()


class Stop(Exception):
    """Raised by ``stop_after``'s listener: an interruption between two writes."""


def stop_after(n_shards: int):
    """A shard run listener that interrupts the run right after its n-th shard is written
    (ShardDone comes after a shard is on disk and before the state records it)."""
    seen = []

    def listener(e):
        if isinstance(e, events.ShardDone):
            seen.append(e.name)
            if len(seen) == n_shards:
                raise Stop(e.name)
    return listener
