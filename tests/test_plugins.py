"""`minigpt plugins`, and a third-party plugin package (examples/minigpt-plugin-example)
pip-installed and run through `minigpt shard`, in worker processes too."""

from __future__ import annotations

import json

from shard_support import cli, documents, example_plugin, manifest, shard_bytes  # noqa: F401

from minigpt_cli.tokenizer import GPT2Tokenizer


def test_plugins_lists_builtins_with_options_and_package():
    r = cli("plugins", "--json")
    assert r.exit_code == 0, r.output
    entries = {(e["kind"], e["name"]): e for e in json.loads(r.output)}
    text = entries[("source", "text")]
    assert text["package"] == "minigpt" and text["target"] == "minigpt_cli.sources.files:TextSource"
    split = next(o for o in text["options"] if o["name"] == "split")
    assert split["default"] == "file" and "'paragraph'" in split["type"] and split["description"]
    assert {("source", n) for n in ("text", "jsonl", "parquet", "fineweb")} <= set(entries)
    r = cli("plugins", "source")
    assert r.exit_code == 0 and "text from minigpt" in r.flat and "encoding_errors" in r.flat
    assert cli("plugins", "nonsense").exit_code == 2


FORTUNES = """Fortune favours the bold.
%
Short.
%
A journey of a thousand miles begins with a single step.
%
Tiny one.
%
Fortune favours the bold.
%
Know thyself, and the rest follows in due course.
"""


def test_example_plugin_package_through_shard(example_plugin, tmp_path):  # noqa: F811
    r = cli("plugins")
    assert r.exit_code == 0
    assert "fortune from minigpt-plugin-example 0.1.0" in r.flat
    assert "numbered (stateful) from minigpt-plugin-example" in r.flat
    src = tmp_path / "cookies"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_text("%\n".join([FORTUNES] * (i + 1)))
    args = ["shard", "fortune", str(src / "*.txt"), "--stage", "min_words", "-S",
            "min_words.n=3", "--stage", "numbered", "-S", "numbered.drop_every=4",
            "--stage", "shout", "--shard-size", 64]
    outs = {}
    for workers in (0, 2):
        outs[workers] = tmp_path / f"w{workers}"
        r = cli(*args, "--out", outs[workers], "-j", workers)
        assert r.exit_code == 0, r.output
    assert shard_bytes(outs[0]) == shard_bytes(outs[2])
    m = manifest(outs[2])
    rows = {row["name"]: row for row in m["stages"]}
    assert rows["min_words"]["seen"] == 36 and rows["min_words"]["dropped"] == {
        "fewer than 3 words": 12}
    assert rows["numbered"]["stateless"] is False
    assert rows["numbered"]["dropped"] == {"every 4th document": 6}
    assert rows["numbered"]["modified"] == rows["numbered"]["kept"] == 18
    assert rows["shout"]["seen"] == rows["shout"]["modified"] == 18
    assert m["sources"][0]["name"] == "fortune" and len(m["sources"][0]["provenance"]) == 3
    texts = [GPT2Tokenizer().decode(d.tolist()) for d in documents(outs[2])]
    assert texts[:4] == ["[1] FORTUNE FAVOURS THE BOLD.",
                         "[2] A JOURNEY OF A THOUSAND MILES BEGINS WITH A SINGLE STEP.",
                         "[3] FORTUNE FAVOURS THE BOLD.",
                         "[5] FORTUNE FAVOURS THE BOLD."]
    assert len(texts) == 18
    # a stateful stage that only keeps or drops: the stage after it runs in the workers
    r = cli("shard", "fortune", str(src / "*.txt"), "--stage", "numbered", "-S",
            "numbered.drop_every=3", "-S", "numbered.prefix=false", "--stage", "shout",
            "--out", tmp_path / "fast", "-j", 2)
    assert r.exit_code == 0, r.output
    texts = [GPT2Tokenizer().decode(d.tolist()) for d in documents(tmp_path / "fast")]
    assert texts[:3] == ["FORTUNE FAVOURS THE BOLD.", "SHORT.", "TINY ONE."]
    rows = {row["name"]: row for row in manifest(tmp_path / "fast")["stages"]}
    assert rows["numbered"]["modified"] == 0 and rows["shout"]["seen"] == 24 == len(texts)
    # a filter that leaves nothing: a clear message, nothing written
    r = cli("shard", "fortune", str(src / "*.txt"), "--stage", "min_words", "-S",
            "min_words.n=100", "--out", tmp_path / "none", "-j", 0)
    assert r.exit_code == 2 and "No documents were left after filtering" in r.flat
    assert "min_words dropped 36 (fewer than 100 words: 36)" in r.flat
    assert not list((tmp_path / "none").glob("*.bin"))
    r = cli("shard", "fortune", str(src / "*.txt"), "--stage", "min_words", "-S",
            "min_words.n=-1", "--out", tmp_path / "bad", "-j", 0)
    assert r.exit_code == 2 and "Invalid options for the stage 'min_words'" in r.flat
