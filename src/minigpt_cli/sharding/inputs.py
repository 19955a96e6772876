"""What each input of a shard run gave, in words: its problems (counted, reading went on) and,
for an input that gave no document, why -- read from the provenance entries sources keep
(sources/files.py, sources/wet.py), so the CLI and the errors name the file every time."""

from __future__ import annotations

from typing import Any

from minigpt_cli.sharding.funnel import Funnel

# provenance keys that record a problem, as they are named to a user
PROBLEMS = {
    "binary": "binary, skipped",
    "invalid_utf8": "invalid utf8",
    "bad_records": "bad records",
    "missing_text": "missing text",
    "truncated": "truncated",
    "unreadable": "unreadable",
    "error_count": "errors",
    "error": "errors",
}
SHOWN = 3  # inputs named per problem before "and N more"


def problem_counts(p: dict[str, Any]) -> dict[str, int]:
    """{problem: count} of one provenance entry (a flag such as ``truncated`` counts 1)."""
    out = {}
    for key, name in PROBLEMS.items():
        value = p.get(key)
        if not value:
            continue
        n = value if isinstance(value, int) and not isinstance(value, bool) else 1
        out[name] = out.get(name, 0) + n
    return out


def summary(provenance: list[dict[str, Any]]) -> str:
    """``truncated: 1 (b.jsonl.gz), invalid utf8: 3 (a.txt, c.txt)``; "" when none."""
    counts: dict[str, int] = {}
    where: dict[str, list[str]] = {}
    for p in provenance:
        for name, n in problem_counts(p).items():
            counts[name] = counts.get(name, 0) + n
            where.setdefault(name, []).append(_name(p))
    parts = []
    for name, n in counts.items():
        files = where[name]
        more = f" and {len(files) - SHOWN} more" if len(files) > SHOWN else ""
        parts.append(f"{name}: {n} ({', '.join(files[:SHOWN])}{more})")
    return ", ".join(parts)


def why_empty(p: dict[str, Any]) -> str:
    """Why an input gave no document, in one clause."""
    if p.get("binary"):
        return f"skipped, {p['binary']}"
    errors = p.get("errors")
    if isinstance(errors, list) and errors:  # commoncrawl: the first message says it all
        return errors[0].removeprefix(f"{p.get('input')} ").removeprefix(f"{p.get('input')}: ")
    if p.get("unreadable"):
        return f"could not be read ({p['unreadable']})"
    if p.get("truncated"):
        return f"is truncated or corrupt before its first document ({p['truncated']})"
    if not p.get("bytes") and "records" not in p:
        return "is empty (0 bytes)"
    if p.get("records") == 0:
        return "holds no records"
    if p.get("records") and p.get("missing_text") == p.get("records"):
        return f"none of its {p['records']} records has the text field (set text_field)"
    if p.get("records") and p.get("bad_records") == p.get("records"):
        return f"none of its {p['records']} lines is a JSON object"
    if p.get("invalid_utf8") and p.get("documents") == 0:
        return "its text is not UTF-8 and encoding_errors=skip dropped it"
    if p.get("empty_documents"):
        return f"its {p['empty_documents']} records hold no text"
    return "holds no text (only blank lines or whitespace)"


def empty_inputs(provenance: list[dict[str, Any]]) -> list[str]:
    """``"<input> gave no documents: <why>"`` for each input that gave none."""
    return [f"{_name(p)} gave no documents: {why_empty(p).rstrip('.')}" for p in provenance
            if p.get("documents") == 0 and p.get("input") is not None]


def no_documents_message(source: str, provenance: list[dict[str, Any]]) -> str:
    """The error when the source gave no document at all: each input and why."""
    lines = empty_inputs(provenance)
    if not lines:
        return (f"The {source} source yielded no documents (it reported no inputs). Nothing was "
                "written. Check its options (`minigpt plugins source` lists them).")
    more = f"; and {len(lines) - 5} more input(s)" if len(lines) > 5 else ""
    return (f"The {source} source yielded no documents, so nothing was written: "
            + "; ".join(lines[:5]) + more + ".")


def _name(p: dict[str, Any]) -> str:
    return str(p.get("input", "?"))


def no_documents_left(source: str, funnel: Funnel, provenance: list[dict[str, Any]]) -> str:
    """Why a run kept no document: its inputs gave none (each input's reason), or the stages
    dropped them all (each stage's counts)."""
    if funnel.read == 0:
        return no_documents_message(source, provenance)
    drops = "; ".join(f"{r.name} dropped {r.dropped_total}"
                      f" ({', '.join(f'{k}: {v}' for k, v in r.dropped.items())})"
                      for r in funnel.rows if r.dropped_total)
    return (f"No documents were left after filtering: {funnel.read} read; {drops}. Nothing "
            "was written. Loosen the stages' options (--stage-option) or choose other stages.")
