"""Resume: a run stopped at any point (an exception between two writes, or `kill -9` of a real
process) and started again ends with shards byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shard_support import (  # noqa: F401 (fixture)
    Stop,
    cli,
    example_plugin,
    manifest,
    shard_bytes,
    stop_after,
)

from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding import events
from minigpt_cli.sharding.config import ShardSettings
from minigpt_cli.sharding.run import run


def _comparable(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in ("created", "settings")}


def test_resume_after_an_interruption_is_byte_identical(shared_data, tmp_path):
    src = shared_data / "fineweb" / "fineweb_subset_300.jsonl"

    def settings(out: Path) -> ShardSettings:
        return ShardSettings(source="jsonl", inputs=[str(src)], out=out, shard_size=15_000,
                             workers=0, stages=[])

    whole = run(settings(tmp_path / "whole"))
    out = tmp_path / "resumed"
    # ShardDone comes after a shard is on disk and before the state records it: the worst spot
    for stop_at in (3, 2, 4):
        with pytest.raises(Stop):
            run(settings(out), stop_after(stop_at))
        state = json.loads((out / ".shard-progress" / "state.json").read_text())
        assert len(state["shards"]) >= stop_at - 1 and not (out / "manifest.json").exists()
    started = []
    resumed = run(settings(out), started.append)
    first = next(e for e in started if isinstance(e, events.Started))
    assert first.resumed_shards >= 6 and first.resumed_documents > 0
    assert shard_bytes(out) == shard_bytes(tmp_path / "whole")
    assert _comparable(resumed) == _comparable(whole)  # counts and provenance too
    assert not (out / ".shard-progress").exists()
    half = tmp_path / "half"
    with pytest.raises(Stop):
        run(settings(half), stop_after(2))
    with pytest.raises(MinigptError, match="unfinished run made with other settings"):
        run(settings(half).model_copy(update={"shard_size": 9_000}))


def test_streamed_shards_are_identical_and_an_interruption_leaves_no_partial_file(
        shared_data, tmp_path, monkeypatch):
    """A shard reaches its temporary file in pieces while it fills (writer.STREAM_TOKENS at a
    time; its header last). An interruption removes the piece written so far, the resumed run
    ends byte-identical to one that wrote each shard whole, and --verify agrees."""
    from minigpt_cli import atomic
    from minigpt_cli.sharding import writer

    src = shared_data / "fineweb" / "fineweb_subset_300.jsonl"

    def settings(out: Path) -> ShardSettings:
        return ShardSettings(source="jsonl", inputs=[str(src)], out=out, shard_size=15_000,
                             workers=0, stages=[])

    run(settings(tmp_path / "whole"))  # the default: these small shards go out in one piece
    appends = []
    real_append = atomic.StreamedFile.append
    out = tmp_path / "streamed"
    temporary_at_stop = []

    def append(self, data):  # an interruption in the middle of the third shard's pieces
        real_append(self, data)
        appends.append(self.target.name)
        if appends.count("train_000002.bin") == 3 and not temporary_at_stop:
            temporary_at_stop.extend(p.name for p in out.iterdir() if p.name.endswith(".tmp"))
            raise Stop(self.target.name)

    monkeypatch.setattr(writer, "STREAM_TOKENS", 1_000)
    monkeypatch.setattr(atomic.StreamedFile, "append", append)
    with pytest.raises(Stop):
        run(settings(out))
    assert [n.split(".bin.")[0] for n in temporary_at_stop] == [".train_000002"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # removed on the way out
    run(settings(out))
    assert shard_bytes(out) == shard_bytes(tmp_path / "whole")
    assert len(appends) > 3 * len(shard_bytes(out))  # header + several pieces per shard
    r = cli("shard", "--verify", out)
    assert r.exit_code == 0, r.output


def _descendants(pid: int) -> list[int]:
    """Children, grandchildren... of pid (workers may hang off a forkserver)."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parents[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1]
                                      .split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = [], [pid]
    while frontier:
        frontier = [p for p, pp in parents.items() if pp in frontier]
        found += frontier
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_then_same_command_continues_to_identical_shards(shared_data, tmp_path,
                                                                  example_plugin):  # noqa: F811
    # paragraphs of two books, through a stateless stage in the workers and a stateful one
    # (a running count, which must survive the kill) in the main process
    books = [str(shared_data / "nietzsche" / n) for n in
             ("we_philologists.txt", "the_case_of_wagner.txt")]
    args = ["shard", "text", *books, "-o", "split=paragraph", "--stage", "min_words",
            "--stage", "numbered", "-S", "numbered.drop_every=7", "--shard-size", "4000"]
    whole = tmp_path / "whole"
    assert cli(*args, "--out", whole, "-j", 0).exit_code == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "minigpt_cli", *args, "--out", str(out), "-j", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / ".shard-progress" / "state.json"
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [c for c in _descendants(proc.pid) if c not in workers] + workers
        if state.exists() and len(json.loads(state.read_text() or "{}").get("shards", [])) >= 5:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    done_before = len(json.loads(state.read_text())["shards"])
    assert 5 <= done_before < len(manifest(whole)["shards"]) - 1
    # the workers notice that their parent is gone and leave by themselves
    assert workers, "no worker processes were seen"
    for _ in range(100):
        if not any(Path(f"/proc/{w}").exists() and "zombie" not in _status(w) for w in workers):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker processes {workers} outlived the killed run")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert f"resuming after {done_before} finished shard(s)" in " ".join(r.stderr.split())
    assert shard_bytes(out) == shard_bytes(whole)
    assert _comparable(manifest(out))["stages"] == _comparable(manifest(whole))["stages"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not (out / ".shard-progress").exists()


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"
