"""SIGINT / SIGTERM during training: finish the step, save, exit cleanly."""

from __future__ import annotations

import signal
import threading
import time


class Stop:
    """The request to stop, set by a signal. Another Ctrl-C more than ``GRACE`` seconds later
    interrupts at once; signals within it are the same request (under torchrun a worker gets the
    terminal's SIGINT and then torchrun's forwarded one)."""

    GRACE = 2.0

    def __init__(self) -> None:
        self.requested: str | None = None
        self._at = 0.0
        self._previous: dict = {}

    def __enter__(self) -> Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested is None:
            self.requested, self._at = name, time.monotonic()
        elif name == "SIGINT" and time.monotonic() - self._at > self.GRACE:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
