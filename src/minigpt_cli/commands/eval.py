"""`minigpt eval TASK`: score a model on a task (loss, hellaswag, math, or a plugin's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from minigpt_cli.commands.options import (
    RUNTIME_PANEL,
    BuiltinOpt,
    CheckpointOpt,
    ConfigOpt,
    DeviceOpt,
    DtypeOpt,
    FromHfOpt,
)

DATA = "Data"
OUT = "Output"


def _parse_options(pairs: list[str] | None) -> dict | None:
    from minigpt_cli.errors import MinigptError

    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MinigptError(f"--option {pair!r} is not KEY=VALUE (e.g. --option stride=256).")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value  # a plain string
    return out


def eval_cmd(
    task: Annotated[str, typer.Argument(help="Task: loss, hellaswag, math, or a plugin's "
                                        "(`minigpt plugins eval` lists them).")],
    models: Annotated[list[Path] | None, typer.Argument(
        help="With --compare: checkpoints, Hugging Face folders or eval_*.json files.",
        show_default=False)] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Score every model given as an "
                       "argument (or reuse its saved results) and print one table.")] = False,
    data: Annotated[Path | None, typer.Option(help="What to score: shards/.bin/text (loss), "
                    "HellaSwag JSONL (default: download the official val set), make-math "
                    "folder (math).", rich_help_panel=DATA)] = None,
    limit: Annotated[int | None, typer.Option(help="Score at most N items (tokens for loss).",
                     rich_help_panel=DATA)] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="A task option "
                      "KEY=VALUE, repeatable (`minigpt plugins eval` lists them).",
                      rich_help_panel=DATA)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Items per forward pass (default: "
                          "the task's).", rich_help_panel=RUNTIME_PANEL)] = None,
    compile: Annotated[bool | None, typer.Option("--compile", help="torch.compile the model.",
                       rich_help_panel=RUNTIME_PANEL)] = None,
    output: Annotated[Path | None, typer.Option(help="Also write the results JSON here.",
                      rich_help_panel=OUT)] = None,
    save: Annotated[bool | None, typer.Option("--save/--no-save", help="Write eval_<task>.json "
                    "beside the checkpoint (default: save).", rich_help_panel=OUT)] = None,
    checkpoint: CheckpointOpt = None,
    from_hf: FromHfOpt = None,
    model: BuiltinOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate a model: mean loss / perplexity / bits per byte, HellaSwag, make-math accuracy."""
    from minigpt_cli.commands import eval_view as view
    from minigpt_cli.errors import MinigptError
    from minigpt_cli.evals import runner
    from minigpt_cli.evals.settings import EvalSettings
    from minigpt_cli.settings import resolve

    flags = {"data": data, "limit": limit, "batch_size": batch_size, "compile": compile,
             "output": output, "save": save, "checkpoint": checkpoint, "from_hf": from_hf,
             "model": model,
             "device": device, "dtype": dtype, "options": _parse_options(option)}
    s = resolve(EvalSettings, "eval", flags, config)
    if models and not compare:
        raise MinigptError(f"unexpected argument(s) {' '.join(map(str, models))}: to compare "
                           "models pass --compare; for one model use --checkpoint or --from-hf.")
    with view.EvalProgress() as progress:
        if compare:
            table = runner.compare(task, list(models or []), s, progress.on_event)
        else:
            doc = runner.evaluate(task, runner.model_ref(s, task), s, progress.on_event)
    if compare:
        view.print_comparison(table)
    else:
        view.print_result(doc)
