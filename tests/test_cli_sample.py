import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from minigpt_cli import __version__
from minigpt_cli.cli import app
from minigpt_cli.model import GPT, preset_config
from minigpt_cli.model_file import save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer

runner = CliRunner()


@pytest.fixture(scope="module")
def gpt2_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = GPT(preset_config("nano", vocab_size=50257, block_size=32))
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "step_000001", model, GPT2Tokenizer())


@pytest.fixture(scope="module")
def char_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    tok = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz .,\n")
    model = GPT(preset_config("nano", vocab_size=tok.vocab_size))
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "c.safetensors", model, tok)


def test_version_and_help_do_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from minigpt_cli.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'sample' in r.output; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.stdout


def test_sample_is_deterministic_per_seed(gpt2_ckpt):
    args = ["sample", "-c", str(gpt2_ckpt), "-p", "Hello", "-n", "12", "--device", "cpu"]
    a = runner.invoke(app, args + ["--seed", "1"])
    b = runner.invoke(app, args + ["--seed", "1"])
    c = runner.invoke(app, args + ["--seed", "2"])
    assert a.exit_code == 0, a.output
    assert a.stdout.startswith("Hello") and a.stdout == b.stdout and a.stdout != c.stdout
    assert "sampling from checkpoint" in a.stderr


def test_greedy_and_top_k_one_agree(gpt2_ckpt):
    base = ["sample", "-c", str(gpt2_ckpt), "-p", "The", "-n", "10"]
    greedy = runner.invoke(app, base + ["-t", "0"])
    top1 = runner.invoke(app, base + ["--top-k", "1", "--seed", "5"])
    assert greedy.exit_code == 0 and greedy.stdout == top1.stdout


def test_num_samples_and_prompt_file(char_ckpt, tmp_path):
    pf = tmp_path / "p.txt"
    pf.write_text("abc")
    r = runner.invoke(app, ["sample", "-c", str(char_ckpt), "--prompt-file", str(pf), "-n", "5",
                            "--num-samples", "3", "--top-p", "0.9"])
    assert r.exit_code == 0, r.output
    samples = r.stdout.split("\n---------------\n")
    assert len(samples) == 3 and all(s.startswith("abc") for s in samples)
    r = runner.invoke(app, ["sample", "-c", str(char_ckpt), "--prompt-file", "-", "-n", "3"],
                      input="xyz")
    assert r.exit_code == 0 and r.stdout.startswith("xyz")


def test_long_prompt_is_cropped_with_a_warning(char_ckpt):
    r = runner.invoke(app, ["sample", "-c", str(char_ckpt), "-p", "ab" * 100, "-n", "3"])
    assert r.exit_code == 0, r.output
    assert "context of 64 tokens" in r.stderr and "137 tokens were dropped" in r.stderr


def test_piped_stdin_is_the_prompt(char_ckpt):
    out = subprocess.run([sys.executable, "-m", "minigpt_cli", "sample", "-c", str(char_ckpt),
                          "-n", "4"], input="hello", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("hello")


def test_bad_input_is_one_paragraph_and_nonzero(char_ckpt, tmp_path):
    r = runner.invoke(app, ["sample", "-c", str(tmp_path / "nope"), "-n", "2"])
    assert r.exit_code == 2 and "cannot be read" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["sample", "-c", str(char_ckpt), "--top-k", "0", "-t", "-1"])
    assert r.exit_code == 2
    assert "--top-k" in r.stderr and "--temperature" in r.stderr
    r = runner.invoke(app, ["sample", "-c", str(char_ckpt), "-p", "ÅÆ", "-n", "2"])
    assert r.exit_code == 2 and "outside this char vocabulary" in r.stderr
    r = runner.invoke(app, ["sample", "-c", str(char_ckpt), "--device", "cuda"])
    if not torch.cuda.is_available():
        assert r.exit_code == 2 and "no CUDA GPU" in r.stderr


def test_config_file_drives_sample(char_ckpt, tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[sample]\ncheckpoint = "{char_ckpt}"\nmax_new_tokens = 7\ntemperature = 0\n'
                   'prompt = "ab"\n')
    r = runner.invoke(app, ["sample", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.rstrip("\n")) == 2 + 7


def test_error_text_with_brackets_is_printed_verbatim(tmp_path):
    missing = tmp_path / "cfg[sample].toml"
    r = runner.invoke(app, ["sample", "--config", str(missing)])
    assert r.exit_code == 2 and "cfg[sample].toml" in r.stderr
