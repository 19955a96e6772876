"""Reading a run folder written by the trainer, into one ``Run`` with everything a report needs.

A run folder holds ``settings.json`` (the resolved settings), ``metrics.jsonl`` (step lines with
loss, lr, grad_norm, tokens_seen, tok_per_s, mfu, elapsed; eval lines with val_loss; guard lines
with event and message), ``step_XXXXXX/`` checkpoints (model.safetensors, trainer_state.json,
and any ``eval_<task>.json`` written by `minigpt eval`) and optionally ``run.json`` (hardware).
The data's ``manifest.json`` is found through the ``data`` setting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minigpt_cli.errors import MinigptError

METRICS = "metrics.jsonl"
SETTINGS = "settings.json"
STATE = "trainer_state.json"
STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class Checkpoint:
    step: int
    path: Path
    state: dict[str, Any] = field(default_factory=dict)  # trainer_state.json
    evals: dict[str, dict] = field(default_factory=dict)  # task -> eval result document
    model: dict[str, Any] = field(default_factory=dict)  # config, params, tokenizer


@dataclass
class Run:
    folder: Path
    settings: dict[str, Any]
    steps: list[dict]  # metrics lines with "loss"
    evals: list[dict]  # metrics lines with "val_loss"
    guard: list[dict]  # metrics lines with "event"
    checkpoints: list[Checkpoint]
    manifest: dict[str, Any] | None
    manifest_path: Path | None
    hardware: dict[str, Any] | None
    damaged_lines: int = 0


def _json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def read_metrics(path: Path) -> tuple[list[dict], list[dict], list[dict], int]:
    steps, evals, guard, damaged = [], [], [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            damaged += 1  # a line cut short by kill -9
            continue
        if not isinstance(rec, dict) or "step" not in rec:
            damaged += 1
        elif "event" in rec:
            guard.append(rec)
        elif "val_loss" in rec:
            evals.append(rec)
        elif "loss" in rec:
            steps.append(rec)
    return steps, evals, guard, damaged


def _model_summary(weights: Path) -> dict[str, Any]:
    try:
        from minigpt_cli.model_file import read_checkpoint

        ck = read_checkpoint(weights, load_tensors=False)
    except MinigptError:
        return {}
    import torch

    from minigpt_cli.model import GPT

    with torch.device("meta"):
        params = GPT(ck.config).num_params()
    return {"config": ck.config.to_dict(), "params": params, "tokenizer": ck.identity.name,
            "extra": ck.extra}


def read_checkpoints(folder: Path) -> list[Checkpoint]:
    out = []
    for p in sorted(folder.iterdir()):
        m = STEP_DIR.match(p.name)
        if not (m and p.is_dir()):
            continue
        ck = Checkpoint(int(m.group(1)), p, _json(p / STATE) or {})
        for f in sorted(p.glob("eval_*.json")):
            doc = _json(f)
            if doc and doc.get("format") == "minigpt-eval":
                ck.evals[str(doc.get("task"))] = doc
        out.append(ck)
    out.sort(key=lambda c: c.step)
    if out and (out[-1].path / "model.safetensors").exists():
        out[-1].model = _model_summary(out[-1].path / "model.safetensors")
    return out


def _manifest(settings: dict, folder: Path) -> tuple[dict | None, Path | None]:
    data = settings.get("data")
    if not data:
        return None, None
    for base in (Path(data), folder / data):
        path = base / "manifest.json"
        if path.is_file():
            return _json(path), path
    return None, None


def read_run(folder: Path | str) -> Run:
    folder = Path(folder)
    if not folder.is_dir():
        raise MinigptError(f"Run folder {folder} does not exist. Pass the --out folder of a "
                           "`minigpt pretrain` run.")
    metrics = folder / METRICS
    if not metrics.is_file():
        raise MinigptError(f"{folder} has no {METRICS}: it is not a run folder written by "
                           "`minigpt pretrain` (or the run has not logged a step yet).")
    steps, evals, guard, damaged = read_metrics(metrics)
    if not steps and not evals:
        raise MinigptError(f"{metrics} holds no step or eval lines yet: nothing to report. "
                           "Run again once the run has logged a step.")
    settings = _json(folder / SETTINGS) or {}
    manifest, manifest_path = _manifest(settings, folder)
    run_json = _json(folder / "run.json") or {}
    return Run(folder, settings, steps, evals, guard, read_checkpoints(folder), manifest,
               manifest_path, run_json.get("hardware"), damaged)
