"""HellaSwag (Zellers et al. 2019), scored completion style as in the GPT-2/GPT-3 evaluations.

Context and ending are tokenized separately, the ending with a leading space; an ending's loss
is summed over its own tokens only, given the context. ``acc`` picks the ending with the lowest
summed loss; ``acc_norm`` the lowest mean loss per token (per-token normalisation, as llm.c's
and build-nanogpt's HellaSwag scripts do; lm-evaluation-harness normalises by bytes instead).

Data: ``--data FILE`` in the official JSONL format (``ctx``, ``endings``, ``label``; ``ctx_a``
and ``ctx_b`` are used when ``ctx`` is absent); without it the official validation set
(10,042 items) is downloaded once to the cache, checked against its pinned sha256.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from minigpt_cli.download import cache_root, download
from minigpt_cli.errors import MinigptError
from minigpt_cli.evals.completion import Item, fit_to_context, score_batched
from minigpt_cli.evals.task import EvalOptions, Progress, ProgressFn

# rowanz/hellaswag at master; the checksum is the one pinned for this URL's file (12,246,618
# bytes) in huggingface/datasets' datasets/hellaswag/dataset_infos.json ("download_checksums").
VAL_URL = "https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
VAL_SHA256 = "0aa3b88843990f3f10a97b9575c94d7b71fb2205240ba04ae4884d9e9c992588"


@dataclass
class Example:
    line: int  # 1-based line in the file
    context: str
    endings: list[str]
    label: int
    ind: Any = None


class HellaSwagOptions(EvalOptions):
    url: str = Field(VAL_URL, description="Where to download the validation set from when "
                     "--data is not given.")
    sha256: str | None = Field(None, description="Expected sha256 of the downloaded file "
                               "(default: the pinned checksum of the official file).")
    cache_dir: Path | None = Field(None, description="Download cache (default: "
                                   "~/.cache/minigpt or $MINIGPT_CACHE_DIR).")
    unknown_chars: Literal["error", "skip"] = Field(
        "error", description="Char models: an item with characters outside the vocabulary "
        "is an error, or is skipped (and counted).")


def read_examples(path: Path, limit: int | None = None) -> list[Example]:
    """Parse and check a HellaSwag JSONL file; a problem names the file and the line."""
    out: list[Example] = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                if limit is not None and len(out) >= limit:
                    break
                if raw.strip():
                    out.append(_example(path, n, raw))
    except (OSError, UnicodeDecodeError) as e:
        raise MinigptError(f"HellaSwag file {path} cannot be read: {e}.") from None
    if not out:
        raise MinigptError(f"HellaSwag file {path} holds no items: it is empty. Pass the "
                           "official hellaswag_val.jsonl, or leave --data out to download it.")
    return out


def _bad(path: Path, n: int, what: str) -> MinigptError:
    return MinigptError(f"HellaSwag file {path}, line {n}: {what}. Each line must be a JSON "
                        "object with 'ctx' (text), 'endings' (a list of texts) and 'label' "
                        "(the index of the right ending), as in the official hellaswag_val.jsonl.")


def _example(path: Path, n: int, raw: str) -> Example:
    try:
        d = json.loads(raw)
    except ValueError as e:
        raise _bad(path, n, f"not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise _bad(path, n, "not a JSON object")
    ctx = d.get("ctx")
    if ctx is None and isinstance(d.get("ctx_a"), str):
        ctx = (d["ctx_a"] + " " + str(d.get("ctx_b") or "")).strip()
    missing = [k for k, v in (("ctx", ctx), ("endings", d.get("endings")),
                              ("label", d.get("label"))) if v is None]
    if missing:
        raise _bad(path, n, f"missing field{'s' if len(missing) > 1 else ''} "
                   + ", ".join(repr(m) for m in missing))
    endings = d["endings"]
    if not isinstance(ctx, str):
        raise _bad(path, n, "'ctx' is not a text")
    if not isinstance(endings, list) or len(endings) < 2 or \
            not all(isinstance(e, str) and e.strip() for e in endings):
        raise _bad(path, n, "'endings' must be a list of at least two non-empty texts")
    label = d["label"]
    if isinstance(label, str) and label.strip().isdigit():
        label = int(label)  # the Hugging Face copy stores labels as strings
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(endings):
        raise _bad(path, n, f"label {d['label']!r} is not an index of the {len(endings)} "
                   f"endings (0 to {len(endings) - 1})")
    return Example(n, ctx, endings, label, d.get("ind"))


def fetch_official(options: HellaSwagOptions, on_progress: ProgressFn) -> Path:
    """The official validation file, downloaded once and verified (its sha256 pinned)."""

    sha = options.sha256
    if sha is None:
        if options.url != VAL_URL:
            raise MinigptError("--option url=... points at another file: give its checksum "
                               "too (--option sha256=...), so what is scored is pinned.")
        sha = VAL_SHA256
    cache = options.cache_dir.expanduser() if options.cache_dir else cache_root()
    dest = cache / "hellaswag" / Path(options.url.split("?")[0]).name

    def progress(p) -> None:
        on_progress(Progress("hellaswag", p.done, p.total, "bytes", "download"))

    return download(options.url, dest, sha256=sha, on_progress=progress)


def encode(examples: list[Example], tokenizer, block_size: int, skip_unknown: bool,
           path: Path) -> tuple[list[Item], list[Example], int, int]:
    """Token items for the model (ending with a leading space); (items, kept, cropped, skipped)."""
    items, kept, cropped, skipped = [], [], 0, 0
    for ex in examples:
        try:
            ctx = tokenizer.encode(ex.context)
            ends = [tokenizer.encode(" " + e) for e in ex.endings]
        except MinigptError as e:
            if skip_unknown:
                skipped += 1
                continue
            raise MinigptError(f"HellaSwag file {path}, line {ex.line}: {e} (or pass --option "
                               "unknown_chars=skip to leave such items out)") from None
        item, cut = fit_to_context(Item(ctx or [tokenizer.eot_id], ends), block_size)
        items.append(item)
        kept.append(ex)
        cropped += cut
    return items, kept, cropped, skipped


class HellaSwagTask:
    name = "hellaswag"
    Options = HellaSwagOptions
    headline = ("acc", "acc_norm")
    # llm.c dev/data/hellaswag.py (and build-nanogpt hellaswag.py), OpenAI GPT-2 124M weights,
    # completion style, the 10,042 validation items.
    references: ClassVar[dict[str, dict[str, float]]] = {
        "OpenAI GPT-2 124M (llm.c, full val)": {"acc": 0.2859, "acc_norm": 0.2955}}

    def run(self, model, tokenizer, data: Path | None, options: HellaSwagOptions,
            on_progress: ProgressFn) -> dict[str, Any]:
        # lazy: torch; `minigpt plugins` lists this eval without importing it
        from minigpt_cli.model_file import unwrap

        path = Path(data) if data is not None else fetch_official(options, on_progress)
        examples = read_examples(path, options.limit)
        block = unwrap(model).config.block_size
        items, kept, cropped, skipped = encode(examples, tokenizer, block,
                                               options.unknown_chars == "skip", path)
        if not items:
            raise MinigptError(f"HellaSwag file {path}: every item was skipped (characters "
                               "outside the model's vocabulary); nothing to score.")
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            on_progress(Progress(self.name, done, len(items), "items", "scoring"))

        on_progress(Progress(self.name, 0, len(items), "items", "scoring"))
        scores = score_batched(model, items, options.batch_size, step)
        preds, preds_norm = [], []
        for s in scores:
            preds.append(min(range(len(s.sums)), key=s.sums.__getitem__))
            means = s.means
            preds_norm.append(min(range(len(means)), key=means.__getitem__))
        labels = [ex.label for ex in kept]
        n = len(labels)
        acc = sum(p == y for p, y in zip(preds, labels)) / n
        acc_norm = sum(p == y for p, y in zip(preds_norm, labels)) / n
        return {
            "metrics": {"acc": acc, "acc_norm": acc_norm,
                        "acc_stderr": math.sqrt(acc * (1 - acc) / n),
                        "acc_norm_stderr": math.sqrt(acc_norm * (1 - acc_norm) / n)},
            "items": n,
            "unit": "items",
            "cropped": cropped,
            "skipped": skipped,
            "data_file": str(path),
            "predictions": [{"line": ex.line, "ind": ex.ind, "label": ex.label, "pred": p,
                             "pred_norm": q} for ex, p, q in zip(kept, preds, preds_norm)],
        }
