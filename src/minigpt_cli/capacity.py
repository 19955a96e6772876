"""How much memory and disk this process may still use: the figures a command compares its
estimate with before it starts, so that it refuses work that cannot fit instead of failing
(or thrashing) part-way."""

from __future__ import annotations

import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limit:
    bytes: int
    what: str  # where the figure comes from, for messages ("available memory (MemAvailable)")


def memory() -> Limit | None:
    """The tightest of: the memory the kernel says is available, a cgroup (container) limit,
    and this process's address-space limit (``ulimit -v``) less what it already maps.
    None when none of them is known."""
    found = [x for x in (_meminfo(), _cgroup(), _address_space()) if x is not None]
    return min(found, key=lambda x: x.bytes) if found else None


def disk(path: Path) -> Limit | None:
    """Free bytes on the file system that holds ``path`` (or would: its nearest existing
    ancestor); None if that cannot be read."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return Limit(shutil.disk_usage(folder).free, f"free space on the disk holding {folder}")
    except OSError:
        return None


def file_size() -> Limit | None:
    """The largest file this process may write (``ulimit -f``), if it is limited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else Limit(soft, "the file-size limit "
                                                                   "(ulimit -f)")


def _meminfo() -> Limit | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return Limit(int(line.split()[1]) * 1024, "available memory (MemAvailable "
                                 "in /proc/meminfo)")
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unix systems
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return Limit(pages, "available memory")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup() -> Limit | None:
    """cgroup v2: memory.max less memory.current of this process's group."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((line.strip().split(":", 2)[2] for line in f if line.startswith("0::")),
                       None)
        if rel is None:
            return None
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((base / "memory.current").read_text().strip())
        return Limit(max(0, int(limit) - used), f"the container's memory limit ({base})")
    except (OSError, ValueError, IndexError):
        return None


def _address_space() -> Limit | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    mapped = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return Limit(max(0, soft - mapped), "this process's address-space limit (ulimit -v)")


def size(n: float) -> str:
    """Bytes in words: 1.5 GiB, 14.6 TiB."""
    for unit, div in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20),
                      ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} bytes"
