"""`--part i/N` jobs write disjoint shards; `--merge` verifies them and writes one manifest."""

from __future__ import annotations

import shutil

from shard_support import cli, documents, manifest, shard_bytes


def test_parts_then_merge_equal_one_run_in_content(shared_data, tmp_path):
    books = shared_data / "nietzsche"
    common = ["shard", "text", books, "--shard-size", 150_000, "-j", 0]
    parts = [tmp_path / f"part{i}" for i in (1, 2, 3)]
    for i, folder in enumerate(parts, start=1):
        r = cli(*common, "--part", f"{i}/3", "--out", folder)
        assert r.exit_code == 0, r.output
    names = [set(shard_bytes(p)) for p in parts]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert "val_000000.bin" in names[0]
    assert not any(n.startswith("val_") for n in names[1] | names[2])
    inputs = [[p["input"] for p in manifest(f)["sources"][0]["provenance"]] for f in parts]
    files = sorted(str(f) for f in books.glob("*.txt"))
    assert inputs == [files[0::3], files[1::3], files[2::3]]

    merged = tmp_path / "merged"
    r = cli("shard", "--merge", parts[0], "--merge", parts[1], "--merge", parts[2],
            "--out", merged)
    assert r.exit_code == 0, r.output
    assert "merged 3 parts" in r.flat
    m = manifest(merged)
    n = sum(map(len, names))
    assert [s["name"] for s in m["shards"]] == \
        ["val_000000.bin"] + [f"train_{i:06d}.bin" for i in range(1, n)]
    # renumbered part after part, so each part's token stream reads unbroken in index order
    in_order = [b for p in parts for _, b in sorted(shard_bytes(p).items(),
                                                    key=lambda kv: int(kv[0][-10:-4]))]
    assert [shard_bytes(merged)[s["name"]] for s in m["shards"]] == in_order
    assert [(s["part"], s["part_name"]) for s in m["shards"]][:2] == [(1, "val_000000.bin"),
                                                                      (1, "train_000003.bin")]
    assert m["part"] is None and [x["part"] for x in m["merged_from"]] == [1, 2, 3]
    assert m["totals"]["documents_kept"] == 21 == sum(s["documents"] for s in m["shards"])
    assert [s["index"] for s in m["shards"]] == sorted(s["index"] for s in m["shards"])
    assert cli("shard", "--verify", merged).exit_code == 0
    # the same documents as one job makes, token for token
    single = tmp_path / "single"
    assert cli(*common, "--out", single).exit_code == 0
    assert sorted(d.tobytes() for d in documents(merged)) == \
        sorted(d.tobytes() for d in documents(single))
    assert m["totals"]["tokens"] == manifest(single)["totals"]["tokens"]

    # merging refuses: a missing part, a damaged part, a part of another run
    r = cli("shard", "--merge", parts[0], "--merge", parts[2], "--out", tmp_path / "m2")
    assert r.exit_code == 2 and "missing [2]" in r.flat
    broken = tmp_path / "broken2"
    shutil.copytree(parts[1], broken)
    victim = min(broken.glob("*.bin"))
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x00\x00")
    r = cli("shard", "--merge", parts[0], "--merge", broken, "--merge", parts[2],
            "--out", tmp_path / "m3")
    assert r.exit_code == 2 and "fails verification" in r.flat
    assert not (tmp_path / "m3" / "manifest.json").exists()
    other = tmp_path / "other2"
    assert cli(*common[:-4], "--shard-size", 100_000, "-j", 0, "--part", "2/3",
               "--out", other).exit_code == 0
    r = cli("shard", "--merge", parts[0], "--merge", other, "--merge", parts[2],
            "--out", tmp_path / "m4")
    assert r.exit_code == 2 and "other settings" in r.flat


def test_more_parts_than_inputs_is_an_error(shared_data, tmp_path):
    r = cli("shard", "text", shared_data / "nietzsche" / "ecce_homo.txt", "--part", "2/2",
            "--out", tmp_path / "p", "-j", 0)
    assert r.exit_code == 2 and "gets no inputs" in r.flat
