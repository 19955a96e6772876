"""allocator.py: every `minigpt` command's process (and each torchrun worker) keeps large
buffers mapped across steps; MINIGPT_ALLOCATOR=system leaves glibc's defaults; a bad value is
refused. Checked by behaviour, not by reading a flag: after the command ran, a 256 MiB block
freed and taken again costs (almost) no fresh page faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_train_support import TINY, char_shards, cli_env, read_metrics, run_cli

from minigpt_cli import allocator

pytestmark = pytest.mark.skipif(allocator.glibc_version() is None,
                                reason="the allocator policy applies to glibc only")

# Runs a command in-process through the real entry point, then measures: touch a 256 MiB
# malloc'd block, free it, malloc and touch it again; prints the minor faults of the retouch.
PROBE = r"""
import ctypes, json, resource, sys
from minigpt_cli.cli import app
code = app(json.loads(sys.argv[1]), prog_name="minigpt", standalone_mode=False)
assert code in (None, 0), f"the command exited {code}"
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
n = 256 << 20
def touch():
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    return p
libc.free(ctypes.c_void_p(touch()))
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
libc.free(ctypes.c_void_p(touch()))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def retouch_faults(command: list[str], **env: str) -> int:
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(command)],
                       env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", [
    ["plugins"],
    ["sample", "--prompt", "What is noble? ", "-n", "4", "--dtype", "float32"],  # built-in model
])
def test_a_command_keeps_freed_large_blocks_mapped(command):
    pages = (256 << 20) // os.sysconf("SC_PAGE_SIZE")
    kept = retouch_faults(command)
    system = retouch_faults(command, MINIGPT_ALLOCATOR="system")
    assert system > pages // 2  # glibc's default: munmap on free, fresh pages on reuse
    assert kept < pages // 100  # the policy: the block stays mapped, reuse is free


def test_a_bad_policy_value_is_refused_naming_the_variable():
    r = subprocess.run([sys.executable, "-m", "minigpt_cli", "plugins"], capture_output=True,
                       text=True, env={**os.environ, "MINIGPT_ALLOCATOR": "jemalloc"}, timeout=60)
    assert r.returncode == 2
    assert "MINIGPT_ALLOCATOR='jemalloc' is not a choice" in r.stderr


def test_pretrain_records_the_policy_and_page_faults_per_step(tmp_path):
    data = char_shards(tmp_path / "data")
    out = tmp_path / "run"
    r = run_cli("pretrain", "--data", str(data), "--out", str(out), *TINY, "--max-steps", "3",
                "--eval-every", "0", "--sample-every", "0", "--checkpoint-every", "0")
    assert r.returncode == 0, r.stderr
    hw = json.loads((out / "run.json").read_text())["hardware"]
    assert hw["allocator"].startswith(f"glibc {allocator.glibc_version()}: mmap_threshold 1 GiB")
    steps = [m for m in read_metrics(out) if "loss" in m]
    assert steps and all(isinstance(m["page_faults"], int) and m["page_faults"] >= 0
                         for m in steps)


def test_every_torchrun_worker_runs_under_the_policy(tmp_path):
    data = char_shards(tmp_path / "data")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "minigpt_cli", "pretrain", "--data", str(data), "--out", str(out), *TINY,
           "--max-steps", "2", "--eval-every", "0", "--sample-every", "0",
           "--checkpoint-every", "0"]
    r = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    hw = json.loads((out / "run.json").read_text())["hardware"]
    assert hw["processes"] == 2
    # one string: both ranks reported the same policy (a list would mean they differ)
    assert isinstance(hw["allocator"], str) and hw["allocator"].startswith("glibc")
