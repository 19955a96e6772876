"""Every command's --help, rendered as a user sees it: each help text appears whole (rich markup
never eats a `[default: ...]` or a `[command]`), no empty default before a full stop, and a
default the help states is the default the settings model applies."""

from __future__ import annotations

import re

import click
import pytest
import typer.main
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.evals.settings import EvalSettings
from minigpt_cli.finetune.settings import FinetuneSettings
from minigpt_cli.hf.settings import ExportHfSettings, ImportHfSettings
from minigpt_cli.mathgen.settings import MakeMathSettings
from minigpt_cli.settings import SampleSettings
from minigpt_cli.sharding.config import ShardSettings
from minigpt_cli.train.settings import PretrainSettings

GROUP = typer.main.get_command(app)
COMMANDS = GROUP.list_commands(click.Context(GROUP))
SETTINGS = {"sample": SampleSettings, "pretrain": PretrainSettings,
            "finetune": FinetuneSettings, "shard": ShardSettings, "make-math": MakeMathSettings,
            "import-hf": ImportHfSettings, "export-hf": ExportHfSettings, "eval": EvalSettings}


def command(name: str) -> click.Command:
    return GROUP.get_command(click.Context(GROUP), name)


def rendered(*args: str) -> str:
    """The help as printed, box drawing and line wrapping undone (one very wide terminal)."""
    r = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "2000", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    return " ".join(r.output.replace("│", " ").split())


def visible(help_text: str) -> str:
    """What a help string should look like on screen: rich escapes undone, spaces collapsed."""
    return " ".join(help_text.replace("\\[", "[").split())


def stated_defaults(c: click.Command):
    for p in c.params:
        help_text = getattr(p, "help", None) or ""
        m = re.search(r"\\\[default: ([^\]]+)\]|\(default:? ([^)]+)\)", help_text)
        if m:
            yield p.name, m.group(1) or m.group(2)


def test_every_command_is_covered():
    assert set(COMMANDS) == {*SETTINGS, "plugins", "report"}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_every_help_text_whole(name):
    out = rendered(name)
    c = command(name)
    assert not re.search(r"\w \.(\s|$)", out), re.findall(r".{50}\w \.(?:\s|$)", out)
    assert "[default: ]" not in out and "()" not in out
    for p in c.params:
        if getattr(p, "hidden", False) or not getattr(p, "help", None):
            continue
        assert visible(p.help) in out, f"{name} {p.name}: {p.help!r} is not shown whole"
    for line in (c.help or "").split("\n\n"):
        assert visible(line) in out, f"{name}: {line!r}"


def test_the_root_help_names_every_command_without_torch():
    out = rendered()
    for name in COMMANDS:
        assert f" {name} " in out


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_stated_default_is_the_settings_default(name):
    fields = SETTINGS[name].model_fields
    checked = 0
    for param, stated in stated_defaults(command(name)):
        if param not in fields:
            continue
        default = fields[param].default
        if isinstance(default, bool) or not isinstance(default, (int, float, str)):
            continue
        try:
            literal = type(default)(stated.replace(",", ""))
        except ValueError:
            continue  # a described default ("the model's context", "5% of --max-steps")
        assert literal == default, f"{name} --{param}: help says {stated}, settings say {default}"
        checked += 1
    assert checked or name in {"import-hf", "export-hf"}
