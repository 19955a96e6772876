"""Plots of a run against tokens seen: train/val loss, learning rate, throughput (matplotlib,
an optional extra: ``pip install 'minigpt[report]'``)."""

from __future__ import annotations

import io
import statistics

from minigpt_cli.errors import MinigptError
from minigpt_cli.report.run import Run

INSTALL = "pip install 'minigpt[report]'  (or: pip install matplotlib)"


class PlotsUnavailable(MinigptError):
    pass


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotsUnavailable("The plots need matplotlib, which is not installed: "
                               f"{INSTALL}.") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _tokens_at(run: Run):
    """step -> tokens seen, from the step lines (linear in the step when a line is missing)."""
    known = {s["step"]: s["tokens_seen"] for s in run.steps if s.get("tokens_seen") is not None}
    per_step = None
    if known:
        last = max(known)
        per_step = known[last] / last if last else None
    if per_step is None:
        return (lambda step: step), "step"
    return (lambda step: known.get(step, step * per_step)), "tokens seen"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _series(rows: list[dict], key: str, x) -> tuple[list[float], list[float]]:
    pts = [(x(r["step"]), r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def make_plots(run: Run) -> dict[str, bytes]:
    """{"loss.png": ..., "lr.png": ..., "throughput.png": ...} (only those with data)."""
    plt = _pyplot()
    x, xlabel = _tokens_at(run)
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    tx, ty = _series(run.steps, "loss", x)
    vx, vy = _series(run.evals, "val_loss", x)
    if tx:
        ax.plot(tx, ty, lw=1, alpha=0.8, label="train loss")
    if vx:
        ax.plot(vx, vy, "o-", ms=3, label="val loss")
    for g in run.guard:
        ax.axvline(x(g["step"]), color="red", lw=0.8, alpha=0.5)
    ax.set(xlabel=xlabel, ylabel="loss (nats/token)", title="loss")
    ax.grid(alpha=0.3)
    ax.legend()
    out["loss.png"] = _png(fig)
    plt.close(fig)

    lx, ly = _series(run.steps, "lr", x)
    if lx:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(lx, ly, lw=1.2)
        ax.set(xlabel=xlabel, ylabel="learning rate", title="learning rate")
        ax.grid(alpha=0.3)
        out["lr.png"] = _png(fig)
        plt.close(fig)

    px, py = _series(run.steps, "tok_per_s", x)
    if px:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(px, py, lw=1, label="tokens/s")
        ax.set(xlabel=xlabel, ylabel="tokens/s", title="throughput")
        ax.grid(alpha=0.3)
        ratios = [s["mfu"] / s["tok_per_s"] for s in run.steps
                  if isinstance(s.get("mfu"), (int, float)) and s.get("tok_per_s")]
        if ratios:  # MFU is tokens/s times a constant: a second scale, not a second line
            k = 100 * statistics.median(ratios)
            right = ax.secondary_yaxis("right", functions=(lambda t: t * k, lambda m: m / k))
            right.set_ylabel("MFU %")
        out["throughput.png"] = _png(fig)
        plt.close(fig)
    return out
