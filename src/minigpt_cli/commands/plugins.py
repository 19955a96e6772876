"""`minigpt plugins`: every installed source, stage and eval, its options and its package."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer


def plugins(
    kind: Annotated[str | None, typer.Argument(help="Only this kind: source | stage | eval.",
                                               show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List installed plugins (entry-point groups minigpt.sources / .stages / .evals)."""
    from rich.console import Console

    from minigpt_cli.errors import MinigptError
    from minigpt_cli.sharding.catalog import KINDS, describe_all

    if kind is not None and kind not in KINDS:
        raise MinigptError(f"Unknown plugin kind {kind!r}; the kinds are {', '.join(KINDS)}.")
    entries = [e for e in describe_all() if kind is None or e.kind == kind]
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in entries], indent=2, default=str))
        return
    console = Console(highlight=False)
    for k in KINDS if kind is None else (kind,):
        mine = [e for e in entries if e.kind == k]
        console.print(f"[bold]{k}s[/bold] ({len(mine)})" + ("" if mine else ": none installed"))
        for e in mine:
            flag = "" if e.stateless is None else (" [dim](stateless)[/dim]" if e.stateless
                                                   else " [dim](stateful)[/dim]")
            console.print(f"  [bold cyan]{e.name}[/bold cyan]{flag}  from {e.package} "
                          f"{e.version} ({e.target})" + (f"\n    {e.summary}" if e.summary else ""))
            if e.error:
                console.print(f"    [red]cannot load:[/red] {e.error}")
                continue
            for o in e.options:
                console.print(f"    [green]{o.name}[/green] ({o.type}, default "
                              f"{json.dumps(o.default)}): {o.description}")
