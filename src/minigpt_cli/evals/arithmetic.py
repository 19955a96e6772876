"""`minigpt eval math`: make-math problems solved by greedy decoding, scored by the generator's
independent checker (minigpt_cli.mathgen.checker).

Each prompt (``<|endoftext|>`` + ``352+469=``, the way the math shards present a problem) is
continued greedily with the KV cache, batched; the first line of the output is checked: the
final answer after ``#`` must match exactly (malformed output counts as wrong), and every
written step is checked arithmetically (step validity = valid steps / steps). Results are
broken down by operation and by operand lengths, for the held-out test problems and, beside
them, a sample of training problems (a large gap means memorisation). The first few mistakes
are kept for people to read.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from minigpt_cli.errors import MinigptError
from minigpt_cli.evals.greedy import greedy_decode, stop_ids
from minigpt_cli.evals.task import EvalOptions, Progress, ProgressFn
from minigpt_cli.mathgen.checker import check
from minigpt_cli.mathgen.problems import Problem

REQUIRED = ("a", "b", "op", "prompt")


class MathOptions(EvalOptions):
    limit: int | None = Field(None, ge=1, description="Test problems to score (the first N).")
    batch_size: int = Field(256, ge=1, le=65536, description="Prompts decoded together.")
    train_limit: int | None = Field(None, ge=0, description="Training problems scored beside "
                                    "them, a seeded sample (default: as many as test; 0: none).")
    max_new_tokens: int | None = Field(None, ge=1, description="Tokens to generate at most "
                                       "(default: the longest solution in the data + 8).")
    mistakes: int = Field(8, ge=0, description="Wrong answers to keep in the results, with "
                          "the checker's first wrong step: a sample spread over the failing "
                          "(operation, lengths) cells.")
    eot_prefix: bool = Field(True, description="Start each prompt with <|endoftext|>, as "
                             "documents start in the shards.")
    seed: int = Field(0, description="Seed for sampling the training problems.")


def _record(path: Path, n: int, raw: str) -> dict:
    try:
        d = json.loads(raw)
    except ValueError as e:
        raise MinigptError(f"Math file {path}, line {n}: not valid JSON ({e}).") from None
    missing = [k for k in REQUIRED if not isinstance(d, dict) or k not in d]
    if missing:
        raise MinigptError(f"Math file {path}, line {n}: missing field(s) {', '.join(missing)}. "
                           "Pass the train.jsonl / test.jsonl written by `minigpt make-math`.")
    if d["op"] not in ("+", "-", "*", "/"):
        raise MinigptError(f"Math file {path}, line {n}: unknown op {d['op']!r}.")
    d["_line"] = n
    return d


def read_records(path: Path, limit: int | None = None) -> list[dict]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                if limit is not None and len(out) >= limit:
                    break
                if raw.strip():
                    out.append(_record(path, n, raw))
    except OSError as e:
        raise MinigptError(f"Math file {path} cannot be read: {e}.") from None
    return out


def sample_records(path: Path, k: int, seed: int) -> list[dict]:
    """``k`` lines drawn without replacement (seeded), without parsing the whole file."""
    offsets = []
    with open(path, "rb") as f:
        pos = 0
        for raw in f:
            if raw.strip():
                offsets.append(pos)
            pos += len(raw)
        chosen = sorted(random.Random(seed).sample(offsets, min(k, len(offsets))))
        out = []
        for off in chosen:
            f.seek(off)
            raw = f.readline().decode("utf-8")
            out.append(_record(path, -1, raw))
    return out


def load_splits(data: Path | None, options: MathOptions) -> tuple[dict[str, list[dict]], Path]:
    if data is None:
        raise MinigptError("`minigpt eval math` needs --data: the folder `minigpt make-math` "
                           "wrote (test.jsonl, train.jsonl) or one of its .jsonl files.")
    data = Path(data)
    if data.is_dir():
        test_path, train_path = data / "test.jsonl", data / "train.jsonl"
        if not test_path.exists():
            raise MinigptError(f"--data {data}: no test.jsonl. Point it at a `minigpt "
                               "make-math --out` folder.")
        test = read_records(test_path, options.limit)
        k = len(test) if options.train_limit is None else options.train_limit
        train = sample_records(train_path, k, options.seed) if k and train_path.exists() else []
    elif data.is_file():
        rows = read_records(data)
        test = [r for r in rows if r.get("split", "test") != "train"][: options.limit]
        train = [r for r in rows if r.get("split") == "train"]
        k = len(test) if options.train_limit is None else options.train_limit
        train = random.Random(options.seed).sample(train, min(k, len(train)))
    else:
        raise MinigptError(f"--data {data}: no such file or folder.")
    if not test:
        raise MinigptError(f"--data {data}: no test problems to score (the file is empty).")
    return {"test": test, "train": train}, data


def _prompt(rec: dict) -> str:
    """The record's question through the one normaliser (question.py): the canonical prompt,
    spaced again for a spaced-digit (GPT-2 BPE) data set. A question that does not match the
    record's operands is refused."""
    from minigpt_cli.mathgen.formats import spaced
    from minigpt_cli.mathgen.question import QuestionError, normalise

    text = str(rec["prompt"])
    sp = rec.get("spaced")
    sp = text.startswith(" ") if sp is None else bool(sp)
    try:
        q = normalise(text.replace(" ", "") if sp else text)
    except QuestionError as e:
        raise MinigptError(f"line {rec.get('_line', '?')}: {e}") from None
    if (q.a, q.op, q.b) != (int(rec["a"]), rec["op"], int(rec["b"])):
        raise MinigptError(f"line {rec.get('_line', '?')}: the prompt {text!r} asks "
                           f"{q.prompt!r}, not the record's {rec['a']}{rec['op']}{rec['b']}.")
    return spaced(q.prompt) if sp else q.prompt


def _cell(rec: dict) -> str:
    la, lb = rec.get("digits") or (len(str(abs(rec["a"]))), len(str(abs(rec["b"]))))
    return f"{rec['op']} {la}x{lb}"


def summarize(records: list[dict], results: list, outputs: list[str], keep: int) -> dict:
    def block(rows) -> dict:
        n = len(rows)
        total = sum(r.steps_total for _, r in rows)
        return {"n": n, "acc": sum(r.answer_correct for _, r in rows) / n if n else None,
                "step_validity": sum(r.steps_valid for _, r in rows) / total if total else None,
                "malformed": sum(r.malformed for _, r in rows)}

    pairs = list(zip(records, results))
    by_op, by_cell = defaultdict(list), defaultdict(list)
    for rec, res in pairs:
        by_op[rec["op"]].append((rec, res))
        by_cell[_cell(rec)].append((rec, res))
    wrong = defaultdict(list)  # by cell, in file order
    for rec, res, out in zip(records, results, outputs):
        if not res.answer_correct:
            wrong[_cell(rec)].append({"prompt": rec["prompt"], "expected": res.expected,
                                      "output": out[:200], "error": res.error,
                                      "cell": _cell(rec)})
    return {**block(pairs), "by_op": {k: block(by_op[k]) for k in sorted(by_op, key=_op_order)},
            "by_length": {k: block(v) for k, v in sorted(by_cell.items(), key=_cell_order)},
            "failures": sum(len(v) for v in wrong.values()),
            "mistakes": _spread(wrong, keep)}


def _op_order(op: str) -> int:
    return "+-*/".find(op)


def _cell_order(item) -> tuple:
    op, _, lengths = item[0].partition(" ")
    la, _, lb = lengths.partition("x")
    return ("+-*/".find(op), int(la or 0), int(lb or 0))


def _spread(wrong: dict[str, list[dict]], keep: int) -> list[dict]:
    """A sample of the failures that visits every failing cell before a second from any."""
    out: list[dict] = []
    rank = 0
    while len(out) < keep and any(len(v) > rank for v in wrong.values()):
        for cell in sorted(wrong):
            if rank < len(wrong[cell]) and len(out) < keep:
                out.append(wrong[cell][rank])
        rank += 1
    return out


class MathTask:
    name = "math"
    Options = MathOptions
    headline = ("acc", "train_acc", "step_validity")
    references: ClassVar[dict[str, dict[str, float]]] = {}

    def run(self, model, tokenizer, data: Path | None, options: MathOptions,
            on_progress: ProgressFn) -> dict[str, Any]:

        splits, path = load_splits(data, options)
        prefix = [tokenizer.eot_id] if options.eot_prefix else []
        try:
            prompts = {s: [prefix + tokenizer.encode(_prompt(r)) for r in rows]
                       for s, rows in splits.items()}
            longest = max(len(tokenizer.encode(r.get("solution", ""))) for rows in
                          splits.values() for r in rows)
        except MinigptError as e:
            raise MinigptError(f"--data {path} cannot be tokenized for this model: {e}") from None
        max_new = options.max_new_tokens or longest + 8
        stop = stop_ids(tokenizer)
        total, done = sum(len(v) for v in splits.values()), 0
        out: dict[str, Any] = {}
        for split, rows in splits.items():
            if not rows:
                continue

            def step(n: int, split=split) -> None:
                nonlocal done
                done += n
                on_progress(Progress(self.name, done, total, "problems", split))

            ids = greedy_decode(model, prompts[split], max_new, stop, options.batch_size, step)
            texts = [tokenizer.decode(t) for t in ids]
            results = [check(Problem.from_record(r), t) for r, t in zip(rows, texts)]
            out[split] = summarize(rows, results, texts, options.mistakes)
        test, train = out["test"], out.get("train")
        return {
            "metrics": {"acc": test["acc"], "train_acc": train["acc"] if train else None,
                        "step_validity": test["step_validity"],
                        "malformed_rate": test["malformed"] / test["n"]},
            "items": test["n"],
            "unit": "problems",
            "max_new_tokens": max_new,
            "splits": out,
        }
