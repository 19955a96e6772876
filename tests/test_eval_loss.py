"""`evaluate_loss` (shared with the trainer) and the `loss` eval task: windows with a stride,
masks, bits per byte across tokenizers, shard folders, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from minigpt_cli import shards
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.evals.loss import LossOptions, LossSums, LossTask, evaluate_loss
from minigpt_cli.evals.task import no_progress
from minigpt_cli.evals.tokens import ScoredText, Stream, window_ends, windows
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer

TEXT = ("Supposing that Truth is a woman -- what then? Is there not ground for suspecting that "
        "all philosophers, in so far as they have been dogmatists, have failed to understand "
        "women. Ünïcödé — naïve café, 10 € «quotes».\n") * 3


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny(vocab: int, block: int = 32, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2,
                         n_embd=16)).eval()


def test_evaluate_loss_matches_the_models_own_mean_loss_and_restores_train_mode():
    model = tiny(50)
    x = torch.randint(0, 50, (3, 32))
    y = torch.randint(0, 50, (3, 32))
    with torch.no_grad():
        _, loss = model(x, y)
    model.train()
    sums = evaluate_loss(model, [(x, y)])
    assert model.training  # mode restored
    assert sums.tokens == 3 * 32
    assert sums.mean == pytest.approx(float(loss), rel=1e-5)
    assert sums.perplexity == pytest.approx(math.exp(float(loss)), rel=1e-5)


def test_evaluate_loss_counts_only_masked_targets_like_the_trainer():
    from minigpt_cli.train.loader import Batch

    model = tiny(50)
    x, y = torch.randint(0, 50, (2, 32)), torch.randint(0, 50, (2, 32))
    mask = torch.zeros(2, 32, dtype=torch.long)
    mask[:, 20:] = 1
    with torch.no_grad():
        _, loss = model(x, y, loss_mask=mask)  # the trainer's masked mean
    sums = evaluate_loss(model, [Batch(x, y, mask)])
    assert sums.tokens == 24
    assert sums.mean == pytest.approx(float(loss), rel=1e-5)
    # split across batches, the sums add up to the same
    halves = evaluate_loss(model, [Batch(x[:1], y[:1], mask[:1]), (x[1:], y[1:], mask[1:])])
    assert halves.nats == pytest.approx(sums.nats, rel=1e-6) and halves.tokens == 24


def test_a_compiled_model_gives_the_same_sums():
    model = tiny(50)
    x, y = torch.randint(0, 50, (2, 32)), torch.randint(0, 50, (2, 32))
    plain = evaluate_loss(model, [(x, y)])
    compiled = evaluate_loss(torch.compile(model, backend="eager"), [(x, y)])
    assert compiled.tokens == plain.tokens and compiled.nats == pytest.approx(plain.nats, 1e-6)


@pytest.mark.parametrize("n,seq_len,stride", [(2, 8, 4), (9, 8, 8), (100, 8, 3), (100, 16, 16),
                                              (57, 32, 1)])
def test_windows_score_every_target_exactly_once_with_enough_context(n, seq_len, stride):
    toks = np.arange(n, dtype=np.int64)
    seen = []
    for b in windows(Stream(toks), seq_len, stride, batch_size=3):
        assert b.x.shape == b.y.shape == b.mask.shape
        assert torch.equal(b.y[:, :-1], b.x[:, 1:])  # targets are the next tokens
        for row_y, row_m in zip(b.y, b.mask):
            scored = row_y[row_m].tolist()
            if seen and scored:
                # every target after the first window sees >= seq_len - stride tokens before it
                first = int(row_m.nonzero()[0])
                assert first >= min(seq_len, n - 1) - stride
            seen += scored
    assert seen == list(range(1, n))  # targets 1..n-1, in order, once each
    assert len(window_ends(n - 1, min(seq_len, n - 1), stride)) >= 1


def test_bytes_and_chars_of_scored_text_are_exact_for_bpe_and_char_tokenizers():
    for tok in (GPT2Tokenizer(), CharTokenizer.from_text(TEXT)):
        ids = np.array([tok.eot_id, *tok.encode(TEXT)])
        counted = ScoredText(tok)
        for b in windows(Stream(ids), 16, 5, batch_size=4):
            counted.add(b.scored_ids)
        assert counted.bytes == len(TEXT.encode("utf-8"))
        assert counted.chars == len(TEXT)
        assert counted.targets == len(ids) - 1


def run_loss(model, tok, data, **options):
    return LossTask().run(model, tok, data, LossOptions(**options), no_progress)


def test_bits_per_byte_is_nats_over_ln2_bytes_and_compares_char_with_bpe(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("\ufeff" + TEXT, encoding="utf-8")  # a byte-order mark is not scored
    char = CharTokenizer.from_text(TEXT)
    r_char = run_loss(tiny(char.vocab_size), char, path, seq_len=16, stride=8)
    r_bpe = run_loss(tiny(50257, seed=1), GPT2Tokenizer(), path, seq_len=16, stride=8)
    n_bytes = len(TEXT.encode())
    for r, tok in ((r_char, char), (r_bpe, GPT2Tokenizer())):
        assert r["bytes"] == n_bytes and r["chars"] == len(TEXT)
        assert r["items"] == len(tok.encode(TEXT))  # every token of the text, once
        m = r["metrics"]
        assert m["bits_per_byte"] == pytest.approx(r["nats"] / (math.log(2) * n_bytes))
        assert m["bits_per_char"] == pytest.approx(r["nats"] / (math.log(2) * len(TEXT)))
        assert m["loss"] == pytest.approx(r["nats"] / r["items"])
    # an untrained model is near uniform: loss ~ ln(vocab); per byte the two differ by design
    assert r_char["metrics"]["loss"] == pytest.approx(math.log(char.vocab_size), rel=0.05)
    assert r_bpe["metrics"]["loss"] == pytest.approx(math.log(50257), rel=0.05)


def test_the_stride_changes_contexts_not_targets_and_limit_caps_tokens(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    char = CharTokenizer.from_text(TEXT)
    model = tiny(char.vocab_size)
    full = run_loss(model, char, path, seq_len=32, stride=32)
    strided = run_loss(model, char, path, seq_len=32, stride=4)
    assert full["items"] == strided["items"] == len(TEXT)
    assert full["nats"] != strided["nats"]  # different contexts, same targets
    capped = run_loss(model, char, path, limit=100)
    assert capped["items"] == 100


def char_shard_folder(folder, tok, text, mask=False):
    ids = np.array([tok.eot_id, *tok.encode(text)])
    folder.mkdir(parents=True, exist_ok=True)
    shards.write_shard(folder / "val_000000.bin", ids[:200])
    shards.write_shard(folder / "train_000001.bin", ids[200:])
    if mask:
        m = np.zeros(200, dtype=np.int64)
        m[100:] = 1
        shards.write_shard(folder / "val_000000.mask.bin", m)
    manifest = {"format": "minigpt-shards", "format_version": 1,
                "tokenizer": {**tok.identity().to_dict(), **tok.to_dict()}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return ids


def test_shard_folder_splits_masks_and_single_shard_files(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    ids = char_shard_folder(tmp_path / "s", tok, TEXT)
    model = tiny(tok.vocab_size)
    val = run_loss(model, tok, tmp_path / "s")
    assert val["items"] == 199
    both = run_loss(model, tok, tmp_path / "s", split="all")
    assert both["items"] == 199 + len(ids) - 200 - 1
    one = run_loss(model, tok, tmp_path / "s" / "val_000000.bin")
    assert one["nats"] == pytest.approx(val["nats"])
    char_shard_folder(tmp_path / "m", tok, TEXT, mask=True)
    masked = run_loss(model, tok, tmp_path / "m")
    assert masked["items"] == 100


def test_tokenizer_mismatch_and_empty_data_are_clear_errors(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    char_shard_folder(tmp_path / "s", tok, TEXT)
    with pytest.raises(IncompatibleError, match="tokenizer"):
        run_loss(tiny(50257), GPT2Tokenizer(), tmp_path / "s")
    other = CharTokenizer.from_text(TEXT + "@")  # same kind, different vocabulary
    with pytest.raises(IncompatibleError, match=str(tmp_path / "s")):
        run_loss(tiny(other.vocab_size), other, tmp_path / "s")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(MinigptError, match="empty"):
        run_loss(tiny(tok.vocab_size), tok, empty)
    with pytest.raises(MinigptError, match="cannot be tokenized"):
        bad = tmp_path / "bad.txt"
        bad.write_text("~~~ not in the vocabulary ~~~")
        run_loss(tiny(tok.vocab_size), tok, bad)
    with pytest.raises(MinigptError, match="needs --data"):
        run_loss(tiny(tok.vocab_size), tok, None)


def test_loss_sums_of_nothing_are_nan():
    assert math.isnan(LossSums().mean)
