"""How `minigpt eval` looks: progress on stderr, result tables on stdout."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from minigpt_cli.commands.render import LiveView, err_console

console = Console(highlight=False)


class EvalProgress(LiveView):
    """Renders runner events (Started, Progress, Written, Reused) as a rich progress bar."""

    def __init__(self) -> None:
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30),
                                  MofNCompleteColumn(), TaskProgressColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=err_console, transient=True)
        self._bars: dict[tuple[str, str], Any] = {}

    def on_event(self, e) -> None:
        from minigpt_cli.evals.runner import Reused, Started, Written
        from minigpt_cli.evals.task import Progress as P

        if isinstance(e, Started):
            n = f" ({e.index + 1}/{e.count})" if e.count > 1 else ""
            self._progress.console.print(f"[dim]{e.task}{n}: {e.what}[/dim]")
            for bar in self._bars.values():
                self._progress.remove_task(bar)
            self._bars.clear()
        elif isinstance(e, P):
            key = (e.stage, e.unit)
            if key not in self._bars:
                label = f"{e.task} {e.stage} ({e.unit})".replace(" ()", "")
                self._bars[key] = self._progress.add_task(label, total=e.total)
            self._progress.update(self._bars[key], completed=e.done, total=e.total)
        elif isinstance(e, Written):
            self._progress.console.print(f"[dim]wrote {e.path}[/dim]")
        elif isinstance(e, Reused):
            why = " (same weights, data and options)" if e.checked else ""
            self._progress.console.print(f"[dim]{e.what}: reusing {e.path}{why}[/dim]")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_result(doc: dict) -> None:
    task, m, d = doc["task"], doc["metrics"], doc.get("details", {})
    model = doc["model"]
    where = model.get("path") or "built-in model"
    table = Table(title=f"{task}: {where}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in m.items():
        table.add_row(k, _fmt(v))
    table.add_row("items" if d.get("unit") in (None, "items") else d["unit"], _fmt(doc["items"]))
    rt = doc["runtime"]
    console.print(table)
    console.print(f"[dim]{rt['seconds']:.1f} s, {rt['items_per_s']:.1f} "
                  f"{d.get('unit', 'items')}/s on {rt['device']} ({rt['dtype']})[/dim]")
    if task == "math":
        _print_math(d)
    if task == "loss" and d.get("bytes"):
        console.print(f"[dim]{d['data_kind']}: {doc['items']:,} tokens = {d['bytes']:,} bytes = "
                      f"{d['chars']:,} chars; windows of {d['seq_len']}, stride {d['stride']}"
                      "[/dim]")
    if d.get("cropped"):
        console.print(f"[yellow]note:[/yellow] {d['cropped']} item(s) were longer than the "
                      "model's context; their contexts were cropped from the left.")
    if d.get("skipped"):
        console.print(f"[yellow]note:[/yellow] {d['skipped']} item(s) were skipped "
                      "(characters outside the model's vocabulary).")


def _print_math(d: dict) -> None:
    splits = d.get("splits", {})
    test, train = splits.get("test", {}), splits.get("train") or {}
    n_train = train.get("n")
    table = Table(title="by operation and operand lengths: exact match and step validity, "
                  f"held-out test | train ({_fmt(n_train)} training problems; gap = train - "
                  "test, points)", title_justify="left")
    for col in ("cell", "n", "exact", "steps valid", "train exact", "train steps", "gap"):
        table.add_column(col, justify="left" if col == "cell" else "right")
    for key in ("by_op", "by_length"):
        for name, row in test.get(key, {}).items():
            tr = train.get(key, {}).get(name, {})
            gap = None if tr.get("acc") is None else tr["acc"] - row["acc"]
            table.add_row(name, _fmt(row["n"]), _pct(row["acc"]), _pct(row["step_validity"]),
                          _pct(tr.get("acc")),
                          _pct(tr.get("step_validity")),
                          "-" if gap is None else f"{100 * gap:+.1f}")
    console.print(table)
    misses = test.get("mistakes", [])
    if misses:
        console.print(f"first wrong step of {len(misses)} of the {test.get('failures', '?')} "
                      "failures (one per failing cell first):")
    for miss in misses:
        console.print(f"  [red]wrong:[/red] {miss['prompt']}{miss['output']}  "
                      f"[dim](expected {miss['expected']}; {miss['error']})[/dim]")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def print_comparison(c) -> None:
    table = Table(title=f"{c.task}: comparison", title_justify="left")
    table.add_column("model")
    table.add_column("items", justify="right")
    for k in c.headline:
        table.add_column(k, justify="right")
    for label, metrics, items in c.rows:
        table.add_row(label, _fmt(items), *(_fmt(metrics.get(k)) for k in c.headline))
    for label, metrics in c.references.items():
        table.add_row(f"[dim]{label}[/dim]", "[dim]ref[/dim]",
                      *(f"[dim]{_fmt(metrics.get(k))}[/dim]" for k in c.headline))
    console.print(table)
