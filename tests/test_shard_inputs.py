"""File sources and bad input: invalid UTF-8, empty files, broken JSON lines, truncated gzip,
parquet, missing inputs, zero documents left, invalid options -- counted or refused clearly,
with nothing partial left behind."""

from __future__ import annotations

import gzip
import json

import pytest
from shard_support import ROOT, cli, documents, manifest, shard_bytes

from minigpt_cli.tokenizer import GPT2Tokenizer


def test_invalid_utf8_is_replaced_and_counted_or_refused(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_bytes("caf\u00e9 ok\n".encode() + b"bad \xff\xfe bytes\n")
    (src / "b.txt").write_text("all fine here\n")
    out = tmp_path / "out"
    r = cli("shard", "text", src, "--out", out, "-j", 0)
    assert r.exit_code == 0, r.output
    assert "invalid utf8: 1" in r.flat
    prov = {p["input"]: p for p in manifest(out)["sources"][0]["provenance"]}
    assert prov[str(src / "a.txt")]["invalid_utf8"] == 1 and "invalid_utf8" not in \
        prov[str(src / "b.txt")]
    assert GPT2Tokenizer().decode(documents(out)[0].tolist()) == \
        "caf\u00e9 ok\nbad \ufffd\ufffd bytes\n"
    r = cli("shard", "text", src, "--out", tmp_path / "strict", "-o", "encoding_errors=strict",
            "-j", 0)
    assert r.exit_code == 2 and "a.txt holds bytes that are not UTF-8" in r.flat
    assert not list((tmp_path / "strict").glob("*.bin"))
    r = cli("shard", "text", src, "--out", tmp_path / "strict", "-o", "encoding_errors=replace",
            "-j", 0)  # nothing was written yet: other settings simply start over
    assert r.exit_code == 0 and manifest(tmp_path / "strict")["totals"]["documents_kept"] == 2
    r = cli("shard", "text", src, "--out", tmp_path / "skip", "-o", "encoding_errors=skip",
            "-j", 0)
    assert r.exit_code == 0 and manifest(tmp_path / "skip")["totals"]["documents_kept"] == 1


def test_empty_inputs_and_no_documents_at_all(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "empty.txt").write_bytes(b"")
    (src / "blank.txt").write_text("\n   \n\n")
    out = tmp_path / "out"
    r = cli("shard", "text", src, "--out", out, "-j", 0)
    assert r.exit_code == 2 and "yielded no documents" in r.flat
    assert not list(out.glob("*.bin")) and not (out / ".shard-progress").exists()
    (src / "real.txt").write_text("some real text\n")
    r = cli("shard", "text", src, "--out", out, "-j", 0)
    assert r.exit_code == 0, r.output
    prov = {p["input"].rsplit("/", 1)[1]: p["documents"]
            for p in manifest(out)["sources"][0]["provenance"]}
    assert prov == {"blank.txt": 0, "empty.txt": 0, "real.txt": 1}


def test_missing_inputs_and_bad_options_are_clear_errors(tmp_path):
    r = cli("shard", "text", tmp_path / "nope.txt", "--out", tmp_path / "o", "-j", 0)
    assert r.exit_code == 2 and "nope.txt does not exist" in r.flat
    r = cli("shard", "text", str(tmp_path / "*.md"), "--out", tmp_path / "o", "-j", 0)
    assert r.exit_code == 2 and "matches no files" in r.flat
    f = tmp_path / "t.txt"
    f.write_text("text\n")
    r = cli("shard", "text", f, "--out", tmp_path / "o", "-o", "splitt=line", "-j", 0)
    assert r.exit_code == 2 and "splitt: unknown option" in r.flat and "split" in r.flat
    r = cli("shard", "text", f, "--out", tmp_path / "o", "-o", "split=sentence", "-j", 0)
    assert r.exit_code == 2 and "split:" in r.flat and "'sentence'" in r.flat
    r = cli("shard", "text", f, "--out", tmp_path / "o", "--stage", "no_such_stage", "-j", 0)
    assert r.exit_code == 2 and "No stage plugin named 'no_such_stage'" in r.flat
    r = cli("shard")
    assert r.exit_code == 2 and "Missing SOURCE" in r.flat
    r = cli("shard", "nosource", f, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "No source plugin named 'nosource'" in r.flat
    r = cli("shard", "text", f, "--out", tmp_path / "o", "--part", "3/2")
    assert r.exit_code == 2 and "--part" in r.flat and "i/N" in r.flat
    r = cli("shard", "text", f, "--out", tmp_path / "o", "--shard-size", 0)
    assert r.exit_code == 2 and "--shard-size" in r.flat
    r = cli("shard", "text", f, "--out", tmp_path / "o", "-S", "head.n=3", "-j", 0)
    assert r.exit_code == 2 and "not in the chain" in r.flat
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.bin"))


def test_jsonl_bad_lines_and_truncated_gzip_are_counted(tmp_path, shared_data):
    rows = [json.loads(x) for x in
            (shared_data / "fineweb" / "fineweb_subset_300.jsonl").read_text().splitlines()[:40]]
    f = tmp_path / "a.jsonl"
    lines = [json.dumps({"content": {"body": r["text"]}, "id": r["id"]}) for r in rows[:10]]
    lines[3] = lines[3][:50]  # cut in the middle of the JSON
    lines[5] = json.dumps({"id": 5, "title": "no text field"})
    f.write_text("\n".join(lines) + "\n")
    gz = tmp_path / "b.jsonl.gz"
    full = gzip.compress("".join(json.dumps({"content": {"body": r["text"]}}) + "\n"
                                 for r in rows[10:]).encode())
    gz.write_bytes(full[: len(full) // 2])  # a download cut off half-way
    out = tmp_path / "out"
    r = cli("shard", "jsonl", f, gz, "--out", out, "-o", "text_field=content.body",
            "--shard-size", 5000, "-j", 0)
    assert r.exit_code == 0, r.output
    prov = {p["input"]: p for p in manifest(out)["sources"][0]["provenance"]}
    assert prov[str(f)]["bad_records"] == 1 and prov[str(f)]["missing_text"] == 1
    assert prov[str(f)]["documents"] == 8
    assert "truncated" in prov[str(gz)] and 0 < prov[str(gz)]["documents"] < 30
    assert "truncated: 1" in r.flat and "bad records: 1" in r.flat


def test_parquet_and_fineweb_parquet_match_jsonl(tmp_path, shared_data):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = shared_data / "fineweb" / "fineweb_subset_300.jsonl"
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table.slice(0, 150), tmp_path / "part0.parquet", row_group_size=64)
    pq.write_table(table.slice(150), tmp_path / "part1.parquet", row_group_size=64)
    args = ["--shard-size", 60_000, "-j", 0]
    assert cli("shard", "jsonl", src, "--out", tmp_path / "j", *args).exit_code == 0
    r = cli("shard", "parquet", tmp_path, "--out", tmp_path / "p", *args)
    assert r.exit_code == 0, r.output
    r = cli("shard", "fineweb", tmp_path, "--out", tmp_path / "f", *args)
    assert r.exit_code == 0, r.output
    assert shard_bytes(tmp_path / "j") == shard_bytes(tmp_path / "p") == shard_bytes(tmp_path / "f")
    assert manifest(tmp_path / "f")["sources"][0]["provenance"][0]["records"] == 150


def test_config_file_holds_source_options_and_stages(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("one\ntwo\n\nthree\n")
    cfg = tmp_path / "shard.toml"
    cfg.write_text(f'[shard]\nsource = "text"\ninputs = ["{f}"]\nout = "{tmp_path / "o"}"\n'
                   'workers = 0\n[shard.options]\nsplit = "line"\n')
    r = cli("shard", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert manifest(tmp_path / "o")["totals"]["documents_kept"] == 3
    cfg.write_text(cfg.read_text() + '[[shard.stages]]\nname = "nope"\nk = 1\n')
    r = cli("shard", "--config", cfg, "--out", tmp_path / "o2")
    assert r.exit_code == 2 and "No stage plugin named 'nope'" in r.flat
    from minigpt_cli.settings import resolve
    from minigpt_cli.sharding.config import ShardSettings

    text = resolve(ShardSettings, "shard", {}, ROOT / "examples" / "shard-text.toml")
    assert text.tokenizer == "char" and text.options == {"split": "paragraph"}
    cc = resolve(ShardSettings, "shard", {}, ROOT / "examples" / "shard.toml")
    assert cc.source == "commoncrawl" and cc.options == {"segments": 2}
    assert cc.stages[3].name == "c4" and cc.stages[3].options == {"terminal_punctuation": False}
    job = resolve(ShardSettings, "shard", {}, ROOT / "examples" / "shard-job.toml")
    assert job.is_job() and (job.parts, job.executor, job.address) == (2000, "dask",
                                                                       "scheduler:8786")
