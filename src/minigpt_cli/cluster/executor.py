"""Where a job's tasks run: ``local`` (this process, one task after another) or ``dask``
(Dask distributed: a cluster at ``--address``, or a LocalCluster of worker processes).

Dask, not Ray: ``dask[distributed]`` is pure Python (24 MB installed) against Ray's 79 MB
wheel with its own object store and head processes; a LocalCluster of 2 worker processes was up
in 2.6 s on the loaded 2-core machine; and what we need -- tasks with retries, re-running the
tasks of a lost worker, ``as_completed`` -- is its core. Our tasks are file-in, file-out
(cluster/tasks.py), so Ray's object store would go unused.

Both executors report each finished task through ``on_done(stage, index, result)``. A task that
fails past the engine's retries (dask: ``retries`` for its exceptions, the scheduler's
``allowed-failures`` for workers dying under it) fails the job once the other tasks of the
stage are done -- their results are kept in the job folder for the next run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from minigpt_cli.errors import MinigptError

RETRIES = 2  # a task's own exception: tried 1 + RETRIES times
CONNECT_TIMEOUT = "10s"
OnDone = Callable[[str, int, Any], None]


class TaskFailed(MinigptError):
    pass


class LocalExecutor:
    name = "local"
    workers = 1

    def map(self, stage: str, fn: Callable, job, indices: Sequence[int], on_done: OnDone
            ) -> list[Any]:
        out = []
        for i in indices:
            out.append(fn(job, i))
            on_done(stage, i, out[-1])
        return out

    def close(self) -> None:
        pass


class DaskExecutor:
    name = "dask"

    def __init__(self, address: str | None, workers: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MinigptError("--executor dask needs Dask distributed, which is not installed: "
                               "pip install \"minigpt[cluster]\" (or `pip install "
                               "'dask[distributed]'`), or use --executor local.") from None
        self._cluster = None
        # task keys name this run: dask takes two tasks with one key (another job's, or a
        # failed run's still remembered) for the same task
        self._run = uuid.uuid4().hex[:12]
        if address is None:
            self._cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            address = self._cluster.scheduler_address
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            self.close()
            raise MinigptError(f"--address {address}: no Dask scheduler answered there within "
                               f"{CONNECT_TIMEOUT} ({e}). Start one (`dask scheduler`, then "
                               "`dask worker HOST:PORT` on each node) or leave --address out "
                               "for a local cluster.") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, stage: str, fn: Callable, job, indices: Sequence[int], on_done: OnDone
            ) -> list[Any]:
        from distributed import as_completed

        if not indices:
            return []
        futures = self.client.map(fn, [job] * len(indices), list(indices), pure=False,
                                  retries=RETRIES,
                                  key=[f"minigpt-{stage}-{i}-{self._run}" for i in indices])
        where = {f.key: i for f, i in zip(futures, indices)}
        results: dict[int, Any] = {}
        failed: list[tuple[int, BaseException]] = []
        for future in as_completed(futures):
            i = where[future.key]
            try:
                results[i] = future.result()
            except Exception as e:  # noqa: BLE001 -- collected; reported together below
                failed.append((i, e))
                continue
            on_done(stage, i, results[i])
        if failed:
            i, e = min(failed, key=lambda f: f[0])
            why = str(e) if isinstance(e, MinigptError) else f"{type(e).__name__}: {e}"
            raise TaskFailed(
                f"{len(failed)} {stage} task(s) failed past the engine's retries "
                f"({RETRIES} retries; a worker lost under a task counts against the "
                f"scheduler's allowed-failures), first {stage} {i}: {why}. The {len(results)} "
                "finished tasks are kept in the job folder: fix the cause and run the same "
                "command again to resume.")
        return [results[i] for i in indices]

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()


def executor_for(name: str, address: str | None, workers: int):
    if name == "dask":
        return DaskExecutor(address, workers)
    if address is not None:
        raise MinigptError("--address names a Dask scheduler; it needs --executor dask.")
    return LocalExecutor()
