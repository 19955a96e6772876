"""A plugin's own options are reachable: `minigpt plugins NAME` shows one plugin in full (every
option with its type, default and description, and how to set it), and `minigpt shard SOURCE
--help` adds the source's options to the shard help without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

from shard_support import cli

from minigpt_cli import plugins
from minigpt_cli.plugin_catalog import options_of


def test_plugins_name_shows_every_option_with_type_default_and_description():
    r = cli("plugins", "commoncrawl")
    assert r.exit_code == 0, r.output
    assert r.flat.startswith("source commoncrawl from minigpt")
    assert "Common Crawl WET files" in r.flat  # the module's summary: the class has none
    assert "set with -o KEY=VALUE: `minigpt shard commoncrawl INPUT... -o KEY=VALUE`" in r.flat
    assert "Filter stages by default: language -> gopher_repetition -> gopher_quality -> c4 -> " \
        "exact_dedup -> minhash_dedup" in r.flat
    options = options_of(plugins.load("source", "commoncrawl").Options)
    assert len(options) > 8
    for o in options:
        assert f"{o.name} {o.type}, default {json.dumps(o.default)}" in r.flat, o.name
        assert " ".join(o.description.split()) in r.flat, o.name
    assert "segments int | None, default null with a crawl id: how many" in r.flat


def test_a_stage_an_eval_and_a_name_of_two_kinds():
    r = cli("plugins", "stage", "minhash_dedup")
    assert r.exit_code == 0, r.output
    assert r.flat.startswith("stage minhash_dedup (stateful) from minigpt")
    assert "-S minhash_dedup.KEY=VALUE after `--stage minhash_dedup`" in r.flat
    assert "bands int, default 14" in r.flat and "Filter stages by default" not in r.flat
    r = cli("plugins", "math")  # a source and an eval
    assert r.exit_code == 0, r.output
    assert "source math from minigpt" in r.flat and "eval math from minigpt" in r.flat
    assert "`minigpt eval math --option KEY=VALUE`" in r.flat and "[eval.options]" in r.flat
    r = cli("plugins", "source", "math", "--json")
    assert [(e["kind"], e["name"]) for e in json.loads(r.output)] == [("source", "math")]


def test_unknown_names_and_kinds_are_errors_listing_what_is_installed():
    r = cli("plugins", "comoncrawl")
    assert r.exit_code == 2
    assert "No plugin (or plugin kind: source, stage, eval) named 'comoncrawl'" in r.flat
    assert "Installed sources: commoncrawl," in r.flat and "evals: hellaswag, loss, math" in r.flat
    r = cli("plugins", "stage", "text")
    assert r.exit_code == 2 and "No stage plugin named 'text'. Installed stages: c4," in r.flat
    r = cli("plugins", "sources", "text")
    assert r.exit_code == 2 and "Unknown plugin kind 'sources'" in r.flat
    r = cli("plugins")
    assert r.exit_code == 0 and "`minigpt plugins NAME` shows one plugin in full" in r.flat


def test_shard_help_points_at_the_plugins_and_shows_a_sources_options():
    r = cli("shard", "--help")
    assert r.exit_code == 0
    assert "`minigpt shard SOURCE --help` or `minigpt plugins SOURCE`" in r.flat
    assert "`minigpt plugins STAGE`" in r.flat and "source commoncrawl from" not in r.flat
    r = cli("shard", "commoncrawl", "--help")
    assert r.exit_code == 0
    assert "Usage: minigpt shard" in r.flat and "--shard-size" in r.flat
    assert "source commoncrawl from minigpt" in r.flat
    assert "max_failed_inputs int, default 3 stop after this many inputs" in r.flat
    r = cli("shard", "text", "--help")
    assert "split 'file' | 'paragraph' | 'line', default \"file\"" in r.flat
    r = cli("shard", "nonsense", "--help")
    assert r.exit_code == 0 and "No source plugin named 'nonsense'" in r.flat


def test_a_sources_help_and_a_plugin_view_do_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from minigpt_cli.cli import app; "
            "a = CliRunner().invoke(app, ['shard', 'commoncrawl', '--help']); "
            "b = CliRunner().invoke(app, ['plugins', 'stage', 'language']); "
            "assert a.exit_code == b.exit_code == 0, a.output + b.output; "
            "assert 'segments' in a.output and 'min_score' in b.output; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
