"""The `minigpt` command: a Typer app over the core. Only this layer imports typer and rich."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from minigpt_cli import __version__, allocator
from minigpt_cli.commands import eval as eval_cmd
from minigpt_cli.commands import finetune as finetune_cmd
from minigpt_cli.commands import hf as hf_cmd
from minigpt_cli.commands import make_math as make_math_cmd
from minigpt_cli.commands import plugins as plugins_cmd
from minigpt_cli.commands import pretrain as pretrain_cmd
from minigpt_cli.commands import report as report_cmd
from minigpt_cli.commands import sample as sample_cmd
from minigpt_cli.commands import shard as shard_cmd
from minigpt_cli.commands.render import fail, user_errors
from minigpt_cli.errors import MinigptError

app = typer.Typer(
    name="minigpt",
    help="GPT-2 from scratch: shard web text, pretrain, fine-tune, make math, sample, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minigpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """GPT-2 from scratch, from raw web text to an evaluated model."""
    try:
        allocator.keep_large_buffers_mapped()  # every command, every torchrun worker
    except MinigptError as e:
        fail(str(e), e.exit_code)


def _command(name: str, fn, cls=None) -> None:
    doc = (fn.__doc__ or "").strip()
    summary = " ".join(doc.split("\n\n")[0].split())  # first paragraph, on one line
    app.command(name, short_help=summary or None, cls=cls)(user_errors(fn))


_command("sample", sample_cmd.sample)
_command("pretrain", pretrain_cmd.pretrain)
_command("finetune", finetune_cmd.finetune)
_command("shard", shard_cmd.shard, cls=shard_cmd.ShardCommand)
_command("make-math", make_math_cmd.make_math)
_command("plugins", plugins_cmd.plugins)
_command("import-hf", hf_cmd.import_hf)
_command("export-hf", hf_cmd.export_hf)
_command("eval", eval_cmd.eval_cmd)
_command("report", report_cmd.report)


def main() -> None:
    """Console entry point. SIGTERM becomes a normal exit, so `finally` blocks run and no
    temporary file is left behind (the trainer installs its own handler while it trains)."""

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    app(prog_name="minigpt")
