"""HellaSwag: reading and checking the JSONL, batched scoring equal to the straightforward way,
a random model near chance on the real 500-item sample, parity with transformers'
GPT2LMHeadModel on the same weights, and the pinned download from a local server."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from httpserver import serve

from minigpt_cli.errors import MinigptError
from minigpt_cli.evals.completion import Item, score_batched, score_simple
from minigpt_cli.evals.hellaswag import (
    VAL_SHA256,
    VAL_URL,
    HellaSwagOptions,
    HellaSwagTask,
    read_examples,
)
from minigpt_cli.evals.task import no_progress
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer

SAMPLE = "hellaswag/hellaswag_val_sample500.jsonl"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny(vocab: int, block: int = 128, seed: int = 0, width: int = 16) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2,
                         n_embd=width)).eval()


def run(model, tok, path, **options) -> dict:
    return HellaSwagTask().run(model, tok, path, HellaSwagOptions(**options), no_progress)


@pytest.mark.parametrize("config", [
    GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=2, n_embd=16),
    GPTConfig(vocab_size=100, block_size=16, n_layer=1, n_head=4, n_embd=16, bias=False,
              pad_vocab_to=64),
])
def test_batched_scoring_equals_the_straightforward_way_with_cropping(config):
    torch.manual_seed(0)
    model = GPT(config).double().eval()
    rng = random.Random(0)
    items = [Item([rng.randrange(100) for _ in range(rng.choice([1, 4, 4, 9]))],
                  [[rng.randrange(100) for _ in range(rng.randint(1, 8))] for _ in range(4)])
             for _ in range(40)]
    fast = score_batched(model, items, batch_size=3)
    slow = score_simple(model, items)
    for a, b in zip(fast, slow):
        assert a.counts == b.counts
        assert a.sums == pytest.approx(b.sums, abs=1e-9)


def test_scores_do_not_depend_on_batching_or_chunking():
    """float32, GPT-2's 50,257-token vocabulary: the chunked output layer (packed.HeadLoss)
    gives the same predictions and the same summed losses (to 1e-5 relative: float32 sums
    of ~10 nats per token, added in another order) whatever the batch and the chunk, and the
    same as the straightforward full-logits way."""
    from minigpt_cli.evals.packed import HeadLoss, ending_losses

    model = tiny(50257, block=32, width=16)
    rng = random.Random(1)
    items = [Item([rng.randrange(50257) for _ in range(rng.randint(1, 12))],
                  [[rng.randrange(50257) for _ in range(rng.randint(1, 9))] for _ in range(4)])
             for _ in range(24)]
    reference = score_simple(model, items)

    def check(sums_per_item):
        for got, ref in zip(sums_per_item, reference):
            assert min(range(4), key=got.__getitem__) == min(range(4), key=ref.sums.__getitem__)
            assert got == pytest.approx(ref.sums, rel=1e-5)

    for batch in (1, 5, 24):
        check([s.sums for s in score_batched(model, items, batch_size=batch)])
    with torch.no_grad():
        for chunk in (1, 7, 4096):
            check(ending_losses(model, items, "cpu", HeadLoss(model, chunk)))


def test_the_head_reuses_one_buffer_across_batches():
    from minigpt_cli.evals.packed import HeadLoss, ending_losses

    model = tiny(50257, block=32, width=16)
    head = HeadLoss(model, chunk=16)
    ptr = head.buf.data_ptr()
    items = [Item([1, 2, 3], [[4, 5], [6], [7, 8, 9]])] * 10
    with torch.no_grad():
        first = ending_losses(model, items, "cpu", head)
        assert ending_losses(model, items[:3], "cpu", head) == first[:3]
    assert head.buf.data_ptr() == ptr and head.buf.shape == (16, 50257)


def test_a_random_model_scores_near_chance_on_the_real_sample(shared_data):
    path = shared_data / SAMPLE
    text = "".join(ex.context + " " + " ".join(ex.endings) for ex in read_examples(path))
    tok = CharTokenizer.from_text(text)
    r = run(tiny(tok.vocab_size, block=512, width=32), tok, path, batch_size=32)
    assert r["items"] == 500 and r["cropped"] == 0
    # 4 endings: chance is 25%; 500 items give a binomial sd of 1.9 points, so +-4 sd:
    for k in ("acc", "acc_norm"):
        assert 0.25 - 0.078 <= r["metrics"][k] <= 0.25 + 0.078, r["metrics"]
    assert r["metrics"]["acc_stderr"] == pytest.approx(
        math.sqrt(r["metrics"]["acc"] * (1 - r["metrics"]["acc"]) / 500))
    labels = [json.loads(x)["label"] for x in path.read_text().splitlines()]
    assert [p["label"] for p in r["predictions"]] == labels


def hf_predictions(hf, tok, examples):
    """The same scoring written directly against transformers: per ending, context + ending
    through GPT2LMHeadModel, loss over the ending tokens only."""
    preds, preds_norm = [], []
    for ex in examples:
        ctx = tok.encode(ex.context)
        sums, means = [], []
        for ending in ex.endings:
            end = tok.encode(" " + ending)
            ids = torch.tensor([ctx + end])
            with torch.no_grad():
                logits = hf(ids).logits[0]  # (T, V)
            logp = torch.log_softmax(logits[:-1].double(), dim=-1)  # predicts tokens 1..T-1
            targets = ids[0, 1:]
            nll = -logp[torch.arange(len(targets)), targets][len(ctx) - 1:]
            sums.append(float(nll.sum()))
            means.append(float(nll.mean()))
        preds.append(min(range(4), key=sums.__getitem__))
        preds_norm.append(min(range(4), key=means.__getitem__))
    return preds, preds_norm


def test_predictions_match_transformers_gpt2_on_the_same_weights(shared_data, tmp_path):
    transformers = pytest.importorskip("transformers")
    from minigpt_cli.hf import export_hf

    tok = GPT2Tokenizer()
    model = tiny(50257, width=32, seed=3)
    export_hf(model, tmp_path / "hf", tok)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").double().eval()
    path = shared_data / SAMPLE
    n = 30
    ours = run(model.double(), tok, path, limit=n, batch_size=8)
    preds, preds_norm = hf_predictions(hf, tok, read_examples(path, n))
    assert [p["pred"] for p in ours["predictions"]] == preds
    assert [p["pred_norm"] for p in ours["predictions"]] == preds_norm


def write_lines(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"ctx": "A man is sitting on a roof. he", "label": 1,
        "endings": ["is using wrap.", "starts pulling up roofing.", "is holding a cube.",
                    "falls."]}


@pytest.mark.parametrize("row,needle", [
    ({k: v for k, v in GOOD.items() if k != "label"}, "missing field 'label'"),
    ({k: v for k, v in GOOD.items() if k not in ("ctx", "endings")},
     "missing fields 'ctx', 'endings'"),
    ({**GOOD, "label": 4}, "label 4 is not an index of the 4 endings"),
    ({**GOOD, "label": -1}, "label -1 is not an index"),
    ({**GOOD, "endings": "abc"}, "'endings' must be a list"),
    ("{not json", "not valid JSON"),
])
def test_bad_files_name_the_file_and_the_line(tmp_path, row, needle):
    path = write_lines(tmp_path / "h.jsonl", [GOOD, GOOD, row])
    with pytest.raises(MinigptError) as e:
        read_examples(path)
    assert str(path) in str(e.value) and "line 3" in str(e.value) and needle in str(e.value)


def test_empty_file_string_labels_and_ctx_parts(tmp_path):
    with pytest.raises(MinigptError, match="holds no items"):
        read_examples(write_lines(tmp_path / "e.jsonl", []))
    hf_style = {"ctx_a": "A man is on a roof.", "ctx_b": "he", "label": "2",
                "endings": GOOD["endings"]}
    (ex,) = read_examples(write_lines(tmp_path / "h.jsonl", [hf_style]))
    assert ex.label == 2 and ex.context == "A man is on a roof. he"


def test_char_models_report_or_skip_items_outside_their_vocabulary(tmp_path):
    path = write_lines(tmp_path / "h.jsonl", [GOOD, {**GOOD, "ctx": "Zebra ~ %"}])
    tok = CharTokenizer.from_text(json.dumps(GOOD))
    with pytest.raises(MinigptError, match="line 2"):
        run(tiny(tok.vocab_size), tok, path)
    r = run(tiny(tok.vocab_size), tok, path, unknown_chars="skip")
    assert r["items"] == 1 and r["skipped"] == 1


def test_long_items_are_cropped_to_the_context(tmp_path):
    long = {**GOOD, "ctx": "word " * 200}
    path = write_lines(tmp_path / "h.jsonl", [long, GOOD])
    r = run(tiny(50257, block=32), GPT2Tokenizer(), path)
    assert r["items"] == 2 and r["cropped"] == 1


def test_download_is_pinned_by_sha256_and_happens_once(tmp_path):
    body = (json.dumps(GOOD) + "\n").encode() * 3
    import hashlib

    sha = hashlib.sha256(body).hexdigest()
    tok = CharTokenizer.from_text(json.dumps(GOOD))
    with serve({"/hellaswag_val.jsonl": body}) as server:
        url = server.url("/hellaswag_val.jsonl")
        r = run(tiny(tok.vocab_size), tok, None, url=url, sha256=sha, cache_dir=tmp_path)
        assert r["items"] == 3
        assert (tmp_path / "hellaswag" / "hellaswag_val.jsonl").read_bytes() == body
        run(tiny(tok.vocab_size), tok, None, url=url, sha256=sha, cache_dir=tmp_path)
        assert len(server.state.requests) == 1  # the second run reads the cache
        with pytest.raises(MinigptError, match="sha256"):
            run(tiny(tok.vocab_size), tok, None, url=url, sha256="0" * 64,
                cache_dir=tmp_path / "other")
        assert not (tmp_path / "other" / "hellaswag" / "hellaswag_val.jsonl").exists()
        with pytest.raises(MinigptError, match="checksum"):
            run(tiny(tok.vocab_size), tok, None, url=url, cache_dir=tmp_path / "x")


def test_the_official_file_is_pinned():
    assert VAL_URL.endswith("/rowanz/hellaswag/master/data/hellaswag_val.jsonl")
    assert len(VAL_SHA256) == 64 and HellaSwagOptions().sha256 is None
    assert HellaSwagTask.references["OpenAI GPT-2 124M (llm.c, full val)"]["acc_norm"] == 0.2955
