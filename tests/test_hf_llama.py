"""Hugging Face interop of the architecture switches, against real transformers models with
random weights (nothing downloaded): RoPE + RMSNorm + SwiGLU without biases is Llama, with
query/key norms Qwen3. Both ways: same logits (<= 1e-5 in fp32), same 32 greedy tokens.
Combinations no transformers class computes are refused naming the switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_hf import PROMPT, assert_same_model, hf_tokenizer_from_openai_files
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.errors import MinigptError
from minigpt_cli.hf import export_hf, load_hf
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.model_file import load_checkpoint, save_checkpoint
from minigpt_cli.tokenizer import GPT2Tokenizer

transformers = pytest.importorskip("transformers")
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

SHAPE = dict(vocab_size=50257, block_size=64, n_layer=2, n_head=2, n_embd=32)
LLAMA = dict(positions="rope", rope_base=500.0, norm="rmsnorm", norm_eps=1e-6, mlp="swiglu",
             bias=False)
CLASSES = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen3": ("Qwen3Config",
                                                                   "Qwen3ForCausalLM")}


def spread_(model: torch.nn.Module, seed: int) -> None:
    """Weights with std 0.2, norm gains around 1: varied greedy continuations."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = p.dim() == 1 and "bias" not in name
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if gain else 0.0))


def hf_config(kind: str, tied: bool):
    cls = getattr(transformers, CLASSES[kind][0])
    return cls(vocab_size=50257, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
               num_attention_heads=2, num_key_value_heads=2, head_dim=16,
               max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=tied,
               rope_parameters={"rope_type": "default", "rope_theta": 500.0})


def hf_load(path: Path, kind: str):
    cls = getattr(transformers, CLASSES[kind][1])
    model, info = cls.from_pretrained(path, output_loading_info=True)
    assert not any(info.values()), info  # no missing / unexpected / mismatched keys
    return model.float().eval()


@pytest.fixture(scope="module")
def openai_tok(tmp_path_factory):
    return hf_tokenizer_from_openai_files(tmp_path_factory.mktemp("tok") / "files")


@pytest.mark.parametrize("kind", ["llama", "qwen3"])
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_hf_model_loads_with_same_logits_and_greedy_tokens(kind, tied, openai_tok, tmp_path):
    torch.manual_seed(0)
    cls = getattr(transformers, CLASSES[kind][1])
    hf = cls(hf_config(kind, tied))
    spread_(hf, 1)
    hf.save_pretrained(tmp_path / kind)
    openai_tok.save_pretrained(tmp_path / kind)
    ours, tok = load_hf(tmp_path / kind)
    assert ours.config == GPTConfig(**SHAPE, **LLAMA, qk_norm=kind == "qwen3", mlp_hidden=40,
                                    tie_embeddings=tied)
    assert_same_model(ours, hf_load(tmp_path / kind, kind), tok.encode(PROMPT))


@pytest.mark.parametrize("switches, arch", [
    (dict(LLAMA), "LlamaForCausalLM"),
    (dict(LLAMA, tie_embeddings=False, norm_gain=False), "LlamaForCausalLM"),
    (dict(LLAMA, qk_norm=True), "Qwen3ForCausalLM"),
    (dict(LLAMA, qk_norm=True, tie_embeddings=False, pad_vocab_to=64), "Qwen3ForCausalLM"),
], ids=["llama", "llama-untied-nogain", "qwen3", "qwen3-untied-padded"])
def test_exported_model_loads_in_transformers_identically(switches, arch, tmp_path):
    torch.manual_seed(0)
    ours = GPT(GPTConfig(**SHAPE, **switches))
    spread_(ours, 4)
    tok = GPT2Tokenizer()
    out = export_hf(ours, tmp_path / "export", tok)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [arch] and config["rms_norm_eps"] == 1e-6
    auto = transformers.AutoModelForCausalLM.from_pretrained(out).float().eval()
    assert type(auto).__name__ == arch
    assert_same_model(ours, auto, tok.encode(PROMPT))
    back, _ = load_hf(out)  # and back: the same function
    x = torch.randint(0, 50257, (1, 64), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(back(x)[0], ours.eval()(x)[0], atol=1e-5, rtol=1e-5)


def test_gpt2_with_another_mlp_width_and_epsilon_round_trips(tmp_path):
    torch.manual_seed(0)
    ours = GPT(GPTConfig(**SHAPE, mlp_hidden=48, norm_eps=1e-6))
    spread_(ours, 6)
    out = export_hf(ours, tmp_path / "g", GPT2Tokenizer())
    hf = transformers.GPT2LMHeadModel.from_pretrained(out).float().eval()
    assert_same_model(ours, hf, GPT2Tokenizer().encode(PROMPT))
    assert load_hf(out)[0].config == ours.config


@pytest.mark.parametrize("switches, named", [
    (dict(mlp="relu2"), "mlp=relu2"),
    (dict(logit_softcap=30.0), "logit_softcap=30.0"),
    (dict(tie_embeddings=False), "tie_embeddings=False"),
    (dict(norm="rmsnorm"), "norm=rmsnorm"),
    (dict(qk_norm=True), "qk_norm=True"),
    (dict(LLAMA, mlp="relu2"), "mlp=relu2"),
    (dict(LLAMA, bias=True), "bias=True"),
    (dict(LLAMA, norm="layernorm"), "norm=layernorm"),
    (dict(LLAMA, logit_softcap=15.0), "logit_softcap=15.0"),
])
def test_a_model_no_transformers_class_computes_is_refused(switches, named, tmp_path):
    model = GPT(GPTConfig(**SHAPE, **switches))
    with pytest.raises(MinigptError, match="No transformers class computes") as e:
        export_hf(model, tmp_path / "x", GPT2Tokenizer())
    assert named in str(e.value)
    assert not (tmp_path / "x").exists()


def test_cli_export_and_import_of_a_qwen3_shaped_checkpoint(tmp_path):
    torch.manual_seed(0)
    ours = GPT(GPTConfig(**SHAPE, **LLAMA, qk_norm=True))
    spread_(ours, 7)
    ckpt = save_checkpoint(tmp_path / "ck", ours, GPT2Tokenizer())
    runner = CliRunner()
    r = runner.invoke(app, ["export-hf", str(ckpt), str(tmp_path / "hf")])
    assert r.exit_code == 0, r.output
    assert "wrote Hugging Face Qwen3ForCausalLM folder" in r.stdout
    r = runner.invoke(app, ["import-hf", str(tmp_path / "hf"), str(tmp_path / "back")])
    assert r.exit_code == 0, r.output
    back, _, meta = load_checkpoint(tmp_path / "back")
    assert meta.config == ours.config
    r = runner.invoke(app, ["export-hf", str(save_checkpoint(
        tmp_path / "r2", GPT(GPTConfig(**SHAPE, mlp="relu2")), GPT2Tokenizer())),
        str(tmp_path / "no")])
    assert r.exit_code != 0 and "mlp=relu2" in " ".join(r.output.split())
