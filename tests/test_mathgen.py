"""make-math: formats, the independent checker, sampling (balance, no duplicates, disjoint test
set), tokenization, and the command end to end."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.mathgen import dataset
from minigpt_cli.mathgen.checker import check
from minigpt_cli.mathgen.formats import max_line_chars, prompt_text, solution_text, spaced
from minigpt_cli.mathgen.operands import allocate
from minigpt_cli.mathgen.problems import OPS, Problem, key, numbers_of_length, parse_ops
from minigpt_cli.mathgen.split import make_plan
from minigpt_cli.tokenizer import CharTokenizer, GPT2Tokenizer

runner = CliRunner()

KNOWN = {
    ("+", 352, 469): ("2+9+0=11,5+6+1=12,3+4+1=08#821", "#821", "#128"),
    ("+", 7, 952): ("7+2+0=09,0+5+0=05,0+9+0=09#959", "#959", "#959"),
    ("-", 305, 721): ("-,1-5-0=16,2-0-1=01,7-3-0=04#-416", "#-416", "#-614"),
    ("-", 721, 305): ("+,1-5-0=16,2-0-1=01,7-3-0=04#416", "#416", "#614"),
    ("-", 5, 5): ("+,5-5-0=00#0", "#0", "#0"),
    ("*", 47, 86): ("7*6+0+0=42,4*6+0+4=28>282;7*8+8+0=64,4*8+2+6=40>4042#4042", "#4042",
                    "#2404"),
    ("*", 12, 34): ("2*4+0+0=08,1*4+0+0=04>048;2*3+4+0=10,1*3+0+1=04>0408#408", "#408",
                    "#804"),
    ("/", 857, 7): ("08/7=1r1,15/7=2r1,17/7=2r3#122r3", "#122r3", "#221r3"),
    ("/", 857, 23): ("008/23=0r08,085/23=3r16,167/23=7r06#37r6", "#37r6", "#73r6"),
    ("/", 14, 7): ("01/7=0r1,14/7=2r0#2r0", "#2r0", "#2r0"),
}


def random_problems(count: int, max_digits: int = 4, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(count):
        op = rng.choice(OPS)
        la, lb = rng.randint(1, max_digits), rng.randint(1, max_digits)
        a = rng.randint(*numbers_of_length(la))
        b = rng.randint(*numbers_of_length(lb, divisor=op == "/"))
        yield op, a, b


def corrupt_each_digit(text: str):
    for i, ch in enumerate(text):
        if ch.isdigit():
            yield text[:i] + str((int(ch) + 1) % 10) + text[i + 1:]


@pytest.mark.parametrize("problem", KNOWN)
def test_formats_on_known_examples(problem):
    op, a, b = problem
    assert prompt_text(op, a, b) == f"{a}{op}{b}="
    for fmt, want in zip(("cot", "plain", "reverse"), KNOWN[problem]):
        got = solution_text(op, a, b, fmt)
        assert got == want
        r = check(Problem(a, b, op, fmt), got)
        assert r.ok and r.steps_valid == r.steps_total and (r.steps_total > 0) == (fmt == "cot")


def test_checker_accepts_every_generated_solution_and_length_bound_holds():
    longest: dict = {}
    for op, a, b in random_problems(3000):
        la, lb = len(str(a)), len(str(b))
        for fmt in ("cot", "plain", "reverse"):
            sol = solution_text(op, a, b, fmt)
            r = check(Problem(a, b, op, fmt), sol)
            assert r.ok, (op, a, b, fmt, sol, r.error)
            assert check(Problem(a, b, op, fmt, spaced=True), spaced(sol)).ok
            n = len(prompt_text(op, a, b) + sol)
            assert n <= max_line_chars(op, la, lb, fmt)
            longest[op, la, lb, fmt] = max(longest.get((op, la, lb, fmt), 0), n)
    # the bound is exact for + - * (the extremes reach it)
    for op, a, b in (("+", 999, 999), ("-", 100, 999), ("*", 999, 999)):
        assert len(prompt_text(op, a, b) + solution_text(op, a, b, "cot")) == \
            max_line_chars(op, 3, 3, "cot")


def test_checker_rejects_every_single_digit_corruption():
    for op, a, b in list(random_problems(150, 3, seed=1)) + list(KNOWN):
        for fmt in ("cot", "plain", "reverse"):
            sol = solution_text(op, a, b, fmt)
            for bad in corrupt_each_digit(sol):
                r = check(Problem(a, b, op, fmt), bad)
                assert not r.ok, (op, a, b, sol, bad)
                if fmt == "cot":
                    assert r.error


def test_one_wrong_step_costs_one_step_and_wrong_answer_is_caught():
    p = Problem(352, 469, "+")
    r = check(p, "3+9+0=11,5+6+1=12,3+4+1=08#821")  # wrong digit of a, arithmetic off too
    assert (r.steps_total, r.steps_valid, r.answer_correct, r.malformed) == (3, 2, True, False)
    r = check(p, "2+9+0=11,5+6+1=12,3+4+1=08#822")
    assert r.steps_valid == 3 and not r.answer_correct and "822" in r.error
    r = check(Problem(47, 86, "*"), "7*6+0+0=42,4*6+0+4=28>282;7*8+8+0=64,4*8+2+6=40>4052#4052")
    assert (r.steps_total, r.steps_valid, r.answer_correct) == (6, 5, False)
    r = check(Problem(305, 721, "-"), "+,5-1-0=04,0-2-0=18,3-7-1=15#-416")
    assert r.answer_correct and r.steps_valid == 3 and r.steps_total == 4  # wrong sign only


@pytest.mark.parametrize("op, a, b, text, valid", [
    ("+", 352, 469, "3+9+0=12,5+6+1=12,3+4+1=08#821", 2),  # right sum of a wrong digit
    ("+", 352, 469, "2+9+1=12,5+6+1=12,3+4+1=08#821", 2),  # carry-in never written
    ("-", 721, 305, "+,1-4-0=17,2-0-1=01,7-3-0=04#417", 3),
    ("-", 721, 305, "+,1-5-0=16,2-0-0=02,7-3-0=04#426", 3),  # borrow dropped
    ("*", 47, 86, "7*6+0+0=42,4*6+0+4=28>282;7*8+9+0=65,4*8+2+6=40>4052#4052", 4),
    ("*", 47, 86, "7*6+0+0=42,4*6+0+4=28>282;7*9+8+0=71,4*9+2+7=45>4512#4512", 3),
    ("/", 857, 7, "08/7=1r1,16/7=2r2,27/7=3r6#123r6", 2),  # brought down the wrong digit
    ("/", 857, 7, "08/6=1r2,25/6=4r1,17/6=2r5#142r5", 0),  # divided by the wrong number
])
def test_steps_must_use_the_right_inputs_not_just_add_up(op, a, b, text, valid):
    r = check(Problem(a, b, op), text)
    assert r.steps_valid == valid < r.steps_total and not r.malformed and not r.ok and r.error


@pytest.mark.parametrize("text", [
    "", "821", "2+9+0=11,5+6+1=12,3+4+1=08", "2+9+0=11,5+6+1=12,3+4+1=08#", "#821#821",
    "2+9+0=11,5+6+1=12,3+4+1=08#0821", "2+9+0=11,5+6+1=12,3+4+1=08#821x",
    "2+9+0=11,5+6+1=12#821", "2+9+0=11,5+6+1=12,3+4+1=08,0+0+0=00#821",
    "2+9+0=11,5+6+1=12,3+4+1=8#821", "2+9+0=11;5+6+1=12;3+4+1=08#821",
    "2 + 9 + 0 = 1 1 , 5 + 6 + 1 = 1 2 , 3 + 4 + 1 = 0 8 # 8 2 1", "٢+9+0=11,5+6+1=12,3+4+1=08#821",
])
def test_checker_flags_malformed_text(text):
    r = check(Problem(352, 469, "+"), text)
    assert r.malformed and not r.ok and r.error


def test_checker_answers_are_canonical():
    assert not check(Problem(5, 5, "-", "plain"), "#-0").answer_correct
    assert check(Problem(5, 5, "-", "plain"), "#0").answer_correct
    assert not check(Problem(14, 7, "/", "plain"), "#2").answer_correct  # remainder required
    assert not check(Problem(120, 0, "+", "reverse"), "#210").answer_correct
    assert check(Problem(120, 0, "+", "reverse"), "#021").answer_correct
    assert check(Problem(352, 469, "+"), "2+9+0=11,5+6+1=12,3+4+1=08#821\nmore").ok


def test_allocate_is_balanced_and_water_fills():
    assert allocate(90, [100, 100, 100]) == [30, 30, 30]
    assert allocate(90, [10, 100, 100]) == [10, 40, 40]
    assert sum(allocate(7, [5, 5, 5])) == 7
    assert allocate(50, [10, 10]) == [10, 10]


def test_plan_balance_over_lengths_and_carries():
    plan = make_plan(parse_ops("+,-", (1, 3), (1, 3)), 18_000, 900, "carries", 0)
    for p in plan.ops:
        per_cell = Counter(p.train.cell.tolist())
        level = max(per_cell.values())
        for i, cap in enumerate(p.train_caps):  # short cells give all they have, the rest
            assert abs(per_cell[i] - min(cap, level)) <= 1  # share evenly
        assert per_cell[p.cells.index((1, 1))] == p.train_caps[p.cells.index((1, 1))] < level
        three = p.cells.index((3, 3))
        carries = Counter(p.train.carries[p.train.cell == three].tolist())
        most = 3 if p.spec.op == "+" else 2  # a - never borrows in its top column
        assert sorted(carries) == list(range(most + 1))
        assert min(carries.values()) >= 0.9 * max(carries.values())  # carry-heavy as common
    uniform = make_plan(parse_ops("+", (1, 3), (1, 3)), 9000, 900, "none", 0).ops[0]
    short = sum(uniform.train.cell == uniform.cells.index((1, 1)))
    balanced = sum(plan.ops[0].train.cell == plan.ops[0].cells.index((1, 1)))
    assert short < balanced  # uniform sampling starves short problems


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def make(tmp_path: Path, *args: str, name: str = "out"):
    out = tmp_path / name
    result = runner.invoke(app, ["make-math", "--out", str(out), *args])
    return result, out


def test_cli_end_to_end_disjoint_unique_checked(tmp_path):
    result, out = make(tmp_path, "--n", "4000", "--n-test", "300", "--seed", "3")
    assert result.exit_code == 0, result.output
    train, test = read(out / "train.jsonl"), read(out / "test.jsonl")
    meta = json.loads((out / "meta.json").read_text())
    assert len(train) == 4000 and len(test) == 1200
    assert meta["counts"] == {"train": 4000, "test": 1200}
    assert json.loads((out / "settings.json").read_text())["seed"] == 3
    for op in OPS:
        tr = [(r["a"], r["b"]) for r in train if r["op"] == op]
        te = [(r["a"], r["b"]) for r in test if r["op"] == op]
        assert len(tr) == 1000 and len(te) == 300
        assert len(set(tr)) == len(tr)  # no duplicate problems
        test_keys = {key(op, a, b) for a, b in te}
        assert len(test_keys) == len(te)
        assert not test_keys & {key(op, a, b) for a, b in tr}  # disjoint, unordered for + *
    assert all(r["b"] != 0 for r in train + test if r["op"] == "/")
    vocab = set(meta["vocab"])
    for r in train + test:
        assert r["split"] in ("train", "test") and r["format"] == "cot"
        assert r["prompt"] == f"{r['a']}{r['op']}{r['b']}="
        assert check(Problem.from_record(r), r["solution"]).ok
        assert r["solution"].endswith("#" + r["answer"])
        assert set(r["prompt"] + r["solution"]) <= vocab
        assert len(r["prompt"] + r["solution"]) <= meta["max_tokens"][r["op"]]
    assert meta["block_size_needed"] == max(meta["max_tokens"].values()) + 1


def test_goal_tasks_are_expressible(tmp_path):
    result, out = make(tmp_path, "--ops", "+:3,-:3,*:2x2,/:4x1", "--n", "2000",
                       "--n-test", "100", "--format", "plain")
    assert result.exit_code == 0, result.output
    rows = read(out / "train.jsonl") + read(out / "test.jsonl")
    lengths = {(r["op"], len(str(r["a"])), len(str(r["b"]))) for r in rows}
    assert lengths == {("+", 3, 3), ("-", 3, 3), ("*", 2, 2), ("/", 4, 1)}
    assert any(r["answer"].startswith("-") for r in rows if r["op"] == "-")


def test_tokenization_one_token_per_digit(tmp_path):
    result, out = make(tmp_path, "--n", "400", "--n-test", "20", "--tokenizer", "gpt2",
                       name="gpt2")
    assert result.exit_code == 0, result.output
    gpt2 = GPT2Tokenizer()
    for r in read(out / "train.jsonl")[:200]:
        text = r["prompt"] + r["solution"]
        ids = gpt2.encode(text)
        assert [gpt2.decode([i]) for i in ids] == [" " + c for c in text.replace(" ", "")]
        assert check(Problem.from_record(r), r["solution"]).ok
    assert len(gpt2.encode("352+469=821")) < len("352+469=821")  # why spacing is needed
    result, out = make(tmp_path, "--n", "400", "--n-test", "20", name="char")
    meta = json.loads((out / "meta.json").read_text())
    char = CharTokenizer(list(meta["vocab"]))
    for r in read(out / "train.jsonl"):
        text = r["prompt"] + r["solution"]
        assert char.decode(char.encode(text)) == text and len(char.encode(text)) == len(text)
        assert " " not in text


def test_config_table_and_determinism(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text('[make-math]\nn = 600\nn_test = 50\nops = "+,*"\ndigits = "2"\nseed = 5\n')
    r1, a = make(tmp_path, "--config", str(cfg), name="a")
    r2, b = make(tmp_path, "--config", str(cfg), name="b")
    r3, c = make(tmp_path, "--config", str(cfg), "--seed", "6", name="c")
    assert r1.exit_code == r2.exit_code == r3.exit_code == 0, r1.output
    assert len(read(a / "train.jsonl")) == 600
    assert {r["op"] for r in read(a / "train.jsonl")} == {"+", "*"}
    for name in ("train.jsonl", "test.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert (a / name).read_bytes() != (c / name).read_bytes()


def test_worker_processes_give_identical_files(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "CHUNK", 500)
    r1, one = make(tmp_path, "--n", "3000", "--n-test", "100", "--workers", "1", name="one")
    r2, two = make(tmp_path, "--n", "3000", "--n-test", "100", "--workers", "2", name="two")
    assert r1.exit_code == r2.exit_code == 0, r2.output
    for name in ("train.jsonl", "test.jsonl"):
        assert (one / name).read_bytes() == (two / name).read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--digits", "0"], "--digits"),
    (["--ops", "+,%"], "unknown operation '%'"),
    (["--ops", "*:2x2", "--n", "5000"], "--n 5,000 is more than"),
    (["--ops", "+:1", "--n", "10"], "--n-test 2000"),
    (["--ops", "*:3", "--block-size", "64"], "--block-size 64 is too small"),
    (["--n", "0", "--n-test", "0"], "nothing to write"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    result, out = make(tmp_path, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_default_mix_is_the_calculators(tmp_path):
    result, out = make(tmp_path, "--n", "2000", "--n-test", "400", "--seed", "1")
    assert result.exit_code == 0, result.output
    rows = read(out / "train.jsonl") + read(out / "test.jsonl")
    cells = {(r["op"], *r["digits"]) for r in rows}
    assert {c for c in cells if c[0] == "+"} == {("+", a, b) for a in range(1, 6)
                                                 for b in range(1, 6)}
    assert max(b for op, _, b in cells if op == "*") == 3
    assert {(a, b) for op, a, b in cells if op == "/"} == {(a, b) for a in range(1, 6)
                                                          for b in (1, 2)}
    assert any(r["answer"].startswith("-") for r in rows if r["op"] == "-")
    assert any(r["answer"].startswith("0r") for r in rows if r["op"] == "/")


def test_n_test_cell_holds_out_that_many_per_cell(tmp_path):
    result, out = make(tmp_path, "--ops", "+:2,/:2x1", "--n", "600", "--n-test-cell", "30")
    assert result.exit_code == 0, result.output
    test = read(out / "test.jsonl")
    assert len([r for r in test if r["op"] == "+"]) == 30
    assert len([r for r in test if r["op"] == "/"]) == 30


def test_n_test_cell_refuses_a_small_cell_saying_how_many_exist(tmp_path):
    result, out = make(tmp_path, "--ops", "+:1-2", "--n", "100", "--n-test-cell", "200")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "+:1x1 has 100 distinct problems and can hold out 27" in text
    assert not out.exists()
