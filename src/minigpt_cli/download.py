"""Saving a remote file to disk, resumably and verifiably.

``download(url, dest, sha256=...)``: bytes land in ``.<name>.part`` beside ``dest`` (kept across
runs, so a killed download resumes with a Range request), are fsynced, checked against the pinned
sha256 when one is given, and only then renamed to ``dest``. A checksum mismatch leaves nothing
under ``dest``. The transfer itself (retries, backoff, resume of a broken connection, progress
events) is ``minigpt_cli.remote.RemoteFile``, re-exported here for callers of this module.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from minigpt_cli.atomic import fsync_path
from minigpt_cli.remote import (
    CHUNK,
    DownloadError,
    DownloadProgress,
    RemoteFile,
    RetryPolicy,
    fetch_bytes,
)

__all__ = [
    "DownloadError",
    "DownloadProgress",
    "RemoteFile",
    "RetryPolicy",
    "cache_path",
    "download",
    "fetch_bytes",
    "sha256_file",
]


def cache_path(cache_dir: Path | str, url: str) -> Path:
    """Where ``url`` lives in a cache folder: ``<cache>/<host>/<path>``."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s and s not in (".", "..")]
    if not segments:
        segments = ["index"]
    return Path(cache_dir, parts.hostname or "local", *segments)


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    *,
    policy: RetryPolicy | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` (skipped when ``dest`` already exists with the right checksum).

    Bytes go to ``.<name>.part`` beside ``dest``; a later call resumes it with a Range request.
    The part file is locked while in use, so parallel jobs sharing a cache fetch each file once.
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    with open(part, "ab+") as out:
        _lock(out)
        if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
            return dest  # another process finished it while we waited for the lock
        digest = hashlib.sha256()
        out.seek(0)
        while chunk := out.read(CHUNK):
            digest.update(chunk)
        offset = out.tell()
        with RemoteFile(url, policy, on_progress, offset=offset) as remote:
            while chunk := remote.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
        out.flush()
        os.fsync(out.fileno())
        if sha256 is not None and digest.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"The file downloaded from {url} has sha256 {digest.hexdigest()}, not the "
                f"pinned {sha256}; it was discarded and nothing was written to {dest}. The "
                "file changed upstream or the transfer was corrupted: try again, or update the "
                "pinned checksum if the new file is trusted.",
                url,
            )
        os.replace(part, dest)
    fsync_path(dest.parent)
    return dest


def _lock(f) -> None:
    try:
        # lazy: POSIX only; the module must import where it is missing
        import fcntl
    except ImportError:  # Windows: no cross-process lock, single-job use only
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


def cache_root() -> Path:
    """Where downloads are kept: $MINIGPT_CACHE_DIR, else $XDG_CACHE_HOME/minigpt, else
    ~/.cache/minigpt."""
    if os.environ.get("MINIGPT_CACHE_DIR"):
        return Path(os.environ["MINIGPT_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "minigpt"
