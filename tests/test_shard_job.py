"""`minigpt shard ... --parts N --executor local|dask`: a job of engine tasks with global dedup.

The engine is real: one Dask LocalCluster per module (2 worker processes, 1 thread each), the
job reaching it through --address as it would reach a cluster's scheduler. The inputs are the
real WET records of ../shared/data/commoncrawl, dealt into 6 files (3 parts) with one page
planted in two parts and a near copy of it in a third."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from shard_support import cli, documents, manifest, shard_bytes

from minigpt_cli.cluster import clusters, signatures
from minigpt_cli.documents import Document, Drop
from minigpt_cli.sharding.chain import build_stage
from minigpt_cli.sharding.config import Part, StageSpec
from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource
from minigpt_cli.stages.dedup import normalized_bytes
from minigpt_cli.tokenizer import GPT2Tokenizer

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed "
                                  "(pip install \"minigpt[cluster]\")")

STAGES = ["-s", "gopher_repetition", "-s", "c4", "-s", "exact_dedup", "-s", "minhash_dedup"]
FILES = 6


def wet(records: list[tuple[str, str]]) -> bytes:
    out = b""
    for rid, text in records:
        body = text.encode()
        head = ["WARC/1.0", "WARC-Type: conversion", "WARC-Target-URI: http://example.org/"
                f"{rid}", "WARC-Date: 2024-05-18T01:58:10Z", f"WARC-Record-ID: <urn:test:{rid}>",
                f"Content-Length: {len(body)}"]
        out += "\r\n".join(head).encode() + b"\r\n\r\n" + body + b"\r\n\r\n"
    return out


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory) -> tuple[Path, str]:
    """6 WET files of real pages; the longest page also in file 4 (part 2 of 3), and a copy of
    it with its last word changed in file 5 (part 3). Returns the folder and that page."""
    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(shared_data / "commoncrawl")]))
    docs = [d.text for d in src.documents()]
    planted = max(docs, key=len)
    files: list[list[tuple[str, str]]] = [[] for _ in range(FILES)]
    for i, text in enumerate(docs):
        files[i % FILES].append((str(i), text))
    files[4].append(("planted", planted))
    line = max(planted.splitlines(), key=len)  # a line the filters keep: change one word
    words = line.split(" ")
    words[len(words) // 2] = "different"
    files[5].append(("near", planted.replace(line, " ".join(words))))
    folder = tmp_path_factory.mktemp("wet")
    for i, recs in enumerate(files):
        (folder / f"seg-{i}.warc.wet").write_bytes(wet(recs))
    return folder, planted


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c, distributed.Client(c) as client:
        yield c.scheduler_address, client


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    r = cli("shard", "commoncrawl", inputs[0], *STAGES, "--parts", 3, "--shard-size", 400,
            "-j", 0, "--out", out)
    assert r.exit_code == 0, r.output
    return out


def job_args(inputs, out: Path, *extra) -> list:
    return ["shard", "commoncrawl", inputs[0], *STAGES, "--parts", 3, "--shard-size", 400,
            "--out", out, *extra]


def same_output(a: Path, b: Path) -> None:
    assert shard_bytes(a) == shard_bytes(b)
    skip = {"created", "merged_from"}
    ma, mb = manifest(a), manifest(b)
    assert {k: v for k, v in ma.items() if k not in skip} == \
        {k: v for k, v in mb.items() if k not in skip}


def test_cross_part_duplicates_survive_once_and_equal_one_process_dedup(inputs, local_run):
    m = manifest(local_run)
    assert m["job"]["parts"] == 3 and len(m["merged_from"]) == 3
    assert not (local_run / ".job").exists()
    specs = [StageSpec(name=n) for n in ("gopher_repetition", "c4", "exact_dedup",
                                          "minhash_dedup")]
    page = build_stage(specs[1])(Document(text=inputs[1], id="x"))  # as c4 leaves it
    planted = GPT2Tokenizer().encode(page.text)
    docs = [d.tolist() for d in documents(local_run)]
    assert docs.count(planted) == 1  # in files 0..5 once, in file 4 again: kept once
    # the reference: every document through the same stages and one-process dedup
    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(inputs[0])]))
    ids, texts = [], []
    stages = [build_stage(s) for s in specs[:2]]
    for k, name in enumerate(src.inputs()):
        for j, doc in enumerate(src.documents_from(name)):
            for st in stages:
                doc = st(doc)
                if isinstance(doc, Drop):
                    break
            else:
                ids.append((k << 32) | j)
                texts.append(doc.text)
    norm = [normalized_bytes(t) for t in texts]
    exact = np.array([int.from_bytes(hashlib.blake2b(t, digest_size=8).digest(), "little")
                      for t in norm], dtype=np.uint64)
    hasher, b, r = signatures.DedupChain.of(specs).hasher()
    bands = np.stack([hasher.band_keys(hasher.signature(t), b, r) for t in norm])
    gone_exact, gone_near = clusters.deduplicate(np.array(ids, np.uint64), exact, bands)
    assert len(gone_exact) >= 1 and len(gone_near) >= 1  # the planted copy and the near copy
    gone = set(gone_exact.tolist()) | set(gone_near.tolist())
    kept = [GPT2Tokenizer().encode(t) for i, t in zip(ids, texts) if i not in gone]
    assert sorted(map(tuple, kept)) == sorted(map(tuple, docs))
    stages_m = {s["name"]: s for s in m["stages"]}
    assert stages_m["exact_dedup"]["dropped_total"] == len(gone_exact)
    assert stages_m["minhash_dedup"]["dropped_total"] == len(gone_near)


def test_staged_dedup_equals_one_pass_on_random_clusters():
    rng = np.random.default_rng(0)
    n = 400
    ids = np.sort(rng.choice(1 << 40, n, replace=False)).astype(np.uint64)
    exact = rng.integers(0, 40, n).astype(np.uint64)  # many exact copies
    bands = rng.integers(0, 300, (n, 3)).astype(np.uint64)  # chains of near copies
    ref_exact, ref_near = clusters.deduplicate(ids, exact, bands)
    # bucketed as the engine's tasks split it
    for buckets in (1, 3, 7):
        gone = np.sort(np.concatenate([clusters.exact_bucket(
            exact[clusters.bucket_of(exact, buckets) == k],
            ids[clusters.bucket_of(exact, buckets) == k]) for k in range(buckets)]))
        assert np.array_equal(gone, ref_exact)
        keep = ~np.isin(ids, gone)
        pairs = [clusters.band_bucket(bands[keep, b][sel], ids[keep][sel])
                 for b in range(3) for k in range(buckets)
                 for sel in [clusters.bucket_of(bands[keep, b], buckets) == k]]
        assert np.array_equal(clusters.near_duplicates(pairs), ref_near)
    # brute force: a document goes iff an earlier one is connected to it
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    alive = [i for i in range(n) if ids[i] not in set(ref_exact.tolist())]
    for b in range(3):
        first: dict[int, int] = {}
        for i in alive:
            j = first.setdefault(int(bands[i, b]), i)
            a, c = find(i), find(j)
            parent[max(a, c)] = min(a, c)
    expect = sorted(int(ids[i]) for i in alive if find(i) != i)
    assert ref_near.tolist() == expect


def test_dask_job_is_byte_identical_to_local(inputs, local_run, cluster, tmp_path):
    out = tmp_path / "dask"
    r = cli(*job_args(inputs, out, "--executor", "dask", "--address", cluster[0]))
    assert r.exit_code == 0, r.output
    assert "3 part(s) on dask (2 worker(s))" in r.flat
    same_output(local_run, out)
    assert cli("shard", "--verify", out).exit_code == 0


def _kill_after_first_shard(marker: str) -> None:
    """In a worker: the first part to save its state after a shard dies on the spot, once."""
    from minigpt_cli.sharding import progress

    save = progress.save

    def dying_save(out, state, blob):
        new = save(out, state, blob)
        if state.shards:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return new
            os._exit(1)  # the worker process is lost mid-part
        return new

    progress.save = dying_save


def test_worker_killed_mid_part_still_gives_identical_output(inputs, local_run, cluster,
                                                             tmp_path):
    address, client = cluster
    marker = tmp_path / "killed"
    client.run(_kill_after_first_shard, str(marker))
    try:
        out = tmp_path / "dask"
        r = cli(*job_args(inputs, out, "--executor", "dask", "--address", address))
        assert r.exit_code == 0, r.output
        assert marker.exists()  # a worker did die under a part
        same_output(local_run, out)
    finally:
        client.restart()  # fresh workers, unpatched


def _failing_part(part: int) -> None:
    from minigpt_cli.cluster import tasks

    real = tasks.part_task

    def part_task(job, i):
        if i == part:
            raise RuntimeError(f"part {i} breaks")
        return real(job, i)

    tasks.part_task = part_task


def test_a_part_failing_past_retries_fails_the_job_and_keeps_finished_parts(
        inputs, local_run, cluster, tmp_path):
    address, client = cluster
    client.wait_for_workers(2)  # the previous test's restart may still be bringing one back
    assert len(client.run(_failing_part, 2)) == 2  # patched on every worker
    out = tmp_path / "dask"
    try:
        r = cli(*job_args(inputs, out, "--executor", "dask", "--address", address))
    finally:
        client.restart()
    assert r.exit_code == 2
    assert "failed past the engine's retries" in r.flat and "part 2 breaks" in r.flat
    assert (out / ".job" / "parts" / "part-00001" / "manifest.json").exists()
    assert (out / ".job" / "parts" / "part-00003" / "manifest.json").exists()
    r = cli(*job_args(inputs, out, "--executor", "dask", "--address", address))
    assert r.exit_code == 0, r.output  # resumed: part 2 runs now
    same_output(local_run, out)


def test_inputs_changed_between_plan_and_resume(inputs, tmp_path, monkeypatch):
    from minigpt_cli.cluster import tasks
    from minigpt_cli.errors import MinigptError

    real = tasks.part_task

    def part_task(job, i):
        if i == 3:
            raise MinigptError("stopped here")
        return real(job, i)

    folder = tmp_path / "in"
    folder.mkdir()
    for p in inputs[0].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    args = ["shard", "commoncrawl", folder, *STAGES, "--parts", 3, "-j", 0, "--out", out]
    monkeypatch.setattr(tasks, "part_task", part_task)
    assert cli(*args).exit_code == 2
    monkeypatch.setattr(tasks, "part_task", real)
    victim = folder / "seg-2.warc.wet"
    victim.write_bytes(victim.read_bytes() + wet([("late", "A page that came later.")]))
    r = cli(*args)
    assert r.exit_code == 2 and "changed since" in r.flat and "seg-2.warc.wet" in r.flat
    assert (out / ".job" / "parts" / "part-00001" / "manifest.json").exists()


def test_engine_problems_are_clear(inputs, tmp_path, monkeypatch):
    import socket

    from minigpt_cli.cluster import executor

    monkeypatch.setattr(executor, "CONNECT_TIMEOUT", "1s")  # the default waits 10 s
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli(*job_args(inputs, tmp_path / "a", "--executor", "dask", "--address",
                      f"tcp://127.0.0.1:{port}"))
    assert r.exit_code == 2 and "no Dask scheduler answered there within 1s" in r.flat
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    r = cli(*job_args(inputs, tmp_path / "b", "--executor", "dask"))
    assert r.exit_code == 2 and 'pip install "minigpt[cluster]"' in r.flat
    r = cli(*job_args(inputs, tmp_path / "c", "--address", "127.0.0.1:1"))
    assert r.exit_code == 2 and "needs --executor dask" in r.flat
    r = cli("shard", "commoncrawl", inputs[0], "--parts", 7, "--out", tmp_path / "d")
    assert r.exit_code == 2 and "more than the 6 input(s)" in r.flat


def test_signature_ids_are_input_order():
    from minigpt_cli.sharding.reader import Cursor

    ids = [signatures.global_id(Part(index=i, count=3), Cursor(k, j + 1))
           for k in range(2) for i in (1, 2, 3) for j in range(2)]
    assert ids == sorted(ids)
