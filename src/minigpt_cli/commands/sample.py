"""`minigpt sample`: generate text from a checkpoint, streaming tokens as they come."""

from __future__ import annotations

import codecs
import os
import stat
import sys
from pathlib import Path
from typing import Annotated

import typer

from minigpt_cli.commands.options import (
    RUNTIME_PANEL,
    BuiltinOpt,
    CheckpointOpt,
    ConfigOpt,
    DeviceOpt,
    FromHfOpt,
)
from minigpt_cli.commands.render import err_console

GEN = "Generation"


def sample(
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="Text to continue. "
                      "Without --prompt/--prompt-file, piped stdin is the prompt.",
                      rich_help_panel=GEN)] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from a file "
                           "('-' for stdin).", rich_help_panel=GEN)] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", "-n",
                              help="Tokens to generate \\[default: 200].",
                              rich_help_panel=GEN)] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", "-t",
                           help="Softmax temperature; 0 = greedy \\[default: 1.0].",
                           rich_help_panel=GEN)] = None,
    top_k: Annotated[int | None, typer.Option(help="Keep only the k likeliest tokens.",
                     rich_help_panel=GEN)] = None,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling mass in (0, 1].",
                     rich_help_panel=GEN)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed \\[default: 1337].",
                    rich_help_panel=GEN)] = None,
    num_samples: Annotated[int | None, typer.Option(help="Samples to draw \\[default: 1].",
                           rich_help_panel=GEN)] = None,
    checkpoint: CheckpointOpt = None,
    from_hf: FromHfOpt = None,
    model: BuiltinOpt = None,
    device: DeviceOpt = None,
    dtype: Annotated[str | None, typer.Option(
        help="auto | float32 | bfloat16 | float16 \\[default: auto]: auto = bfloat16 where "
        "measured >= 1.5x faster than float32 here.", rich_help_panel=RUNTIME_PANEL)] = None,
    config: ConfigOpt = None,
) -> None:
    """Generate text with a KV cache; tokens stream to stdout as they are produced. With the
    calculator (--model calculator, or any char model trained on make-math data) the prompt is
    a question, '35 + 42 = ?': it prints the checked steps and the answer."""
    flags = dict(locals())
    flags.pop("config")
    from minigpt_cli.settings import SampleSettings, resolve

    s = resolve(SampleSettings, "sample", flags, config)
    text = _read_prompt(s.prompt, s.prompt_file)

    import torch

    from minigpt_cli.generation import SamplingParams, crop_prompt, generate
    from minigpt_cli.loading import load_model
    from minigpt_cli.precision import choose_dtype
    from minigpt_cli.runtime import resolve_device

    dev = resolve_device(s.device)
    dtype, why = choose_dtype(s.dtype, dev)
    model, tok, what = load_model(s.checkpoint, s.from_hf, dev, dtype, s.model)
    from minigpt_cli.mathgen.calculator import is_math_model

    if is_math_model(tok):
        if s.dtype == "auto":  # a tiny model where one wrong digit is a wrong answer
            model, why = model.float(), "float32 (a calculator: auto keeps float32)"
        err_console.print(f"[dim]asking {what} in {why}, greedily[/dim]")
        _calculate(model, tok, text, s.max_new_tokens)
        return
    err_console.print(f"[dim]sampling from {what} in {why}[/dim]")
    ids, dropped = crop_prompt(tok.encode(text, allow_special=True), model.config.block_size)
    if dropped:
        err_console.print(f"[yellow]warning:[/yellow] the prompt is longer than the model's "
                          f"context of {model.config.block_size} tokens; its first {dropped} "
                          "tokens were dropped.")
    params = SamplingParams(s.max_new_tokens, s.temperature, s.top_k, s.top_p)
    gen = torch.Generator(device=dev).manual_seed(s.seed)
    steps = generate(model, ids, params, s.num_samples, gen, tok.eot_id)
    if s.num_samples == 1:
        _stream(text, steps, tok)
    else:
        _print_batch(text, steps, tok, s.num_samples)


def _calculate(model, tok, text: str, max_new_tokens: int) -> None:
    """The question through the one normaliser, greedy steps, the checker's verdict."""
    from minigpt_cli.mathgen.calculator import ask

    ans = ask(model, tok, text, max_new_tokens)
    q, r = ans.question, ans.result
    shown = {"*": "x", "/": "/"}.get(q.op, q.op)
    sys.stdout.write(f"{ans.prompt}{ans.output}\n")
    sys.stdout.write(f"{q.a} {shown} {q.b} = {ans.answer if ans.answer is not None else '?'}\n")
    sys.stdout.flush()
    if r.ok:
        err_console.print(f"[dim]checked: {r.steps_valid} of {r.steps_total} steps valid, "
                          "answer right[/dim]")
    else:
        err_console.print(f"[yellow]the checker disagrees:[/yellow] {r.error}; "
                          f"{q.a}{q.op}{q.b} is {r.expected} ({r.steps_valid} of "
                          f"{r.steps_total} steps valid).")


def _read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    from minigpt_cli.errors import MinigptError

    if prompt is not None:
        return prompt
    if prompt_file is not None:
        if str(prompt_file) == "-":
            return sys.stdin.read()
        try:
            return prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise MinigptError(f"--prompt-file {prompt_file} cannot be read as UTF-8 text: {e}.")
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        piped = stat.S_ISFIFO(mode) or stat.S_ISREG(mode)
    except (OSError, ValueError, AttributeError):
        piped = False
    return sys.stdin.read() if piped and not sys.stdin.isatty() else ""


def _stream(prompt: str, steps, tok) -> None:
    out = sys.stdout
    out.write(prompt)
    out.flush()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for t in steps:
        i = int(t[0])
        if i == tok.eot_id:
            break
        out.write(decoder.decode(tok.decode_bytes([i])))
        out.flush()
    out.write(decoder.decode(b"", final=True) + "\n")
    out.flush()


def _print_batch(prompt: str, steps, tok, n: int) -> None:
    rows: list[list[int]] = [[] for _ in range(n)]
    finished = [False] * n
    for t in steps:
        for b, i in enumerate(t.tolist()):
            if i == tok.eot_id:
                finished[b] = True
            if not finished[b]:
                rows[b].append(i)
    for b, row in enumerate(rows):
        if b:
            sys.stdout.write("\n---------------\n")
        sys.stdout.write(prompt + tok.decode(row) + "\n")
    sys.stdout.flush()
