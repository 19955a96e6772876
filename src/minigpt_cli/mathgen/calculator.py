"""The calculator: a question as people write it -> the model's steps and answer, checked.

``ask`` normalises the question (question.py, the same normaliser make-math writes prompts
with), presents it the way the math shards do (``<|endoftext|>35+42=``), decodes greedily and
checks what the model wrote with the independent checker, so the answer is shown with its
verdict. ``builtin_data`` rebuilds the data set the built-in calculator was trained and scored
on (its make-math settings are in the asset's metadata; make-math is deterministic), so `minigpt
eval math` can score it with no --data and no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from minigpt_cli.errors import MinigptError
from minigpt_cli.mathgen.checker import CheckResult, check
from minigpt_cli.mathgen.formats import spaced as spaced_text
from minigpt_cli.mathgen.problems import ANSWER_MARK, Problem
from minigpt_cli.mathgen.question import Question, normalise
from minigpt_cli.mathgen.records import SAFE_CHARS


@dataclass(frozen=True)
class Answer:
    question: Question
    prompt: str  # what the model was given (canonical, spaced for a spaced-digit model)
    output: str  # what it wrote: steps, '#', the answer
    result: CheckResult

    @property
    def answer(self) -> str | None:
        return self.result.answer


def is_math_model(tokenizer) -> bool:
    """A char model whose whole vocabulary is make-math's: its prompts go through the
    normaliser (it could not read ``35 + 42 = ?`` as typed: no space, no ``?``)."""
    chars = getattr(tokenizer, "chars", None)
    return bool(chars) and set(chars) <= SAFE_CHARS and {"=", ANSWER_MARK} <= set(chars)


def ask(model, tokenizer, text: str, max_new_tokens: int = 256, fmt: str = "cot",
        spaced: bool = False) -> Answer:
    """Answer one question greedily; raises QuestionError for text it cannot read."""
    from minigpt_cli.evals.greedy import greedy_decode, stop_ids

    q = normalise(text)
    prompt = spaced_text(q.prompt) if spaced else q.prompt
    try:
        ids = [tokenizer.eot_id] + tokenizer.encode(prompt)
    except MinigptError as e:
        raise MinigptError(f"this model cannot read the prompt {prompt!r}: {e}") from None
    room = max(1, min(max_new_tokens, model.config.block_size - len(ids)))
    out = greedy_decode(model, [ids], room, stop_ids(tokenizer), 1, lambda n: None)[0]
    output = tokenizer.decode(out)
    return Answer(q, prompt, output, check(Problem(q.a, q.b, q.op, fmt, spaced), output))


def builtin_data(extra: dict, cache: Path) -> Path:
    """The make-math folder of the built-in calculator, regenerated into ``cache`` from the
    settings in its metadata (once; later calls reuse it after checking test.jsonl's sha256)."""
    import hashlib

    from minigpt_cli.mathgen.dataset import make_math
    from minigpt_cli.mathgen.settings import MakeMathSettings

    data = extra.get("data") or {}
    settings, sha = data.get("settings"), data.get("test_sha256")
    if not settings or not sha:
        raise MinigptError("this calculator's metadata names no data set; pass --data (a "
                           "`minigpt make-math` folder).")
    out = cache / f"calculator-data-{sha[:16]}"
    test = out / "test.jsonl"
    if not (test.exists() and hashlib.sha256(test.read_bytes()).hexdigest() == sha):
        make_math(MakeMathSettings(**{**settings, "out": out, "workers": 1}))
    got = hashlib.sha256(test.read_bytes()).hexdigest()
    if got != sha:
        raise MinigptError(f"the calculator's test set rebuilt in {out} differs from the one "
                           f"it was scored on (sha256 {got[:12]}, not {sha[:12]}); pass --data "
                           "with the original make-math folder.")
    return out


def data_record(meta_path: Path) -> dict:
    """What the asset's metadata keeps about its make-math folder."""
    meta = json.loads(meta_path.read_text())
    return {"settings": {k: v for k, v in meta["settings"].items() if k not in ("out", "workers")},
            "test_sha256": meta["files"]["test.jsonl"]["sha256"],
            "train_sha256": meta["files"]["train.jsonl"]["sha256"]}
