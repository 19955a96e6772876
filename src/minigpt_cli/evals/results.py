"""Result documents: what was scored, with which model, on which data, and the metrics.

A result is JSON (``format: minigpt-eval``): ``task``, ``metrics`` (name -> number), ``items``,
``model`` (where it came from, step, parameters, config, tokenizer identity, weights file size
and mtime), ``data`` (path and sha256), ``options``, ``runtime`` and the task's ``details``.
It is written atomically beside the checkpoint as ``eval_<task>.json`` (and to ``--output``);
``--compare`` reuses such a file when model, data and options are unchanged.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minigpt_cli import __version__, atomic
from minigpt_cli.errors import MinigptError

FORMAT = "minigpt-eval"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def beside_name(task: str) -> str:
    return f"eval_{task}.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def data_identity(data: Path | None) -> dict[str, Any]:
    """Path and checksum: a file's sha256, a shard folder's manifest.json sha256."""
    if data is None:
        return {"path": None, "sha256": None}
    data = Path(data)
    if data.is_file():
        return {"path": str(data), "sha256": _sha256(data)}
    if data.is_dir():
        for name in (MANIFEST, "meta.json", "test.jsonl"):
            if (data / name).is_file():
                return {"path": str(data), "sha256": _sha256(data / name), "of": name}
    return {"path": str(data), "sha256": None}


def weights_stamp(path: Path | None) -> dict[str, int] | None:
    if path is None or not path.is_file():
        return None
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def model_identity(model, tokenizer, source: str, path: Path | None,
                   weights: Path | None, step: int | None) -> dict[str, Any]:
    # lazy: torch; the eval plugins import this module for `minigpt plugins`
    from minigpt_cli.model_file import unwrap

    gpt = unwrap(model)
    return {
        "source": source,  # checkpoint | hf | builtin
        "path": str(path) if path is not None else None,
        "step": step,
        "params": gpt.num_params(),
        "config": gpt.config.to_dict(),
        "tokenizer": tokenizer.identity().to_dict(),
        "weights": weights_stamp(weights),
    }


def document(task: str, raw: dict[str, Any], model: dict, data: dict, options: dict,
             runtime: dict) -> dict[str, Any]:
    details = {k: v for k, v in raw.items() if k not in ("metrics", "items")}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task,
        "metrics": raw["metrics"],
        "items": raw.get("items"),
        "model": model,
        "data": data,
        "options": options,
        "runtime": {**runtime, "minigpt_version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "details": details,
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    atomic.write_json(path, doc)
    return path


def read(path: Path, task: str | None = None) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MinigptError(f"Result file {path} cannot be read as JSON ({e}).") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise MinigptError(f"{path} is not a `minigpt eval` result file (no '{FORMAT}' format).")
    if task is not None and doc.get("task") != task:
        raise MinigptError(f"{path} holds results of task {doc.get('task')!r}, not {task!r}; "
                           "compare results of one task at a time.")
    return doc


def still_valid(doc: dict, model_weights: Path | None, data: dict, options: dict) -> bool:
    """A saved result answers the same question: same weights file, data and options."""
    return (doc.get("model", {}).get("weights") == weights_stamp(model_weights)
            and doc.get("data") == data and doc.get("options") == options)
