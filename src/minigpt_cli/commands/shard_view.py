"""How `minigpt shard` looks: live progress on stderr, then the funnel and totals on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from minigpt_cli.commands.render import LiveView, err_console
from minigpt_cli.sharding.inputs import empty_inputs, summary

console = Console(highlight=False)


def _si(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.1f}{unit}"
    return f"{x:.0f}"


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ShardProgress(LiveView):
    """Renders the core's events (sharding.events) as a rich progress line."""

    def __init__(self) -> None:
        self._progress = Progress(SpinnerColumn(), BarColumn(bar_width=16),
                                  TextColumn("{task.fields[stats]}"), console=err_console,
                                  transient=False)
        self._task = None

    def on_event(self, e) -> None:
        from minigpt_cli.sharding import events as ev

        if isinstance(e, ev.Started):
            self._started(e)
        elif isinstance(e, ev.Progress) and self._task is not None:
            self._progress.update(self._task, completed=e.inputs_done, total=e.inputs_total,
                                  stats=stats_line(e))
        elif isinstance(e, ev.ShardDone):
            self._progress.console.print(f"[dim]wrote {e.name}: {e.tokens:,} tokens, "
                                         f"{e.documents:,} documents start in it[/dim]")
        elif isinstance(e, ev.Notice):
            self._progress.console.print(f"[yellow]note:[/yellow] {e.message}")
        elif isinstance(e, ev.Finished):
            self._progress.stop()
            finished(e)

    def _started(self, e) -> None:
        chain = " -> ".join(e.stages) if e.stages else "no filters"
        what = "building the char vocabulary" if e.phase == "vocabulary" else "sharding"
        msg = (f"{what}: {e.source} ({e.inputs_total} input{'s' * (e.inputs_total != 1)}) -> "
               f"{chain} -> {e.tokenizer} {_workers(e)} -> {e.out}")
        if e.resumed_shards or e.resumed_documents:
            msg += (f"\nresuming after {e.resumed_shards} finished shard(s), "
                    f"{e.resumed_documents:,} documents already read")
        self._progress.console.print(msg)
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(e.phase, total=e.inputs_total or None, stats="")


def stats_line(e) -> str:
    """One short line: inputs, documents (rate), kept %, tokens (rate), shards, bytes, ETA."""
    t = max(e.elapsed, 1e-6)
    docs, toks = e.documents - e.documents_at_start, e.tokens - e.tokens_at_start
    kept = f"{100 * e.kept / e.documents:.0f}%" if e.documents else "-"
    parts = ["vocabulary pass:"] if e.phase == "vocabulary" else []
    parts += [f"{e.inputs_done}/{e.inputs_total} in", f"{_si(e.documents)} docs ({_si(docs / t)}/s)",
              f"kept {kept}"]
    if e.phase == "shards":
        parts += [f"{_si(e.tokens)} tok ({_si(toks / t)}/s)", f"{e.shards} shards"]
    if e.bytes_read is not None:
        parts.append(f"{_si(e.bytes_read)}" + (f"/{_si(e.bytes_total)}" if e.bytes_total else "")
                     + "B")
    if e.bytes_downloaded:
        parts.append(f"{_si(e.bytes_downloaded)}B downloaded")
    if (eta := _eta(e)) is not None:
        parts.append(f"ETA {_duration(eta)}")
    return " · ".join(parts)


def _eta(e) -> float | None:
    """Seconds left: by bytes when the total is known, else by inputs when there are several."""
    if e.bytes_total and e.bytes_read is not None and e.bytes_read > e.bytes_at_start:
        rate = (e.bytes_read - e.bytes_at_start) / max(e.elapsed, 1e-6)
        return max(e.bytes_total - e.bytes_read, 0) / rate
    if e.inputs_total > 1 and 0 < e.inputs_done < e.inputs_total:
        return e.elapsed * (e.inputs_total - e.inputs_done) / e.inputs_done
    return None


def finished(e) -> None:
    m = e.manifest
    if e.already_complete:
        console.print(f"{e.out} is already complete ({m['totals']['shards']} shards, "
                      f"{m['totals']['tokens']:,} tokens); nothing to do.")
        return
    console.print(funnel_table(m))
    problems = input_problems(m)
    if problems:
        console.print("[yellow]input problems (counted, reading went on):[/yellow] "
                      + escape(problems))
    for line in empty_inputs([p for s in m["sources"] for p in s.get("provenance", [])]):
        err_console.print(f"[yellow]warning:[/yellow] {escape(line)}")
    t = m["totals"]
    rate = f" in {_duration(e.elapsed)} ({_si(t['tokens'] / max(e.elapsed, 1e-6))} tok/s)" \
        if e.elapsed else ""
    console.print(f"wrote {t['shards']} shard(s), {t['tokens']:,} tokens "
                  f"(val {t['val_tokens']:,}, train {t['train_tokens']:,}) from "
                  f"{t['documents_kept']:,} documents to {e.out}{rate}")


def funnel_table(m: dict[str, Any]) -> Table:
    table = Table(title="filter funnel", title_justify="left")
    for col in ("stage", "seen", "kept", "kept %", "rewritten", "dropped", "top drop reasons"):
        table.add_column(col, justify="left" if col in ("stage", "top drop reasons") else "right")
    table.add_row("source", f"{m['totals']['documents_read']:,}", "", "", "", "", "")
    for row in m["stages"]:
        reasons = sorted(row["dropped"].items(), key=lambda kv: -kv[1])[:3]
        pct = f"{100 * row['kept'] / row['seen']:.1f}" if row["seen"] else "-"
        table.add_row(row["name"], f"{row['seen']:,}", f"{row['kept']:,}", pct,
                      f"{row['modified']:,}", f"{row['dropped_total']:,}",
                      "; ".join(f"{k} ({v:,})" for k, v in reasons))
    return table


def input_problems(m: dict[str, Any]) -> str:
    """Each kind of problem with its count and the inputs that had it."""
    return summary([p for source in m["sources"] for p in source.get("provenance", [])])


def shard_check_line(check) -> None:
    if not check.ok:
        console.print(f"[red]FAIL[/red] {check.name}: " + "; ".join(check.problems))


def verify_summary(report) -> None:
    for p in report.problems:
        console.print(f"[red]FAIL[/red] {report.folder}: {p}")
    n = len(report.shards)
    tokens = sum(s.tokens for s in report.shards)
    if report.ok:
        console.print(f"OK: {n} shard(s), {tokens:,} tokens in {report.folder} match "
                      "manifest.json (headers, sizes, token and document counts, sha256).")
    else:
        console.print(f"[red]FAILED[/red]: {report.failures} problem(s) in {report.folder} "
                      f"({sum(not s.ok for s in report.shards)} of {n} shard(s) bad).")


def part_verified(report) -> None:
    err_console.print(f"verified {report.folder}: {len(report.shards)} shard(s) "
                      + ("ok" if report.ok else f"[red]{report.failures} problem(s)[/red]"))


def merged(m: dict[str, Any], out: Path) -> None:
    console.print(funnel_table(m))
    t = m["totals"]
    console.print(f"merged {len(m['merged_from'])} parts into {out}: {t['shards']} shard(s), "
                  f"{t['tokens']:,} tokens (val {t['val_tokens']:,}, train {t['train_tokens']:,})")


def _workers(e) -> str:
    if e.worker_kind == "inline":
        return "in this process"
    noun = "thread" if e.worker_kind == "threads" else "process"
    plural = "" if e.workers == 1 else "es" if noun == "process" else "s"
    return f"on {e.workers} worker {noun}{plural}"
