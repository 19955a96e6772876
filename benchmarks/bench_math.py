"""Issues 5 and 18, measured: small models taught arithmetic with `minigpt make-math` data,
trained by the one trainer loop (`minigpt pretrain` on masked, packed `math` shards, or `minigpt
finetune` from GPT-2) and scored by `minigpt eval math` on held-out problems -- every step
through the real CLI.

    python benchmarks/bench_math.py --config examples/math-goal.toml      # issue 5, 3 seeds
    python benchmarks/bench_math.py --config examples/calculator-bench.toml   # issue 18
    python benchmarks/bench_math.py --config examples/calculator-bench.toml --smoke  # a check

With several operations in one task (the calculator) the table is also given per (operation,
operand lengths) cell -- mean and worst seed, held-out n, train accuracy and the gap -- checked
against ``[bench] cell_goals`` and ``min_cell_n``; ``[bench] extra_evals`` scores every
checkpoint on more make-math test sets (longer operands: length generalisation). A task with a
``tokenizer = "gpt2"`` writes spaced digits and shards with GPT-2's BPE; a task with a
``finetune`` table fine-tunes OpenAI's GPT-2 from ``--gpt2 DIR`` (a Hugging Face folder) and is
skipped without one (``--smoke`` fine-tunes the ``calc-gpt2`` run's checkpoint instead).

For each task of the config (one model per task) it writes the data once (make-math, shard),
then trains one model per seed and scores it: exact match on the held-out test problems, on as
many training problems (memorisation check), step validity. Runs go ``--jobs`` at a time, each
on ``--threads`` torch threads (default: 2 side by side with one thread each, so a 2-core
machine is used fully and a run's CPU time is its time on one core).

The budget is steps (``max_steps`` per task: reproducible), and every run reports its wall-clock
training time *and* its CPU time, with the load average around it: on a shared machine the wall
time follows the other load, the CPU time much less. ``plain`` and ``cot`` runs of a task share
model, steps and tokens per step, i.e. the same compute; their measured minutes are printed side
by side. Prints the table of every run, then mean and spread over seeds and the goal checks;
writes results.json into --work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "minigpt_cli"]
SMOKE = {"n": 600, "n_test": 40, "val": 20, "max_steps": 20, "limit": 40}
# the thresholds: task -> minimum exact match on held-out problems
GOALS = {"add": 0.99, "sub": 0.99, "mul": 0.95, "div": 0.95}
COT_GAP = ("mul", "mul-plain", 0.30)  # CoT beats plain on multiplication by >= 30 points


@dataclass
class Result:
    task: str
    op: str
    format: str
    seed: int
    acc: float
    train_acc: float | None
    step_validity: float | None
    params: int
    steps: int
    train_min: float  # wall-clock of the training run (the trainer's own clock)
    cpu_min: float  # CPU time of the training process
    load: float  # 1-minute load average, mean of start and end of the training run
    eval_n: int
    cells: dict | None = None  # "op LAxLB" -> {n, acc, step_validity, train_acc}
    extra: dict | None = None  # extra eval name -> {n, acc, step_validity, by_length}


def flags(table: dict) -> list[str]:
    out = []
    for k, v in table.items():
        name = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(name if v else "--no-" + k.replace("_", "-"))
        else:
            out += [name, str(v)]
    return out


def run(cmd: list[str], log: Path, threads: int) -> tuple[float, float]:
    """Run a minigpt command, output to ``log``; (wall s, CPU s of the child)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def prepare(name: str, task: dict, work: Path, smoke: bool, threads: int) -> Path:
    """make-math + shard for one task (shared by its seeds); returns the data folder."""
    data, shards = work / name / "data", work / name / "shards"
    if (shards / "manifest.json").exists():
        return data
    (work / name).mkdir(parents=True, exist_ok=True)
    mm = {k: task[k] for k in ("ops", "format", "n", "n_test") if k in task}
    mm |= {"seed": task.get("data_seed", 0), "tokenizer": task.get("tokenizer", "char")}
    if smoke:
        mm |= {"n": min(mm.get("n", SMOKE["n"]), SMOKE["n"]), "n_test": SMOKE["n_test"]}
    run([*CLI, "make-math", *flags(mm), "--out", str(data)], work / name / "make-math.log",
        threads)
    opts = dict(task.get("shard", {}))
    if smoke:
        opts["val"] = SMOKE["val"]
    cmd = [*CLI, "shard", "math", str(data), "--tokenizer", task.get("tokenizer", "char"),
           "--out", str(shards)]
    if "shard_size" in task:
        cmd += ["--shard-size", str(task["shard_size"])]
    for k, v in opts.items():
        cmd += ["--option", f"{k}={json.dumps(v) if isinstance(v, dict) else v}"]
    run(cmd, work / name / "shard.log", threads)
    return data


def prepare_extra(name: str, spec: dict, task: dict, work: Path, smoke: bool,
                  threads: int) -> Path:
    """A test-only make-math folder (``n = 0``) for an extra eval, in the task's format."""
    folder = work / "extra" / f"{name.replace(' ', '_')}-{task.get('format', 'cot')}-" \
        f"{task.get('tokenizer', 'char')}"
    if (folder / "meta.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    mm = {"ops": spec["ops"], "n": 0, "n_test": SMOKE["n_test"] if smoke else spec["n_test"],
          "format": task.get("format", "cot"), "tokenizer": task.get("tokenizer", "char"),
          "seed": spec.get("seed", 0)}
    run([*CLI, "make-math", *flags(mm), "--out", str(folder)], folder.with_suffix(".log"),
        threads)
    return folder


def train_command(name: str, task: dict, defaults: dict, seed: int, work: Path, bench: dict,
                  smoke: bool, gpt2: Path | None) -> list[str] | None:
    """`minigpt pretrain` (or `finetune`) for one seed; None: a fine-tune with no GPT-2."""
    out = work / name / f"seed{seed}"
    common = {"data": str(work / name / "shards"), "out": str(out), "resume": "auto",
              "seed": seed}
    if "finetune" in task:
        keep = ("seq_len", "eval_every", "sample_every",
                "checkpoint_every", "log_every", "max_time", "max_steps")
        settings = {**{k: v for k, v in defaults.items() if k in keep}, **task["finetune"],
                    **common}
        if gpt2 is not None:
            source = ["--from-hf", str(gpt2)]
        elif smoke:
            source = ["--from-checkpoint", str(work / "calc-gpt2" / f"seed{seed}")]
        else:
            return None
        command = "finetune"
    else:
        settings = {**defaults, **task.get("pretrain", {}), **common}
        source, command = [], "pretrain"
    if bench.get("budget") == "time":  # the wall-clock budget sets the run and its schedule
        settings.pop("max_steps", None)
        settings["max_time"] = settings.get("max_time", "10m")
    else:
        settings.pop("max_time", None)
    if smoke:
        settings["max_steps"] = SMOKE["max_steps"]
        settings.pop("max_time", None)
    return [*CLI, command, *source, *flags(settings)]


def train_and_score(name: str, task: dict, defaults: dict, seed: int, work: Path, bench: dict,
                    smoke: bool, threads: int, gpt2: Path | None = None) -> Result | None:
    data = work / name / "data"
    out = work / name / f"seed{seed}"
    cmd = train_command(name, task, defaults, seed, work, bench, smoke, gpt2)
    if cmd is None:
        return None
    load0 = os.getloadavg()[0]
    _, cpu = run(cmd, out.with_suffix(".train.log"), threads)
    load1 = os.getloadavg()[0]
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = max(m["step"] for m in metrics if "step" in m)
    elapsed = max(m.get("elapsed", 0.0) for m in metrics)
    limit = SMOKE["limit"] if smoke else bench.get("eval_limit", 2000)
    train_limit = SMOKE["limit"] if smoke else bench.get("train_limit", limit)
    r = score(out, data, limit, train_limit, out.with_suffix(".eval"), threads)
    m = r["metrics"]
    extra = {}
    for ename, spec in bench.get("extra_evals", {}).items():
        folder = prepare_extra(ename, spec, task, work, smoke, threads)
        e = score(out, folder, None, 0, out.with_suffix(f".{ename.replace(' ', '_')}"),
                  threads)["details"]["splits"]["test"]
        extra[ename] = {k: e[k] for k in ("n", "acc", "step_validity")} | {
            "by_length": {c: v["acc"] for c, v in e["by_length"].items()}}
    ops = {part.split(":")[0] for part in task["ops"].split(",")}
    return Result(name, ops.pop() if len(ops) == 1 else "mix", task.get("format", "cot"), seed,
                  m["acc"], m.get("train_acc"), m.get("step_validity"),
                  int(r["model"]["params"]), steps, elapsed / 60, cpu / 60, (load0 + load1) / 2,
                  int(r["items"]), cells(r), extra or None)


def score(ckpt: Path, data: Path, limit: int | None, train_limit: int, stem: Path,
          threads: int) -> dict:
    """`minigpt eval math` through the CLI; its results JSON."""
    result_file = stem.with_suffix(stem.suffix + ".json")
    cmd = [*CLI, "eval", "math", "--checkpoint", str(ckpt), "--data", str(data), "--option",
           f"train_limit={train_limit}", "--output", str(result_file), "--no-save"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    run(cmd, stem.with_suffix(stem.suffix + ".log"), threads)
    return json.loads(result_file.read_text())


def cells(r: dict) -> dict:
    splits = r["details"]["splits"]
    test, train = splits["test"], splits.get("train") or {}
    out = {}
    for cell, row in test["by_length"].items():
        tr = (train.get("by_length") or {}).get(cell) or {}
        out[cell] = {"n": row["n"], "acc": row["acc"], "step_validity": row["step_validity"],
                     "train_acc": tr.get("acc")}
    return out


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(results: list[Result]) -> str:
    head = (f"{'task':<10} {'op':<3} {'format':<6} {'seed':>4} {'accuracy':>9} {'train acc':>9} "
            f"{'step valid':>10} {'params':>8} {'steps':>6} {'minutes':>7} {'cpu min':>7} "
            f"{'load':>5}")
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(f"{r.task:<10} {r.op:<3} {r.format:<6} {r.seed:>4} {pct(r.acc):>9} "
                    f"{pct(r.train_acc):>9} {pct(r.step_validity):>10} {r.params:>8,} "
                    f"{r.steps:>6} {r.train_min:>7.2f} {r.cpu_min:>7.2f} {r.load:>5.1f}")
    return "\n".join(rows)


def summary(results: list[Result]) -> str:
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.task, []).append(r)
    lines = ["", "mean and spread over seeds (spread = sample standard deviation; min..max)"]
    for task, rs in by.items():
        accs = [r.acc for r in rs]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        goal = GOALS.get(task)
        verdict = "" if goal is None else \
            f"  goal >= {goal:.0%}: {'met' if min(accs) >= goal else 'NOT met'} (every seed)"
        lines.append(f"  {task:<10} {pct(statistics.mean(accs)):>7} +- {100 * sd:.1f} "
                     f"({pct(min(accs))}..{pct(max(accs))}), train {pct(_mean(rs, 'train_acc'))}"
                     f", median {statistics.median(r.train_min for r in rs):.2f} min wall, "
                     f"{statistics.median(r.cpu_min for r in rs):.2f} min CPU, "
                     f"{rs[0].steps} steps{verdict}")
    cot, plain, gap = COT_GAP
    if cot in by and plain in by:
        c, p = statistics.mean(r.acc for r in by[cot]), statistics.mean(r.acc for r in by[plain])
        wall = statistics.median(r.train_min for r in by[cot]) / \
            max(1e-9, statistics.median(r.train_min for r in by[plain]))
        lines.append(f"  CoT - plain on {cot}: {100 * (c - p):+.1f} points at the same steps "
                     f"and tokens per step (wall-clock ratio cot/plain {wall:.2f}); goal >= "
                     f"{100 * gap:.0f}: {'met' if c - p >= gap else 'NOT met'}")
    return "\n".join(lines)


def cell_table(results: list[Result], bench: dict) -> str:
    """Per (operation, lengths) cell of every multi-operation task: mean and worst seed."""
    goals, min_n = bench.get("cell_goals", {}), bench.get("min_cell_n", 0)
    by: dict[str, list[Result]] = {}
    for r in results:
        if r.cells and r.op == "mix":
            by.setdefault(r.task, []).append(r)
    lines = []
    for task, rs in by.items():
        lines += ["", f"{task}: by (operation, operand lengths) cell, {len(rs)} seed(s) "
                  "(test exact: mean, worst seed; train exact: mean; gap = train - test)",
                  f"  {'cell':<8} {'test n':>6} {'exact':>7} {'worst':>7} {'steps':>7} "
                  f"{'train':>7} {'gap':>6}  goal"]
        missed, small = [], []
        for cell in rs[0].cells:
            rows = [r.cells[cell] for r in rs if cell in r.cells]
            accs = [x["acc"] for x in rows]
            trains = [x["train_acc"] for x in rows if x["train_acc"] is not None]
            steps = [x["step_validity"] for x in rows if x["step_validity"] is not None]
            mean, worst = statistics.mean(accs), min(accs)
            train = statistics.mean(trains) if trains else None
            goal = goals.get(cell.split(" ")[0])
            ok = "" if goal is None else ("met" if worst >= goal else f"NOT met (>= {goal:.0%})")
            if goal is not None and worst < goal:
                missed.append(cell)
            if rows[0]["n"] < min_n:
                small.append(f"{cell} ({rows[0]['n']})")
            lines.append(f"  {cell:<8} {rows[0]['n']:>6} {pct(mean):>7} {pct(worst):>7} "
                         f"{pct(statistics.mean(steps) if steps else None):>7} {pct(train):>7} "
                         f"{'-' if train is None else f'{100 * (train - mean):+.1f}':>6}  {ok}")
        if goals:
            lines.append(f"  cell goals: {'met in every cell' if not missed else 'NOT met in '}"
                         f"{', '.join(missed)}")
        if min_n:
            lines.append(f"  cells with fewer than {min_n} held-out problems: "
                         f"{', '.join(small) or 'none'}")
    extra = [r for r in results if r.extra]
    if extra:
        lines += ["", "extra evals (the same checkpoints on other make-math test sets; mean "
                  "over seeds, worst seed)"]
        names = {}
        for r in extra:
            for name, e in r.extra.items():
                names.setdefault((r.task, name), []).append(e["acc"])
        for (task, name), accs in names.items():
            lines.append(f"  {task:<14} {name:<14} {pct(statistics.mean(accs)):>7} "
                         f"(worst {pct(min(accs))})")
    return "\n".join(lines)


def _mean(rs: list[Result], field: str) -> float | None:
    vals = [getattr(r, field) for r in rs if getattr(r, field) is not None]
    return statistics.mean(vals) if vals else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=ROOT / "examples" / "math-goal.toml")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-math")
    p.add_argument("--tasks", help="Comma list of the config's tasks (default: all).")
    p.add_argument("--seeds", help="Comma list (default: the config's).")
    p.add_argument("--jobs", type=int, help="Runs side by side (default: the config's).")
    p.add_argument("--threads", type=int, help="Torch threads per run (default: the config's).")
    p.add_argument("--budget", choices=["steps", "time"], help="steps: each task's max_steps "
                   "(reproducible); time: its max_time, the LR schedule on the share spent "
                   "(default: the config's, else steps).")
    p.add_argument("--smoke", action="store_true", help="Tiny data and 20 steps: a check.")
    p.add_argument("--gpt2", type=Path, help="OpenAI GPT-2's Hugging Face folder, for tasks "
                   "with a finetune table (skipped without it).")
    a = p.parse_args()
    from minigpt_cli.settings import load_config_file

    cfg = load_config_file(a.config)
    bench, defaults, tasks = cfg.get("bench", {}), cfg.get("defaults", {}), cfg["tasks"]
    names = a.tasks.split(",") if a.tasks else list(tasks)
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else bench.get("seeds", [0, 1, 2])
    jobs, threads = a.jobs or bench.get("jobs", 2), a.threads or bench.get("threads", 1)
    if a.budget:
        bench["budget"] = a.budget
    work = a.work / ("smoke" if a.smoke else "")
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench_math: {', '.join(names)} x seeds {seeds}, budget by "
          f"{bench.get('budget', 'steps')}, {jobs} run(s) at a time, {threads} thread(s) each, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; work {work}", flush=True)
    for name in names:
        prepare(name, tasks[name], work, a.smoke, threads)
    lock, results = threading.Lock(), []

    def one(job):
        name, seed = job
        r = train_and_score(name, tasks[name], defaults, seed, work, bench, a.smoke, threads,
                            a.gpt2)
        if r is None:
            print(f"  {name} seed {seed}: skipped (no --gpt2 folder to fine-tune)", flush=True)
            return None
        with lock:
            results.append(r)
            print(f"  {name} seed {seed}: {pct(r.acc)} test, {pct(r.train_acc)} train, "
                  f"{r.steps} steps, {r.train_min:.2f} min wall, {r.cpu_min:.2f} min CPU, "
                  f"load {r.load:.1f}", flush=True)
        return r

    # fine-tunes last: with --smoke they start from the calc-gpt2 runs
    order = sorted(names, key=lambda n: "finetune" in tasks[n])
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, [(n, s) for n in order for s in seeds]))
    results.sort(key=lambda r: (names.index(r.task), r.seed))
    print()
    print(table(results))
    print(summary(results))
    print(cell_table(results, bench))
    (work / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
