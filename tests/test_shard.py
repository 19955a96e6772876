"""`minigpt shard` end to end on real text: shard format, EOT per document, determinism, char
tokenizer, the output folder's life cycle."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from shard_support import GPT2_EOT, cli, documents, manifest, shard_bytes

from minigpt_cli.shards import HEADER_BYTES, open_shard, read_header
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer


@pytest.fixture(scope="module")
def nietzsche(shared_data):
    return shared_data / "nietzsche"


@pytest.fixture(scope="module")
def fineweb(shared_data):
    return shared_data / "fineweb" / "fineweb_subset_300.jsonl"


def normalized(path) -> str:
    return path.read_text(encoding="utf-8").removeprefix("\ufeff").replace("\r\n", "\n")


def test_text_source_to_llmc_shards(nietzsche, tmp_path):
    out = tmp_path / "out"
    r = cli("shard", "text", nietzsche, "--out", out, "--shard-size", 250_000, "--workers", 0)
    assert r.exit_code == 0, r.output
    assert "filter funnel" in r.flat and "wrote 8 shard(s)" in r.flat
    m = manifest(out)
    names = [s["name"] for s in m["shards"]]
    assert names[0] == "val_000000.bin" and names[1:] == [f"train_{i:06d}.bin" for i in range(1, 8)]
    for s in m["shards"][:-1]:
        assert s["tokens"] == 250_000 == read_header(out / s["name"])  # fixed size but the last
    assert (out / names[0]).stat().st_size == HEADER_BYTES + 2 * 250_000
    assert sum(s["tokens"] for s in m["shards"]) == m["totals"]["tokens"]
    assert m["tokenizer"]["name"] == "gpt2" and m["tokenizer"]["hash"] == \
        GPT2Tokenizer().identity().hash
    # every document starts with <|endoftext|>, in file order, and decodes back to its file
    files = sorted(nietzsche.glob("*.txt"))
    docs = documents(out)
    assert len(docs) == len(files) == m["totals"]["documents_kept"]
    assert sum(s["documents"] for s in m["shards"]) == len(files)
    tok = GPT2Tokenizer()
    for f, d in zip(files[:3], docs[:3]):
        assert tok.decode(d.tolist()) == normalized(f)
    prov = m["sources"][0]["provenance"]
    assert [p["input"] for p in prov] == [str(f) for f in files]
    assert m["settings"]["shard_size"] == 250_000 and m["tool"]["name"] == "minigpt"
    assert not (out / ".shard-progress").exists()


def test_events_report_progress_shards_and_bytes(nietzsche, tmp_path):
    from minigpt_cli.sharding import events
    from minigpt_cli.sharding.config import ShardSettings
    from minigpt_cli.sharding.run import run

    seen = []
    files = [nietzsche / "we_philologists.txt", nietzsche / "the_antichrist.txt"]
    m = run(ShardSettings(source="text", inputs=[str(f) for f in files], out=tmp_path / "o",
                          shard_size=50_000, workers=0), seen.append)
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "Started" and kinds[-1] == "Finished" and "Progress" in kinds
    assert [e.name for e in seen if isinstance(e, events.ShardDone)] == \
        [s["name"] for s in m["shards"]]
    last = [e for e in seen if isinstance(e, events.Progress)][-1]
    size = sum(f.stat().st_size for f in files)
    assert (last.inputs_done, last.inputs_total, last.documents, last.kept) == (2, 2, 2, 2)
    assert last.bytes_read == last.bytes_total == size and last.tokens == m["totals"]["tokens"]


def test_same_shards_whatever_the_worker_count(fineweb, tmp_path):
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        r = cli("shard", "fineweb", fineweb, "--out", out, "--shard-size", 40_000,
                "--workers", workers)
        assert r.exit_code == 0, r.output
        runs[workers] = shard_bytes(out)
    assert len(runs[0]) == 6 and runs[0] == runs[2]


def test_fineweb_fields_and_round_trip(fineweb, tmp_path):
    out = tmp_path / "fw"
    assert cli("shard", "fineweb", fineweb, "--out", out, "--shard-size", 100_000,
               "-j", 0).exit_code == 0
    m = manifest(out)
    assert m["totals"]["documents_read"] == m["totals"]["documents_kept"] == 300
    assert m["sources"][0]["provenance"][0]["records"] == 300
    rows = [json.loads(line) for line in fineweb.read_text().splitlines()]
    docs = documents(out)
    tok = GPT2Tokenizer()
    assert [tok.decode(d.tolist()) for d in docs[:20]] == [r["text"] for r in rows[:20]]
    # the source hands FineWeb's fields to the stages as metadata
    from minigpt_cli.sharding.chain import build_source

    first = next(build_source("fineweb", {"inputs": [str(fineweb)]}).documents())
    assert first.id == "0" and first.meta["language"] == "en" and "language_score" in first.meta


def test_char_tokenizer_builds_its_vocabulary_in_a_first_pass(nietzsche, tmp_path):
    out = tmp_path / "char"
    src = nietzsche / "we_philologists.txt"
    r = cli("shard", "text", src, "--out", out, "--tokenizer", "char", "--shard-size", 50_000,
            "-o", "split=paragraph", "-j", 0)
    assert r.exit_code == 0, r.output
    m = manifest(out)
    text = normalized(src)
    paragraphs, lines = [], []  # runs of lines that hold more than whitespace
    for line in text.split("\n") + [""]:
        if line.strip():
            lines.append(line)
        elif lines:
            paragraphs.append("\n".join(lines))
            lines = []
    chars = sorted(set("".join(paragraphs)))
    assert m["tokenizer"]["chars"] == chars and m["tokenizer"]["eot_id"] == len(chars)
    tok = CharTokenizer(chars)
    docs = documents(out, eot=tok.eot_id)
    assert len(docs) == m["totals"]["documents_kept"] == len(paragraphs)
    assert tok.decode(docs[5].tolist()) == paragraphs[5]
    # the vocabulary is reusable: --char-vocab takes a manifest; outside characters are dropped
    out2 = tmp_path / "char2"
    other = tmp_path / "other.txt"
    other.write_text("plain words\n\nwith a snowman \u2603 inside\n\nmore words\n")
    r = cli("shard", "text", other, "--out", out2, "--tokenizer", "char", "--char-vocab",
            out / "manifest.json", "-o", "split=paragraph", "-j", 0)
    assert r.exit_code == 0, r.output
    m2 = manifest(out2)
    assert m2["tokenizer"]["hash"] == m["tokenizer"]["hash"]
    assert m2["stages"][-1]["dropped"] == {"characters outside the char vocabulary": 1}
    assert [tok.decode(d.tolist()) for d in documents(out2, eot=tok.eot_id)] == \
        ["plain words", "more words"]


def test_finished_folder_is_not_redone_and_not_overwritten(nietzsche, tmp_path):
    out = tmp_path / "out"
    args = ["shard", "text", nietzsche / "ecce_homo.txt", "--out", out, "--shard-size", 30_000,
            "-j", 0]
    assert cli(*args).exit_code == 0
    before = shard_bytes(out)
    r = cli(*args)
    assert r.exit_code == 0 and "already complete" in r.flat
    r = cli(*args[:-4], "--shard-size", 40_000, "-j", 0)
    assert r.exit_code == 2 and "other settings" in r.flat
    assert shard_bytes(out) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "train_000001.bin").write_bytes(b"x")
    r = cli("shard", "text", nietzsche / "ecce_homo.txt", "--out", foreign, "-j", 0)
    assert r.exit_code == 2 and "already holds shard files" in r.flat
    assert (foreign / "train_000001.bin").read_bytes() == b"x"


def test_one_shard_only_warns_that_there_is_no_training_shard(nietzsche, tmp_path):
    out = tmp_path / "small"
    r = cli("shard", "text", nietzsche / "homer_and_classical_philology.txt", "--out", out, "-j", 0)
    assert r.exit_code == 0
    m = manifest(out)
    assert [s["name"] for s in m["shards"]] == ["val_000000.bin"]
    assert "no training shard" in m["warnings"][0] and "no training shard" in r.flat


def test_verify_reports_every_kind_of_damage(nietzsche, tmp_path):
    out = tmp_path / "out"
    assert cli("shard", "text", nietzsche / "the_antichrist.txt", nietzsche / "ecce_homo.txt",
               "--out", out, "--shard-size", 20_000, "-j", 0).exit_code == 0
    r = cli("shard", "--verify", out)
    assert r.exit_code == 0 and r.flat.startswith("OK:"), r.output
    names = [s["name"] for s in manifest(out)["shards"]]
    flip = out / names[1]  # one token changed: same size, new checksum
    raw = bytearray(flip.read_bytes())
    raw[HEADER_BYTES + 10] ^= 0x01
    flip.write_bytes(bytes(raw))
    cut = out / names[2]
    cut.write_bytes(cut.read_bytes()[:-100])
    (out / names[3]).unlink()
    (out / "train_000999.bin").write_bytes((out / names[4]).read_bytes())
    eot = out / names[0]  # a document start removed: the count no longer matches
    toks = np.array(open_shard(eot))
    toks[toks == GPT2_EOT] = 11
    eot.write_bytes(eot.read_bytes()[:HEADER_BYTES] + toks.astype("<u2").tobytes())
    r = cli("shard", "--verify", out)
    assert r.exit_code == 1
    out_text = r.flat
    assert f"FAIL {names[1]}: sha256" in out_text
    assert f"FAIL {names[2]}: Shard" in out_text and "truncated" in out_text
    assert f"FAIL {names[3]}: missing" in out_text
    assert "not in the manifest: train_000999.bin" in out_text
    assert f"FAIL {names[0]}: 0 documents start in it, the manifest says 1" in out_text
    assert "FAILED: 5 problem(s)" in out_text
    r = cli("shard", "--verify", tmp_path)
    assert r.exit_code == 2 and "has no manifest.json" in r.flat


def test_worker_kinds_write_the_same_shards(nietzsche, tmp_path, monkeypatch):
    """Tokenizing only: one worker is a thread (tiktoken encodes without the GIL), two are
    processes (two encoders in one process scale worse); the shards are the same bytes as
    in-process ones whatever the kind -- also when the main process runs the first batches
    itself while the processes start, and the workers the rest. A stateless filter always
    brings the processes."""
    from minigpt_cli.sharding import run, workers

    src = nietzsche / "we_philologists.txt"
    monkeypatch.setattr(run, "BATCH_DOCS", 4)  # ~160 batches
    here = []
    real_here = workers.ChainPool._here

    def slow_here(self, docs):  # a slow main process: the workers surely come up meanwhile
        here.append(self.kind)
        time.sleep(0.05 if self.kind == "processes" else 0)
        return real_here(self, docs)

    monkeypatch.setattr(workers.ChainPool, "_here", slow_here)
    outs = {}
    kinds = {0: "in this process", 1: "on 1 worker thread", 2: "on 2 worker processes"}
    for workers, kind in kinds.items():
        out = tmp_path / f"w{workers}"
        r = cli("shard", "text", src, "--out", out, "--shard-size", 4_000, "--no-stages",
                "-o", "split=paragraph", "--workers", workers)
        assert r.exit_code == 0, r.output
        outs[workers] = shard_bytes(out)
        assert kind in r.flat
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(outs[0]) > 2 and outs[0] == outs[1] == outs[2]
    assert 0 < here.count("processes") < 100  # the workers took over once up
    r = cli("shard", "text", src, "--out", tmp_path / "gopher", "--shard-size", 20_000,
            "--stage", "c4", "--workers", 1)
    assert r.exit_code == 0, r.output
    assert "on 1 worker process" in r.flat


def test_char_tokenizer_holds_the_gil_so_it_keeps_processes():
    from minigpt_cli.sharding.workers import uses_threads
    from minigpt_cli.tokenizer import CharTokenizer

    assert uses_threads(1, [], GPT2Tokenizer())
    assert not uses_threads(2, [], GPT2Tokenizer())
    assert not uses_threads(1, [], CharTokenizer(list("ab")))
