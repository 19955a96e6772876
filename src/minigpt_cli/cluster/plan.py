"""A job's plan, ``OUT/.job/plan.json``: its settings' fingerprint, part count and inputs as
they were (size and modification time of local files), written once; a resumed job must find
the same, or the finished tasks would no longer describe its inputs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError

NAME = "plan.json"
FORMAT = 1


@dataclass(frozen=True)
class Plan:
    fingerprint: str
    parts: int
    inputs: list[dict[str, Any]]


def describe(inputs: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in inputs:
        path = Path(name)
        entry: dict[str, Any] = {"input": name}
        if "://" not in name and path.is_file():
            st = path.stat()
            entry |= {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        out.append(entry)
    return out


def settle(folder: Path, plan: Plan) -> Plan:
    """The plan in ``folder`` if it matches ``plan``; written there if there is none."""
    path = folder / NAME
    if not path.exists():
        atomic.write_json(path, {"format": FORMAT, **asdict(plan)})
        return plan
    try:
        d = json.loads(path.read_text())
        d.pop("format")
        old = Plan(**d)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise MinigptError(f"The job plan {path} cannot be read ({e}). Delete {folder} to plan "
                           "the job again (its finished parts are lost).") from None
    where = f"The unfinished job in {folder.parent}"
    if old.fingerprint != plan.fingerprint or old.parts != plan.parts:
        raise MinigptError(f"{where} was planned with other settings (source, inputs, stages, "
                           "tokenizer, shard size or --parts). Run the same command again to "
                           f"resume it, choose another --out, or delete {folder.parent}.")
    was = {e["input"]: e for e in old.inputs}
    changed = [e["input"] for e in plan.inputs if was.get(e["input"]) != e]
    changed += [name for name in was if name not in {e["input"] for e in plan.inputs}]
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise MinigptError(f"{where} was planned on inputs that have changed since (size, time "
                           f"or presence): {', '.join(changed[:3])}{more}. Its finished parts "
                           f"are kept in {folder}; put the inputs back as they were to resume, "
                           f"or delete {folder.parent} to start over.")
    return old
