"""`minigpt make-math`: arithmetic problems with checked step-by-step solutions, as JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minigpt_cli.commands.options import ConfigOpt
from minigpt_cli.commands.render import err_console

WHAT = "Problems"
HOW = "Format"
RUN = "Output"


def make_math(
    n: Annotated[int | None, typer.Option("--n", help="Training problems in all, split evenly "
                 "over the operations (default 100000).", rich_help_panel=WHAT)] = None,
    n_test: Annotated[int | None, typer.Option(help="Held-out problems per operation, disjoint "
                      "from training by operand pair (default 2000).", rich_help_panel=WHAT)]
    = None,
    n_test_cell: Annotated[int | None, typer.Option(help="Held-out problems per (operation, "
                           "lengths) cell instead of --n-test; a cell that cannot hold out "
                           "this many is refused.", rich_help_panel=WHAT)] = None,
    ops: Annotated[str | None, typer.Option(help="Operations with lengths per operation, "
                   "default '+:1-5,-:1-5,*:1-3,/:1-5x1-2' (OP:AxB = digits of a x b); "
                   "'+,-,*,/' takes --digits.", rich_help_panel=WHAT)] = None,
    digits: Annotated[str | None, typer.Option(help="Operand lengths, e.g. 3 or 1-3, for both "
                      "operands (default 1-3).", rich_help_panel=WHAT)] = None,
    digits_a: Annotated[str | None, typer.Option(help="Lengths of the first operand (default: "
                        "--digits).", rich_help_panel=WHAT)] = None,
    digits_b: Annotated[str | None, typer.Option(help="Lengths of the second operand / divisor "
                        "(default: --digits).", rich_help_panel=WHAT)] = None,
    balance: Annotated[str | None, typer.Option(help="carries: even over lengths, then carry "
                       "counts (default); lengths; none (uniform).", rich_help_panel=WHAT)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).",
                    rich_help_panel=WHAT)] = None,
    format: Annotated[str | None, typer.Option("--format", help="cot: steps then the answer "
                      "(default); plain: answer only; reverse: answer digits reversed.",
                      rich_help_panel=HOW)] = None,
    tokenizer: Annotated[str | None, typer.Option(help="char (default) or gpt2 (writes a space "
                         "before every character: one BPE token per digit).",
                         rich_help_panel=HOW)] = None,
    spaced_digits: Annotated[bool | None, typer.Option("--spaced-digits/--no-spaced-digits",
                             help="Override the spacing --tokenizer implies.",
                             rich_help_panel=HOW)] = None,
    block_size: Annotated[int | None, typer.Option(help="Fail unless the longest example plus "
                          "end-of-text fits this many tokens.", rich_help_panel=HOW)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for train.jsonl, "
                   "test.jsonl, meta.json, settings.json (required).", rich_help_panel=RUN)]
    = None,
    workers: Annotated[int | None, typer.Option(help="Processes (0 = one per core, max 8) "
                       "(default 0).", rich_help_panel=RUN)] = None,
    config: ConfigOpt = None,
) -> None:
    """Generate +, -, *, / problems whose solutions show the grade-school steps; every line is
    re-checked by an independent checker before it is written."""
    flags = dict(locals())
    flags.pop("config")
    from minigpt_cli.mathgen.dataset import make_math as run
    from minigpt_cli.mathgen.settings import MakeMathSettings
    from minigpt_cli.settings import resolve

    s = resolve(MakeMathSettings, "make-math", flags, config)
    with _ProgressView() as view:
        meta = run(s, view.on_event)
    for op, info in meta["ops"].items():
        err_console.print(f"  {info['digits']:<12} train {info['train']:>9,}  test "
                          f"{info['test']:>6,}  longest {meta['max_tokens'][op]} tokens")
    err_console.print(f"wrote {s.out}/train.jsonl and test.jsonl in {meta['seconds']:.1f}s; "
                      f"block size needed: {meta['block_size_needed']} (with end-of-text)")


class _ProgressView:
    """Renders the core's events: notes, then a progress bar over lines written."""

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err_console, transient=True)
        self.task = None
        return self

    def on_event(self, e) -> None:
        from minigpt_cli.mathgen.dataset import Planned, Progress

        if isinstance(e, Planned):
            for note in e.notes:
                err_console.print(f"[yellow]note:[/yellow] {note}")
            self.bar.start()
            self.task = self.bar.add_task(f"checking and writing ({e.workers} proc)",
                                          total=e.train + e.test)
        elif isinstance(e, Progress) and self.task is not None:
            self.bar.update(self.task, completed=e.done)

    def __exit__(self, *exc):
        self.bar.stop()
