"""`minigpt report`: the run card, plots and self-contained HTML from a run folder (a
fabricated one with a realistic metrics.jsonl, and a real tiny run of `minigpt pretrain`)."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.model import GPT, preset_config
from minigpt_cli.model_file import save_checkpoint
from minigpt_cli.report import build_report
from minigpt_cli.report.card import summarize
from minigpt_cli.report.run import read_run
from minigpt_cli.tokenizer import CharTokenizer

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
STEPS, TOKENS_PER_STEP = 60, 1024


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def lr_at(step: int) -> float:
    if step <= 6:
        return 3e-3 * step / 6
    return 3e-4 + 0.5 * (3e-3 - 3e-4) * (1 + math.cos(math.pi * (step - 6) / (STEPS - 6)))


def fabricate(folder, tok):
    """A run folder as `minigpt pretrain` writes it, with a guard skip and a cut last line."""
    data = folder / "shards"
    data.mkdir(parents=True)
    (data / "manifest.json").write_text(json.dumps({
        "format": "minigpt-shards", "format_version": 1,
        "tokenizer": {**tok.identity().to_dict(), **tok.to_dict()},
        "totals": {"shards": 3, "tokens": 90_000, "val_tokens": 10_000, "train_tokens": 80_000,
                   "documents_read": 120, "documents_kept": 100},
        "sources": [{"name": "text"}], "stages": [{"name": "language"}, {"name": "head"}]}))
    run = folder / "run"
    run.mkdir()
    settings = {"data": str(data), "model": "nano", "tokens_per_step": TOKENS_PER_STEP,
                "micro_batch": 8, "seq_len": 32, "max_steps": STEPS, "lr": 3e-3,
                "schedule": "cosine", "device": "cpu", "dtype": "float32", "seed": 1337,
                "out": str(run)}
    (run / "settings.json").write_text(json.dumps(settings))
    lines = []
    for step in range(1, STEPS + 1):
        rec = {"step": step, "loss": 4.0 * math.exp(-step / 30) + 1.5, "lr": lr_at(step),
               "grad_norm": 0.8, "tokens_seen": step * TOKENS_PER_STEP,
               "tok_per_s": 900.0 + step, "mfu": 0.3, "elapsed": 0.5 * step}
        if step == 23:
            rec["skipped"] = True
            lines.append({"step": 23, "event": "skip", "message": "non-finite loss (nan)"})
        lines.append(rec)
        if step % 20 == 0:
            lines.append({"step": step, "val_loss": 4.0 * math.exp(-step / 30) + 1.6})
    text = "".join(json.dumps(x) + "\n" for x in lines) + '{"step": 61, "loss": 1.'
    (run / "metrics.jsonl").write_text(text)
    torch.manual_seed(0)
    model = GPT(preset_config("nano", vocab_size=tok.vocab_size))
    for step in (40, 60):
        ck = run / f"step_{step:06d}"
        save_checkpoint(ck, model, tok, step=step)
        (ck / "trainer_state.json").write_text(json.dumps({
            "step": step, "tokens_seen": step * TOKENS_PER_STEP, "reason": "periodic"
            if step == 40 else "final", "val_loss": 4.0 * math.exp(-step / 30) + 1.6}))
    (run / "step_000060" / "eval_hellaswag.json").write_text(json.dumps({
        "format": "minigpt-eval", "task": "hellaswag", "metrics": {"acc": 0.26, "acc_norm": 0.27},
        "items": 500}))
    return run


@pytest.fixture
def run_dir(tmp_path):
    return fabricate(tmp_path, CharTokenizer.from_text("abcdefgh ."))


def test_the_run_is_read_and_summarized(run_dir):
    run = read_run(run_dir)
    assert len(run.steps) == STEPS and len(run.evals) == 3 and len(run.guard) == 1
    assert run.damaged_lines == 1  # the line cut by kill -9
    s = summarize(run)
    assert s.last_step == STEPS and s.tokens_seen == STEPS * TOKENS_PER_STEP
    assert s.final_val == pytest.approx(4.0 * math.exp(-2) + 1.6) and s.final_val_step == 60
    assert s.best_step == 60 and s.skipped == 1 and s.elapsed == 30.0
    tail = [4.0 * math.exp(-k / 30) + 1.5 for k in range(51, 61)]
    assert s.final_loss == pytest.approx(sum(tail) / 10)
    assert run.checkpoints[-1].model["params"] > 0


def test_report_writes_card_plots_and_a_self_contained_page(run_dir):
    files = build_report(run_dir)
    assert files.folder == run_dir / "report" and files.plots_missing is None
    assert sorted(p.name for p in files.plots) == ["loss.png", "lr.png", "throughput.png"]
    for p in files.plots:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
    md = files.markdown.read_text()
    for needle in ("# Run report: run", "| steps | 60 of 60 |", "| tokens seen | 61,440 |",
                   "| wall-clock (training) | 0:00:30 |", "non-finite loss (nan)",
                   "| train tokens | 80,000 |", "| stages | language -> head |",
                   "| schedule | cosine |", "acc 0.2600, acc_norm 0.2700", "step_000040",
                   "![loss.png](loss.png)", "| updates skipped by the guard | 1 |"):
        assert needle in md, needle
    page = files.html.read_text()
    assert page.count("src='data:image/png;base64,") == 3
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "61,440" in page and "non-finite loss (nan)" in page


def test_report_command_and_a_chosen_output_folder(run_dir, tmp_path):
    r = invoke("report", run_dir, "--out", tmp_path / "card")
    assert r.exit_code == 0, r.output
    assert "step 60, 61,440 tokens" in r.output and "report.html" in r.output
    assert (tmp_path / "card" / "report.md").exists() and not (run_dir / "report").exists()


def test_without_matplotlib_the_card_is_written_and_the_install_command_shown(run_dir,
                                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = invoke("report", run_dir)
    assert r.exit_code == 0, r.output
    assert "pip install 'minigpt[report]'" in r.output
    assert (run_dir / "report" / "report.md").exists() and not list(run_dir.rglob("*.png"))
    assert "matplotlib" in (run_dir / "report" / "report.html").read_text()


def test_not_a_run_folder(tmp_path):
    r = invoke("report", tmp_path / "nope")
    assert r.exit_code == 2 and "does not exist" in r.output
    r = invoke("report", tmp_path)
    assert r.exit_code == 2 and "no metrics.jsonl" in r.output
    (tmp_path / "metrics.jsonl").write_text("")
    r = invoke("report", tmp_path)
    assert r.exit_code == 2 and "nothing to report" in r.output


def test_a_real_tiny_pretrain_run(tmp_path):
    from test_train_support import TINY, char_shards

    torch.set_num_threads(1)
    shards = char_shards(tmp_path / "shards")
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", shards, "--out", run, *TINY, "--max-steps", "4",
               "--eval-every", "2", "--sample-every", "0", "--checkpoint-every", "2")
    assert r.exit_code == 0, r.output
    r = invoke("eval", "loss", "-c", run / "step_000004", "--data", shards, "--limit", "200")
    assert r.exit_code == 0, r.output
    r = invoke("report", run)
    assert r.exit_code == 0, r.output
    md = (run / "report" / "report.md").read_text()
    assert "| steps | 4 of 4 |" in md and "step_000004" in md and "eval loss" in md
    assert f"| manifest | {shards / 'manifest.json'} |" in md
    assert (run / "report" / "loss.png").read_bytes().startswith(PNG)
    # the trainer recorded the machine: the card's Hardware table comes from run.json
    hw = json.loads((run / "run.json").read_text())["hardware"]
    assert hw["device"] == "cpu" and hw["torch_threads"] == 1 and hw["peak_flops_per_process"]
    assert f"| cpu | {hw['cpu']} |" in md and "no run.json" not in md
