"""The `math` source through `minigpt shard`: the loss mask counts only solution tokens (and the
end-of-text that ends each example), no example crosses a block boundary, the validation
problems fill val_000000 alone, the vocabulary comes from meta.json, verify checks the masks,
and bad settings are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shard_support import cli, manifest

from minigpt_cli.shard_folder import check_fits, open_shard_folder
from minigpt_cli.sharding.config import Part
from minigpt_cli.sharding.writer import ShardWriter
from minigpt_cli.shards import open_shard
from minigpt_cli.train.loader import WindowStream


def make_math(out: Path, *args: str) -> Path:
    r = cli("make-math", "--out", out, "--seed", "1", "--workers", "1", *args)
    assert r.exit_code == 0, r.output
    return out


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """3-digit + and 2x2 * (39- and 63-character examples): blocks of 64, packed."""
    root = tmp_path_factory.mktemp("math")
    data = make_math(root / "data", "--ops", "+:3,*:2x2", "--n", "400", "--n-test", "50")
    out = root / "shards"
    r = cli("shard", "math", data, "--tokenizer", "char", "--shard-size", str(64 * 64),
            "--workers", "0", "--option", "val=20", "--out", out)
    assert r.exit_code == 0, r.output
    return data, out


def test_masks_count_solutions_and_the_end_of_text_only(sharded):
    data, out = sharded
    folder = open_shard_folder(out)
    tok = folder.tokenizer
    assert tok.chars == list(json.loads((data / "meta.json").read_text())["vocab"])
    assert manifest(out)["pack"] == 64 and manifest(out)["loss_mask"] is True
    recs = {r["prompt"]: r["solution"] for r in records(data)}
    stream = np.concatenate([np.asarray(a) for a in folder.train])
    mask = np.concatenate([np.asarray(m) for m in folder.train_masks])
    eot = tok.eot_id
    starts = [i for i in range(len(stream) - 1) if stream[i] == eot and stream[i + 1] != eot]
    assert len(starts) == sum(s["documents"] for s in manifest(out)["shards"][1:])
    for s in starts:
        end = s + 1
        while end < len(stream) and stream[end] != eot:
            end += 1
        text = tok.decode(stream[s + 1:end].tolist())
        prompt = text[:text.index("=") + 1]
        assert recs[prompt] == text[len(prompt):]  # a whole training example
        m = mask[s:end + 1] if end < len(stream) else mask[s:end]
        want = [0] * (1 + len(prompt)) + [1] * (len(text) - len(prompt)) + [1]
        want[0] = int(s > 0 and stream[s - 1] != eot)  # it ends the example just before it
        assert m.tolist() == want[:len(m)]  # prompt 0, solution 1, closing end-of-text 1
    assert int(mask.sum()) <= sum(len(recs[p]) + 1 for p in recs)


def test_no_example_crosses_a_block_and_each_starts_a_window(sharded):
    _, out = sharded
    folder = open_shard_folder(out)
    eot = folder.tokenizer.eot_id
    for arr in [folder.val, *folder.train]:
        arr = np.asarray(arr)
        blocks = arr[: len(arr) // 64 * 64].reshape(-1, 64)  # (windows, 64)
        for b in blocks:
            assert b[0] == eot  # a window opens with an example's end-of-text (or padding)
            inner = np.flatnonzero(b[1:] != eot)
            if len(inner):  # the example's text is contiguous and ends inside the window
                assert inner[-1] - inner[0] + 1 == len(inner)
    stream = WindowStream(folder.train, folder.train_masks, 64, seed=0)
    batch = stream.gather(stream.take(8))
    for x, y, m in zip(batch.x, batch.y, batch.mask):
        counted = y[m.bool()]
        assert counted[-1] == eot and (counted[:-1] != eot).all()  # one example, ended


def test_val_problems_fill_the_validation_shard_alone(sharded):
    data, out = sharded
    val = manifest(out)["shards"][0]
    assert val["name"] == "val_000000.bin" and val["documents"] == 20
    folder = open_shard_folder(out)
    text = folder.tokenizer.decode(np.asarray(folder.val).tolist())
    val_prompts = [p.split("=")[0] for p in text.split("<|endoftext|>") if p]
    first = [r["prompt"][:-1] for r in records(data)[:20]]
    assert val_prompts == first
    train_text = folder.tokenizer.decode(np.asarray(folder.train[0]).tolist())
    assert not any(f"<|endoftext|>{p}=" in train_text for p in first)


def test_verify_checks_the_masks_and_seq_len_must_fit_the_packing(sharded, tmp_path):
    _, out = sharded
    assert cli("shard", "--verify", out).exit_code == 0
    folder = open_shard_folder(out)
    with pytest.raises(Exception, match="multiple of 64"):
        check_fits(folder, 48)
    check_fits(folder, 64)
    bad = tmp_path / "copy"
    bad.mkdir()
    for p in out.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    m = open_shard(bad / "train_000001.mask.bin")
    raw = bytearray((bad / "train_000001.mask.bin").read_bytes())
    raw[-2:] = (2).to_bytes(2, "little")  # a mask value that is not 0/1
    (bad / "train_000001.mask.bin").write_bytes(bytes(raw))
    assert len(m)
    r = cli("shard", "--verify", bad)
    assert r.exit_code != 0 and "mask" in r.flat


def test_repeat_writes_an_operation_again_and_ops_filters(tmp_path):
    data = make_math(tmp_path / "d", "--ops", "+:1,*:1", "--n", "40", "--n-test", "10")
    n_mul = sum(r["op"] == "*" for r in records(data))
    out = tmp_path / "s"
    r = cli("shard", "math", data, "--tokenizer", "char", "--shard-size", "1024", "--workers",
            "0", "--option", "val=0", "--option", 'repeat={"*": 3}', "--out", out)
    assert r.exit_code == 0, r.output
    assert manifest(out)["totals"]["documents_kept"] == 40 + 2 * n_mul
    out2 = tmp_path / "s2"
    r = cli("shard", "math", data, "--tokenizer", "char", "--shard-size", "1024", "--workers",
            "0", "--option", "ops=+", "--out", out2)
    assert r.exit_code == 0, r.output
    assert manifest(out2)["totals"]["documents_kept"] == 40 - n_mul


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    data = make_math(tmp_path / "d", "--ops", "+:3", "--n", "30", "--n-test", "10")
    out = tmp_path / "s"
    r = cli("shard", "math", data, "--tokenizer", "char", "--shard-size", "1000", "--out", out)
    assert r.exit_code != 0 and "multiple of the math source's block size 64" in r.flat
    r = cli("shard", "math", data, "--tokenizer", "char", "--option", "block_size=32",
            "--out", out)
    assert r.exit_code != 0 and "longest example" in r.flat
    r = cli("shard", "math", tmp_path, "--tokenizer", "char", "--out", out)
    assert r.exit_code != 0 and "meta.json" in r.flat
    r = cli("shard", "math", data, "--option", "ops=+,%", "--out", out)
    assert r.exit_code != 0 and "ops" in r.flat
    assert not out.exists() or not any(out.glob("*.bin"))


def test_writer_resumes_a_masked_packed_carry(tmp_path):
    """The carry of an interrupted run (tokens, mask, padding, the pending stop) continues
    exactly as an uninterrupted writer would."""
    docs = [(np.array([9] + [1] * n, dtype=np.uint16), 3) for n in (5, 7, 2, 6, 3, 7, 4)]

    def run(split_at: int | None, out: Path) -> list:
        out.mkdir()
        w = ShardWriter(out, 32, Part(index=1, count=1), pack=8, pad_id=9)
        infos = []
        for i, (t, c) in enumerate(docs):
            if i == split_at:
                w = ShardWriter(out, 32, Part(index=1, count=1), len(infos), w.carry,
                                w.carry_docs, pack=8, pad_id=9, carry_mask=w.carry_mask,
                                stop_next=w.stop_next, carry_padding=w.carry_padding)
            infos += w.add(t, None, c)
        infos.append(w.finish())
        return [(i.name, i.tokens, i.documents, i.padding, i.sha256, i.mask_sha256)
                for i in infos if i]

    assert run(None, tmp_path / "a") == run(3, tmp_path / "b")
