"""benchmarks/bench_vs_nanogpt.py: the shard -> nanoGPT conversion keeps every id, its FLOP count
is the trainer's, and a short baby run beside nanoGPT's train.py completes (no timing asserts;
the run skips where ../shared has no nanoGPT copy or no Nietzsche texts)."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigpt_cli.model import preset_config
from minigpt_cli.train.flops import flops_per_token

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_vs_nanogpt as B  # noqa: E402


def test_shards_become_nanogpt_bins_with_the_same_ids(tmp_path):
    text = tmp_path / "text"
    text.mkdir()
    (text / "a.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 300)
    shards = tmp_path / "shards"
    subprocess.run([sys.executable, "-m", "minigpt_cli", "shard", "text", str(text),
                    "--no-stages", "--tokenizer", "char", "--shard-size", "4000", "--out",
                    str(shards)], check=True, capture_output=True)
    tok = B.to_nanogpt(shards, tmp_path / "nano")
    train = np.concatenate([B.shard_tokens(p) for p in sorted(shards.glob("train_*.bin"))])
    val = np.concatenate([B.shard_tokens(p) for p in sorted(shards.glob("val_*.bin"))])
    assert np.array_equal(np.fromfile(tmp_path / "nano" / "train.bin", dtype=np.uint16), train)
    assert np.array_equal(np.fromfile(tmp_path / "nano" / "val.bin", dtype=np.uint16), val)
    assert train.size + val.size == 300 * 44 + 1  # every character and one end-of-text
    meta = pickle.loads((tmp_path / "nano" / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == tok["vocab_size"]  # the characters and end-of-text
    assert list(meta["stoi"]) == tok["chars"]
    assert all(meta["itos"][i] == c for c, i in meta["stoi"].items())


def test_flops_per_token_is_the_trainers():
    for preset, vocab, seq in (("gpt2", 50257, 1024), ("baby", 197, 64)):
        cfg = preset_config(preset, vocab_size=vocab, pad_vocab_to=64 if vocab > 1024 else 1)
        mine = B.flops_per_token(cfg.n_layer, cfg.n_embd, cfg.padded_vocab_size, seq)
        assert mine == flops_per_token(cfg, seq)


@pytest.mark.skipif(not (B.NANOGPT / "train.py").is_file() or not (B.DATA / "nietzsche").is_dir(),
                    reason="needs ../shared/baselines/nanoGPT and ../shared/data/nietzsche")
def test_a_short_baby_run_prints_both_sides(tmp_path):
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(BENCH / "bench_vs_nanogpt.py"), "--quick",
                           "--only", "baby", "--baby-steps", "12", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| baby 4x128" in done.stdout and "CPU:" in done.stdout
    (row,) = json.loads(out.read_text())["rows"]
    for side in ("nanogpt", "minigpt"):
        assert row[side]["tok_per_s"] > 0 and row[side]["faults_per_step"] >= 0
    assert row["ratio"] > 0


def test_the_fastest_baby_row_compiles_both_sides_and_lets_minigpt_pick_its_dtype(tmp_path):
    shape = (4, 4, 128, 64, 12, "float32", 200, 20, "bench_char", tmp_path, 197)
    plain = B.Item("baby", "baby", *shape)
    best = B.Item("baby-best", "baby, fastest", *shape, compile=True, mini_dtype="auto")
    assert "--compile=False" in B.nanogpt_args(plain) and "--compile=True" in B.nanogpt_args(best)
    assert "--dtype=float32" in B.nanogpt_args(best)  # train.py runs fp32 on a CPU anyway
    mini, mini_best = B.minigpt_args(plain, tmp_path, 1e11), B.minigpt_args(best, tmp_path, 1e11)
    assert "--compile" not in mini and mini[mini.index("--dtype") + 1] == "float32"
    assert "--compile" in mini_best and mini_best[mini_best.index("--dtype") + 1] == "auto"
    assert B.TARGETS["baby-best"][1] == 1.3
