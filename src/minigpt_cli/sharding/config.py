"""Settings of `minigpt shard`, resolved like every command's (flag > --config > env > default).

A TOML config holds them in a ``[shard]`` table, with the source's options in
``[shard.options]`` and the stage chain as ``[[shard.stages]]`` tables (``name`` plus that
stage's options); see examples/shard.toml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from minigpt_cli.settings import Settings

DEFAULT_SHARD_SIZE = 100_000_000
MAX_SHARD_SIZE = 2**31 - 1  # the header stores the token count as int32


class StageSpec(BaseModel):
    """One link of the chain: a stage plugin's name and its options."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_options(cls, data: Any) -> Any:
        """``{name = "head", n = 10}`` (a TOML table) is ``{name, options = {n = 10}}``."""
        if isinstance(data, dict) and set(data) - {"name", "options"}:
            extra = {k: v for k, v in data.items() if k not in ("name", "options")}
            return {"name": data.get("name"), "options": {**data.get("options", {}), **extra}}
        return data


class Part(BaseModel):
    """``--part i/N``: this job reads every N-th input, starting with the i-th (1-based)."""

    model_config = ConfigDict(frozen=True)
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Part:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise ValueError("must be i/N with 1 <= i <= N, e.g. 2/8")
        return cls(index=int(m.group(1)), count=int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ShardSettings(Settings):
    source: str = Field(..., description="Source plugin: text, jsonl, parquet, fineweb, "
                        "commoncrawl, or one a package installs (`minigpt plugins`).")
    inputs: list[str] = Field(default_factory=list,
                              description="The source's inputs: files, directories, globs, URLs.")
    out: Path = Field(..., description="Folder for the shards and manifest.json.")
    options: dict[str, Any] = Field(default_factory=dict, description="The source's options.")
    stages: list[StageSpec] | None = Field(
        None, description="The filter chain; unset = the source's default recipe.")
    stage_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options by stage name, applied over the chain "
        "(the default recipe's stages too).")
    tokenizer: Literal["gpt2", "char"] = Field("gpt2", description="gpt2 BPE or char.")
    char_vocab: Path | None = Field(
        None, description="char tokenizer: the vocabulary (JSON list of characters, or a "
        "manifest.json of other shards); unset = built in a first pass over the documents.")
    shard_size: int = Field(DEFAULT_SHARD_SIZE, ge=1, le=MAX_SHARD_SIZE,
                            description="Tokens per shard (the last one may be shorter).")
    workers: int = Field(default_factory=default_workers, ge=0, le=1024,
                         description="Tokenizer worker processes (one that only "
                         "tokenizes GPT-2 BPE is a thread); 0 tokenizes in the main process.")
    part: str | None = Field(None, description="i/N: this job's share of the inputs.")
    parts: int | None = Field(None, ge=1, le=1_000_000, description="Run as a job of N parts "
                              "with global dedup, merged into --out (default with --executor: "
                              "one part per input).")
    executor: Literal["local", "dask"] | None = Field(
        None, description="Where a job's tasks run: local (this process) or dask (a Dask "
        "distributed cluster: --address, else a local one with --workers processes).")
    address: str | None = Field(None, description="dask: the scheduler, HOST:PORT.")

    @field_validator("part")
    @classmethod
    def _valid_part(cls, v: str | None) -> str | None:
        if v is not None:
            Part.parse(v)
        return v

    def is_job(self) -> bool:
        return self.parts is not None or self.executor is not None

    def part_spec(self) -> Part:
        return Part.parse(self.part) if self.part else Part(index=1, count=1)

    def output_fingerprint(self) -> str:
        """Hash of everything that decides the bytes of the shards (not workers, not out)."""
        keep = self.model_dump(mode="json", exclude={"workers", "out", "executor", "address"})
        if keep.get("parts") is None:  # a setting newer than some folders: their prints hold
            keep.pop("parts", None)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def parse_assignments(pairs: list[str], flag: str) -> dict[str, Any]:
    """``["k=v", "k=w", "n=[1, 2]"]`` -> ``{"k": ["v", "w"], "n": [1, 2]}``.

    Values stay strings (the plugin's Options model converts them: "0.5" to a float, "true" to
    a bool); JSON arrays and objects are parsed; a key given twice collects a list.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{flag} {pair!r}: expected key=value")
        parsed: Any = value
        if value.strip()[:1] in ("[", "{"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(f"{flag} {pair!r}: the value is not valid JSON ({e})") from None
        if key in out:
            prev = out[key] if isinstance(out[key], list) else [out[key]]
            parsed = prev + (parsed if isinstance(parsed, list) else [parsed])
        out[key] = parsed
    return out


def parse_stage_options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["language.min_score=0.8"]`` -> ``{"language": {"min_score": "0.8"}}``."""
    by_stage: dict[str, list[str]] = {}
    for pair in pairs:
        stage, dot, rest = pair.partition(".")
        if not dot or "=" not in rest or "=" in stage:
            raise ValueError(f"--stage-option {pair!r}: expected STAGE.key=value")
        by_stage.setdefault(stage.strip(), []).append(rest)
    return {k: parse_assignments(v, "--stage-option") for k, v in by_stage.items()}
