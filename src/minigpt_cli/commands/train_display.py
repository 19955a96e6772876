"""Rendering the training loop's events: a rich live display on a terminal, plain greppable lines
otherwise (`step 12/100 | loss 3.1234 | ...`): a step line every --print-every (steps or seconds),
every other event in full. Used by pretrain and finetune."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def _num(n: float) -> str:
    return f"{n:,.0f}"


def _dur(seconds: float) -> str:
    seconds = int(round(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def step_line(e) -> str:
    mfu = f"{100 * e.mfu:.1f}%" if e.mfu is not None else "n/a"
    skipped = " | skipped" if e.skipped else ""
    total = f"/{e.max_steps}" if e.max_steps else ""
    budget = f" of {_dur(e.max_time)}" if e.max_time else ""
    return (f"step {e.step}{total} | loss {e.loss:.4f} | lr {e.lr:.3e} | "
            f"norm {e.grad_norm:.4f} | tok/s {_num(e.tok_per_s)} | mfu {mfu} | "
            f"{e.step_time * 1000:.0f}ms | elapsed {_dur(e.elapsed)}{budget}{skipped}")


class TrainDisplay:
    """A listener for the loop's events; use as a context manager around the run."""

    def __init__(self, live: bool | None = None, print_every: str = "1") -> None:
        from minigpt_cli.train.settings import print_interval

        self.live = sys.stdout.isatty() if live is None else live
        self.every_steps, self.every_seconds = print_interval(print_every)
        self.printed_at: float | None = None  # the run's elapsed seconds at the last step line
        self.pending = None  # the newest step event not printed yet (plain lines only)
        self.console = Console(highlight=False, soft_wrap=True)
        self.progress: Progress | None = None
        self.task = None
        self.by_time = False  # a --max-time run: the bar shows the budget spent

    def __enter__(self) -> TrainDisplay:
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, emoji=False)
        elif self.live:
            self.console.print(text, markup=False, emoji=False)
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def __call__(self, e) -> None:
        kind = type(e).__name__
        if kind != "StepEvent" and self.pending is not None:
            self._print_step(self.pending)  # the step an eval, sample, checkpoint... follows
        getattr(self, f"_on_{kind}", lambda _: None)(e)

    def _due(self, e) -> bool:
        if self.printed_at is None or e.skipped or (e.max_steps and e.step >= e.max_steps):
            return True
        if self.every_steps:
            return e.step % self.every_steps == 0
        return e.elapsed - self.printed_at >= self.every_seconds

    def _print_step(self, e) -> None:
        self.pending = None
        self.printed_at = e.elapsed
        self._print(step_line(e))

    def _on_RunStarted(self, e) -> None:
        proc = "process" if e.world == 1 else "processes"
        self._print(
            f"run {e.run_dir} | {_num(e.params)} params | {_num(e.tokens_per_step)} tokens/step = "
            f"{e.micro_batch} x {e.seq_len} x {e.world} {proc} x {e.accum} accumulation | "
            f"{e.device} {e.dtype} | " + (f"steps {e.step + 1}..{e.max_steps}" if e.max_steps
                                          else f"from step {e.step + 1}")
            + (f" | budget {_dur(e.max_time)}" if e.max_time else "")
        )
        for note in e.notes:
            self._print(f"note: {note}")
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.percentage:.0f}% of the time budget" if e.max_time
                           else "[bold]step {task.completed}/{task.total}"), BarColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"), console=self.console, transient=False,
            )
            self.progress.start()
            self.by_time = bool(e.max_time)
            total, done = (e.max_time, 0) if self.by_time else (e.max_steps, e.step)
            self.task = self.progress.add_task("train", total=total, completed=done, stats="")

    def _on_StepEvent(self, e) -> None:
        if self.progress is None:
            if self._due(e):
                self._print_step(e)
            else:
                self.pending = e
            return
        mfu = f" mfu {100 * e.mfu:.1f}%" if e.mfu is not None else ""
        stats = (f"loss {e.loss:.4f} lr {e.lr:.2e} norm {e.grad_norm:.3f} "
                 f"tok/s {_num(e.tok_per_s)}{mfu}")
        done = min(e.elapsed, e.max_time) if self.by_time else e.step
        self.progress.update(self.task, completed=done, stats=f"step {e.step} " * self.by_time
                             + stats)

    def _on_EvalEvent(self, e) -> None:
        best = " (best)" if e.best else ""
        self._print(f"eval step {e.step} | val_loss {e.val_loss:.4f}{best}")

    def _on_SampleEvent(self, e) -> None:
        self._print(f"sample step {e.step} | " + e.text.replace("\n", "\\n"))

    def _on_CheckpointEvent(self, e) -> None:
        self._print(f"checkpoint step {e.step} | {e.path} ({e.reason})")

    def _on_GuardEvent(self, e) -> None:
        self._print(f"guard step {e.step} | {e.action} | {e.message}")

    def _on_RunFinished(self, e) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        best = ""
        if e.best_val is not None:
            best = f" | best val_loss {e.best_val:.4f} at step {e.best_step}"
        why = {"max_steps": "reached --max-steps", "signal": "stopped by a signal, saved",
               "early_stop": "early stop: val loss stopped improving",
               "max_time": "reached --max-time"}.get(e.reason, e.reason)
        self._print(f"done step {e.step} | {why}{best} | checkpoint {e.last_checkpoint} | "
                    f"{_dur(e.elapsed)}")


def plan_table(p) -> Table:
    t = Table(title="Training plan (nothing was trained)", show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    gib = 1024**3
    proc = "process" if p.world == 1 else "processes"
    rows = [
        ("parameters", _num(p.params)),
        ("tokens per step", f"{_num(p.tokens_per_step)} = micro-batch {p.micro_batch} x seq "
         f"{p.seq_len} x {p.world} {proc} x {p.accum} accumulation steps"),
        ("FLOPs per step", f"{p.flops_per_step:.3e}"),
        ("memory (estimate)", f"{p.memory_bytes / gib:.2f} GiB per process "
         f"({p.memory_available / gib:.1f} GiB available)"),
        ("device", f"{p.device} {p.dtype}"),
        ("measured step", f"{p.step_seconds:.3f} s -> {_num(p.tok_per_s)} tokens/s"
         + (f", MFU {100 * p.mfu:.1f}%" if p.mfu is not None else "")),
        ("ETA", f"{_dur(p.eta_seconds)} for steps {p.start_step + 1}..{p.max_steps}"),
    ]
    if p.target_tokens:
        rows.append(("ETA to target", f"{_dur(p.target_seconds)} for {_num(p.target_tokens)} "
                     "tokens"))
    if p.cost is not None:
        rows.append(("cost", f"{p.cost:,.2f} (device-hours x --cost-per-hour)"))
    rows.append(("disk", f"{p.checkpoint_bytes / gib:.2f} GiB per checkpoint, "
                 f"{p.disk_bytes / gib:.2f} GiB for the kept ones"))
    for k, v in rows:
        t.add_row(k, v)
    return t
