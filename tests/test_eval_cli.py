"""`minigpt eval` end to end through the CLI: results beside the checkpoint and in --output,
Hugging Face folders, --compare (with saved results reused), options, and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.model_file import save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer

runner = CliRunner()
TEXT = ("A man is sitting on a roof. he starts pulling up roofing on a roof. "
        "The boy lifts his body above the height of a pole. ") * 4
ITEM = {"ctx": "A man is sitting on a roof. he", "label": 0,
        "endings": ["starts pulling up roofing on a roof.", "is a boy.", "lifts a pole.",
                    "is on the roof."]}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def files(tmp_path):
    tok = CharTokenizer.from_text(TEXT + json.dumps(ITEM))
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2,
                              n_embd=16))
        out[name] = save_checkpoint(tmp_path / name / "step_000010", model, tok, step=10).parent
    (tmp_path / "text.txt").write_text(TEXT)
    (tmp_path / "hs.jsonl").write_text((json.dumps(ITEM) + "\n") * 6)
    out["text"], out["hs"], out["tmp"] = tmp_path / "text.txt", tmp_path / "hs.jsonl", tmp_path
    out["tok"] = tok
    return out


def test_eval_writes_results_beside_the_checkpoint_and_to_output(files):
    out = files["tmp"] / "res" / "loss.json"
    r = invoke("eval", "loss", "-c", files["a"], "--data", files["text"], "--output", out,
               "--option", "stride=16", "--batch-size", "2")
    assert r.exit_code == 0, r.output
    assert "bits_per_byte" in r.output and "perplexity" in r.output
    beside = json.loads((files["a"] / "eval_loss.json").read_text())
    assert beside == json.loads(out.read_text())
    assert beside["task"] == "loss" and beside["items"] == len(TEXT)
    assert beside["model"]["step"] == 10 and beside["model"]["source"] == "checkpoint"
    assert beside["model"]["tokenizer"] == files["tok"].identity().to_dict()
    assert beside["options"]["stride"] == 16 and beside["options"]["batch_size"] == 2
    assert beside["data"]["sha256"] and beside["details"]["bytes"] == len(TEXT)
    r = invoke("eval", "loss", "-c", files["b"], "--data", files["text"], "--no-save")
    assert r.exit_code == 0 and not (files["b"] / "eval_loss.json").exists()


def test_hellaswag_on_a_hugging_face_folder(files):
    pytest.importorskip("transformers")
    from minigpt_cli.hf import export_hf
    from minigpt_cli.model_file import load_checkpoint

    model, tok, _ = load_checkpoint(files["a"])
    export_hf(model, files["tmp"] / "hf", tok)
    r = invoke("eval", "hellaswag", "--from-hf", files["tmp"] / "hf", "--data", files["hs"],
               "--limit", "4")
    assert r.exit_code == 0, r.output
    doc = json.loads((files["tmp"] / "hf" / "eval_hellaswag.json").read_text())
    assert doc["items"] == 4 and doc["model"]["source"] == "hf"
    direct = invoke("eval", "hellaswag", "-c", files["a"], "--data", files["hs"], "--limit", "4")
    assert direct.exit_code == 0
    same = json.loads((files["a"] / "eval_hellaswag.json").read_text())
    assert same["details"]["predictions"] == doc["details"]["predictions"]


def test_compare_prints_one_table_with_the_reference_and_reuses_saved_results(files):
    r = invoke("eval", "hellaswag", "--compare", files["a"], files["b"], "--data", files["hs"])
    assert r.exit_code == 0, r.output
    assert "comparison" in r.output and "acc_norm" in r.output
    assert "OpenAI GPT-2 124M" in r.output and "0.2955" in r.output
    assert "reusing" not in r.output
    assert (files["a"] / "eval_hellaswag.json").exists()
    again = invoke("eval", "hellaswag", "--compare", files["a"], files["b"] / "eval_hellaswag.json",
                   "--data", files["hs"])
    assert again.exit_code == 0 and again.output.count("reusing") == 2
    other = invoke("eval", "hellaswag", "--compare", files["a"], "--data", files["hs"],
                   "--limit", "2")  # other options: scored again
    assert other.exit_code == 0 and "reusing" not in other.output


@pytest.mark.parametrize("args,needle", [
    (["--option", "strides=3"], "option 'strides' (--option or the config's eval.options table): unknown"),
    (["--option", "stride"], "is not KEY=VALUE"),
    (["--limit", "0"], "--limit"),
])
def test_bad_options_are_named(files, args, needle):
    r = invoke("eval", "loss", "-c", files["a"], "--data", files["text"], *args)
    assert r.exit_code == 2 and needle in r.output


def test_bad_input_gives_one_clear_message(files, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ITEM) + "\n" + json.dumps({**ITEM, "label": 7}) + "\n")
    r = invoke("eval", "hellaswag", "-c", files["a"], "--data", bad)
    assert r.exit_code == 2 and f"{bad}, line 2" in r.output and "Traceback" not in r.output
    r = invoke("eval", "nope", "-c", files["a"])
    assert r.exit_code == 2 and "No eval plugin named 'nope'" in r.output
    r = invoke("eval", "loss", files["a"], "--data", files["text"])
    assert r.exit_code == 2 and "--compare" in r.output
    r = invoke("eval", "loss", "-c", tmp_path / "missing", "--data", files["text"])
    assert r.exit_code == 2 and "cannot be read" in r.output


def test_the_built_in_model_needs_no_checkpoint_and_writes_only_output(tmp_path):
    from minigpt_cli.loading import load_model

    _, tok, _ = load_model()
    text = "".join(c for c in TEXT if c in tok.chars)
    (tmp_path / "t.txt").write_text(text)
    r = invoke("eval", "loss", "--data", tmp_path / "t.txt", "--output", tmp_path / "o.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o.json").read_text())["model"]["source"] == "builtin"


def test_eval_tasks_are_listed_as_plugins():
    r = invoke("plugins", "eval")
    assert r.exit_code == 0
    for name in ("loss", "hellaswag", "math", "stride", "unknown_chars", "train_limit"):
        assert name in r.output
