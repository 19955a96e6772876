"""The C allocator's policy for model work: large buffers stay mapped from one step to the next.

By default glibc serves every allocation above its mmap threshold (128 KiB, rising after
frees to at most 32 MiB) with a fresh ``mmap`` and gives it back with ``munmap`` on free, and
trims the heap top past 128 KiB. PyTorch's CPU tensors come from ``malloc``, so each
training step maps, faults in page by page, and unmaps the same activations, logits and
gradients again: ~400,000 minor page faults a step on a 2-layer model with GPT-2's 50k
vocabulary, over half a million on the 124M step (issue #16; docs/performance.md has the
figures). Raising the mmap threshold to 1 GiB and the trim threshold to 2 GiB at start-up
keeps those buffers in the heap, where a freed block is reused by the next step's request
of the same size: after the first steps a step takes no page faults at all.

Why mallopt and not the alternatives: it needs nothing installed (jemalloc/tcmalloc are not
on PyPI, a Debian package is not on a user's machine, and ``LD_PRELOAD`` would mean
re-executing the command), it acts in the process that calls it -- so every command and
every torchrun worker sets it in ``cli``'s root callback, before any tensor exists -- and it
costs memory only where memory was already used: the heap keeps its high-water mark (the
resident size after the first steps is that of the largest step, up to ~2x the live peak
on the 50k-vocabulary nano model where fragmentation is worst) instead of returning it
between steps. ``MINIGPT_ALLOCATOR=system`` leaves glibc's defaults (for a machine where
memory is tighter than time). On a C library other than glibc (macOS, musl) nothing is
changed and ``current()`` says so.
"""

from __future__ import annotations

import ctypes
import os

from minigpt_cli.errors import MinigptError

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 31
ENV = "MINIGPT_ALLOCATOR"

_state = "system (not configured: the minigpt command was not run in this process)"


def glibc_version() -> str | None:
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        return None
    return found.split()[-1] if found and found.startswith("glibc") else None


def keep_large_buffers_mapped() -> str:
    """Apply the policy to this process (idempotent); returns what is in force, in words."""
    global _state
    choice = os.environ.get(ENV, "").strip().lower()
    if choice not in ("", "keep", "system"):
        raise MinigptError(f"{ENV}={os.environ[ENV]!r} is not a choice: leave it unset (or "
                           "'keep') to keep large buffers mapped across steps, or set it to "
                           "'system' for the C library's defaults.")
    version = glibc_version()
    if choice == "system":
        _state = f"system ({ENV}=system)"
    elif version is None:
        _state = "system (not glibc: nothing to tune)"
    else:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and \
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        _state = (f"glibc {version}: mmap_threshold 1 GiB, trim_threshold 2 GiB" if ok
                  else f"system (glibc {version} refused mallopt)")
    return _state


def current() -> str:
    """The policy in force in this process, for the run record (``run.json``)."""
    return _state
