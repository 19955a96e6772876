"""Settings for every command: pydantic models resolved from four layers.

Precedence: command-line flag > ``--config file.toml`` > ``MINIGPT_*`` environment > default.
Every invalid value is reported at once, each naming where it came from (the flag, the config
file key, or the environment variable), so a user fixes them all in one go.

A TOML file may hold a table per command (``[sample]``, ``[pretrain]``, ...) and top-level keys
that apply to every command having that setting (``device = "cpu"``). A table that names no
command, a top-level key that no command has, and an unknown key in the command's own table are
errors that suggest the closest valid name; numbers must be finite (no inf or nan).
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from minigpt_cli.errors import MinigptError

ENV_PREFIX = "MINIGPT_"


class Settings(BaseModel):
    """Base for command settings: unknown keys are errors. ``resolve`` layers flags, a config
    file and ``MINIGPT_<NAME>`` environment variables over the defaults; constructing a
    settings class directly takes only what it is given. (A plain pydantic model, not
    pydantic-settings' BaseSettings: that package costs ~0.2 s of imports on every command's
    start, for an environment layer that is a dozen lines here.)"""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True,
                              allow_inf_nan=False)


class DeviceSettings(Settings):
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where to run: auto picks cuda, then mps, then cpu."
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Number format for weights and activations."
    )


class ModelSourceSettings(DeviceSettings):
    checkpoint: Path | None = Field(None, description="A minigpt checkpoint (file or folder).")
    from_hf: Path | None = Field(
        None, description="A Hugging Face GPT-2 folder (config.json + model.safetensors)."
    )

    model: Literal["nietzsche-char-tiny", "calculator"] | None = Field(
        None, description="A built-in model: nietzsche-char-tiny (the default of sample) or "
        "calculator (+, -, x, / with steps; the default of eval math).")

    @model_validator(mode="after")
    def _one_source(self):
        given = [f for f, v in (("--checkpoint", self.checkpoint), ("--from-hf", self.from_hf),
                                ("--model", self.model)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give one of --checkpoint, --from-hf, --model, not "
                             f"{' and '.join(given)}")
        return self


class SampleSettings(ModelSourceSettings):
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Number format of the weights. auto = bfloat16 where bf16 matrix "
        "products measure at least 1.5x float32's on the device (precision.py), else float32."
    )
    prompt: str | None = Field(None, description="Text to continue.")
    prompt_file: Path | None = Field(None, description="Read the prompt from this file.")
    max_new_tokens: int = Field(200, ge=1, le=1_000_000, description="Tokens to generate.")
    temperature: float = Field(
        1.0, ge=0.0, description="Softmax temperature; 0 means greedy (always the top token)."
    )
    top_k: int | None = Field(None, ge=1, description="Sample only among the k likeliest tokens.")
    top_p: float | None = Field(
        None, gt=0.0, le=1.0, description="Nucleus sampling: smallest set with this much mass."
    )
    seed: int = Field(1337, description="Random seed: the same seed gives the same text.")
    num_samples: int = Field(1, ge=1, le=1024, description="How many samples to draw.")

    @model_validator(mode="after")
    def _one_prompt(self):
        if self.prompt is not None and self.prompt_file is not None:
            raise ValueError("give --prompt or --prompt-file, not both")
        return self


S = TypeVar("S", bound=Settings)

# Every command with settings, by the name of its [table] in a --config file (imported only to
# check a config file's top-level keys).
COMMAND_SETTINGS = {
    "sample": "minigpt_cli.settings:SampleSettings",
    "pretrain": "minigpt_cli.train.settings:PretrainSettings",
    "finetune": "minigpt_cli.finetune.settings:FinetuneSettings",
    "shard": "minigpt_cli.sharding.config:ShardSettings",
    "make-math": "minigpt_cli.mathgen.settings:MakeMathSettings",
    "eval": "minigpt_cli.evals.settings:EvalSettings",
    "import-hf": "minigpt_cli.hf.settings:ImportHfSettings",
    "export-hf": "minigpt_cli.hf.settings:ExportHfSettings",
}


def settings_class(command: str) -> type[Settings]:
    module, _, name = COMMAND_SETTINGS[command].partition(":")
    return getattr(importlib.import_module(module), name)


def closest(name: str, valid, *, fmt: str = "'{}'") -> str:
    """"; did you mean 'temperature'?" for the valid name closest to ``name`` ("" if none)."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {fmt.format(match[0])}?" if match else ""


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise MinigptError(
            f"Config file {path} does not exist. Pass an existing TOML file to --config "
            "(examples/ in the repository has some)."
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise MinigptError(f"Config file {path} is not valid TOML: {e}. Fix the file.") from None
    except OSError as e:
        raise MinigptError(f"Config file {path} cannot be read: {e}.") from None


def _config_layer(cls: type[Settings], command: str, data: dict[str, Any]) -> dict[str, Any]:
    fields = cls.model_fields
    layer = {k: v for k, v in data.items() if k in fields and k not in COMMAND_SETTINGS}
    table = data.get(command)
    if isinstance(table, dict):
        layer.update(table)  # unknown keys here are reported by validation
    return layer


def config_problems(cls: type[Settings], command: str, data: dict[str, Any],
                    config: Path) -> list[str]:
    """A table that is no command's and a top-level key that no command has, each with the
    closest valid name. (Unknown keys in the command's own table are reported by validation.)"""
    problems = []
    fields = cls.model_fields
    for key, value in data.items():
        if key in COMMAND_SETTINGS or key in fields:
            if key in COMMAND_SETTINGS and not isinstance(value, dict):
                problems.append(f"  {config} key '{key}': must be a table ([{key}]) of that "
                                "command's settings")
            continue
        if isinstance(value, dict) and not _any_command_has(key):
            tables = ", ".join(f"[{c}]" for c in COMMAND_SETTINGS)
            problems.append(f"  {config} table [{key}]: no command has this table"
                            f"{closest(key, COMMAND_SETTINGS, fmt='[{}]')} (tables: {tables})")
        elif not isinstance(value, dict) and not _any_command_has(key):
            problems.append(f"  {config} key '{key}': no command has this setting"
                            f"{closest(key, _all_fields())} (a top-level key applies to every "
                            "command that has it; `minigpt COMMAND --help` lists them)")
    return problems


def _all_fields() -> set[str]:
    return {f for c in COMMAND_SETTINGS for f in settings_class(c).model_fields}


def _any_command_has(key: str) -> bool:
    return key in _all_fields()


def env_layer(cls: type[Settings], env: Mapping[str, str]) -> dict[str, Any]:
    """``MINIGPT_<FIELD>`` variables (names in any case) for the fields of ``cls``. A list,
    dict or model field takes a JSON value; a value that is not JSON is passed on as it is, and
    validation reports it, naming the variable. Other fields take the string as it is (pydantic
    converts "3" or "true")."""
    upper = {k.upper(): v for k, v in env.items() if k.upper().startswith(ENV_PREFIX)}
    layer: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        raw = upper.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if _structured(field.annotation):
            try:
                layer[name] = json.loads(raw)
                continue
            except ValueError:
                pass
        layer[name] = raw
    return layer


def _structured(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_structured(a) for a in get_args(annotation) if a is not type(None))
    if origin in (list, dict, set, tuple, frozenset) or annotation in (list, dict, set, tuple):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def resolve(
    cls: type[S],
    command: str,
    flags: dict[str, Any],
    config: Path | None = None,
) -> S:
    """Build ``cls`` from flags (``None`` = not given) over a config file over the environment."""
    given = {k: v for k, v in flags.items() if v is not None}
    data = load_config_file(config) if config else {}
    problems = config_problems(cls, command, data, config) if config else []
    file_layer = _config_layer(cls, command, data)
    env = env_layer(cls, os.environ)
    try:
        settings = cls(**{**env, **file_layer, **given})
    except ValidationError as e:
        problems += _describe(cls, e, given, file_layer, env, config, command)
    if problems:
        n = len(problems)
        raise SettingsError(f"{n} invalid setting{'s' if n > 1 else ''} for `minigpt "
                            f"{command}`:\n" + "\n".join(problems))
    return settings


class SettingsError(MinigptError):
    pass


def _describe(cls, err: ValidationError, given, file_layer, env, config, command) -> list[str]:
    lines = []
    for e in err.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        if not field:
            where = "settings"
        elif field in given:
            where = flag_name(field)
        elif field in file_layer:
            where = f"{config} key '{command}.{field}'" if _in_table(config, command, field) \
                else f"{config} key '{field}'"
        elif field in env:
            where = f"environment variable {ENV_PREFIX}{field.upper()}"
        else:
            where = flag_name(field)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = ("unknown setting" + closest(field, cls.model_fields)
                   + " (`minigpt " + command + " --help` lists the settings)")
        elif e["type"] == "finite_number":
            msg = "must be a finite number (not inf or nan)"
        got = "" if e["type"] in ("extra_forbidden", "missing") or not field else \
            f" (got {e.get('input')!r})"
        lines.append(f"  {where}: {msg}{got}")
    return lines


def _in_table(config: Path | None, command: str, field: str) -> bool:
    if config is None:
        return False
    data = load_config_file(config)
    return isinstance(data.get(command), dict) and field in data[command]


def dump(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain JSON values (saved next to every output)."""
    return settings.model_dump(mode="json")
