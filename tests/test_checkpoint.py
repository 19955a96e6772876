import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.model import GPT, preset_config
from minigpt_cli.model_file import config_sha256, load_checkpoint, read_checkpoint, save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer


@pytest.fixture
def char_ckpt(tmp_path):
    torch.manual_seed(0)
    tok = CharTokenizer.from_text("the will to power")
    model = GPT(preset_config("nano", vocab_size=tok.vocab_size))
    path = save_checkpoint(tmp_path / "run" / "step_000010", model, tok, step=10,
                           extra={"manifest": "abc"})
    return model, tok, path


def test_round_trip_with_metadata(char_ckpt):
    model, tok, path = char_ckpt
    assert path.name == "model.safetensors"
    loaded, tok2, ck = load_checkpoint(path.parent)
    assert ck.step == 10 and ck.extra == {"manifest": "abc"}
    assert tok2.identity() == tok.identity() and ck.config == model.config
    x = torch.randint(0, tok.vocab_size, (2, 16))
    assert torch.equal(model(x)[0], loaded(x)[0])
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    with safe_open(str(path), "pt") as f:
        assert "lm_head.weight" not in f.keys()  # tied weights stored once
        meta = f.metadata()
    assert meta["format"] == "minigpt-checkpoint" and meta["format_version"] == "1"
    assert json.loads(meta["model_config"])["n_layer"] == model.config.n_layer
    assert not list(path.parent.glob("*.tmp"))


def test_overwrite_failure_leaves_existing_checkpoint_intact(char_ckpt, monkeypatch):
    model, tok, path = char_ckpt
    before = path.read_bytes()
    import minigpt_cli.model_file

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(minigpt_cli.model_file, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, model, tok, step=11)
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*tmp"))


def test_truncated_checkpoint(char_ckpt, tmp_path):
    _, _, path = char_ckpt
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MinigptError, match="truncated"):
        read_checkpoint(cut)


def test_foreign_and_pickled_files(tmp_path):
    foreign = tmp_path / "model.safetensors"
    save_file({"h.0.attn.c_attn.weight": torch.zeros(2, 2)}, str(foreign))
    with pytest.raises(MinigptError, match="--from-hf"):
        read_checkpoint(foreign)
    pickled = tmp_path / "ckpt.pt"
    torch.save({"a": 1}, pickled)
    with pytest.raises(MinigptError, match="never loads pickled"):
        read_checkpoint(pickled)
    with pytest.raises(MinigptError, match="no such file"):
        read_checkpoint(tmp_path / "nope.safetensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MinigptError, match="without model.safetensors"):
        read_checkpoint(empty)


def _rewrite(path, tensors=None, **meta_changes):
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        data = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(meta_changes)
    save_file(tensors if tensors is not None else data, str(path), metadata=meta)
    return data


def test_wrong_format_version(char_ckpt):
    _, _, path = char_ckpt
    _rewrite(path, format_version="99")
    with pytest.raises(MinigptError, match="format version '99'"):
        read_checkpoint(path)


def test_config_that_does_not_match_weights(char_ckpt):
    """A config whose shapes differ from the weights is refused by the shapes, even when its
    hash was recomputed (or absent, as in checkpoints written before the hash)."""
    _, _, path = char_ckpt
    ck = read_checkpoint(path)
    cfg = ck.config.to_dict()
    cfg["n_embd"] = 64
    _rewrite(path, model_config=json.dumps(cfg), model_config_sha256=config_sha256(cfg))
    with pytest.raises(IncompatibleError, match="do not match its model config"):
        load_checkpoint(path)
    with pytest.raises(IncompatibleError, match="do not match its model config"):
        read_checkpoint(path, load_tensors=False)  # shapes are read without the tensors


def test_edited_config_with_the_same_shapes_is_refused_by_its_hash(char_ckpt):
    """n_head 4 for weights trained with 2: every shape fits, only the recorded hash tells."""
    _, _, path = char_ckpt
    ck = read_checkpoint(path)
    assert ck.config.n_head == 2
    cfg = {**ck.config.to_dict(), "n_head": 4}
    _rewrite(path, model_config=json.dumps(cfg))
    for load in (load_checkpoint, lambda p: read_checkpoint(p, load_tensors=False)):
        with pytest.raises(IncompatibleError, match="n_head=4.*model_config_sha256.*edited"):
            load(path)
    # the same JSON spelled differently (key order, spaces) is the same config
    _rewrite(path, model_config=json.dumps(dict(reversed(list(ck.config.to_dict().items()))),
                                           indent=2))
    assert load_checkpoint(path)[0].config.n_head == 2


def test_checkpoint_written_before_the_hash_still_loads(char_ckpt):
    _, _, path = char_ckpt
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        data = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["model_config_sha256"] == config_sha256(json.loads(meta["model_config"]))
    del meta["model_config_sha256"]
    save_file(data, str(path), metadata=meta)
    model, _, ck = load_checkpoint(path)
    assert ck.config.n_head == 2 and model.config == ck.config


def test_gpt2_tokenizer_checkpoint(tmp_path):
    model = GPT(preset_config("nano", vocab_size=50257, pad_vocab_to=64))
    path = save_checkpoint(tmp_path / "m.safetensors", model, GPT2Tokenizer())
    loaded, tok, ck = load_checkpoint(path)
    assert tok.name == "gpt2" and ck.config.padded_vocab_size == 50304
