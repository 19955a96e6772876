"""The shard pipeline: source -> stages -> tokenizer -> shard writer -> manifest, resumable.

The main process reads documents in batches and hands them to the worker pool (stateless
stages + tokenizer); results come back in order, the stateful stages and the funnel are settled
document by document (mainchain.py), kept documents go to the writer, and after every shard the
resume state is saved. Everything that decides the output is a function of the input order, so
the shards are the same for any number of workers, and a resumed run ends byte-identical to an
uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from minigpt_cli import lock, plugins
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding import charvocab, forkserver, inputs, manifest, outdir, progress
from minigpt_cli.sharding.chain import build_source, build_stage, is_stateless, resolved_options
from minigpt_cli.sharding.config import ShardSettings, StageSpec
from minigpt_cli.sharding.events import (
    Finished,
    Listener,
    Notice,
    ShardDone,
    Started,
    ignore,
)
from minigpt_cli.sharding.funnel import Funnel
from minigpt_cli.sharding.mainchain import MainChain, Payload
from minigpt_cli.sharding.reader import Cursor, Reader
from minigpt_cli.sharding.ticker import Ticker
from minigpt_cli.sharding.workers import ChainPool
from minigpt_cli.sharding.writer import ShardInfo, ShardWriter
from minigpt_cli.tokenizer import GPT2Tokenizer, tokenizer_from_dict

BATCH_DOCS = 512
BATCH_CHARS = 1 << 20  # ~1 MB of text per batch: enough to amortize the trip to a worker


def run(settings: ShardSettings, on_event: Listener = ignore,
        in_place: dict[str, Any] | None = None, allow_empty: bool = False,
        verdicts: Callable[[list[Cursor]], list] | None = None) -> dict[str, Any]:
    """Shard ``settings.source`` into ``settings.out``; returns the manifest. The folder is
    locked for the whole run: a second writer fails at once (lock.py). A run that fails before
    finishing a shard removes what it created (outdir.Created; the lock removes the folder
    itself if it made it and it is left empty). ``in_place``: stage objects that stand in for
    the chain's stages of those names (a job's part: cluster/drops.py); ``allow_empty``: a run
    that keeps no document writes a manifest of no shards (a job's part) instead of failing;
    ``verdicts``: a batch's cursors -> the stateless stages' recorded verdicts to replay instead
    of running them (a job's part: verdicts.py)."""
    with lock.hold(settings.out):
        created = outdir.Created(settings.out)
        try:
            return _run(settings, on_event, in_place or {}, allow_empty, verdicts)
        except Exception:
            created.remove_after_failure()
            raise


def _run(settings: ShardSettings, on_event: Listener, in_place: dict[str, Any],
         allow_empty: bool = False, verdicts: Callable | None = None) -> dict[str, Any]:
    t0 = time.monotonic()
    out, fp, part = settings.out, settings.output_fingerprint(), settings.part_spec()
    if (done := outdir.finished(out, fp)) is not None:
        progress.remove(out)  # left behind if the run stopped right after the manifest
        on_event(Finished(done, out, already_complete=True))
        return done
    forkserver.start_early(settings.workers, settings.tokenizer == "gpt2")  # no-op if the CLI did
    state = progress.load(out)
    if state is not None and not state.shards and state.fingerprint != fp:
        progress.remove(out)  # nothing was written yet: other settings simply start over
        state = None
    if state is None:
        outdir.check_fresh(out)
    else:
        outdir.check_same_run(out, state.fingerprint, fp)
        if state.not_resumable:
            raise MinigptError(f"The unfinished run in {out} cannot be resumed: "
                               f"{state.not_resumable}. Delete {out} and start over.")
    outdir.remove_leftovers(out)
    specs = stage_specs(settings)
    if settings.tokenizer == "char" and part.count > 1 and settings.char_vocab is None:
        raise MinigptError("--tokenizer char with --part needs --char-vocab: every part must "
                           "use the same vocabulary for the parts to be merged.")
    source = source_plugin(settings)
    pack = _packing(source, settings)
    tokenizer = _tokenizer(settings, state, specs, on_event, source)
    reader = Reader(source, settings.source, part)
    stages = [in_place.get(s.name) or build_stage(s) for s in specs]
    if state is None:
        state = progress.State(fp, settings.model_dump(mode="json"), tokenizer.to_dict())
        state = progress.save(out, state, None)
    funnel = Funnel.from_dict(state.funnel) if state.funnel else Funnel.for_chain(
        [(s.name, is_stateless(st), resolved_options(st)) for s, st in zip(specs, stages)])
    written = [ShardInfo.from_dict(d) for d in state.shards]
    outdir.check_written(out, written)
    stateful = {i: st for i, st in enumerate(stages) if not is_stateless(st)}
    blob = progress.load_blob(out, state, stateful) if state.blob else None  # stages restored
    writer = ShardWriter(out, settings.shard_size, part, len(written),
                         blob.carry if blob else None, blob.carry_docs if blob else 0,
                         pack=pack, pad_id=tokenizer.eot_id,
                         carry_mask=getattr(blob, "carry_mask", None),
                         stop_next=getattr(blob, "stop_next", False),
                         carry_padding=getattr(blob, "carry_padding", 0))
    main = MainChain(specs, stages, funnel, tokenizer)
    cursor = Cursor.from_dict(state.cursor)
    ticker = Ticker("shards", reader, state.provenance, funnel, written, on_event)
    try:
        with ChainPool(settings.workers, specs, tokenizer) as pool:
            on_event(Started("shards", settings.source, [s.name for s in specs], tokenizer.name,
                             settings.workers, out, len(reader.inputs), len(written), funnel.read,
                             worker_kind=pool.kind))
            for cur, tokens, split, context in kept_documents(reader, cursor, pool, main, ticker,
                                                              verdicts):
                done = writer.add(tokens, split, context)
                for info in done:
                    written.append(info)
                    on_event(ShardDone(info.name, info.tokens, info.documents))
                if done:  # once the document is in: cursor and carry agree only then
                    state = _save(out, state, written, cur, funnel, reader, writer, main)
        if (last := writer.finish()) is not None:
            written.append(last)
            on_event(ShardDone(last.name, last.tokens, last.documents))
    except BaseException:
        writer.discard()
        raise
    ticker.tick(None, force=True)
    if funnel.kept == 0 and not allow_empty:
        progress.remove(out)
        raise MinigptError(inputs.no_documents_left(settings.source, funnel,
                                                reader.provenance(state.provenance)))
    warnings = []
    if len(written) == 1 and part.count == 1:
        warnings.append(f"Only one shard ({written[0].name}, {written[0].tokens} tokens) was "
                        "written, and shard 0 is the validation shard: there is no training "
                        "shard. Use a smaller --shard-size.")
    source_entry = {"name": settings.source, "options": resolved_options(reader.source),
                    "inputs": len(reader.inputs), "provenance": reader.provenance(state.provenance)}
    m = manifest.build(tokenizer=tokenizer, shards=written, source=source_entry, funnel=funnel,
                       settings=settings.model_dump(mode="json") | {"stages": [
                           s.model_dump() for s in specs]},
                       fingerprint=fp, shard_size=settings.shard_size,
                       part={"index": part.index, "count": part.count} if part.count > 1 else None,
                       warnings=warnings, pack=pack,
                       loss_mask=any(s.mask_sha256 for s in written))
    manifest.write(out, m)
    progress.remove(out)
    for w in warnings:
        on_event(Notice(w))
    on_event(Finished(m, out, elapsed=time.monotonic() - t0))
    return m


def stage_specs(settings: ShardSettings) -> list[StageSpec]:
    """The chain: --stage (or the config's stages), else the source's default recipe; then
    --stage-option on top."""
    if settings.stages is not None:
        specs = list(settings.stages)
    else:
        try:
            from minigpt_cli.stages import default_stages
        except ImportError:
            default_stages = None
        specs = [StageSpec(name=n, options=dict(o))
                 for n, o in (default_stages(settings.source) if default_stages else [])]
    unknown = set(settings.stage_options) - {s.name for s in specs}
    if unknown:
        chain = ", ".join(s.name for s in specs) or "no stages"
        raise MinigptError(f"--stage-option names stage(s) {', '.join(sorted(unknown))} that "
                           f"are not in the chain ({chain}).")
    return [StageSpec(name=s.name, options={**s.options, **settings.stage_options.get(s.name, {})})
            for s in specs]


def source_plugin(settings: ShardSettings):
    """The source with its options; positional inputs go to its ``inputs`` option."""

    options = dict(settings.options)
    if settings.inputs:
        fields = getattr(getattr(plugins.load("source", settings.source), "Options", None),
                         "model_fields", {})
        if "inputs" not in fields:
            raise MinigptError(f"The {settings.source} source takes no inputs on the command "
                               "line; give its options with --option key=value.")
        if options.get("inputs"):
            raise MinigptError("Inputs are given both as arguments and as the inputs option; "
                               "give them one way.")
        options["inputs"] = list(settings.inputs)
    return build_source(settings.source, options)


def _packing(source, settings: ShardSettings) -> int | None:
    """The source's block size, if it asks that no document cross a multiple of it."""
    packing = getattr(source, "packing", None)
    pack = packing() if callable(packing) else None
    if pack is not None and settings.shard_size % pack:
        raise MinigptError(f"--shard-size {settings.shard_size} is not a multiple of the "
                           f"{settings.source} source's block size {pack}: examples would be "
                           f"cut between shards. Use a multiple of {pack}, e.g. "
                           f"{max(pack, settings.shard_size // pack * pack)}.")
    return pack


def _tokenizer(settings: ShardSettings, state, specs: list[StageSpec], on_event: Listener,
               source=None):
    if settings.tokenizer == "gpt2":
        return GPT2Tokenizer()
    if state is not None:
        return tokenizer_from_dict(state.tokenizer)
    vocab = getattr(source, "char_vocab", None)  # a source that knows its characters
    if settings.char_vocab is not None:
        tok = charvocab.from_file(settings.char_vocab)
    elif callable(vocab):
        tok = charvocab.from_charsets({"".join(vocab())})
    else:
        tok = _vocabulary_pass(settings, specs, on_event)
    if tok.vocab_size > 65536:
        raise MinigptError(f"The char vocabulary has {tok.vocab_size} entries; shards store "
                           "token ids as uint16 (at most 65536). Filter the input's characters.")
    return tok


def _vocabulary_pass(settings: ShardSettings, specs: list[StageSpec], on_event: Listener):
    """First pass for ``--tokenizer char``: every character of the documents the chain keeps."""
    reader = Reader(source_plugin(settings), settings.source, settings.part_spec())
    stages = [build_stage(s) for s in specs]
    funnel = Funnel.for_chain([(s.name, True, {}) for s in specs])
    main = MainChain(specs, stages, funnel, None)
    ticker = Ticker("vocabulary", reader, [], funnel, [], on_event)
    chars: set[str] = set()
    with ChainPool(settings.workers, specs, None) as pool:
        on_event(Started("vocabulary", settings.source, [s.name for s in specs], "char",
                         settings.workers, settings.out, len(reader.inputs),
                         worker_kind=pool.kind))
        for _, found, _, _ in kept_documents(reader, Cursor(), pool, main, ticker):
            chars.update(found)  # type: ignore[arg-type]
    if not chars:
        raise MinigptError(inputs.no_documents_left(settings.source, funnel, reader.provenance([])))
    return charvocab.from_charsets({"".join(chars)})


def kept_documents(reader: Reader, start: Cursor, pool: ChainPool, main: MainChain,
                   ticker: Ticker, verdicts: Callable | None = None
                   ) -> Iterator[tuple[Cursor, Payload, str | None, int]]:
    """Kept documents' payloads in input order, each with the cursor just after it, the
    split its source marked (``meta["split"]``: "val" sends it to shard 0; see writer.py) and
    its loss-mask context length (-1: no mask; see chain.BatchResult.context)."""
    replayed = (lambda b: verdicts(b[0])) if verdicts is not None else None
    for (cursors, docs), res in pool.map(_batches(reader.documents(start)), lambda b: b[1],
                                         replayed):
        if res.lengths is not None:
            ends = np.cumsum(res.lengths)
        for i, doc in enumerate(docs):
            if res.chars is not None:
                payload: Payload | None = res.chars[i] or None
            else:
                payload = res.tokens[ends[i] - res.lengths[i]:ends[i]] if res.lengths[i] else None
            if (kept := main.settle(doc, i, res, payload)) is not None:
                context = int(res.context[i]) if res.context is not None else -1
                if kept is not payload and context >= 0:
                    raise MinigptError(f"A stage rewrote document {doc.id!r}, which carries a "
                                       "loss mask (meta loss_from): the mask would no longer "
                                       "fit its text. Run such sources without rewriting "
                                       "stages.")
                yield cursors[i], kept, doc.meta.get("split"), context
        ticker.tick(cursors[-1])


def _batches(items: Iterator[tuple[Cursor, Any]]) -> Iterator[tuple[list[Cursor], list]]:
    cursors, docs, size = [], [], 0
    for cur, doc in items:
        cursors.append(cur)
        docs.append(doc)
        size += len(doc.text)
        if len(docs) >= BATCH_DOCS or size >= BATCH_CHARS:
            yield cursors, docs
            cursors, docs, size = [], [], 0
    if docs:
        yield cursors, docs


def _save(out: Path, state, written, cursor: Cursor, funnel: Funnel, reader: Reader,
          writer: ShardWriter, main: MainChain):
    state.shards = [s.to_dict() for s in written]
    state.cursor = cursor.to_dict()
    state.funnel = funnel.to_dict()
    known = {p.get("input") for p in state.provenance}
    state.provenance = state.provenance + [p for p in reader.finished_provenance(cursor)
                                           if p.get("input") not in known]
    blob = progress.Blob(writer.carry, writer.carry_docs, main.stateful, writer.carry_mask,
                           writer.stop_next, writer.carry_padding)
    return progress.save(out, state, blob)
