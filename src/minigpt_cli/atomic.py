"""Crash-safe writes: write to a temporary name beside the target, fsync, rename into place.

A reader never sees a half-written file, and a failure leaves what was there before untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from minigpt_cli.oserrors import with_filename


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success fsync it and rename it over
    ``target``; on failure remove it. The caller writes the temporary file however it likes."""
    target = Path(target)
    fd, tmp_path = _temporary(target)
    os.close(fd)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            _commit(f.fileno(), tmp_path, target)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            with_filename(e, target)  # a failed write() names no file: name the target
        raise


def _temporary(target: Path) -> tuple[int, Path]:
    """An open, empty temporary file beside ``target``: ``.<name>.<random>.tmp`` (the names
    sharding/outdir.py recognises as leftovers of a killed write)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    return fd, Path(tmp)


def _commit(fd: int, tmp: Path, target: Path) -> None:
    """fsync the temporary file, give it the usual mode, rename it over ``target``, fsync the
    folder (which makes the rename durable)."""
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600
    os.fsync(fd)
    os.replace(tmp, target)
    fsync_path(target.parent)


class StreamedFile:
    """A file written piece by piece under ``atomic_path``'s temporary name, so that its bytes
    reach the disk while the rest is still being produced: ``append`` writes at the end and asks
    the kernel to start writing those pages back now (Linux), ``write_at`` patches earlier bytes
    (a header whose count is known last), ``commit`` fsyncs -- by then little is left to flush
    -- and renames it into place; ``discard`` removes it. Nothing appears under the final name
    before ``commit``."""

    def __init__(self, target: Path | str) -> None:
        self.target = Path(target)
        fd, self.tmp = _temporary(self.target)
        self._f = os.fdopen(fd, "wb")
        self.size = 0

    def append(self, data) -> None:
        """Write ``data`` (bytes or a buffer) at the end."""
        try:
            n = self._f.write(data)
            self._f.flush()
        except OSError as e:
            raise with_filename(e, self.target)
        if hasattr(os, "posix_fadvise"):  # starts writeback of dirty pages without waiting
            os.posix_fadvise(self._f.fileno(), self.size, n, os.POSIX_FADV_DONTNEED)
        self.size += n

    def write_at(self, offset: int, data) -> None:
        try:
            self._f.seek(offset)
            self._f.write(data)
            self._f.seek(0, os.SEEK_END)
        except OSError as e:
            raise with_filename(e, self.target)

    def commit(self) -> None:
        try:
            self._f.flush()
            _commit(self._f.fileno(), self.tmp, self.target)
        except BaseException as e:
            self.discard()
            if isinstance(e, OSError):
                with_filename(e, self.target)
            raise
        self._f.close()

    def discard(self) -> None:
        try:
            self._f.close()  # flushes what is buffered: may fail again on a full disk
        except OSError:
            pass
        self.tmp.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(folder: Path) -> None:
    """fsync a file or folder by path (a folder's fsync makes a rename in it durable)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
