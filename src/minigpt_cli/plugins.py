"""Plugin registry over Python entry points, looked up lazily (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from minigpt_cli.errors import MinigptError

GROUPS = {
    "source": "minigpt.sources",
    "stage": "minigpt.stages",
    "eval": "minigpt.evals",
}


@dataclass(frozen=True)
class PluginInfo:
    kind: str  # source | stage | eval
    name: str
    target: str  # "module:attr"
    package: str  # distribution that registers it
    version: str


@lru_cache(maxsize=None)
def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)  # first registration of a name wins
    return found


def available(kind: str) -> list[PluginInfo]:
    out = []
    for name, ep in sorted(_entry_points(GROUPS[kind]).items()):
        dist = getattr(ep, "dist", None)
        out.append(
            PluginInfo(
                kind=kind,
                name=name,
                target=ep.value,
                package=dist.name if dist else "?",
                version=dist.version if dist else "?",
            )
        )
    return out


def load(kind: str, name: str):
    """The plugin class registered as ``name`` in ``kind``'s group; a clear error if absent."""
    eps = _entry_points(GROUPS[kind])
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise MinigptError(
            f"No {kind} plugin named {name!r}. Installed {kind}s: {known}. "
            f"`minigpt plugins` lists them; a package adds one under the "
            f"'{GROUPS[kind]}' entry-point group."
        )
    try:
        return eps[name].load()
    except Exception as e:  # a broken third-party plugin must not look like our bug
        raise MinigptError(
            f"The {kind} plugin {name!r} ({eps[name].value}) failed to load: {e!r}. "
            "Reinstall or fix the package that provides it."
        ) from None


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in the same process)."""
    _entry_points.cache_clear()
