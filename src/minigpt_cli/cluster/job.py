"""`minigpt shard SOURCE INPUTS --parts N [--executor local|dask] [--address HOST:PORT]`.

The shard pipeline as a job of engine tasks, all under ``OUT/.job``:

1. plan        which inputs, how many parts (part i reads inputs i-1, i-1+N, ... as --part
               i/N does); the plan is kept, and a resume checks the inputs did not change
2. signatures  per part: the stateless filters, then each surviving document's id, exact key
               and MinHash band keys                                      (cluster/signatures.py)
3. exact       per hash bucket: exact duplicates across every part       (cluster/clusters.py)
4. bands       per LSH band x bucket: the pairs sharing a band key
5. drops       union-find over the pairs; each part's documents to drop
6. parts       per part: today's `--part i/N` run (resumable per shard), its dedup stages
               replaced by those verdicts                                 (cluster/drops.py)
7. merge       `--merge` of the parts into OUT, verified; OUT/.job is removed

Every task skips itself when its result exists, so a lost worker's task re-runs and a finished
one never does. The output is a function of the inputs and settings only: the same bytes for
``--executor local`` and ``dask``, any number of workers.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from minigpt_cli import lock
from minigpt_cli.cluster import plan as plans
from minigpt_cli.cluster import tasks
from minigpt_cli.cluster.events import JobStarted, TaskDone
from minigpt_cli.cluster.executor import executor_for
from minigpt_cli.cluster.signatures import DedupChain
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding import manifest, merge
from minigpt_cli.sharding.config import ShardSettings
from minigpt_cli.sharding.events import Finished, Listener, ignore
from minigpt_cli.sharding.reader import multi_input
from minigpt_cli.sharding.verify import verify

FOLDER = ".job"
DOCS_PER_BUCKET = 50_000_000  # 16 B each: ~0.8 GB a dedup task (x2 while sorting)


def run_job(settings: ShardSettings, on_event: Listener = ignore) -> dict[str, Any]:
    with lock.hold(settings.out):
        return _run_job(settings, on_event)


def _run_job(settings: ShardSettings, on_event: Listener) -> dict[str, Any]:
    from minigpt_cli.sharding.run import source_plugin, stage_specs

    t0 = time.monotonic()
    out, fp = settings.out, settings.output_fingerprint()
    if (out / manifest.NAME).exists():
        m = manifest.read(out)
        if (m.get("job") or {}).get("fingerprint") != fp:
            raise MinigptError(f"{out} already holds a finished set of shards made with other "
                               "settings. Choose another --out, or delete that folder first.")
        on_event(Finished(m, out, already_complete=True))
        return m
    if settings.part is not None:
        raise MinigptError("--part i/N runs one part by hand; --parts/--executor plan and run "
                           "them all. Give one or the other.")
    specs = stage_specs(settings)
    chain = DedupChain.of(specs)
    source = source_plugin(settings)
    if not multi_input(source):
        raise MinigptError(f"The {settings.source} source cannot be split into parts (it does "
                           "not list its inputs); run it without --parts/--executor.")
    inputs = list(source.inputs())
    parts = settings.parts or len(inputs)
    if parts > len(inputs):
        raise MinigptError(f"--parts {parts} is more than the {len(inputs)} input(s) of the "
                           f"{settings.source} source: every part needs one. Use --parts "
                           f"{len(inputs)} or fewer.")
    folder = out / FOLDER
    plans.settle(folder, plans.Plan(fp, parts, plans.describe(inputs)))
    executor = executor_for(settings.executor or "local", settings.address, settings.workers)
    part_workers = settings.workers if executor.name == "local" else 0
    job = tasks.JobSpec(settings, tuple(specs), folder, parts, 1, part_workers)
    bands = chain.hasher()[1] if chain.minhash is not None else 0
    stages = {"signatures": parts, "exact": int(chain.exact is not None), "bands": bands,
              "drops": 1} if chain.start is not None else {}
    # a dedup step's bucket count needs the document count: until then the bars show one
    on_event(JobStarted(executor.name, executor.workers, parts, stages | {"parts": parts}))
    try:
        dedup = _deduplicate(job, chain, bands, executor, on_event) if stages else {}
        executor.map("parts", tasks.part_task, job, range(1, parts + 1),
                     _ticker(on_event, "parts", parts))
    finally:
        executor.close()
    record = {"job": {"fingerprint": fp, "parts": parts, "dedup": dedup,
                      "global_dedup": chain.start is not None}}
    folders = [job.part_folder(i) for i in range(1, parts + 1)]
    merged = merge._merge(folders, out, None, extra=record)
    report = verify(out)
    if not report.ok:
        raise MinigptError(f"The merged folder {out} fails verification ({report.failures} "
                           f"problem(s); `minigpt shard --verify {out}` lists them).")
    shutil.rmtree(folder, ignore_errors=True)
    on_event(Finished(merged, out, elapsed=time.monotonic() - t0))
    return merged


def _deduplicate(job: tasks.JobSpec, chain: DedupChain, bands: int, executor,
                 on_event: Listener) -> dict[str, int]:
    n = job.parts
    counts = executor.map("signatures", tasks.signatures_task, job, range(1, n + 1),
                          _ticker(on_event, "signatures", n))
    job = tasks.JobSpec(job.settings, job.specs, job.folder, n,
                        max(1, -(-sum(counts) // DOCS_PER_BUCKET)), job.part_workers)
    if chain.exact is not None:
        executor.map("exact", tasks.exact_task, job, range(job.buckets),
                     _ticker(on_event, "exact", job.buckets))
    if bands:
        executor.map("bands", tasks.band_task, job, range(bands * job.buckets),
                     _ticker(on_event, "bands", bands * job.buckets))
    found = executor.map("drops", tasks.drops_task, job, [bands],
                         _ticker(on_event, "drops", 1))[0]
    return {"documents": int(sum(counts)), "buckets": job.buckets, **found}


def _ticker(on_event: Listener, stage: str, total: int):
    done = [0]

    def on_done(_stage: str, index: int, _result) -> None:
        done[0] += 1
        on_event(TaskDone(stage, index, done[0], total))

    return on_done
