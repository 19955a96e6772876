"""Terminal output shared by commands: a stderr console for diagnostics, and the wrapper that
turns a user error into one paragraph on stderr and a non-zero exit (no traceback)."""

from __future__ import annotations

import functools
from typing import Callable

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False)


def user_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from minigpt_cli.errors import MinigptError

        try:
            return fn(*args, **kwargs)
        except MinigptError as e:
            from rich.markup import escape

            # the message is plain text: escape it so "[eval.options]" is not read as markup
            err_console.print(f"[bold red]error:[/bold red] {escape(str(e))}", soft_wrap=True,
                              emoji=False)
            raise typer.Exit(code=e.exit_code) from None

    return wrapper
