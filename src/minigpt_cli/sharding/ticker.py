"""Progress events of a shard run (``events.Progress``), at most every ``TICK_SECONDS``, with
the bytes read so far (from the source's optional ``progress()``, else its provenance)."""

from __future__ import annotations

import time

from minigpt_cli.sharding.events import Listener, Progress
from minigpt_cli.sharding.funnel import Funnel
from minigpt_cli.sharding.reader import Cursor, Reader
from minigpt_cli.sharding.writer import ShardInfo

TICK_SECONDS = 0.25
BYTES_SECONDS = 2.0


class Ticker:
    """Progress events, at most every TICK_SECONDS."""

    def __init__(self, phase, reader: Reader, earlier_provenance, funnel: Funnel,
                 written: list[ShardInfo], on_event: Listener) -> None:
        self.phase, self.reader, self.earlier = phase, reader, earlier_provenance
        self.funnel, self.written, self.on_event = funnel, written, on_event
        self.t0 = time.monotonic()
        self.last = self.last_bytes = 0.0
        self.earlier_bytes = sum(p["bytes"] for p in earlier_provenance
                                 if isinstance(p.get("bytes"), int))
        self.bytes: tuple[int | None, int | None, int | None] = (None, None, None)
        self.inputs_done = 0
        self.at_start = (funnel.read, funnel.tokens)

    def tick(self, cursor: Cursor | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < TICK_SECONDS:
            return
        self.last = now
        self.inputs_done = len(self.reader.inputs) if cursor is None else cursor.input
        if force or now - self.last_bytes > BYTES_SECONDS:
            self.last_bytes = now
            self.bytes = self._bytes()
        f = self.funnel
        read, downloaded, total = self.bytes
        self.on_event(Progress(self.phase, f.read, f.kept, f.tokens, len(self.written),
                               self.inputs_done, len(self.reader.inputs), read,
                               now - self.t0, *self.at_start, self.earlier_bytes, downloaded,
                               total))

    def _bytes(self) -> tuple[int | None, int | None, int | None]:
        """(read, downloaded, total): from the source's optional progress(), else from the
        "bytes" of its provenance entries (O(inputs), hence not on every tick)."""
        progress = getattr(self.reader.source, "progress", None)
        snap = progress() if callable(progress) else None
        if snap is not None and isinstance(getattr(snap, "bytes_read", None), int):
            return (self.earlier_bytes + snap.bytes_read, getattr(snap, "bytes_downloaded", None),
                    getattr(snap, "bytes_total", None))
        sizes = [p["bytes"] for p in self.reader.provenance(self.earlier)
                 if isinstance(p.get("bytes"), int)]
        return (sum(sizes) if sizes else None), None, None
