"""The `math` source: the training problems of a `minigpt make-math` folder, as documents whose
loss mask covers only the solution, packed so that no example is cut at a block boundary.

    minigpt shard math data/math --tokenizer char --shard-size 131072 --out data/math-shards

Each line of ``train.jsonl`` becomes one document, ``prompt + solution`` (``352+469=`` +
``2+9+0=11,...#821``), with ``meta["loss_from"] = len(prompt)``: the shard writer then stores a
loss mask beside every shard (``train_000001.mask.bin``, the same llm.c format, one 0/1 per
token) that is 1 on the solution's tokens and on the end-of-text after them (the model learns
to stop), 0 on the end-of-text that opens the document, the prompt and any padding. The test
problems (``test.jsonl``) are never read: they are for `minigpt eval math`.

``packing()`` tells the writer the block size: a document that would run over a multiple of it
starts at the next multiple instead (the gap is filled with end-of-text tokens, masked out), so
every training window of that many tokens (or a multiple) holds whole examples, and every
example starts at a window's first position just as `minigpt eval math` presents a prompt
(``<|endoftext|>352+469=``). The first ``val`` problems (default 1,000) are marked as validation
documents: they alone fill ``val_000000.bin`` and are never trained on. The default is the smallest power of two that holds the longest
example plus its end-of-text (meta.json ``block_size_needed``; 64 for the goal tasks).

``char_vocab()`` gives ``--tokenizer char`` the vocabulary meta.json lists (every character of
train and test), so no vocabulary pass is needed and the test prompts always encode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from minigpt_cli.documents import Document, PluginOptions
from minigpt_cli.errors import MinigptError

OPS = ("+", "-", "*", "/")


class MathOptions(PluginOptions):
    inputs: list[str] = Field(default_factory=list, description="The `minigpt make-math --out` "
                              "folder (one).")
    block_size: int | None = Field(None, ge=2, description="Examples never cross a multiple "
                                   "of this many tokens; train with --seq-len equal to it (or "
                                   "a multiple). Default: the smallest power of two holding "
                                   "the longest example + end-of-text.")
    ops: str | None = Field(None, description="Only these operations, e.g. '+,-' (default: "
                            "all in the folder).")
    val: int = Field(1000, ge=0, description="Problems (the first of train.jsonl) that fill "
                     "the validation shard val_000000.bin alone, never trained on (0: shard 0 "
                     "is the first --shard-size tokens, as for other sources).")
    repeat: dict[str, int] = Field(default_factory=dict, description="Extra passes per "
                                   "operation, e.g. {\"*\": 8} writes the problems of * eight "
                                   "times (2x2 multiplication has few distinct problems).")

    @field_validator("ops")
    @classmethod
    def _ops(cls, v: str | None) -> str | None:
        if v is not None:
            bad = [o for o in v.replace(" ", "").split(",") if o not in OPS]
            if bad or not v.strip():
                raise ValueError(f"operations are a comma list of {', '.join(OPS)}")
        return v

    @field_validator("repeat")
    @classmethod
    def _repeat(cls, v: dict[str, int]) -> dict[str, int]:
        for op, n in v.items():
            if op not in OPS or int(n) < 1:
                raise ValueError("keys are operations (+ - * /), values at least 1")
        return {op: int(n) for op, n in v.items()}


class MathSource:
    name: ClassVar[str] = "math"
    Options: ClassVar[type[PluginOptions]] = MathOptions

    def __init__(self, options: MathOptions) -> None:
        self.options = options
        if len(options.inputs) != 1:
            raise MinigptError("The math source reads one `minigpt make-math` folder: "
                               "`minigpt shard math data/math --tokenizer char --out ...` "
                               f"(got {len(options.inputs)} inputs).")
        self.folder = Path(options.inputs[0])
        self.meta = _read_meta(self.folder)
        self.train = self.folder / "train.jsonl"
        if not self.train.is_file():
            raise MinigptError(f"{self.folder} has no train.jsonl: point the math source at a "
                               "folder written by `minigpt make-math`.")
        self.ops = set(options.ops.replace(" ", "").split(",")) if options.ops else set(OPS)
        needed = int(self.meta.get("block_size_needed") or 0)
        self.block = options.block_size or _power_of_two(max(needed, 2))
        if needed > self.block:
            raise MinigptError(f"The math source's block_size {self.block} is shorter than the "
                               f"longest example in {self.folder} ({needed} tokens with "
                               "end-of-text, meta.json block_size_needed); examples are never "
                               f"cut. Use block_size={_power_of_two(needed)} or more.")
        self._prov: dict[str, Any] = {"input": str(self.folder), "records": 0, "passes": 1}

    # -- what the shard pipeline asks -----------------------------------------------------
    def packing(self) -> int:
        """Documents never cross a multiple of this many tokens (see the module docstring)."""
        return self.block

    def char_vocab(self) -> list[str]:
        return list(self.meta["vocab"])

    def documents(self) -> Iterator[Document]:
        passes = max([1, *(n for op, n in self.options.repeat.items() if op in self.ops)])
        self._prov["passes"] = passes
        for k in range(passes):  # pass k: the operations repeated more than k times
            ops = {op for op in self.ops if self.options.repeat.get(op, 1) > k}
            held = 0  # validation problems so far: the first ``val`` of the chosen operations
            for line, rec in _records(self.train):
                if rec["op"] not in self.ops:
                    continue
                val = held < self.options.val
                held += val
                if rec["op"] not in ops or (val and k > 0):
                    continue
                prompt, solution = rec["prompt"], rec["solution"]
                self._prov["records"] += 1
                meta = {"loss_from": len(prompt), "op": rec["op"], "pass": k}
                if val:
                    meta["split"] = "val"
                yield Document(prompt + solution, f"train.jsonl:{line}", self.name, meta)

    def provenance(self) -> list[dict[str, Any]]:
        return [dict(self._prov, sha256=self.meta.get("files", {}).get("train.jsonl", {})
                     .get("sha256"), format=self.meta.get("format"))]


def _power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _read_meta(folder: Path) -> dict:
    path = folder / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise MinigptError(f"{folder} has no meta.json: point the math source at a folder "
                           "written by `minigpt make-math --out`.") from None
    except (OSError, ValueError) as e:
        raise MinigptError(f"{path} cannot be read ({e}); re-create the folder with "
                           "`minigpt make-math`.") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("vocab"), str) or not meta["vocab"]:
        raise MinigptError(f"{path} has no character vocabulary ('vocab'); re-create the "
                           "folder with `minigpt make-math`.")
    return meta


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                ok = isinstance(rec.get("prompt"), str) and isinstance(rec.get("solution"), str)
            except (ValueError, AttributeError):
                ok = False
            if not ok:
                raise MinigptError(f"{path}, line {n}: not a make-math record (needs prompt "
                                   "and solution). Re-create the folder with `minigpt "
                                   "make-math`.")
            yield n, rec
