"""`minigpt report RUN_DIR`: a run card (markdown), plots (PNG) and one self-contained HTML page.

run    reading the run folder (settings, metrics.jsonl, checkpoints, data manifest, evals)
card   the summary numbers and the sections, rendered to markdown and HTML
plots  loss, learning rate and throughput against tokens seen (matplotlib, optional extra)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from minigpt_cli import atomic


@dataclass
class ReportFiles:
    folder: Path
    markdown: Path
    html: Path
    plots: list[Path] = field(default_factory=list)
    plots_missing: str | None = None  # why there are no plots (matplotlib not installed)
    summary: object = None  # card.Summary


def build_report(run_dir: Path | str, out: Path | str | None = None,
                 plots: bool = True) -> ReportFiles:
    """Read ``run_dir`` and write report.md, report.html and the PNGs into ``out``
    (default: ``run_dir/report``), each atomically."""
    from minigpt_cli.report import card
    from minigpt_cli.report.plots import PlotsUnavailable, make_plots
    from minigpt_cli.report.run import read_run

    run = read_run(run_dir)
    folder = Path(out) if out is not None else run.folder / "report"
    summary = card.summarize(run)
    secs = card.sections(run, summary)
    images: dict[str, bytes] = {}
    missing = None
    if plots:
        try:
            images = make_plots(run)
        except PlotsUnavailable as e:
            missing = str(e)
    written = []
    for name, data in images.items():
        atomic.write_bytes(folder / name, data)
        written.append(folder / name)
    md = card.markdown(run, secs, list(images))
    if missing:
        md += f"\n_{missing}_\n"
    atomic.write_text(folder / "report.md", md)
    page = card.html_page(run, secs, {k: base64.b64encode(v).decode() for k, v in images.items()},
                          missing)
    atomic.write_text(folder / "report.html", page)
    return ReportFiles(folder, folder / "report.md", folder / "report.html", written, missing,
                       summary)
