"""The inputs of the ``commoncrawl`` source, resolved before anything is read: crawl ids and
URLs pass through, folders are searched for WET files, globs expanded; every problem is
collected and reported together."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from minigpt_cli.errors import MinigptError

CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}", re.IGNORECASE)
WET_SUFFIXES = (".wet", ".wet.gz")
URL_PREFIXES = ("http://", "https://")


def local_size(inputs: list[str]) -> int:
    """Bytes of all inputs when every one is a local file (for an ETA), else 0 (unknown)."""
    if any(name.startswith(URL_PREFIXES) or CRAWL_ID.fullmatch(name) for name in inputs):
        return 0
    try:
        return sum(Path(name).stat().st_size for name in inputs)
    except OSError:
        return 0


def check_inputs(options) -> list[str]:
    """Expand local folders and globs; collect every problem and report them together."""
    entries: list[str] = []
    problems: list[str] = []
    for item in options.inputs:
        item = str(item)
        if item.startswith(URL_PREFIXES) or CRAWL_ID.fullmatch(item):
            entries.append(item)
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*") if p.is_file() and p.name.endswith(WET_SUFFIXES)
            )
            entries += found
            if not found:
                problems.append(f"folder {item} holds no .warc.wet or .warc.wet.gz files")
        elif path.is_file():
            entries.append(str(path))
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            entries += found
            if not found:
                problems.append(f"no file matches {item!r}")
        else:
            problems.append(f"{item} does not exist")
    if not options.inputs:
        problems.append("no inputs given (WET files, folders, globs, URLs or a crawl id)")
    has_crawl = any(CRAWL_ID.fullmatch(str(item)) for item in options.inputs)
    if (options.segments is not None or options.first_segment or options.kind != "wet") \
            and not has_crawl:
        problems.append("segments/first_segment/kind only apply to a crawl id such as "
                        "CC-MAIN-2024-22")
    if problems:
        raise MinigptError("commoncrawl source: " + "; ".join(problems) + ".")
    return list(dict.fromkeys(entries))
