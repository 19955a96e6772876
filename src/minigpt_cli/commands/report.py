"""`minigpt report RUN_DIR`: the run card (markdown), plots (PNG) and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (the --out of `minigpt "
                                            "pretrain`).", show_default=False)],
    out: Annotated[Path | None, typer.Option(help="Where to write the report (default: "
                   "RUN_DIR/report).")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the plots (needs "
                     "matplotlib: pip install 'minigpt\\[report]').")] = True,
) -> None:
    """Write a run report: settings, data, final metrics, hardware, wall-clock, tokens seen,
    checkpoints with their evals, and plots of loss, learning rate and tokens/s."""
    from rich.console import Console
    from rich.markup import escape

    from minigpt_cli.commands.render import err_console
    from minigpt_cli.report import build_report
    from minigpt_cli.report.card import duration

    files = build_report(run_dir, out, plots)
    s = files.summary
    console = Console(highlight=False)
    val = f", val loss {s.final_val:.4f}" if s.final_val is not None else ""
    loss = f", train loss {s.final_loss:.4f}" if s.final_loss is not None else ""
    tokens = f", {s.tokens_seen:,} tokens" if s.tokens_seen is not None else ""
    console.print(f"{Path(run_dir).name}: step {s.last_step:,}{tokens}{loss}{val}, "
                  f"{duration(s.elapsed)} of training")
    for p in [files.markdown, files.html, *files.plots]:
        console.print(f"wrote {p}")
    if files.plots_missing:
        err_console.print(f"[yellow]warning:[/yellow] no plots: {escape(files.plots_missing)}",
                          soft_wrap=True)
