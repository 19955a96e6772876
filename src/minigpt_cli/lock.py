"""One writer per output: an exclusive OS advisory lock (``flock``) held while a command writes.

``hold(folder)`` locks ``folder/.minigpt.lock`` (shard folders, run folders, data sets: they
live long and may be moved, and the lock moves with them); ``hold_beside(path)`` locks
``.<name>.minigpt.lock`` next to an output that is replaced whole by a rename (export-hf,
import-hf), which a lock inside could not survive. The kernel releases the lock when the
process dies, ``kill -9`` included, so a stale lock file never blocks anyone: only a live
holder does. A second writer fails at once, naming the folder and the holder's process id.

Release removes the lock file while still holding it, and a taker checks after ``flock`` that
the file it locked is still the one at the path (else it locked a removed file and tries again):
two processes can never both believe they hold the lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from minigpt_cli.errors import MinigptError

NAME = ".minigpt.lock"


@contextlib.contextmanager
def hold(folder: Path | str, flag: str = "--out") -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing, with its parents; those removed again on
    the way out if they were created here and are left empty)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MinigptError(f"{flag} {folder} exists and is not a folder.")
    created = _make(folder)
    try:
        with _locked(folder / NAME, folder, flag):
            yield folder
    finally:
        for made in created:  # deepest first; rmdir only removes an empty folder
            try:
                made.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def hold_beside(path: Path | str, flag: str = "OUT") -> Iterator[Path]:
    """Hold the lock of an output that is replaced whole (a lock file beside it)."""
    path = Path(path)
    _make(path.parent)
    with _locked(path.parent / f".{path.name}{NAME}", path, flag):
        yield path


def _make(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the folders this call created, deepest
    first."""
    missing = []
    p = folder.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file of that name: the caller's check raced with someone
        raise MinigptError(f"{folder} exists and is not a folder.") from None
    return missing


@contextlib.contextmanager
def _locked(lock: Path, what: Path, flag: str) -> Iterator[None]:
    # lazy: POSIX only; the module must import where it is missing
    import fcntl

    fd = _take(lock, what, flag, fcntl)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {_command()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # still holding it: nobody can have taken this file meanwhile
        os.close(fd)  # releases the lock


def _take(lock: Path, what: Path, flag: str, fcntl) -> int:
    for _ in range(100):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise MinigptError(
                f"{what} is being written by another minigpt process ({holder}). Two writers "
                f"would corrupt it: wait for that run to end (or stop it), or choose another "
                f"{flag}.") from None
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise MinigptError(
                    f"{what}: this file system cannot lock files ({e.strerror}), so minigpt "
                    f"cannot make sure it is the only writer. Use a {flag} on a local disk."
                ) from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it as we locked it: take the new one
        time.sleep(0.001)
    raise MinigptError(f"Could not take the lock {lock}: it keeps being replaced.")


def _holder(fd: int) -> str:
    """'pid N, `command`' as the holder wrote it (it may not have written it yet)."""
    for _ in range(20):
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if raw:
            pid, _, cmd = raw.partition(" ")
            return f"pid {pid}" + (f", `{cmd}`" if cmd else "")
        time.sleep(0.01)
    return "its process id is not recorded yet"


def _command() -> str:
    argv = list(sys.argv) or ["minigpt"]
    if Path(argv[0]).name in ("minigpt", "__main__.py"):  # `python -m minigpt_cli` too
        argv[0] = "minigpt"
    text = shlex.join(argv)
    return text if len(text) <= 300 else text[:297] + "..."
