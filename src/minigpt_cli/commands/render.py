"""Terminal output shared by commands: a stderr console for diagnostics, and the wrapper that
turns a user error into one paragraph on stderr and a non-zero exit (no traceback)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False)


class LiveView:
    """A rich Progress (``self._progress``) on screen while a command's core runs:
    ``with View() as view: core(..., on_event=view.on_event)``."""

    _progress: Any

    def __enter__(self):  # -> the object itself
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()


def user_errors(fn: Callable) -> Callable:
    """A MinigptError, or a write the OS refused (read-only, permission, full disk, quota, file
    size: oserrors.WRITE_ERRNOS), becomes one paragraph on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from minigpt_cli.errors import MinigptError

        try:
            return fn(*args, **kwargs)
        except MinigptError as e:
            fail(str(e), e.exit_code)
        except OSError as e:
            from minigpt_cli import oserrors

            if not oserrors.is_write_error(e):
                raise
            fail(oserrors.describe(e, _flag_of(fn, e.filename, kwargs)), 2)

    return wrapper


def fail(message: str, code: int) -> None:
    from rich.markup import escape

    # the message is plain text: escape it so "[eval.options]" is not read as markup
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True,
                      emoji=False)
    raise typer.Exit(code=code)


def _flag_of(fn: Callable, filename: Any, kwargs: dict[str, Any]) -> tuple[str, Path] | None:
    """The option (``--out``) or argument (``OUT``) whose path holds ``filename`` or is being
    created under it, with that path; None if none does (e.g. --out came from --config)."""
    if not filename:
        return None
    from minigpt_cli.oserrors import shown_path

    failed = shown_path(filename).absolute()
    best: tuple[int, str, Path] | None = None
    for name, value in kwargs.items():
        if not isinstance(value, Path):
            continue
        given = value.absolute()
        if failed == given or given in failed.parents or failed in given.parents:
            depth = len(given.parts)  # the most specific path wins
            if best is None or depth > best[0]:
                best = (depth, _label(fn, name), value)
    return (best[1], best[2]) if best else None


def _label(fn: Callable, name: str) -> str:
    """How the user wrote parameter ``name``: its first option name, or its argument metavar."""
    from typing import get_args, get_type_hints

    from typer.models import ArgumentInfo, OptionInfo

    try:
        hint = get_type_hints(fn, include_extras=True).get(name)
    except Exception:  # noqa: BLE001 -- only a label: fall back to the usual spelling
        hint = None
    for info in get_args(hint)[1:]:
        if isinstance(info, OptionInfo):
            decls = [d for d in info.param_decls if d.startswith("--")]
            return decls[0].split("/")[0] if decls else "--" + name.replace("_", "-")
        if isinstance(info, ArgumentInfo):
            return info.metavar or name.upper()
    return "--" + name.replace("_", "-")
