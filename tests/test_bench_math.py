"""bench_math's calculator summary: per-cell goals on the worst seed, small cells, extra evals
(the runs themselves are checked by `python benchmarks/bench_math.py --config
examples/calculator-bench.toml --smoke`)."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_math.py"
spec = importlib.util.spec_from_file_location("bench_math", SCRIPT)
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_math"] = bench  # dataclasses look their module up
spec.loader.exec_module(bench)


def result(seed: int, add: float, mul: float) -> "bench.Result":
    cells = {"+ 1x1": {"n": 27, "acc": add, "step_validity": 1.0, "train_acc": 1.0},
             "* 3x3": {"n": 500, "acc": mul, "step_validity": 0.99, "train_acc": None}}
    return bench.Result("calc", "mix", "cot", seed, 0.9, 0.95, 0.99, 800_000, 100, 1.0, 1.0,
                        0.5, 527, cells, {"+- 6 digits": {"n": 10, "acc": 0.5,
                                                          "step_validity": 0.9,
                                                          "by_length": {}}})


def test_cell_goals_use_the_worst_seed_and_small_cells_are_named():
    out = bench.cell_table([result(0, 1.0, 0.97), result(1, 1.0, 0.94)],
                           {"cell_goals": {"+": 0.99, "*": 0.95}, "min_cell_n": 200})
    assert "NOT met in * 3x3" in out
    assert "fewer than 200 held-out problems: + 1x1 (27)" in out
    assert "+- 6 digits" in out and "50.0%" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("* 3x3"))
    assert "95.5%" in line and "94.0%" in line  # mean and worst seed


def test_the_calculator_config_fits_the_targets():
    from minigpt_cli.settings import load_config_file

    cfg = load_config_file(SCRIPT.parents[1] / "examples" / "calculator-bench.toml")
    assert cfg["bench"]["seeds"] == [0, 1, 2] and cfg["defaults"]["max_time"] == "60m"
    assert {"calc", "calc-plain", "calc-gpt2", "calc-gpt2-ft"} <= set(cfg["tasks"])
    assert cfg["bench"]["min_cell_n"] == 200
