"""`minigpt import-hf` and `minigpt export-hf`: Hugging Face GPT-2, Llama and Qwen3 folders,
both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minigpt_cli.commands.options import ConfigOpt
from minigpt_cli.commands.render import err_console

OUTPUT = "Output"
ForceOpt = Annotated[bool | None, typer.Option("--force", help="Replace OUT if it already "
                     "exists (it is replaced only once the new output is complete).",
                     rich_help_panel=OUTPUT)]


def import_hf(
    source: Annotated[Path, typer.Argument(help="Hugging Face GPT-2, Llama or Qwen3 folder: "
                      "config.json + model.safetensors (sharded is fine), as `save_pretrained` "
                      "writes it.",
                      metavar="DIR", show_default=False)],
    out: Annotated[Path, typer.Argument(help="minigpt checkpoint to write: a folder (gets "
                   "model.safetensors + settings.json) or a .safetensors file.",
                   metavar="OUT", show_default=False)],
    force: ForceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Convert a Hugging Face GPT-2 model (e.g. OpenAI's gpt2) into a minigpt checkpoint."""
    flags = dict(locals())
    flags.pop("config")
    from minigpt_cli.hf.settings import ImportHfSettings
    from minigpt_cli.settings import dump, resolve

    s = resolve(ImportHfSettings, "import-hf", flags, config)
    from minigpt_cli.hf import import_hf as convert

    path, hf = convert(s.source, s.out, s.force, settings=dump(s))
    err_console.print(f"[dim]read {hf.folder}: {_describe(hf.model, hf.tokenizer)}[/dim]")
    typer.echo(f"wrote minigpt checkpoint {path}")


def export_hf(
    checkpoint: Annotated[Path, typer.Argument(help="minigpt checkpoint: a model.safetensors "
                          "file or the folder holding it.", metavar="CKPT",
                          show_default=False)],
    out: Annotated[Path, typer.Argument(help="Folder to write (config.json, model.safetensors, "
                   "tokenizer files) for transformers.", metavar="OUT",
                   show_default=False)],
    force: ForceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write a checkpoint as a folder transformers loads: GPT2LMHeadModel for GPT-2,
    LlamaForCausalLM or Qwen3ForCausalLM for RoPE + RMSNorm + SwiGLU without biases."""
    flags = dict(locals())
    flags.pop("config")
    from minigpt_cli.hf.settings import ExportHfSettings
    from minigpt_cli.settings import dump, resolve

    s = resolve(ExportHfSettings, "export-hf", flags, config)
    from minigpt_cli.hf import check_output_folder
    from minigpt_cli.hf import export_hf as export
    from minigpt_cli.model_file import load_checkpoint

    check_output_folder(s.out, bool(s.force))
    model, tok, ckpt = load_checkpoint(s.checkpoint)
    err_console.print(f"[dim]read {ckpt.path} (step {ckpt.step}): "
                      f"{_describe(model, tok)}[/dim]")
    folder = export(model, s.out, tok, s.force, settings=dump(s))
    import json

    arch = json.loads((folder / "config.json").read_text())["architectures"][0]
    typer.echo(f"wrote Hugging Face {arch} folder {folder}: "
               + ", ".join(sorted(p.name for p in folder.iterdir())))


def _describe(model, tok) -> str:
    from minigpt_cli.model_config import describe_switches

    c = model.config
    return (f"{c.n_layer} layers, {c.n_head} heads, {c.n_embd} dims, context {c.block_size}, "
            f"vocab {c.vocab_size}, {model.num_params() / 1e6:.2f}M parameters, "
            f"{describe_switches(c)}, "
            f"tokenizer {tok.name}")
