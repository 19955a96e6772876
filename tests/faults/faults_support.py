"""Helpers of the fault suite: run the real `minigpt` in a subprocess under a fault the machine
really produces -- a read-only mount, a file-size limit (RLIMIT_FSIZE), an address-space
limit (RLIMIT_AS) -- and look at what it left on disk."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEMP_MARKERS = (".tmp", ".old")  # atomic.py, hf/export.py and train/state.py temporary names


def env() -> dict:
    """One BLAS thread (the machine is shared), no bytecode written under a size limit."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def minigpt(*args, fsize: int | None = None, address_space: int | None = None,
            prefix: list[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`minigpt ARGS` in a subprocess, with optional resource limits set before it starts.
    Python ignores SIGXFSZ, so a write past RLIMIT_FSIZE fails with EFBIG (not a signal)."""
    def limits() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    cmd = [*(prefix or []), sys.executable, "-m", "minigpt_cli", *map(str, args)]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limits)


def check_limits_allowed() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY and hard < 1 << 30:
        pytest.skip(f"the file-size limit is already {hard} bytes here")


def readonly_prefix(folder: Path) -> list[str] | None:
    """A command prefix that runs its command with ``folder`` mounted read-only in a private
    mount namespace (root with CAP_SYS_ADMIN and `unshare`), or None where that is not
    allowed. The mount vanishes with the process: nothing outside the test changes."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return None
    script = ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"')
    prefix = [unshare, "-m", "--propagation", "private", "sh", "-c", script, str(folder)]
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{folder}/.probe" 2>/dev/null'],
                           capture_output=True)
    return prefix if probe.returncode == 0 and not (folder / ".probe").exists() else None


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative name -> sha256)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if any(m in p.name for m in TEMP_MARKERS)]


def one_paragraph_error(r: subprocess.CompletedProcess) -> str:
    """The error message, after checking it is one: exit 2, no traceback, 'error:' first."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "error:" in r.stderr, r.stderr[-2000:]
    msg = r.stderr[r.stderr.index("error:"):]
    return " ".join(msg.split())
