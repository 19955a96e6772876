"""What `minigpt plugins` lists: every installed source, stage and eval, with its options.

Options come from each plugin's ``Options`` model (name, type, default, description). A plugin
that fails to import is listed with its error instead of breaking the listing.
"""

from __future__ import annotations

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


def describe(info: plugins.PluginInfo) -> PluginEntry:
    base = {"kind": info.kind, "name": info.name, "package": info.package, "version": info.version,
                "target": info.target}
    try:
        cls = plugins.load(info.kind, info.name)
    except MinigptError as e:
        return PluginEntry(**base, error=str(e))
    doc = (cls.__doc__ or "").strip().splitlines()
    model = getattr(cls, "Options", None)
    return PluginEntry(
        **base, summary=doc[0] if doc else "",
        stateless=bool(getattr(cls, "stateless", False)) if info.kind == "stage" else None,
        options=options_of(model) if model is not None else [],
    )


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
