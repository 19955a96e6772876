"""`minigpt plugins`: every installed source, stage and eval, its options and its package; or one
plugin in full (`minigpt plugins commoncrawl`): its options with type, default and description,
and how to set them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

HOW = {  # how a user sets a plugin's options, by kind
    "source": "set with -o KEY=VALUE: `minigpt shard {name} INPUT... -o KEY=VALUE`, or in the "
              "\\[shard.options] table of a --config file",
    "stage": "set with -S {name}.KEY=VALUE after `--stage {name}`, or beside name = \"{name}\" in "
             "a \\[\\[shard.stages]] table of a --config file",
    "eval": "set with --option KEY=VALUE: `minigpt eval {name} --option KEY=VALUE`, or in the "
            "\\[eval.options] table of a --config file",
}


def plugins(
    what: Annotated[str | None, typer.Argument(
        metavar="[KIND|NAME]", show_default=False,
        help="A kind to list (source | stage | eval), or a plugin's name to show in full.")] = None,
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", show_default=False,
        help="After a KIND: the plugin of that kind to show (`minigpt plugins source math`).",
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List installed plugins (entry-point groups minigpt.sources / .stages / .evals), or show
    one with every option's type, default and description: `minigpt plugins commoncrawl`."""
    from rich.console import Console

    from minigpt_cli.errors import MinigptError
    from minigpt_cli.plugin_catalog import KINDS, describe_all, find

    kind = what if what in KINDS else None
    if name is not None and kind is None:
        raise MinigptError(f"Unknown plugin kind {what!r}; the kinds are {', '.join(KINDS)} "
                           f"(`minigpt plugins KIND NAME`, or `minigpt plugins NAME`).")
    one = name if kind else what  # a plugin's name, or None for a listing
    entries = find(one, kind) if one else [e for e in describe_all() if kind in (None, e.kind)]
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in entries], indent=2, default=str))
        return
    console = Console(highlight=False)
    if one:
        for e in entries:
            show_plugin(console, e)
        return
    for k in KINDS if kind is None else (kind,):
        mine = [e for e in entries if e.kind == k]
        console.print(f"[bold]{k}s[/bold] ({len(mine)})" + ("" if mine else ": none installed"))
        for e in mine:
            console.print(f"  {_title(e)}" + (f"\n    {e.summary}" if e.summary else ""))
            if e.error:
                console.print(f"    [red]cannot load:[/red] {e.error}")
                continue
            for o in e.options:
                console.print(f"    [green]{o.name}[/green] ({o.type}, default "
                              f"{json.dumps(o.default)}): {o.description}")
    console.print("\n`minigpt plugins NAME` shows one plugin in full, e.g. `minigpt plugins "
                  "commoncrawl`.")


def _title(e) -> str:
    flag = "" if e.stateless is None else (" [dim](stateless)[/dim]" if e.stateless
                                           else " [dim](stateful)[/dim]")
    return f"[bold cyan]{e.name}[/bold cyan]{flag}  from {e.package} {e.version} ({e.target})"


def show_plugin(console, e) -> None:
    """One plugin in full: what it is, how its options are set, and each option."""
    from rich.markup import escape
    from rich.padding import Padding

    def say(markup: str) -> None:
        console.print(Padding(markup, (0, 0, 0, 2), expand=False))

    console.print(f"{e.kind} {_title(e)}")
    if e.summary:
        say(escape(e.summary))
    if e.error:
        say(f"[red]cannot load:[/red] {escape(e.error)}")
        return
    if e.kind == "source":
        from minigpt_cli.stages import default_stages

        recipe = " -> ".join(s for s, _ in default_stages(e.name)) or "none"
        say(f"Filter stages by default: {recipe} (`--stage` replaces them).")
    if not e.options:
        say("No options.\n")
        return
    say(f"Options, {HOW[e.kind].format(name=e.name)}:")
    for o in e.options:
        about = o.description
        if e.kind == "source" and o.name == "inputs":
            about = f"The INPUT arguments. {about}"
        console.print(Padding(f"[bold green]{o.name}[/bold green]  {escape(o.type)}, default "
                              f"{escape(json.dumps(o.default))}", (0, 0, 0, 4),
                              expand=False))
        console.print(Padding(escape(about), (0, 0, 0, 8), expand=False))
    console.print()
