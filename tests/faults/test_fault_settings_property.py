"""Property: invalid values for any fields of any command's settings, given at once through any
mix of sources -- a flag, the command's [table] or a top-level key of a --config file, a
MINIGPT_* environment variable -- all come back in one error that names each value's source,
through the real CLI (CliRunner), exit code 2, never a traceback.

Which values are invalid for a field is found by asking the settings model itself, one field
at a time, from a fixed pool of hostile values (negative, zero, huge, fractional, inf, nan,
empty, nonsense, wrong type); the test checks that every field has some invalid value, so no
field escapes the property unnoticed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import pytest

pytest.importorskip("hypothesis", reason="the property test needs hypothesis (the test extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pydantic import ValidationError
from typer.models import ArgumentInfo, OptionInfo
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.settings import COMMAND_SETTINGS, ENV_PREFIX, settings_class

# hostile values as each source can spell them
CONFIG_POOL: list[Any] = [-1, 0, -(10**12), 10**40, 1.5, -0.5, math.inf, -math.inf, math.nan,
                          "", "nonsense", "-1", True, [1, 2], {"x": 1}]
ENV_POOL = ["", "nonsense", "-1", "0", "1.5", "-0.5", "inf", "nan", "1e999", "[1, 2]",
            '{"x": 1}', "true"]
FLAG_POOL = ["-1", "0", "-1000000000000", "1.5", "-0.5", "inf", "nan", "nonsense", ""]
POSITIONAL = {"eval": ["loss"], "import-hf": ["hf_in", "ckpt_out"],
              "export-hf": ["ckpt_in", "hf_out"], "shard": ["text"]}
SOURCES = ("flag", "table", "top", "env")


def _callbacks() -> dict[str, Any]:
    return {c.name: getattr(c.callback, "__wrapped__", c.callback)
            for c in app.registered_commands}


def _flags(fn) -> dict[str, tuple[str, type]]:
    """Settings field -> (option name, the Python type typer converts the flag to)."""
    out = {}
    for name, hint in get_type_hints(fn, include_extras=True).items():
        if get_origin(hint) is not Annotated:
            continue
        base, *extras = get_args(hint)
        info = next((e for e in extras if isinstance(e, (OptionInfo, ArgumentInfo))), None)
        if not isinstance(info, OptionInfo) or name == "config":
            continue
        decls = [d.split("/")[0] for d in info.param_decls if d.startswith("--")]
        kinds = [a for a in get_args(base) if a is not type(None)] or [base]
        if kinds[0] in (int, float, str):
            out[name] = (decls[0] if decls else "--" + name.replace("_", "-"), kinds[0])
    return out


def _arguments(fn) -> set[str]:
    """Parameters given as positional arguments: they always win over --config and env."""
    out = set()
    for name, hint in get_type_hints(fn, include_extras=True).items():
        if get_origin(hint) is Annotated and any(isinstance(e, ArgumentInfo)
                                                 for e in get_args(hint)[1:]):
            out.add(name)
    return out


def _required(cls) -> dict[str, Any]:
    """Valid values for the fields a command cannot do without."""
    base = {}
    for name, f in cls.model_fields.items():
        if f.is_required():
            base[name] = "text" if f.annotation is str else Path("somewhere")
    return base


def _rejects(cls, base: dict, field: str, value: Any) -> bool:
    """Does the model refuse ``value`` for ``field`` itself (an error located at the field)?"""
    try:
        cls(**{**base, field: value})
    except ValidationError as e:
        return any(err["loc"][:1] == (field,) for err in e.errors())
    except Exception:  # noqa: BLE001 -- a validator that crashes fails the property
        return True
    return False


def _bad_values(command: str) -> dict[str, dict[str, list]]:
    """field -> source -> values the model refuses for that field alone."""
    cls = settings_class(command)
    flags = _flags(_callbacks()[command])
    base = _required(cls)
    out: dict[str, dict[str, list]] = {}
    positional = _arguments(_callbacks()[command]) if command in POSITIONAL else set()
    for field in cls.model_fields:
        if field in positional:
            continue
        found = {
            "table": [v for v in CONFIG_POOL if _rejects(cls, base, field, v)],
            "env": [v for v in ENV_POOL if _rejects(cls, base, field, _env_value(cls, field, v))],
        }
        found["top"] = found["table"]
        if field in flags:
            kind = flags[field][1]
            found["flag"] = [v for v in FLAG_POOL if _converts(kind, v)
                             and _rejects(cls, base, field, kind(v))]
        out[field] = {k: v for k, v in found.items() if v}
    return out


def _env_value(cls, field: str, raw: str) -> Any:
    from minigpt_cli.settings import env_layer

    return env_layer(cls, {ENV_PREFIX + field.upper(): raw})[field]


def _converts(kind: type, text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


BAD = {command: _bad_values(command) for command in COMMAND_SETTINGS}
FLAGS = {command: _flags(_callbacks()[command]) for command in COMMAND_SETTINGS}


def test_every_field_of_every_command_has_an_invalid_value():
    missing = [f"{c}.{f}" for c, fields in BAD.items() for f, by in fields.items() if not by]
    assert not missing, f"no hostile value is refused for {missing}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("settings-property")


@st.composite
def bad_settings(draw):
    command = draw(st.sampled_from(sorted(BAD)))
    fields = draw(st.lists(st.sampled_from(sorted(BAD[command])), min_size=1, max_size=4,
                           unique=True))
    picks = []
    for field in fields:
        source = draw(st.sampled_from([s for s in SOURCES if s in BAD[command][field]]))
        picks.append((field, source, draw(st.sampled_from(BAD[command][field][source]))))
    return command, picks


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=bad_settings())
def test_invalid_values_from_every_source_are_reported_together(config_dir, case):
    command, picks = case
    config = config_dir / "bad.toml"
    top = [f"{f} = {_toml(v)}" for f, s, v in picks if s == "top"]
    table = [f"{f} = {_toml(v)}" for f, s, v in picks if s == "table"]
    config.write_text("\n".join(top + [f"[{command}]"] + table) + "\n")
    env = {ENV_PREFIX + f.upper(): v for f, s, v in picks if s == "env"}
    args = [command, *POSITIONAL.get(command, []), "--config", str(config)]
    for f, s, v in picks:
        if s == "flag":
            args += [f"{FLAGS[command][f][0]}={v}"]
    r = CliRunner().invoke(app, args, env=env)
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), \
        f"{args} {env}: {r.exception!r}"
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, (args, env, r.output)
    assert "invalid setting" in out and f"for `minigpt {command}`" in out, (args, env, out)
    for field, source, value in picks:
        where = {"flag": FLAGS[command].get(field, ("",))[0],
                 "table": f"{config} key '{command}.{field}'",
                 "top": f"{config} key '{field}'",
                 "env": f"environment variable {ENV_PREFIX}{field.upper()}"}[source]
        assert f"{where}:" in out, (field, source, value, args, env, out)


@pytest.mark.parametrize("command", sorted(COMMAND_SETTINGS))
def test_every_command_is_in_the_registry(command):
    assert command in _callbacks()
