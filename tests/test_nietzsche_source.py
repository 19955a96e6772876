"""The `nietzsche` source: cleaning and splitting the 21 real Gutenberg files in shared/data,
the download path through a real HTTP server on 127.0.0.1 (cache, checksum mismatch), bad
input, and `minigpt shard nietzsche` end to end (the held-out work fills val_000000.bin)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from httpserver import serve
from typer.testing import CliRunner

from minigpt_cli import shards
from minigpt_cli.cli import app
from minigpt_cli.errors import MinigptError
from minigpt_cli.sources.nietzsche import (
    NietzscheOptions,
    NietzscheSource,
    clean_work,
    corpus_text,
    split_chunk,
)
from minigpt_cli.sources.nietzsche_catalogue import BY_KEY, WORKS
from minigpt_cli.tokenizer import GPT2Tokenizer

SMALL = ["homer_and_classical_philology", "we_philologists"]  # 59 KB and 134 KB


@pytest.fixture(scope="module")
def nz(shared_data) -> Path:
    folder = shared_data / "nietzsche"
    if not folder.is_dir():
        pytest.skip(f"no {folder}")
    return folder


def source(**options) -> NietzscheSource:
    return NietzscheSource(NietzscheOptions(**options))


def test_catalogue_pins_the_shared_copies(nz):
    files = sorted(p.name for p in nz.glob("*.txt"))
    assert files == sorted(w.file_name for w in WORKS) and len(files) == 21
    for w in WORKS:
        raw = (nz / w.file_name).read_bytes()
        assert len(raw) == w.size
        assert hashlib.sha256(raw).hexdigest() == w.sha256


def test_clean_work_strips_header_footer_credits_bom_crlf(nz):
    for w in WORKS:
        raw = (nz / w.file_name).read_text(encoding="utf-8")
        text = clean_work(raw)
        assert "\ufeff" not in text and "\r" not in text, w.key
        assert "PROJECT GUTENBERG" not in text.upper()[:2000], w.key
        assert "START OF TH" not in text and "END OF TH" not in text.upper()[-3000:], w.key
        assert "Project Gutenberg License" not in text, w.key
        assert not text.lstrip().startswith("Produced by"), w.key
        assert text == text.rstrip() and text.strip(), w.key
        assert len(text) > 0.8 * (w.size - 20000), w.key  # only the boilerplate went
    bge = clean_work((nz / "beyond_good_and_evil.txt").read_text(encoding="utf-8"))
    assert bge.startswith("BEYOND GOOD AND EVIL")
    assert bge.endswith("And Light and Dark were one that wedding-morn.")
    zimmern = clean_work((nz / "human_all_too_human_part_i_zimmern.txt").read_text("utf-8"))
    assert zimmern.startswith("HUMAN\n\nALL-TOO-HUMAN")  # CRLF file, credit paragraph gone
    assert zimmern.endswith("Amen! Till we meet again.")
    kept = clean_work((nz / "we_philologists.txt").read_text("utf-8"), credits=False)
    assert kept.startswith("Produced by Thierry Alberto")


def test_clean_work_passes_a_stripped_copy_through():
    assert clean_work("\ufeffAlready clean.\r\nSecond line.\r\n") == "Already clean.\nSecond line."


def test_work_split_holds_out_whole_works_first(nz):
    src = source(from_dir=str(nz), val_works=["the_antichrist", "ecce_homo"])
    docs = list(src.documents())
    assert [d.meta["split"] for d in docs] == ["val"] * 2 + ["train"] * 19
    assert [d.id for d in docs[:2]] == ["ecce_homo", "the_antichrist"]  # file-name order
    assert [d.id for d in docs[2:]] == sorted(set(BY_KEY) - {"ecce_homo", "the_antichrist"})
    assert docs[0].text == clean_work((nz / "ecce_homo.txt").read_text("utf-8"))
    prov = src.provenance()
    assert len(prov) == 21 and all(p["gutenberg_markers"] for p in prov)


def test_chunk_split_is_the_last_tenth_of_the_joined_corpus(nz):
    src = source(from_dir=str(nz), split="chunk", works=SMALL + ["the_antichrist"])
    val, train = list(src.documents())
    assert (val.meta["split"], train.meta["split"]) == ("val", "train")
    cleaned = [clean_work((nz / f"{k}.txt").read_text("utf-8")) for k in sorted(SMALL +
                                                                                ["the_antichrist"])]
    text = corpus_text(cleaned)
    assert train.text + val.text == text
    assert len(val.text) == round(0.1 * len(text))
    assert split_chunk("abcdefghij", 0.3) == ("abcdefg", "hij")


def test_shard_nietzsche_val_shard_is_exactly_the_held_out_work(nz, tmp_path):
    out = tmp_path / "shards"
    r = CliRunner().invoke(app, ["shard", "nietzsche", "-o", f"from_dir={nz}",
                                 "-o", f"works={SMALL[0]}", "-o", f"works={SMALL[1]}",
                                 "-o", f"val_works={SMALL[1]}", "--out", str(out),
                                 "--shard-size", "1000000", "-j", "0"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    names = [s["name"] for s in manifest["shards"]]
    assert names == ["val_000000.bin", "train_000001.bin"]
    tok = GPT2Tokenizer()
    val = np.asarray(shards.open_shard(out / "val_000000.bin"))
    want = tok.encode(clean_work((nz / f"{SMALL[1]}.txt").read_text("utf-8")))
    assert val[0] == tok.eot_id and val[1:].tolist() == want  # nothing else in val
    train = np.asarray(shards.open_shard(out / "train_000001.bin"))
    homer = tok.encode(clean_work((nz / f"{SMALL[0]}.txt").read_text("utf-8")))
    assert train[0] == tok.eot_id and train[1:].tolist() == homer


def test_val_documents_larger_than_a_shard_are_refused(nz, tmp_path):
    r = CliRunner().invoke(app, ["shard", "nietzsche", "-o", f"from_dir={nz}",
                                 "-o", f"works={SMALL[0]}", "-o", f"works={SMALL[1]}",
                                 "-o", f"val_works={SMALL[1]}", "--out", str(tmp_path / "o"),
                                 "--shard-size", "1000", "-j", "0"])
    assert r.exit_code == 2
    assert "validation documents hold more than --shard-size" in r.output
    assert not list((tmp_path / "o").glob("*.bin"))


# -- download through a local server ------------------------------------------------------------
def served(nz: Path, keys: list[str]) -> dict[str, bytes]:
    return {f"/{BY_KEY[k].ebook}/pg{BY_KEY[k].ebook}.txt": (nz / f"{k}.txt").read_bytes()
            for k in keys}


def test_download_verifies_and_caches(nz, tmp_path):
    cache = tmp_path / "cache"
    with serve(served(nz, SMALL)) as server:
        opts = {"works": SMALL, "val_works": [SMALL[0]], "base_url": server.url("/"),
                "cache_dir": cache}
        docs = list(source(**opts).documents())
        assert len(server.state.requests) == 2
        again = list(source(**opts).documents())
        assert len(server.state.requests) == 2  # served from the cache, re-verified
    local = list(source(from_dir=str(nz), works=SMALL, val_works=[SMALL[0]]).documents())
    assert [d.text for d in docs] == [d.text for d in local] == [d.text for d in again]
    cached = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert cached == sorted(f"pg{BY_KEY[k].ebook}.txt" for k in SMALL)


def test_download_checksum_mismatch_caches_nothing(nz, tmp_path):
    files = served(nz, SMALL)
    key = f"/{BY_KEY[SMALL[1]].ebook}/pg{BY_KEY[SMALL[1]].ebook}.txt"
    files[key] = files[key].replace(b"philolog", b"PHILOLOG", 1)  # an edited re-issue
    cache = tmp_path / "cache"
    with serve(files) as server:
        src = source(works=SMALL, val_works=[SMALL[0]], base_url=server.url("/"),
                     cache_dir=cache)
        with pytest.raises(MinigptError, match="sha256") as e:
            list(src.documents())
    assert "We Philologists" in str(e.value) and "verify=false" in str(e.value)
    bad = [p for p in cache.rglob("*") if p.is_file() and "18267" in str(p)]
    assert bad == []  # neither the file nor a partial download stays


def test_download_error_through_the_cli(tmp_path):
    with serve({}) as server:
        r = CliRunner().invoke(app, ["shard", "nietzsche", "-o", f"base_url={server.url('/')}",
                                     "-o", f"cache_dir={tmp_path / 'c'}", "-o",
                                     f"works={SMALL[0]}", "-o", f"works={SMALL[1]}", "-o",
                                     f"val_works={SMALL[0]}", "--out", str(tmp_path / "o"),
                                     "-j", "0"])
    assert r.exit_code == 2
    assert "Homer and Classical Philology" in r.output and "404" in r.output


# -- bad input -----------------------------------------------------------------------------------
def copies(nz: Path, folder: Path, keys: list[str]) -> Path:
    folder.mkdir()
    for k in keys:
        (folder / f"{k}.txt").write_bytes((nz / f"{k}.txt").read_bytes())
    return folder


def test_from_dir_modified_copy_is_refused_unless_verify_is_off(nz, tmp_path):
    d = copies(nz, tmp_path / "d", SMALL)
    p = d / f"{SMALL[0]}.txt"
    p.write_bytes(p.read_bytes() + b"\nA note I added.\n")
    with pytest.raises(MinigptError, match="not the pinned"):
        list(source(from_dir=str(d), works=SMALL, val_works=[SMALL[1]]).documents())
    docs = list(source(from_dir=str(d), works=SMALL, val_works=[SMALL[1]],
                       verify=False).documents())
    assert len(docs) == 2


def test_a_corpus_file_that_is_not_text(nz, tmp_path):
    d = copies(nz, tmp_path / "d", [SMALL[1]])
    (d / f"{SMALL[0]}.txt").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(MinigptError, match="is not UTF-8 text"):
        list(source(from_dir=str(d), works=SMALL, val_works=[SMALL[1]],
                    verify=False).documents())
    (d / f"{SMALL[0]}.txt").write_bytes(b"text\x00\x00\x00binary")
    with pytest.raises(MinigptError, match="not a text file"):
        list(source(from_dir=str(d), works=SMALL, val_works=[SMALL[1]],
                    verify=False).documents())


def test_missing_copy_and_empty_splits(nz, tmp_path):
    d = copies(nz, tmp_path / "d", [SMALL[1]])
    with pytest.raises(MinigptError, match="has no homer_and_classical_philology.txt"):
        list(source(from_dir=str(d), works=SMALL, val_works=[SMALL[1]]).documents())
    with pytest.raises(ValueError, match="validation split is empty"):
        NietzscheOptions(works=SMALL, val_works=["the_antichrist"])
    with pytest.raises(ValueError, match="training split is empty"):
        NietzscheOptions(works=SMALL, val_works=SMALL)
    with pytest.raises(ValueError, match="unknown work"):
        NietzscheOptions(works=["zarathustra_2"])
    r = CliRunner().invoke(app, ["shard", "nietzsche", "-o", f"works={SMALL[0]}", "-o",
                                 f"val_works={SMALL[0]}", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "training split is empty" in r.output
