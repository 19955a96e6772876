"""The stage chain: plugins loaded and validated, and a batch of documents run through it.

Stateless stages run in the worker processes; stateful ones (dedup, head) run in the main
process, one document at a time, in input order -- see ``settle``. A worker runs *every*
stateless stage of the chain, treating each stateful stage as a pass-through, and records the
document as it entered each stateful stage. The main process then applies the stateful stages to
those snapshots in order: a document they keep unchanged needs nothing more (the worker's work
after them is exactly what the chain would have done), one they rewrite is finished in the main
process (rare: dedup and head only keep or drop). So all stateless work is parallel, and the
stateful stages see documents in exactly the order and form the chain defines, whatever the
number of workers -- which is what makes the shards identical for any ``--workers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

import numpy as np
from pydantic import ValidationError

from minigpt_cli import plugins
from minigpt_cli.documents import Document, Drop, PluginOptions, is_blank
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.config import StageSpec
from minigpt_cli.shards import to_uint16

EMPTY = "no text left"  # drop reason for documents with nothing but whitespace
OUTSIDE_VOCAB = "characters outside the char vocabulary"


def options_for(cls: type, given: dict[str, Any], what: str) -> PluginOptions:
    """Validate a plugin's options against its ``Options`` model; all problems in one error."""
    model = getattr(cls, "Options", None)
    if model is None:
        raise MinigptError(f"The {what} ({cls.__module__}.{cls.__qualname__}) has no Options "
                           "model; a plugin must declare one (a documents.PluginOptions).")
    try:
        return model(**_lists_where_expected(model, given))
    except ValidationError as e:
        known = ", ".join(model.model_fields) or "none"
        lines = []
        for err in e.errors():
            key = ".".join(str(x) for x in err["loc"]) or "options"
            msg = "unknown option" if err["type"] == "extra_forbidden" else \
                err["msg"].removeprefix("Value error, ")
            got = "" if err["type"] in ("extra_forbidden", "missing") else f" (got {err['input']!r})"
            lines.append(f"  {key}: {msg}{got}")
        raise MinigptError(f"Invalid options for the {what}:\n" + "\n".join(lines) +
                           f"\nIts options are: {known} (`minigpt plugins` describes them).") from None


def _lists_where_expected(model, given: dict[str, Any]) -> dict[str, Any]:
    """A single value for a list option (``-o inputs=a.txt``) is a list of one."""
    out = dict(given)
    for key, value in given.items():
        f = model.model_fields.get(key)
        if f is not None and not isinstance(value, list) and _is_list(f.annotation):
            out[key] = [value]
    return out


def _is_list(annotation: Any) -> bool:
    origins = {get_origin(annotation)} | {get_origin(a) for a in get_args(annotation)}
    return bool(origins & {list, tuple, set})


def build_source(name: str, options: dict[str, Any]):
    cls = plugins.load("source", name)
    return cls(options_for(cls, options, f"source {name!r}"))


def build_stage(spec: StageSpec):
    cls = plugins.load("stage", spec.name)
    return cls(options_for(cls, spec.options, f"stage {spec.name!r}"))


def resolved_options(stage) -> dict[str, Any]:
    opts = getattr(stage, "options", None)
    return opts.model_dump(mode="json") if isinstance(opts, PluginOptions) else {}


def is_stateless(stage) -> bool:
    return bool(getattr(stage, "stateless", False))


@dataclass
class BatchResult:
    """What a worker returns for a batch: sparse per-document outcomes plus the payload.

    ``drops[i] = (stage, reason)`` for documents a stateless stage dropped; ``snapshots[i][s]``
    is document i as it entered stateful stage s when an earlier stage had rewritten it;
    ``modified[i]`` lists the stateless stages that rewrote it. ``lengths[i]`` counts its tokens
    (0 if dropped) within ``tokens`` -- or ``chars[i]`` holds its distinct characters (vocabulary
    pass).
    """

    drops: dict[int, tuple[int, str]] = field(default_factory=dict)
    snapshots: dict[int, dict[int, Document]] = field(default_factory=dict)
    modified: dict[int, list[int]] = field(default_factory=dict)
    tokens: np.ndarray | None = None  # (sum(lengths),) uint16
    lengths: np.ndarray | None = None  # (n_docs,) int64
    chars: list[str] | None = None
    # (n_docs,) int64: tokens of context before the trained part (end-of-text + text before
    # ``meta["loss_from"]``), -1 for documents without a loss mask
    context: np.ndarray | None = None


def check_verdict(stage_name: str, out: Any) -> Document | Drop:
    if isinstance(out, (Document, Drop)):
        return out
    raise MinigptError(f"The stage {stage_name!r} returned {type(out).__name__}; a stage must "
                       "return the document (possibly rewritten) or a Drop(reason).")


def changed(before: Document, after: Document) -> bool:
    return after is not before and (after.text != before.text or after.meta != before.meta)


class WorkerChain:
    """The stateless part of the chain plus the tokenizer, as run inside a worker."""

    def __init__(self, specs: list[StageSpec], tokenizer) -> None:
        self.stages = [build_stage(s) for s in specs]
        self.names = [s.name for s in specs]
        self.tokenizer = tokenizer  # None: the vocabulary pass, collecting characters

    def run(self, docs: list[Document], verdicts: list | None = None) -> BatchResult:
        """``verdicts``: per document, the stateless prefix's recorded verdict to replay
        instead of running it (a job's part: verdicts.py), or None."""
        res = BatchResult()
        verdicts = verdicts or [None] * len(docs)
        if self.tokenizer is None:  # the vocabulary pass: each document's characters
            res.chars = []
            for i, doc in enumerate(docs):
                final = self._through(i, doc, res, verdicts[i])
                res.chars.append("".join(sorted(set(final.text))) if final is not None else "")
            return res
        eot = np.array([self.tokenizer.eot_id], dtype=np.uint32)
        parts: list[np.ndarray] = []
        lengths = np.zeros(len(docs), dtype=np.int64)
        context = np.full(len(docs), -1, dtype=np.int64)
        for i, doc in enumerate(docs):
            final = self._through(i, doc, res, verdicts[i])
            if final is None:
                continue
            try:
                toks, context[i] = self._encode_document(final)
            except MinigptError:  # char vocabulary given and this text is outside it
                res.drops[i] = (len(self.stages), OUTSIDE_VOCAB)
                continue
            parts += [eot, toks]  # every document begins with <|endoftext|>
            lengths[i] = len(toks) + 1
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
        res.tokens, res.lengths = to_uint16(ids), lengths  # an id > 65535 is an error
        res.context = context
        return res

    def _encode_document(self, doc: Document) -> tuple[np.ndarray, int]:
        """Tokens (without the leading end-of-text) and the context length for the loss mask.

        With ``meta["loss_from"]`` (a character offset) the two sides are encoded separately,
        so the boundary is a token boundary under any tokenizer."""
        cut = doc.meta.get("loss_from") if doc.meta else None
        if cut is None:
            return self._encode(doc.text), -1
        head, tail = self._encode(doc.text[:cut]), self._encode(doc.text[cut:])
        return np.concatenate([head, tail]).astype(np.uint32, copy=False), 1 + len(head)

    def _encode(self, text: str) -> np.ndarray:
        fast = getattr(self.tokenizer, "encode_array", None)  # GPT-2: no Python list on the way
        return fast(text) if fast else np.asarray(self.tokenizer.encode(text), dtype=np.uint32)

    def _through(self, i: int, doc: Document, res: BatchResult, verdict=None
                 ) -> Document | None:
        current, start = doc, 0
        if verdict is not None:
            from minigpt_cli.sharding.verdicts import replay

            current, start = replay(verdict, self.names, self.stages, doc, i, res)
            if current is None:
                return None
        for s, stage in enumerate(self.stages):
            if s < start:
                continue
            if not is_stateless(stage):
                if current is not doc:
                    res.snapshots.setdefault(i, {})[s] = current
                continue
            out = check_verdict(self.names[s], stage(current))
            if isinstance(out, Drop):
                res.drops[i] = (s, out.reason)
                return None
            if changed(current, out):
                res.modified.setdefault(i, []).append(s)
                current = out
        if is_blank(current.text):
            res.drops[i] = (len(self.stages), EMPTY)
            return None
        return current
