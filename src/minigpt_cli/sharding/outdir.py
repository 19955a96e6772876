"""The output folder: is it finished, resumable, someone else's? Leftovers of a killed write."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from minigpt_cli import shards
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding import manifest, progress
from minigpt_cli.sharding.writer import ShardInfo, mask_name, shard_files

# atomic.atomic_path's temporary names: ".<target name>.<random>.tmp"
_TEMP = re.compile(r"^\.(?:(?:val|train)_\d{6}(?:\.mask)?\.bin|manifest\.json|state\.json|"
                   r"checkpoint_\d{6}\.safetensors)\..+\.tmp$")


def finished(out: Path, fingerprint: str) -> dict[str, Any] | None:
    """The manifest of a finished run with these settings; None if there is none yet."""
    if not (out / manifest.NAME).exists():
        return None
    m = manifest.read(out)
    if m.get("fingerprint") != fingerprint:
        raise MinigptError(
            f"{out} already holds a finished set of shards made with other settings (see its "
            f"{manifest.NAME}). Choose another --out, or delete that folder first."
        )
    return m


def check_fresh(out: Path) -> None:
    """Refuse to write into a folder holding shards that no unfinished run of ours explains."""
    if out.exists() and not out.is_dir():
        raise MinigptError(f"--out {out} exists and is not a folder.")
    if out.is_dir() and shard_files(out):
        raise MinigptError(
            f"{out} already holds shard files ({shard_files(out)[0]}, ...) but no unfinished "
            "run's state: they were made some other way. Choose an empty --out folder."
        )


def check_same_run(out: Path, state_fingerprint: str, fingerprint: str) -> None:
    if state_fingerprint != fingerprint:
        raise MinigptError(
            f"{out} holds an unfinished run made with other settings (source, inputs, stages, "
            "tokenizer, shard size or part). Run the same command again to resume it, choose "
            f"another --out, or delete {out} to start over."
        )


def remove_leftovers(out: Path) -> int:
    """Delete temporary files a killed run left behind; return how many."""
    n = 0
    for folder in (out, progress.folder(out)):
        if folder.is_dir():
            for p in folder.iterdir():
                if _TEMP.match(p.name):
                    p.unlink(missing_ok=True)
                    n += 1
    return n


def check_written(out: Path, done: list[ShardInfo]) -> None:
    """The shards an interrupted run finished must still be there, byte for byte (size, then
    sha256: the manifest will vouch for them)."""
    for s in done:
        try:
            n = shards.read_header(out / s.name)
        except MinigptError as e:
            n = f"unreadable ({e})"
        if n != s.tokens:
            raise MinigptError(
                f"{out / s.name} was finished by the interrupted run ({s.tokens} tokens) but "
                f"is now {n if isinstance(n, str) else f'{n} tokens'}. Delete {out} and start "
                "over."
            )
        for name, digest in ((s.name, s.sha256), (mask_name(s.name), s.mask_sha256)):
            if digest and not _same_bytes(out / name, digest):
                raise MinigptError(
                    f"{out / name} was finished by the interrupted run but is missing or its "
                    "bytes changed since (its sha256 differs from the one recorded then). "
                    f"Delete {out} and start over.")


def _same_bytes(path: Path, sha256: str) -> bool:
    try:
        return shards.file_sha256(path) == sha256
    except OSError:
        return False


class Created:
    """What a run makes in ``out``, noted before it starts, so that a run that fails before
    finishing a shard removes it again: the folder (and parents) if the run made it, else only
    the entries it added. Never touches what was there before, nor an unfinished run's folder
    (resumable), nor one where this run finished shards (run the command again to resume)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.missing: list[Path] = []  # out and its ancestors that do not exist yet, deepest first
        p = out.absolute()
        while not p.exists() and p != p.parent:
            self.missing.append(p)
            p = p.parent
        self.before = set(os.listdir(out)) if out.is_dir() else set()
        self.resuming = progress.folder(out).exists()

    def remove_after_failure(self) -> None:
        if self.resuming or not self.out.is_dir():
            return
        if any(name not in self.before for name in shard_files(self.out)):
            return  # finished shards: the resume state beside them lets a re-run go on
        for name in set(os.listdir(self.out)) - self.before:
            path = self.out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for p in self.missing:
            try:
                p.rmdir()  # only when empty
            except OSError:
                return
