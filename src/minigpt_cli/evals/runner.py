"""What `minigpt eval` calls: find the task, load the model, run, write the results.

``evaluate`` scores one model; ``compare`` scores several (or reads their saved results) for
one table. Progress and what was written go out as events; nothing prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from minigpt_cli.errors import MinigptError
from minigpt_cli.evals import results as R
from minigpt_cli.evals.settings import EvalSettings
from minigpt_cli.evals.task import EvalOptions, Progress


@dataclass(frozen=True)
class ModelRef:
    source: str  # checkpoint | hf | builtin | results
    path: Path | None
    name: str | None = None  # the built-in model's name (source "builtin")

    @property
    def label(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"built-in model {self.name}" if self.name else "built-in model"


@dataclass(frozen=True)
class Started:
    task: str
    what: str  # the model, in words
    index: int = 0
    count: int = 1


@dataclass(frozen=True)
class Written:
    path: Path


@dataclass(frozen=True)
class Reused:
    path: Path
    what: str
    checked: bool = True  # False: a result file given as is, not matched against anything


Event = Started | Progress | Written | Reused
Listener = Callable[[Event], None]


@dataclass
class Comparison:
    task: str
    headline: tuple[str, ...]
    rows: list[tuple[str, dict[str, Any], int | None]] = field(default_factory=list)
    references: dict[str, dict[str, float]] = field(default_factory=dict)


def load_task(name: str):
    from minigpt_cli import plugins

    return plugins.load("eval", name)()


def build_options(task, s: EvalSettings) -> EvalOptions:
    given = dict(s.options)
    if s.limit is not None:
        given["limit"] = s.limit
    if s.batch_size is not None:
        given["batch_size"] = s.batch_size
    try:
        return task.Options(**given)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            flag = f"--{key.replace('_', '-')}" if key in ("limit", "batch_size") else \
                f"option {key!r} (--option or the config's eval.options table)"
            msg = "unknown option for this task" if err["type"] == "extra_forbidden" \
                else err["msg"]
            lines.append(f"  {flag}: {msg}")
        known = ", ".join(task.Options.model_fields)
        raise MinigptError(f"invalid option(s) for `minigpt eval {task.name}`:\n"
                           + "\n".join(lines) + f"\n  (its options: {known})") from None


def classify(path: Path) -> ModelRef:
    """A result .json, a minigpt checkpoint, or a Hugging Face GPT-2 folder."""
    path = Path(path)
    if path.suffix == ".json" and path.is_file():
        return ModelRef("results", path)
    if path.is_dir() and (path / "config.json").exists():
        from minigpt_cli.model_file import FORMAT, WEIGHTS_NAME

        if not _has_format(path / WEIGHTS_NAME, FORMAT):
            return ModelRef("hf", path)
    return ModelRef("checkpoint", path)


def _has_format(file: Path, fmt: str) -> bool:
    if not file.exists():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            return (f.metadata() or {}).get("format") == fmt
    except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
        return False


def _weights(ref: ModelRef) -> Path | None:
    from minigpt_cli.loading import default_checkpoint
    from minigpt_cli.model_file import weights_path

    if ref.source == "builtin":
        return default_checkpoint(*(ref.name,) if ref.name else ())
    if ref.source == "hf":
        return ref.path / "model.safetensors"
    return weights_path(ref.path)


def beside_path(ref: ModelRef, task: str) -> Path | None:
    if ref.source == "checkpoint":
        return _weights(ref).parent / R.beside_name(task)
    if ref.source == "hf":
        return ref.path / R.beside_name(task)
    return None  # the built-in model lives inside the installed package


def evaluate(task_name: str, ref: ModelRef, s: EvalSettings,
             on_event: Listener = lambda e: None, index: int = 0, count: int = 1) -> dict:
    """Score one model; write the result beside it (unless ``save`` is off) and to ``output``."""
    import torch

    from minigpt_cli.loading import load_model
    from minigpt_cli.runtime import resolve_device, resolve_dtype

    task = load_task(task_name)
    options = build_options(task, s)
    device, dtype = resolve_device(s.device), resolve_dtype(s.dtype)
    model, tok, what = load_model(ref.path if ref.source == "checkpoint" else None,
                                  ref.path if ref.source == "hf" else None, device, dtype,
                                  ref.name)
    if task_name == "math" and s.data is None and ref.source == "builtin":
        s = s.model_copy(update={"data": _calculator_data(ref)})
    step = _step(ref)
    if s.compile:
        model = torch.compile(model, dynamic=True)
    on_event(Started(task_name, what, index, count))
    t0 = time.perf_counter()
    raw = task.run(model, tok, s.data, options, on_event)
    seconds = time.perf_counter() - t0
    doc = R.document(task_name, raw,
                     R.model_identity(model, tok, ref.source, ref.path, _weights(ref), step),
                     R.data_identity(s.data), options.model_dump(mode="json"),
                     {"device": str(device), "dtype": s.dtype, "compiled": s.compile,
                      "seconds": round(seconds, 3),
                      "items_per_s": round((raw.get("items") or 0) / max(seconds, 1e-9), 3)})
    beside = beside_path(ref, task_name) if s.save else None
    for target in (beside, s.output):
        if target is not None:
            try:
                on_event(Written(R.write(target, doc)))
            except OSError as e:
                if target == s.output:
                    raise MinigptError(f"--output {target} cannot be written: {e}.") from None
    return doc


def _step(ref: ModelRef) -> int | None:
    if ref.source != "checkpoint":
        return None
    from minigpt_cli.model_file import read_checkpoint

    return read_checkpoint(ref.path, load_tensors=False).step


def _calculator_data(ref: ModelRef) -> Path:
    """The built-in calculator's own make-math folder, rebuilt from its metadata."""
    from minigpt_cli.download import cache_root
    from minigpt_cli.mathgen.calculator import builtin_data
    from minigpt_cli.model_file import read_checkpoint

    extra = read_checkpoint(_weights(ref), load_tensors=False).extra
    return builtin_data(extra, cache_root())


def model_ref(s: EvalSettings, task: str | None = None) -> ModelRef:
    """The model a command names; with none, the built-in one for the task (the calculator
    for math, else the Nietzsche model)."""
    from minigpt_cli.loading import CALCULATOR, DEFAULT_MODEL_NAME

    if s.from_hf is not None:
        return ModelRef("hf", s.from_hf)
    if s.checkpoint is not None:
        return ModelRef("checkpoint", s.checkpoint)
    if s.model is not None:
        return ModelRef("builtin", None, s.model)
    return ModelRef("builtin", None, CALCULATOR if task == "math" else DEFAULT_MODEL_NAME)


def compare(task_name: str, paths: list[Path], s: EvalSettings,
            on_event: Listener = lambda e: None) -> Comparison:
    """One row per model: saved results are reused when model, data and options match."""
    if not paths:
        raise MinigptError("--compare needs the checkpoints (or result .json files) to compare, "
                           "e.g. `minigpt eval hellaswag --compare runs/a/step_000100 "
                           "runs/b/step_000100`.")
    task = load_task(task_name)
    options = build_options(task, s).model_dump(mode="json")
    data = R.data_identity(s.data)
    table = Comparison(task_name, task.headline, references=dict(task.references))
    for i, path in enumerate(paths):
        ref = classify(path)
        doc = None
        label = ref.label
        if ref.source == "results":
            doc = R.read(ref.path, task_name)
            label = doc.get("model", {}).get("path") or "built-in model"
            on_event(Reused(ref.path, label, checked=False))
        else:
            saved = beside_path(ref, task_name)
            if saved is not None and saved.exists():
                old = R.read(saved, task_name)
                if R.still_valid(old, _weights(ref), data, options):
                    doc = old
                    on_event(Reused(saved, label))
            if doc is None:
                doc = evaluate(task_name, ref, s.model_copy(update={"output": None}),
                               on_event, i, len(paths))
        table.rows.append((label, doc["metrics"], doc.get("items")))
    return table
