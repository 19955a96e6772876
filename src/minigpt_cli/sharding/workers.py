"""Worker processes that run the stateless stages and the tokenizer on batches of documents.

Results come back in submission order and at most ``in_flight`` batches are out at once, so
memory stays bounded however large the input (``Pool.imap`` would read its whole input ahead).
Workers are forked from a ``forkserver`` that has imported this module once (``spawn`` where
there is no forkserver): no fork of a main process that may hold threads and locks, and no
per-worker import (forkserver.py starts and prepares that server). Workers take the main
process's ``sys.path`` (so plugins installed on it are found), ignore Ctrl-C (the main process
stops them), and leave by themselves when the main process dies, even by ``kill -9``. A worker
that dies (out of memory, a crashing plugin) fails the run with a clear error instead of hanging
it (concurrent.futures detects a broken pool).

One worker that only tokenizes, with a tokenizer that releases the GIL (GPT-2: tiktoken's Rust
core does), is a thread of the main process instead: nothing pickled, no start-up. Two or more
are processes even then: on the 2-core benchmark machine, two tiktoken encoders on threads of
one process ran at 1.60x one thread's rate and two processes at 1.98x (4 alternating rounds
over the Nietzsche texts), while the documents' trip to a worker and back costs a few percent.
Python stages hold the GIL, so a chain with stateless filters always uses processes.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from minigpt_cli import plugins
from minigpt_cli.documents import Document
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.chain import BatchResult, WorkerChain, is_stateless
from minigpt_cli.sharding.config import StageSpec
from minigpt_cli.sharding.forkserver import context

T = TypeVar("T")

_chain: WorkerChain | None = None
_init_error: BaseException | None = None


def _watch_main(main: int, parent: int) -> None:
    """Exit when the main process is gone. Forkserver children hold the server's liveness pipe,
    so the server (our parent) outlives a killed main process unless we leave first."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(main, 0)
            gone = os.getppid() != parent or _zombie(main)
        except (ProcessLookupError, PermissionError):  # gone, or the pid was reused
            gone = True
        if gone:
            os._exit(1)  # nobody will read our results


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent (Linux; elsewhere assume alive)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _init(specs: list[StageSpec], tokenizer, sys_path: list[str], main: int) -> None:
    global _chain, _init_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_main, args=(main, os.getppid()), daemon=True).start()
    if sys.path != sys_path:  # a forkserver started before a plugin folder joined sys.path
        sys.path[:] = sys_path
        importlib.invalidate_caches()
        plugins.refresh()
    try:
        _chain = WorkerChain(specs, tokenizer)
    except Exception as e:  # noqa: BLE001 -- reported with the first batch, not as a dead pool
        _init_error = e


def _ready() -> bool:
    """The pool's first job: done once a worker has started (and initialised)."""
    return True


def _run(docs: list[Document], verdicts: list | None = None) -> BatchResult:
    if _chain is None:
        raise _init_error or RuntimeError("worker not initialised")
    return _chain.run(docs, verdicts)


def tokenize_only(specs: list[StageSpec]) -> bool:
    """No stateless (Python, per-document) stage: the workers would only tokenize."""
    return not any(is_stateless(plugins.load("stage", s.name)) for s in specs)


def uses_threads(workers: int, specs: list[StageSpec], tokenizer) -> bool:
    """A thread suffices for one worker that would only tokenize, with a GIL-free tokenizer."""
    if workers != 1 or not getattr(tokenizer, "releases_gil", False):
        return False
    return tokenize_only(specs)


class ChainPool:
    """``map(batches)`` -> results in order; in-process when ``workers == 0``; worker threads
    when ``uses_threads``, worker processes otherwise (``kind`` says which)."""

    def __init__(self, workers: int, specs: list[StageSpec], tokenizer):
        """``tokenizer``: the Tokenizer to encode with, or None to collect characters instead."""
        self.workers = workers
        self._pool = None
        self._specs, self._tokenizer = specs, tokenizer
        self._inline: WorkerChain | None = None
        self.kind = "inline" if workers == 0 else \
            "threads" if uses_threads(workers, specs, tokenizer) else "processes"
        self.helped = 0  # batches the main process ran while the worker processes started
        # Helping pays when a batch is cheap (tokenizing, ~0.1 s a MB); a filter chain would
        # load its models here too and hold the main process on a slow batch while the
        # workers, up by then, wait for more (the WET recipe: 8.0-8.5 s -> 8.8-9.7 s).
        self._helps = self.kind == "processes" and tokenize_only(specs)
        if self.kind == "threads":
            chain = WorkerChain(specs, tokenizer)  # stateless across calls: one for all threads
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="minigpt-tokenize")
            self._run = chain.run
        elif self.kind == "processes":
            gpt2 = getattr(tokenizer, "name", None) == "gpt2"
            self._pool = ProcessPoolExecutor(workers, mp_context=context(gpt2), initializer=_init,
                                             initargs=(specs, tokenizer, list(sys.path),
                                                       os.getpid()))
            self._run = _run
        self._warm: Future | None = None
        self._starter: threading.Thread | None = None

    def _begin(self) -> None:
        """Start the worker processes. The first submit forks them and blocks until the
        server is ready: a helper thread makes it (a no-op job), the main process works on."""
        if self._starter is None:
            self._starter = threading.Thread(target=self._start, name="minigpt-pool-start",
                                             daemon=True)
            self._starter.start()

    def _start(self) -> None:
        try:
            self._warm = self._pool.submit(_ready)
        except Exception:  # noqa: BLE001, S110 -- the next submit raises it for real
            pass

    def _up(self) -> bool:
        """The workers are running (or failed to start: the next submit says why)."""
        if not self._helps:
            return True
        if self._starter is None:
            return False
        return not self._starter.is_alive() and (self._warm is None or self._warm.done())

    def _here(self, docs: list[Document], verdicts: list | None = None) -> BatchResult:
        """Run a batch in this process (the same chain a worker runs: same result)."""
        if self._inline is None:
            self._inline = WorkerChain(self._specs, self._tokenizer)
        return self._inline.run(docs, verdicts)

    def map(self, batches: Iterable[T], docs_of: Callable[[T], list[Document]],
            verdicts_of: Callable[[T], list] | None = None
            ) -> Iterator[tuple[T, BatchResult]]:
        """Worker processes take ~0.5 s to come up (fork, imports, tables); when the workers
        only tokenize, the main process runs the batches itself until one of them is up,
        instead of waiting, and starts them at the second batch (an input of one batch never
        waits for them). Results stay in input order; at most ``2 * workers + 2`` batches are
        in flight. ``verdicts_of``: a batch's recorded verdicts to replay (chain.WorkerChain)."""
        def work(b) -> tuple:  # (docs,) or (docs, verdicts)
            return (docs_of(b),) if verdicts_of is None else (docs_of(b), verdicts_of(b))

        if self._pool is None:
            for b in batches:
                yield b, self._here(*work(b))
            return
        in_flight = 2 * self.workers + 2
        pending: deque = deque()  # (batch, Future | BatchResult), in input order
        up = False
        for i, b in enumerate(batches):
            if i == 1 and self._helps:
                self._begin()
            up = up or self._up()
            if up:
                pending.append((b, self._pool.submit(self._run, *work(b))))
            else:
                pending.append((b, self._here(*work(b))))
                self.helped += 1
            while pending and (len(pending) >= in_flight or isinstance(pending[0][1],
                                                                       BatchResult)):
                head, job = pending.popleft()
                yield head, _result(job)
        while pending:
            head, job = pending.popleft()
            yield head, _result(job)

    def close(self) -> None:
        if self._starter is not None:
            self._starter.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):  # -> the object itself
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _result(job: Future | BatchResult) -> BatchResult:
    if isinstance(job, BatchResult):
        return job
    try:
        return job.result()
    except BrokenProcessPool:
        raise MinigptError(
            "A tokenizer worker process died (killed for memory, or a plugin crashed it). "
            "Run again with fewer --workers, or --workers 0 to see the plugin's own error; the "
            "run resumes from its last finished shard."
        ) from None
