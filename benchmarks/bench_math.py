"""Issue 5's goal, measured: small char-level models taught arithmetic with `minigpt make-math`
data, trained by the one trainer loop (`minigpt pretrain` on masked, packed `math` shards) and
scored by `minigpt eval math` on held-out problems -- every step through the real CLI.

    python benchmarks/bench_math.py --config examples/math-goal.toml      # the goal, 3 seeds
    python benchmarks/bench_math.py --config examples/math-goal.toml --smoke   # tiny, a minute

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
    mm |= {"seed": task.get("data_seed", 0), "tokenizer": "char"}
    if smoke:
        mm |= {"n": min(mm.get("n", SMOKE["n"]), SMOKE["n"]), "n_test": SMOKE["n_test"]}
    run([*CLI, "make-math", *flags(mm), "--out", str(data)], work / name / "make-math.log",
        threads)
    opts = dict(task.get("shard", {}))
    if smoke:
        opts["val"] = SMOKE["val"]
    cmd = [*CLI, "shard", "math", str(data), "--tokenizer", "char", "--out", str(shards)]
    for k, v in opts.items():
        cmd += ["--option", f"{k}={json.dumps(v) if isinstance(v, dict) else v}"]
    run(cmd, work / name / "shard.log", threads)
    return data


def train_and_score(name: str, task: dict, defaults: dict, seed: int, work: Path, bench: dict,
                    smoke: bool, threads: int) -> Result:
    data = work / name / "data"
    out = work / name / f"seed{seed}"
    settings = {**defaults, **task.get("pretrain", {}), "seed": seed}
    settings |= {"data": str(work / name / "shards"), "out": str(out), "resume": "auto"}
    if bench.get("budget") == "time":  # the wall-clock budget sets the run and its schedule
        settings.pop("max_steps", None)
        settings["max_time"] = settings.get("max_time", "10m")
    else:
        settings.pop("max_time", None)
    if smoke:
        settings["max_steps"] = SMOKE["max_steps"]
        settings.pop("max_time", None)
    load0 = os.getloadavg()[0]
    _, cpu = run([*CLI, "pretrain", *flags(settings)], out.with_suffix(".train.log"), threads)
    load1 = os.getloadavg()[0]
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = max(m["step"] for m in metrics if "step" in m)
    elapsed = max(m.get("elapsed", 0.0) for m in metrics)
    limit = SMOKE["limit"] if smoke else bench.get("eval_limit", 2000)
    train_limit = SMOKE["limit"] if smoke else bench.get("train_limit", limit)
    result_file = out.with_suffix(".eval.json")
    run([*CLI, "eval", "math", "--checkpoint", str(out), "--data", str(data), "--limit",
         str(limit), "--option", f"train_limit={train_limit}", "--output", str(result_file)],
        out.with_suffix(".eval.log"), threads)
    r = json.loads(result_file.read_text())
    m = r["metrics"]
    op = task["ops"].split(":")[0]
    return Result(name, op, task.get("format", "cot"), seed, m["acc"], m.get("train_acc"),
                  m.get("step_validity"), int(r["model"]["params"]), steps, elapsed / 60,
                  cpu / 60, (load0 + load1) / 2, int(r["items"]))


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
        r = train_and_score(name, tasks[name], defaults, seed, work, bench, a.smoke, threads)
        with lock:
            results.append(r)
            print(f"  {name} seed {seed}: {pct(r.acc)} test, {pct(r.train_acc)} train, "
                  f"{r.steps} steps, {r.train_min:.2f} min wall, {r.cpu_min:.2f} min CPU, "
                  f"load {r.load:.1f}", flush=True)
        return r

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, [(n, s) for n in names for s in seeds]))
    results.sort(key=lambda r: (names.index(r.task), r.seed))
    print()
    print(table(results))
    print(summary(results))
    (work / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
