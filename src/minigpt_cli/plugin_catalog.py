"""What `minigpt plugins` lists: every installed source, stage and eval, with its options.

Options come from each plugin's ``Options`` model (name, type, default, description). A plugin
that fails to import is listed with its error instead of breaking the listing.
"""

from __future__ import annotations

import sys
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticUndefined

from minigpt_cli import plugins
from minigpt_cli.errors import MinigptError

KINDS = ("source", "stage", "eval")


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str
    default: Any  # JSON-able; "(required)" when there is none
    description: str


@dataclass(frozen=True)
class PluginEntry:
    kind: str
    name: str
    package: str
    version: str
    target: str
    summary: str = ""
    stateless: bool | None = None  # stages only
    options: list[OptionInfo] = field(default_factory=list)
    error: str | None = None


def describe_all() -> list[PluginEntry]:
    return [describe(info) for kind in KINDS for info in plugins.available(kind)]


def find(name: str, kind: str | None = None) -> list[PluginEntry]:
    """Every plugin called ``name`` (of ``kind`` only, when given; `math` is a source and an
    eval), loading only those; a clear error naming the installed ones when there is none."""
    kinds = KINDS if kind is None else (kind,)
    found = [describe(info) for k in kinds for info in plugins.available(k) if info.name == name]
    if not found:
        known = "; ".join(f"{k}s: " + (", ".join(i.name for i in plugins.available(k)) or "none")
                          for k in kinds)
        what = f"{kind} plugin" if kind else "plugin (or plugin kind: source, stage, eval)"
        raise MinigptError(f"No {what} named {name!r}. Installed {known}.")
    return found


def describe(info: plugins.PluginInfo) -> PluginEntry:
    base = {"kind": info.kind, "name": info.name, "package": info.package, "version": info.version,
                "target": info.target}
    try:
        cls = plugins.load(info.kind, info.name)
    except MinigptError as e:
        return PluginEntry(**base, error=str(e))
    model = getattr(cls, "Options", None)
    return PluginEntry(
        **base, summary=summary_of(cls),
        stateless=bool(getattr(cls, "stateless", False)) if info.kind == "stage" else None,
        options=options_of(model) if model is not None else [],
    )


def summary_of(cls) -> str:
    """The first paragraph of the class's own docstring, else of its module's, on one line."""
    doc = cls.__dict__.get("__doc__") or getattr(sys.modules.get(cls.__module__), "__doc__", "")
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def options_of(model) -> list[OptionInfo]:
    out = []
    for name, f in model.model_fields.items():
        if f.default is not PydanticUndefined:
            default = f.default
        elif f.default_factory is not None:
            default = f.default_factory()
        else:
            default = "(required)"
        out.append(OptionInfo(name, type_name(f.annotation), _jsonable(default),
                              f.description or ""))
    return out


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is None and isinstance(annotation, type):
        return annotation.__name__
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    text = str(annotation).replace("typing.", "")
    return text.replace("pathlib.", "").replace("NoneType", "None")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
