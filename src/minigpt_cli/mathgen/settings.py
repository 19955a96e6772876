"""Settings of `minigpt make-math`; each is a flag, a key of the ``[make-math]`` table of a
``--config`` TOML file, and a ``MINIGPT_<NAME>`` environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from minigpt_cli.mathgen.problems import OpSpec, parse_ops, parse_range
from minigpt_cli.settings import Settings

# The calculator's mix (issue 18): +/- 1-5 digits each in any mix of lengths (negative
# differences included), x up to 3 x 3 digits, / up to 5 digits by 2 (quotient and remainder).
DEFAULT_OPS = "+:1-5,-:1-5,*:1-3,/:1-5x1-2"
DEFAULT_DIGITS = "1-3"


class MakeMathSettings(Settings):
    out: Path = Field(description="Folder to write train.jsonl, test.jsonl, meta.json and "
                      "settings.json into.")
    n: int = Field(100_000, ge=0, description="Training problems in all, split evenly over the "
                   "operations.")
    n_test: int = Field(2000, ge=0, description="Held-out problems per operation (disjoint "
                        "from training by operand pair).")
    n_test_cell: int | None = Field(None, ge=1, description="Held-out problems per (operation, "
                                    "operand lengths) cell instead of --n-test per operation; "
                                    "a cell that cannot hold out this many is refused.")
    ops: str | None = Field(None, description="Operations, e.g. '+,-,*,/'; with lengths per "
                            "operation, e.g. '+:3,-:3,*:2x2,/:4x1' (OP:AxB = len a x len b). "
                            f"Default: {DEFAULT_OPS!r} (the calculator's mix), or '+,-,*,/' "
                            "when --digits/--digits-a/--digits-b is given.")
    digits: str | None = Field(None, description="Operand lengths in digits, a count (3) or "
                               "range (1-3), for both operands of operations --ops gives no "
                               "lengths (default 1-3).")
    digits_a: str | None = Field(None, description="Lengths of the first operand (default: "
                                 "--digits).")
    digits_b: str | None = Field(None, description="Lengths of the second operand / divisor "
                                 "(default: --digits).")
    format: Literal["cot", "plain", "reverse"] = Field(
        "cot", description="cot: grade-school steps then the answer; plain: the answer only; "
        "reverse: the answer's digits reversed.")
    tokenizer: Literal["char", "gpt2"] = Field(
        "char", description="Tokenizer the data is for: gpt2 writes a space before every "
        "character so each digit is one BPE token.")
    spaced_digits: bool | None = Field(None, description="Space-separate characters (default: "
                                       "on for --tokenizer gpt2, off for char).")
    balance: Literal["carries", "lengths", "none"] = Field(
        "carries", description="carries: even over operand lengths, then over carry/borrow "
        "counts; lengths: even over lengths only; none: uniform over all problems.")
    seed: int = Field(0, description="Random seed: the same seed and settings give the same "
                      "files.")
    block_size: int | None = Field(None, ge=2, description="Refuse settings whose longest "
                                   "example (+ end-of-text) would not fit this many tokens.")
    workers: int = Field(0, ge=0, description="Processes that format and check lines (0 = one "
                         "per CPU core, at most 8).")

    @field_validator("digits", "digits_a", "digits_b")
    @classmethod
    def _range(cls, v: str | None) -> str | None:
        if v is not None:
            parse_range(v, "length")
        return v

    @field_validator("ops")
    @classmethod
    def _ops(cls, v: str | None) -> str | None:
        if v is not None:
            parse_ops(v, (1, 1), (1, 1))
        return v

    @model_validator(mode="after")
    def _something(self):
        if self.n == 0 and self.n_test == 0:
            raise ValueError("--n and --n-test are both 0: nothing to write")
        return self

    @property
    def resolved_ops(self) -> str:
        if self.ops is not None:
            return self.ops
        given = (self.digits, self.digits_a, self.digits_b) != (None, None, None)
        return "+,-,*,/" if given else DEFAULT_OPS

    def op_specs(self) -> list[OpSpec]:
        both = self.digits or DEFAULT_DIGITS
        da = parse_range(self.digits_a or both, "length")
        db = parse_range(self.digits_b or both, "length")
        return parse_ops(self.resolved_ops, da, db)

    @property
    def spaced(self) -> bool:
        return self.tokenizer == "gpt2" if self.spaced_digits is None else self.spaced_digits
