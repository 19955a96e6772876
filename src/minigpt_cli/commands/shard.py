"""`minigpt shard`: filter, tokenize and shard a source; or --verify / --merge shard folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand

from minigpt_cli.commands.options import ConfigOpt

SRC = "Source"
CHAIN = "Filters"
OUT = "Output"
RUN = "Runtime"
CHECK = "Verify and merge"
JOB = "Job (parts on an engine)"


class ShardCommand(TyperCommand):
    """`minigpt shard SOURCE --help` also shows SOURCE's own options (loading only that plugin:
    a source needs no torch), as `minigpt plugins SOURCE` does."""

    def parse_args(self, ctx, args):
        ctx.meta["minigpt.shard.source"] = args[0] if args and not args[0].startswith("-") \
            else None
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter) -> None:
        super().format_help(ctx, formatter)
        source = ctx.meta.get("minigpt.shard.source")
        if source:
            from rich.console import Console

            from minigpt_cli.commands.plugins import show_plugin
            from minigpt_cli.errors import MinigptError
            from minigpt_cli.plugin_catalog import find

            console = Console(highlight=False)
            try:
                for entry in find(source, "source"):
                    show_plugin(console, entry)
            except MinigptError as e:
                console.print(str(e), markup=False)


def shard(
    source: Annotated[str | None, typer.Argument(
        help="Source plugin: text, jsonl, parquet, fineweb, commoncrawl, or one a package "
        "installs (`minigpt plugins` lists them).", show_default=False)] = None,
    inputs: Annotated[list[str] | None, typer.Argument(
        help="The source's inputs: files, directories, globs (quote them), URLs or crawl ids.",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-O", help="Folder for the shards and "
                   "manifest.json (the merged folder with --merge).", rich_help_panel=OUT)] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="A source option, "
                      "key=value (repeatable; a repeated key or a JSON [..] value is a list); "
                      "`minigpt plugins SOURCE` lists them.", rich_help_panel=SRC)] = None,
    stage: Annotated[list[str] | None, typer.Option("--stage", "-s", help="A filter stage, in "
                     "order (repeatable); replaces the source's default recipe.",
                     rich_help_panel=CHAIN)] = None,
    stage_option: Annotated[list[str] | None, typer.Option("--stage-option", "-S", help="A "
                            "stage's option, STAGE.key=value (repeatable); `minigpt plugins "
                            "STAGE` lists them.",
                            rich_help_panel=CHAIN)] = None,
    no_stages: Annotated[bool, typer.Option("--no-stages", help="No filters at all, not even "
                         "the source's default recipe.", rich_help_panel=CHAIN)] = False,
    tokenizer: Annotated[str | None, typer.Option(help="gpt2 | char \\[default: gpt2]",
                         rich_help_panel=OUT)] = None,
    char_vocab: Annotated[Path | None, typer.Option(help="char: the vocabulary, a JSON list of "
                          "characters or another shard folder's manifest.json; unset = built "
                          "in a first pass.", rich_help_panel=OUT)] = None,
    shard_size: Annotated[int | None, typer.Option(help="Tokens per shard \\[default: "
                          "100000000].", rich_help_panel=OUT)] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", help="Tokenizer workers: "
                       "processes (one only tokenizing with GPT-2 BPE is a thread); 0 = in this "
                       "process \\[default: all cores].",
                       rich_help_panel=RUN)] = None,
    part: Annotated[str | None, typer.Option(help="i/N: this job's share of the inputs, for N "
                    "independent jobs; join them with --merge.", rich_help_panel=RUN)] = None,
    parts: Annotated[int | None, typer.Option(help="Run as a job of N parts with global "
                     "(cross-part) dedup, merged into --out \\[default with --executor: one "
                     "part per input].", rich_help_panel=JOB)] = None,
    executor: Annotated[str | None, typer.Option(help="Where a job's tasks run: local (this "
                        "process) | dask (Dask distributed; pip install \"minigpt\\[cluster]\")"
                        " \\[default: local].", rich_help_panel=JOB)] = None,
    address: Annotated[str | None, typer.Option(help="dask: the scheduler's HOST:PORT; unset "
                       "= a local cluster of --workers processes.", rich_help_panel=JOB)] = None,
    verify: Annotated[Path | None, typer.Option(help="Re-check a shard folder against its "
                      "manifest (headers, sizes, counts, sha256); exit 1 on any mismatch.",
                      rich_help_panel=CHECK)] = None,
    merge: Annotated[list[Path] | None, typer.Option(help="A part's folder (repeat for each "
                     "part): verify the parts and write their union to --out.",
                     rich_help_panel=CHECK)] = None,
    config: ConfigOpt = None,
) -> None:
    """Filter, tokenize and shard a corpus into llm.c-format token shards + manifest.json.

    Resumable: run the same command again after an interruption (even kill -9).

    A source's own options (-o) and its default filter stages: `minigpt shard SOURCE --help` or
    `minigpt plugins SOURCE`; a stage's options (-S): `minigpt plugins STAGE`."""
    from minigpt_cli.commands import shard_view as view

    if verify is not None:
        from minigpt_cli.sharding.verify import verify as verify_folder

        report = verify_folder(verify, on_shard=view.shard_check_line)
        view.verify_summary(report)
        raise typer.Exit(0 if report.ok else 1)
    if merge:
        from minigpt_cli.errors import MinigptError
        from minigpt_cli.sharding.merge import merge as merge_parts

        if out is None:
            raise MinigptError("--merge needs --out: the new folder for the union of the parts.")
        view.merged(merge_parts(list(merge), out, on_part=view.part_verified), out)
        return
    settings = _settings(source, inputs, out, option, stage, stage_option, no_stages, tokenizer,
                         char_vocab, shard_size, workers, part, config,
                         {"parts": parts, "executor": executor, "address": address})
    if settings.is_job():
        from minigpt_cli.cluster.job import run_job
        from minigpt_cli.commands.job_view import JobProgress

        with JobProgress() as display:
            run_job(settings, display.on_event)
        return
    from minigpt_cli.sharding.forkserver import start_early

    start_early(settings.workers, settings.tokenizer == "gpt2")  # before the pipeline's imports
    from minigpt_cli.sharding.run import run

    with view.ShardProgress() as progress:
        run(settings, progress.on_event)


def _settings(source, inputs, out, option, stage, stage_option, no_stages, tokenizer,
              char_vocab, shard_size, workers, part, config, job=None):
    from minigpt_cli.errors import MinigptError
    from minigpt_cli.settings import resolve
    from minigpt_cli.sharding.config import (
        ShardSettings,
        StageSpec,
        parse_assignments,
        parse_stage_options,
    )

    try:
        options = parse_assignments(option or [], "--option") if option else None
        stage_opts = parse_stage_options(stage_option) if stage_option else None
    except ValueError as e:
        raise MinigptError(str(e)) from None
    if no_stages and stage:
        raise MinigptError("Give --stage or --no-stages, not both.")
    if source is None and config is None:
        raise MinigptError("Missing SOURCE: `minigpt shard SOURCE [INPUT...] --out DIR`, e.g. "
                           "`minigpt shard text books/ --out shards/`; `minigpt plugins source` "
                           "lists the sources. (--verify DIR and --merge DIR take none.)")
    stages = [] if no_stages else [StageSpec(name=s) for s in stage] if stage else None
    flags = {"source": source, "inputs": inputs or None, "out": out, "options": options,
                 "stages": stages, "stage_options": stage_opts, "tokenizer": tokenizer,
                 "char_vocab": char_vocab,
                 "shard_size": shard_size, "workers": workers, "part": part, **(job or {})}
    return resolve(ShardSettings, "shard", flags, config)
