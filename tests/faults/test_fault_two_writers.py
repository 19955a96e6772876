"""One writer per output folder: a second `minigpt` process writing the same folder fails at
once with a message naming the folder and the holder's process id; the first one's work is
untouched; a killed holder never leaves a lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from shard_support import cli
from test_train_support import TINY, char_shards, cli_env, minigpt_cmd, run_cli

from minigpt_cli import lock
from minigpt_cli.errors import MinigptError


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_two_shard_runs_started_together_one_fails_at_once_and_the_folder_verifies(
        shared_data, tmp_path):
    books = sorted(str(p) for p in (shared_data / "nietzsche").glob("*.txt"))
    out = tmp_path / "shards"
    common = [sys.executable, "-m", "minigpt_cli", "shard", "text", *books, "--out", str(out),
              "--tokenizer", "gpt2", "-j", "1"]
    cmds = [common + ["--shard-size", "200000"], common + ["--shard-size", "300000"]]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=cli_env()) for c in cmds]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) != [0, 0], "both writers finished"
    assert 0 in codes, results
    loser = codes.index(0) ^ 1
    message = _flat(results[loser][1])
    assert f"{out} is being written by another minigpt process (pid {procs[1 - loser].pid}" \
        in message
    assert "Traceback" not in results[loser][1]
    r = cli("shard", "--verify", out)
    assert r.exit_code == 0, r.output
    assert not (out / lock.NAME).exists()  # released (and removed) by the winner


def test_a_second_pretrain_into_a_running_folder_stops_at_once(tmp_path):
    data = char_shards(tmp_path / "data")
    run = tmp_path / "run"
    args = ["pretrain", "--data", str(data), "--out", str(run), *TINY, "--max-steps", "5",
            "--eval-every", "0", "--sample-every", "0", "--checkpoint-every", "2"]
    first = subprocess.Popen(minigpt_cmd(*args, "--inject-faults", "hang@3:600"),
                             env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "step_000002").is_dir():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        second = run_cli(*args, "--resume", "auto")
        assert second.returncode != 0
        assert time.monotonic() - t0 < 60  # it did not wait for the first run
        msg = _flat(second.stderr + second.stdout)
        assert f"{run} is being written by another minigpt process (pid {first.pid}" in msg
        assert "choose another --out" in msg and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # the OS released the killed holder's lock: the same command resumes and finishes
    r = run_cli(*args, "--resume", "auto")
    assert r.returncode == 0, r.stderr
    assert (run / "step_000005").is_dir() and not (run / lock.NAME).exists()


def test_the_lock_in_process(tmp_path):
    folder = tmp_path / "new" / "out"
    with lock.hold(folder):
        assert (folder / lock.NAME).read_text().split()[0] == str(os.getpid())
        with pytest.raises(MinigptError, match=f"pid {os.getpid()}"):  # flock is per open file
            with lock.hold(folder):
                pass
    assert not folder.exists()  # created for the run, left empty: removed again
    folder.mkdir(parents=True)
    (folder / "kept.txt").write_text("x")
    with lock.hold(folder):
        pass
    assert sorted(p.name for p in folder.iterdir()) == ["kept.txt"]
    target = tmp_path / "hf"
    with lock.hold_beside(target):
        assert (tmp_path / f".hf{lock.NAME}").exists() and not target.exists()
    assert not (tmp_path / f".hf{lock.NAME}").exists()
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(MinigptError, match="not a folder"):
        with lock.hold(file):
            pass


def test_a_lock_file_left_by_a_killed_process_does_not_block(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from minigpt_cli import lock\n"
         "with lock.hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)",
         str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(MinigptError, match=f"pid {holder.pid}"):
        with lock.hold(folder):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert (folder / lock.NAME).exists()  # kill -9 left the file...
    with lock.hold(folder):  # ...but not the lock
        pass
