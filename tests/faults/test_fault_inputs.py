"""Inputs `minigpt shard` cannot use, through the real CLI with real files: a WARC file given to
the commoncrawl source, binary files and UTF-16 text given to text and jsonl, truncated gzip
files. Each is named with what it is and why it gave nothing; a run that fails removes what it
created and nothing a user had there before."""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
from pathlib import Path

import pytest
from shard_support import cli, manifest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

TEXT = "Supposing that truth is a woman -- what then? " * 60


def warc_file(path: Path, content_type: str = "image/png") -> Path:
    """A real WARC file as a crawler writes it: gzipped HTTP response records (of images by
    default: no page text; ``text/html`` for pages, whose text the source extracts)."""
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i in range(3):
            body = f"<html><body><p>page {i}: {TEXT}</p></body></html>".encode()
            http = StatusAndHeaders("200 OK", [("Content-Type", content_type)],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                f"http://example.org/{i}", "response", payload=io.BytesIO(body),
                http_headers=http))
    return path


def binary_file() -> Path:
    """A real binary: the Python interpreter running this test."""
    return Path(sys.executable).resolve()


def test_a_warc_file_is_named_for_what_it_is_and_no_folder_is_left(tmp_path):
    warc = warc_file(tmp_path / "CC-MAIN-x.warc.gz")
    out = tmp_path / "made" / "shards"
    r = cli("shard", "commoncrawl", warc, "--out", out, "-j", 0)
    assert r.exit_code == 2, r.output
    assert "see the inputs above" not in r.flat
    assert (f"The commoncrawl source yielded no documents, so nothing was written: {warc} gave "
            "no documents: is a WARC file of crawled pages, but none of its 3 HTTP response "
            "records is an HTML page") in r.flat, r.flat
    assert not (tmp_path / "made").exists()  # the folders it created are gone again


def test_a_warc_file_of_html_pages_gives_their_text(tmp_path):
    pytest.importorskip("resiliparse", reason="the warc extra is not installed")
    warc = warc_file(tmp_path / "CC-MAIN-x.warc.gz", "text/html; charset=utf-8")
    r = cli("shard", "commoncrawl", warc, "--out", tmp_path / "o", "--no-stages", "-j", 0,
            "--shard-size", 100)
    assert r.exit_code == 0, r.output
    assert manifest(tmp_path / "o")["totals"]["documents_kept"] == 3


def test_a_failed_run_keeps_what_the_folder_held_before(tmp_path):
    warc = warc_file(tmp_path / "x.warc.gz")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    r = cli("shard", "commoncrawl", warc, "--out", out, "-j", 0)
    assert r.exit_code == 2 and "is a WARC file" in r.flat
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes"


def test_a_warc_among_wet_files_is_a_warning_naming_it(shared_data, tmp_path):
    warc = warc_file(tmp_path / "x.warc.gz")
    wet = shared_data / "commoncrawl" / "cc2016-50_filter_test_1.warc.wet.gz"
    r = cli("shard", "commoncrawl", wet, warc, "--out", tmp_path / "o", "--no-stages",
            "--shard-size", 20000, "-j", 0)
    assert r.exit_code == 0, r.output
    assert f"warning: {warc} gave no documents: is a WARC file of crawled pages" in r.flat
    assert f"errors: 1 ({warc})" in r.flat


def test_binary_input_is_skipped_with_a_warning_naming_it(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text(TEXT)
    exe = binary_file()
    r = cli("shard", "text", exe, text, "--out", tmp_path / "o", "--no-stages",
            "--shard-size", 100, "-j", 0)
    assert r.exit_code == 0, r.output
    assert f"warning: {exe} gave no documents: skipped, it looks binary (NUL bytes" in r.flat
    assert f"binary, skipped: 1 ({exe})" in r.flat
    prov = {p["input"]: p for p in manifest(tmp_path / "o")["sources"][0]["provenance"]}
    assert prov[str(exe)]["documents"] == 0 and "NUL bytes" in prov[str(exe)]["binary"]
    assert prov[str(text)]["documents"] == 1


def test_only_unusable_inputs_say_each_why_and_leave_no_folder(tmp_path):
    utf16 = tmp_path / "notes.txt"
    utf16.write_bytes(TEXT.encode("utf-16"))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.txt"
    noise.write_bytes(bytes(range(128, 256)) * 40)  # no NUL, but nothing of it is UTF-8
    out = tmp_path / "o"
    r = cli("shard", "text", utf16, blank, empty, noise, binary_file(), "--out", out, "-j", 0)
    assert r.exit_code == 2, r.output
    assert "The text source yielded no documents, so nothing was written:" in r.flat
    assert f"{utf16} gave no documents: skipped, it looks binary (NUL bytes" in r.flat
    assert "(UTF-16?), convert it to UTF-8" in r.flat
    assert f"{blank} gave no documents: holds no text (only blank lines or whitespace)" in r.flat
    assert f"{empty} gave no documents: is empty (0 bytes)" in r.flat
    assert f"{noise} gave no documents: skipped, it looks binary (5,120 of its first 5,120 " \
           "bytes are not UTF-8)" in r.flat
    assert "and 0 more" not in r.flat and "see the inputs above" not in r.flat
    assert not out.exists()


def test_binary_jsonl_is_skipped_too(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"text": TEXT}) + "\n")
    bad = tmp_path / "b.jsonl"
    bad.write_bytes(binary_file().read_bytes()[:20000])
    r = cli("shard", "jsonl", good, bad, "--out", tmp_path / "o", "--no-stages",
            "--shard-size", 100, "-j", 0)
    assert r.exit_code == 0, r.output
    assert f"warning: {bad} gave no documents: skipped, it looks binary" in r.flat


@pytest.mark.parametrize("split", ["file", "line"])
def test_truncated_gzip_text_keeps_what_came_before_and_is_named(split, tmp_path):
    rng = random.Random(0)  # varied lines: a cut half-way through the gzip is mid-text
    words = TEXT.split()
    whole = "".join(" ".join(rng.choice(words) for _ in range(12)) + "\n" for _ in range(300))
    data = gzip.compress(whole.encode())
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(data[: len(data) // 2])
    ok = tmp_path / "ok.txt"
    ok.write_text("another file\n")
    out = tmp_path / "o"
    r = cli("shard", "text", cut, ok, "--out", out, "--no-stages", "-o", f"split={split}",
            "--shard-size", 100, "-j", 0)
    assert r.exit_code == 0 and "Aborted" not in r.output, r.output
    assert f"truncated: 1 ({cut})" in r.flat
    prov = {p["input"]: p for p in manifest(out)["sources"][0]["provenance"]}
    assert prov[str(cut)]["truncated"].startswith("cut off (the gzip stream ends early)")
    assert prov[str(cut)]["documents"] >= 1  # the text before the cut was kept
    assert 0.3 < prov[str(cut)]["bytes"] / len(whole) < 0.7
