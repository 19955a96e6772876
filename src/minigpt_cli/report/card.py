"""The run card: the numbers a person wants from a run, as sections rendered to markdown and
to HTML (the same sections, so the two never disagree)."""

from __future__ import annotations

import html
import platform
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from minigpt_cli import __version__
from minigpt_cli.model_config import GPTConfig, describe_switches
from minigpt_cli.report.run import Run

SETTINGS_SHOWN = ("model", "data", "tokens_per_step", "micro_batch", "seq_len", "max_steps",
                  "lr", "min_lr_ratio", "schedule", "warmup_steps", "weight_decay", "grad_clip",
                  "dropout", "dtype", "device", "compile", "seed", "eval_every", "eval_batches",
                  "checkpoint_every")


@dataclass
class Section:
    title: str
    header: list[str] | None = None  # None: a key/value table
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass
class Summary:
    last_step: int
    tokens_seen: int | None
    elapsed: float | None
    final_loss: float | None  # mean of the last (up to) 10 logged steps
    final_val: float | None
    final_val_step: int | None
    best_val: float | None
    best_step: int | None
    tok_per_s: float | None  # median over logged steps, the first 10% left out (warm-up)
    mfu: float | None
    skipped: int


def summarize(run: Run) -> Summary:
    steps = run.steps
    last = steps[-1] if steps else {}
    tail = [s["loss"] for s in steps[-10:] if isinstance(s.get("loss"), (int, float))]
    warm = steps[len(steps) // 10 :] if len(steps) > 1 else steps
    tps = [s["tok_per_s"] for s in warm if isinstance(s.get("tok_per_s"), (int, float))]
    mfu = [s["mfu"] for s in warm if isinstance(s.get("mfu"), (int, float))]
    vals = [e for e in run.evals if isinstance(e.get("val_loss"), (int, float))]
    best = min(vals, key=lambda e: e["val_loss"]) if vals else None
    return Summary(
        last_step=max([s["step"] for s in steps + run.evals] or [0]),
        tokens_seen=last.get("tokens_seen"),
        elapsed=last.get("elapsed"),
        final_loss=sum(tail) / len(tail) if tail else None,
        final_val=vals[-1]["val_loss"] if vals else None,
        final_val_step=vals[-1]["step"] if vals else None,
        best_val=best["val_loss"] if best else None,
        best_step=best["step"] if best else None,
        tok_per_s=statistics.median(tps) if tps else None,
        mfu=statistics.median(mfu) if mfu else None,
        skipped=sum(1 for s in steps if s.get("skipped")),
    )


def sections(run: Run, summary: Summary) -> list[Section]:
    s, out = summary, []
    max_steps = run.settings.get("max_steps")
    out.append(Section("Summary", rows=[
        ["steps", f"{_num(s.last_step)}" + (f" of {_num(max_steps)}" if max_steps else "")],
        ["tokens seen", _num(s.tokens_seen)],
        ["wall-clock (training)", duration(s.elapsed)],
        ["final train loss (mean of last 10 logged steps)", _num(s.final_loss)],
        ["final val loss", f"{_num(s.final_val)} (step {_num(s.final_val_step)})"
         if s.final_val is not None else "-"],
        ["best val loss", f"{_num(s.best_val)} (step {_num(s.best_step)})"
         if s.best_val is not None else "-"],
        ["tokens/s (median)", _num(s.tok_per_s, 1)],
        ["MFU (median)", f"{100 * s.mfu:.1f}%" if s.mfu is not None else "-"],
        ["updates skipped by the guard", _num(s.skipped)],
    ]))
    model = run.checkpoints[-1].model if run.checkpoints else {}
    if model:
        c = model["config"]
        out.append(Section("Model", rows=[
            ["parameters", _num(model["params"])],
            ["layers / heads / width", f"{c['n_layer']} / {c['n_head']} / {c['n_embd']}"],
            ["architecture", describe_switches(GPTConfig.from_dict(c))],
            ["context", _num(c["block_size"])], ["vocabulary", _num(c["vocab_size"])],
            ["tokenizer", model["tokenizer"]]]))
    out.append(_data_section(run))
    out.append(_hardware_section(run))
    shown = [[k, _num(run.settings[k])] for k in SETTINGS_SHOWN if k in run.settings]
    note = f"All settings: {run.folder.name}/settings.json." if shown else \
        "settings.json is missing from the run folder."
    out.append(Section("Settings", rows=shown, notes=[note]))
    out.append(_checkpoint_section(run))
    if run.guard:
        out.append(Section("Instability guard events", ["step", "action", "message"],
                           [[_num(g["step"]), str(g.get("event")), str(g.get("message", ""))]
                            for g in run.guard]))
    return out


def _data_section(run: Run) -> Section:
    m = run.manifest
    if not m:
        data = run.settings.get("data")
        return Section("Data", notes=[f"No manifest.json found for data {data!r}."
                                      if data else "The settings do not name the data."])
    t = m.get("totals") or _totals(m.get("shards"))
    tok = m.get("tokenizer", {})
    rows = [["manifest", str(run.manifest_path)],
            ["tokenizer", f"{tok.get('name', '?')} ({str(tok.get('hash', ''))[:12]})"],
            ["shards", _num(t.get("shards"))], ["train tokens", _num(t.get("train_tokens"))],
            ["val tokens", _num(t.get("val_tokens"))],
            ["documents kept / read",
             f"{_num(t.get('documents_kept'))} / {_num(t.get('documents_read'))}"]]
    sources = ", ".join(str(src.get("name") or src.get("source") or "?")
                        for src in m.get("sources", []) if isinstance(src, dict))
    if sources:
        rows.append(["sources", sources])
    stages = [st.get("name", "?") for st in m.get("stages", []) if isinstance(st, dict)]
    if stages:
        rows.append(["stages", " -> ".join(stages)])
    return Section("Data", rows=rows)


def _totals(entries) -> dict[str, int]:
    """Totals from the per-shard entries when the manifest has none."""
    entries = [e for e in entries or [] if isinstance(e, dict) and isinstance(e.get("tokens"), int)]
    if not entries:
        return {}

    def split(e) -> str:
        return str(e.get("split") or str(e.get("name", "")).split("_")[0])

    return {"shards": len(entries),
            "train_tokens": sum(e["tokens"] for e in entries if split(e) == "train"),
            "val_tokens": sum(e["tokens"] for e in entries if split(e) == "val")}


def _hardware_section(run: Run) -> Section:
    if run.hardware:
        return Section("Hardware", rows=[[k, _num(v)] for k, v in run.hardware.items()])
    return Section("Hardware", rows=[
        ["device (setting)", str(run.settings.get("device", "-"))],
        ["dtype (setting)", str(run.settings.get("dtype", "-"))]],
        notes=[("The run folder does not record the machine (no run.json); the report was "
                f"written on {platform.node() or 'this machine'} ({platform.machine()}, "
                f"{platform.system()}).")])


def _checkpoint_section(run: Run) -> Section:
    tasks = sorted({t for c in run.checkpoints for t in c.evals})
    rows = []
    for c in run.checkpoints:
        val = c.state.get("val_loss")
        cells = [c.path.name, _num(c.state.get("tokens_seen")), _num(val),
                 str(c.state.get("reason", "-"))]
        for t in tasks:
            doc = c.evals.get(t)
            cells.append(", ".join(f"{k} {_num(v)}" for k, v in list(doc["metrics"].items())[:3])
                         if doc else "-")
        rows.append(cells)
    notes = [] if rows else ["No checkpoint folders (step_XXXXXX/) in the run folder."]
    return Section("Checkpoints", ["checkpoint", "tokens seen", "val loss", "saved because",
                                   *(f"eval {t}" for t in tasks)], rows, notes)


def title(run: Run) -> tuple[str, str]:
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sub = f"{run.folder.resolve()} · written {when} by minigpt {__version__}"
    return f"Run report: {run.folder.name}", sub


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(run: Run, secs: list[Section], plots: list[str]) -> str:
    head, sub = title(run)
    lines = [f"# {head}", "", f"_{sub}_", ""]
    for sec in secs:
        lines += [f"## {sec.title}", ""]
        if sec.rows:
            header = sec.header or ["", ""]
            lines.append("| " + " | ".join(map(_md_cell, header)) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in sec.rows]
            lines.append("")
        lines += [*sec.notes, ""] if sec.notes else []
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
       "color:#222}table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid "
       "#ccc;padding:.25rem .6rem;text-align:left}th{background:#f3f3f3}img{max-width:100%}"
       ".sub{color:#666}")


def html_page(run: Run, secs: list[Section], images: dict[str, str], missing: str | None) -> str:
    """A self-contained page: the images are embedded as base64 data URIs."""
    head, sub = title(run)
    e = html.escape
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{e(head)}</title>"
              f"<style>{CSS}</style></head><body><h1>{e(head)}</h1><p class='sub'>{e(sub)}</p>")]
    if images or missing:
        parts.append("<h2>Plots</h2>")
        parts += [f"<img alt='{e(name)}' src='data:image/png;base64,{b64}'>"
                  for name, b64 in images.items()]
        if missing:
            parts.append(f"<p>{e(missing)}</p>")
    for sec in secs:
        parts.append(f"<h2>{e(sec.title)}</h2>")
        if sec.rows:
            parts.append("<table>")
            if sec.header:
                parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in sec.header) + "</tr>")
            for r in sec.rows:
                tag = "td" if sec.header else "th"
                cells = [f"<{tag}>{e(r[0])}</{tag}>"] + [f"<td>{e(c)}</td>" for c in r[1:]]
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</table>")
        parts += [f"<p>{e(n)}</p>" for n in sec.notes]
    parts.append("</body></html>\n")
    return "\n".join(parts)
