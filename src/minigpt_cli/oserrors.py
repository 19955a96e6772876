"""A write the operating system refused, in words: read-only file system, permission denied, a
full disk, a used-up quota, a file over the size limit.

Every command writes through ``atomic`` (a temporary name beside the target, renamed into place
only when complete; removed on failure), so whatever failed, the files finished before are intact
and no temporary file is left. The CLI layer (commands/render.py) turns such an ``OSError`` into
one paragraph with ``describe``; core code only makes sure the error names its file
(``with_filename``, ``from_safetensors``).
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from minigpt_cli.lock import NAME as LOCK_NAME

WRITE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT,
                          errno.EFBIG})

# temporary names of atomic.py (".<name>.<random>.tmp"), hf/export.py (a folder, the same) and
# train/state.py (".step_000500.tmp-<pid>"): shown as the name they were going to get
_TEMP = re.compile(r"^\.(?P<name>.+?)\.(?:[A-Za-z0-9_]{6,}\.tmp|tmp-\d+|[A-Za-z0-9_]{6,}\.old)$")
_OS_CODE = re.compile(r"(?:os error|code:)\s*(\d+)")


def is_write_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in WRITE_ERRNOS


def shown_path(path: str | Path) -> Path:
    """The path a user knows: temporary components replaced by the name they were written for,
    a writer lock file (lock.py) by what it locks."""
    parts = [(_TEMP.match(p).group("name") if _TEMP.match(p) else p) for p in Path(path).parts]
    if parts and parts[-1] == LOCK_NAME:  # <folder>/.minigpt.lock: the folder
        parts = parts[:-1]
    elif parts and parts[-1].startswith(".") and parts[-1].endswith(LOCK_NAME):
        parts[-1] = parts[-1][1:-len(LOCK_NAME)]  # .<name>.minigpt.lock beside <name>
    return Path(*parts) if parts else Path(path)


def with_filename(e: OSError, path: str | Path) -> OSError:
    """``e`` naming ``path`` when it names nothing (``write()`` on an open file names none)."""
    if e.filename is None:
        e.filename = str(path)
    return e


def from_safetensors(e: Exception, path: str | Path) -> OSError | None:
    """safetensors reports an I/O failure as ``SafetensorError('... (os error 28)')``: the
    OSError it stands for, naming ``path``; None when it was not an I/O failure."""
    m = _OS_CODE.search(str(e))
    if m is None:
        return None
    code = int(m.group(1))
    import os

    return OSError(code, os.strerror(code), str(path))


def describe(e: OSError, given: tuple[str, Path] | None = None) -> str:
    """One paragraph: what failed, where, and what to do. ``given`` is the option or argument
    the path came from and its value (``("--out", Path("runs/x"))``), when known."""
    path = shown_path(e.filename) if e.filename else None
    if given is not None:
        flag, value = given
        target = f"{flag} {value}" + (f" ({path})" if path and path != value else "")
        elsewhere = (f"give {flag} another location" if flag.startswith("-")
                     else f"choose another {flag}")
    else:
        target = str(path) if path else "the output"
        elsewhere = "write somewhere else"
    folder = _folder(path)
    kept = ("Files minigpt finished before are intact (each is written under a temporary name "
            "and renamed into place when complete), and the unfinished one was removed.")
    code = e.errno
    if code == errno.EROFS:
        return (f"Cannot write {target}: it is on a read-only file system, so nothing was "
                f"written there. Run the command again and {elsewhere} (a writable one), or "
                f"remount {folder} read-write.")
    if code in (errno.EACCES, errno.EPERM):
        return (f"Cannot open {target}: permission denied ({e.strerror}). Run the command "
                f"again and {elsewhere} (one you may use), or change the permissions of "
                f"{folder}.")
    if code == errno.ENOSPC:
        return (f"The disk is full: no space left on the device holding {folder} while writing "
                f"{target}. {kept} Free some space (`df -h {folder}` shows it) or {elsewhere}, "
                "then run the same command again.")
    if code == errno.EDQUOT:
        return (f"Your disk quota is used up on the file system holding {folder} (while "
                f"writing {target}). {kept} Free some of your files there or {elsewhere}, then "
                "run the same command again.")
    if code == errno.EFBIG:
        return (f"File too large: the file system or a size limit (`ulimit -f`) does not allow "
                f"a file this big (while writing {target}). {kept} Raise the limit, or "
                f"{elsewhere} on a file system that allows large files, then run the same "
                "command again.")
    return f"Cannot write {target}: {e.strerror or e}."


def _folder(path: Path | None) -> str:
    """The nearest folder of ``path`` that exists (the one to free space on, or remount)."""
    if path is None:
        return "the output folder"
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return str(folder)
