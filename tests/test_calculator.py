"""The calculator: questions as people write them through `sample` (any char model trained on
make-math data, or --model calculator), and `eval math` defaulting to the built-in calculator."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.loading import BUILTIN_MODELS, default_checkpoint
from minigpt_cli.mathgen.calculator import ask, is_math_model
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.model_file import save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer

runner = CliRunner()
CHARS = list("#*+,-/0123456789;=>r")
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def math_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    tok = CharTokenizer(CHARS)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2,
                          n_embd=16)).eval()
    return save_checkpoint(tmp_path_factory.mktemp("calc") / "model.safetensors", model, tok)


def test_a_math_model_is_asked_through_the_normaliser(math_ckpt):
    r = runner.invoke(app, ["sample", "-c", str(math_ckpt), "--prompt", "35 + 42 = ?",
                            "--max-new-tokens", "20"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("35+42=") and lines[1].startswith("35 + 42 = ")
    assert "checker" in r.stderr or "checked" in r.stderr  # its verdict, right or wrong


def test_an_unreadable_question_is_a_clear_message_not_noise(math_ckpt):
    r = runner.invoke(app, ["sample", "-c", str(math_ckpt), "--prompt", "what is love?"])
    assert r.exit_code != 0 and "cannot read 'what is love?'" in " ".join(r.stderr.split())
    assert r.stdout == ""


def test_ask_checks_the_answer(math_ckpt):
    from minigpt_cli.model_file import load_checkpoint

    model, tok, _ = load_checkpoint(math_ckpt)
    assert is_math_model(tok) and not is_math_model(CharTokenizer(list("abc =#")))
    a = ask(model, tok, "what is 12 x 7", max_new_tokens=10)
    assert a.prompt == "12*7=" and a.result.expected == "84"


def test_model_flag_is_one_of_the_built_ins(math_ckpt):
    r = runner.invoke(app, ["sample", "--model", "abacus", "--prompt", "1+1"])
    assert r.exit_code == 2 and "calculator" in r.output
    r = runner.invoke(app, ["sample", "--model", "calculator", "-c", str(math_ckpt)])
    assert r.exit_code == 2 and "not --checkpoint and --model" in " ".join(r.output.split())


calculator_built = pytest.mark.skipif(
    "calculator" not in BUILTIN_MODELS
    or not (resources.files("minigpt_cli") / "assets" / "calculator.safetensors").is_file(),
    reason="the calculator asset is not built (scripts/build_calculator.py)")


@calculator_built
def test_the_built_in_calculator_answers_and_carries_its_eval_table():
    from minigpt_cli.model_file import read_checkpoint

    extra = read_checkpoint(default_checkpoint("calculator"), load_tensors=False).extra
    assert extra["data"]["settings"]["format"] == "cot" and extra["eval"]["test"]["by_length"]
    r = runner.invoke(app, ["sample", "--model", "calculator", "--prompt", "35 + 42 = ?"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1].startswith("35 + 42 = ")


@calculator_built
def test_eval_math_defaults_to_the_calculator_and_rebuilds_its_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    r = runner.invoke(app, ["eval", "math", "--limit", "20", "--option", "train_limit=5",
                            "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "built-in model calculator" in r.output or "calculator" in r.output
    doc = json.loads(out.read_text())
    assert doc["items"] == 20 and doc["details"]["splits"]["train"]["n"] == 5


def test_eval_math_reads_prompts_through_the_normaliser(math_ckpt, tmp_path):
    rows = [{"a": 35, "b": 42, "op": "+", "prompt": "35 + 42 = ?", "split": "test"},
            {"a": 12, "b": 7, "op": "*", "prompt": "what is 12 x 7", "split": "test"}]
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = runner.invoke(app, ["eval", "math", "-c", str(math_ckpt), "--data", str(data),
                            "--option", "max_new_tokens=8", "--no-save"])
    assert r.exit_code == 0, r.output
    rows[0]["prompt"] = "35 + 43"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = runner.invoke(app, ["eval", "math", "-c", str(math_ckpt), "--data", str(data),
                            "--no-save"])
    assert r.exit_code == 2 and "not the record's 35+42" in " ".join(r.output.split())
