"""Built-in filter stages (entry-point group ``minigpt.stages``) and the default recipes.

Each stage is a class with ``name``, ``Options`` (pydantic, unknown keys are errors),
``stateless`` and ``__call__(doc) -> Document | Drop``; see ``minigpt_cli.documents``. This
module imports none of them: the registry loads a stage only when a pipeline names it.
"""

from __future__ import annotations

from typing import Any

# FineWeb's order (Penedo et al. 2024): cheap language id first, then the Gopher repetition and
# quality rules, C4's line filters without the terminal punctuation rule (as FineWeb runs them),
# then exact and near dedup last, so dedup only remembers documents that are kept otherwise.
_COMMONCRAWL: list[tuple[str, dict[str, Any]]] = [
    ("language", {}),
    ("gopher_repetition", {}),
    ("gopher_quality", {}),
    ("c4", {"terminal_punctuation": False}),
    ("exact_dedup", {}),
    ("minhash_dedup", {}),
]


def default_stages(source_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The stages (name, options) a source runs through when the user names none.

    ``commoncrawl`` gets the FineWeb-like recipe; other sources (already clean or curated
    text) get none.
    """
    if source_name == "commoncrawl":
        return [(name, dict(options)) for name, options in _COMMONCRAWL]
    return []
