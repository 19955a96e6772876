"""`eval math`: batched greedy decoding equal to one-at-a-time greedy sampling, scoring through
the make-math checker, the task end to end on a make-math-style folder, and bad input."""

from __future__ import annotations

import json
import random

import pytest
import torch

from minigpt_cli.errors import MinigptError
from minigpt_cli.evals.arithmetic import MathOptions, MathTask, summarize
from minigpt_cli.evals.greedy import greedy_decode, stop_ids
from minigpt_cli.evals.task import no_progress
from minigpt_cli.generation import SamplingParams, generate
from minigpt_cli.mathgen.checker import check
from minigpt_cli.mathgen.formats import prompt_text, solution_text
from minigpt_cli.mathgen.problems import Problem
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer

CHARS = list("0123456789+-*/=,#r>;\n")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny(vocab: int, block: int = 64, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2,
                         n_embd=16)).eval()


def test_batched_greedy_equals_one_prompt_at_a_time():
    tok = CharTokenizer(CHARS)
    model = tiny(tok.vocab_size, block=40, seed=1)
    rng = random.Random(0)
    prompts = [[tok.eot_id] + tok.encode(prompt_text("+", rng.randrange(10 ** rng.randint(1, 3)),
                                                     rng.randrange(1000)))
               for _ in range(30)]
    stop = stop_ids(tok)
    assert stop == {tok.eot_id, tok.encode("\n")[0]}
    fast = greedy_decode(model, prompts, 30, stop, batch_size=4)
    for p, got in zip(prompts, fast):
        want = []
        for t in generate(model, p, SamplingParams(30, temperature=0.0)):
            if int(t[0]) in stop:
                break
            want.append(int(t[0]))
        assert got == want[: 40 - len(p)]  # never past the context


def test_gpt2_stop_tokens_include_every_token_with_a_newline():
    tok = GPT2Tokenizer()
    stop = stop_ids(tok)
    assert tok.eot_id in stop and tok.encode("\n")[0] in stop and tok.encode(".\n\n")[-1] in stop
    assert tok.encode(" 7")[0] not in stop


def records(op: str, pairs, split: str = "test", fmt: str = "cot") -> list[dict]:
    return [{"a": a, "b": b, "op": op, "prompt": prompt_text(op, a, b),
             "solution": solution_text(op, a, b, fmt), "answer": "", "split": split,
             "format": fmt, "spaced": False, "digits": [len(str(a)), len(str(b))]}
            for a, b in pairs]


def test_summary_counts_exact_match_step_validity_and_mistakes():
    recs = records("+", [(352, 469), (12, 7), (5, 5), (999, 1)])
    outs = [recs[0]["solution"],  # right
            recs[1]["solution"].replace("#19", "#18"),  # steps right, answer wrong
            "garbage",  # malformed
            recs[3]["solution"] + "\nnext line ignored"]  # right: only the first line counts
    results = [check(Problem.from_record(r), o) for r, o in zip(recs, outs)]
    s = summarize(recs, results, outs, keep=5)
    assert s["n"] == 4 and s["acc"] == 0.5 and s["malformed"] == 1
    steps_total = sum(r.steps_total for r in results)
    assert s["step_validity"] == pytest.approx(sum(r.steps_valid for r in results) / steps_total)
    assert set(s["by_length"]) == {"+ 3x3", "+ 2x1", "+ 1x1", "+ 3x1"}
    assert s["by_length"]["+ 2x1"]["acc"] == 0.0 and s["by_length"]["+ 3x1"]["acc"] == 1.0
    assert s["by_op"]["+"]["n"] == 4
    # a sample spread over the failing cells, in cell order
    assert [m["prompt"] for m in s["mistakes"]] == ["5+5=", "12+7="]
    assert s["mistakes"][1]["expected"] == "19" and s["failures"] == 2


def write_folder(folder, test, train):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("test.jsonl", test), ("train.jsonl", train)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_the_task_end_to_end_on_a_make_math_folder(tmp_path):
    rng = random.Random(1)
    test = records("+", [(rng.randrange(100, 1000), rng.randrange(100, 1000)) for _ in range(12)])
    test += records("*", [(rng.randrange(10, 100), rng.randrange(10, 100)) for _ in range(8)])
    train = records("+", [(rng.randrange(10), rng.randrange(10)) for _ in range(50)], "train")
    folder = write_folder(tmp_path / "math", test, train)
    tok = CharTokenizer(CHARS)
    model = tiny(tok.vocab_size, block=128)
    events = []
    r = MathTask().run(model, tok, folder, MathOptions(train_limit=10, batch_size=8),
                       events.append)
    assert r["items"] == 20 and r["splits"]["train"]["n"] == 10
    test_summary = r["splits"]["test"]
    assert set(test_summary["by_op"]) == {"+", "*"}
    assert set(test_summary["by_length"]) == {"+ 3x3", "* 2x2"}
    assert r["metrics"]["acc"] == test_summary["acc"] < 0.2  # an untrained model
    assert r["metrics"]["train_acc"] == r["splits"]["train"]["acc"]
    assert len(test_summary["mistakes"]) == 8
    assert r["max_new_tokens"] == max(len(x["solution"]) for x in test + train) + 8
    assert events[-1].done == events[-1].total == 30
    # limit takes the first N test problems; a single JSONL file works too
    r = MathTask().run(model, tok, folder / "test.jsonl", MathOptions(limit=3), no_progress)
    assert r["items"] == 3 and "train" not in r["splits"]


def test_bad_math_data_names_the_file_and_line(tmp_path):
    tok = CharTokenizer(CHARS)
    model = tiny(tok.vocab_size)
    folder = write_folder(tmp_path / "m", records("+", [(1, 2)]) + [{"a": 1, "b": 2}], [])
    with pytest.raises(MinigptError, match=r"test.jsonl, line 2: missing field\(s\) op, prompt"):
        MathTask().run(model, tok, folder, MathOptions(), no_progress)
    with pytest.raises(MinigptError, match="no test.jsonl"):
        MathTask().run(model, tok, tmp_path, MathOptions(), no_progress)
    empty = write_folder(tmp_path / "e", [], [])
    with pytest.raises(MinigptError, match="no test problems"):
        MathTask().run(model, tok, empty, MathOptions(), no_progress)
