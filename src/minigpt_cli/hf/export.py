"""Writing our GPT as a Hugging Face folder that transformers loads as the class computing the
same function: GPT2LMHeadModel for GPT-2, LlamaForCausalLM / Qwen3ForCausalLM for the
RoPE + RMSNorm + SwiGLU switches (hf/llama.py); any other combination is refused."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from minigpt_cli import lock
from minigpt_cli.atomic import current_umask, fsync_path
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.hf.llama import hf_architecture, llama_config, llama_state_dict
from minigpt_cli.hf.read import CONFIG_NAME, CONV1D, WEIGHTS_NAME
from minigpt_cli.hf.tokenizer_files import write_hf_tokenizer
from minigpt_cli.model import GPTConfig
from minigpt_cli.model_file import save_tensors, unwrap
from minigpt_cli.oserrors import with_filename
from minigpt_cli.tokenizer import Tokenizer


def hf_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our GPT -> GPT2LMHeadModel tensors: Conv1D layout, real vocabulary rows only, the tied
    LM head left out (transformers ties it back), and zero biases for a bias-free model."""
    gpt = unwrap(model)
    vocab = gpt.config.vocab_size
    state = {k: v for k, v in gpt.state_dict().items() if k != "lm_head.weight"}
    for name, module in gpt.named_modules():
        if isinstance(module, torch.nn.LayerNorm) and module.weight is None:
            # a LayerNorm without gains: gains of one and zero biases are the same function
            n = module.normalized_shape[0]
            state[f"{name}.weight"] = gpt.transformer.wte.weight.new_ones(n)
            state[f"{name}.bias"] = gpt.transformer.wte.weight.new_zeros(n)
            continue
        norm_or_linear = isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm))
        if norm_or_linear and name != "lm_head" and module.bias is None:
            # a zero bias is the same function, in GPT-2's shape
            state[f"{name}.bias"] = module.weight.new_zeros(module.weight.shape[0])
    out = {}
    for key, t in state.items():
        t = t.detach()
        if key == "transformer.wte.weight":
            t = t[:vocab]  # (padded V, C) -> (V, C): padding rows are never predicted
        elif key.endswith(CONV1D):
            t = t.t()  # nn.Linear (out, in) -> Conv1D (in, out)
        out[key] = t.to("cpu").contiguous()
    return out


def hf_config(config: GPTConfig, tokenizer: Tokenizer, dtype: torch.dtype) -> dict[str, Any]:
    """A GPT2Config for transformers describing exactly this model."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.mlp_hidden or None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": config.norm_eps,
        "initializer_range": 0.02,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": tokenizer.eot_id,
        "eos_token_id": tokenizer.eot_id,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


SETTINGS_NAME = "minigpt_settings.json"  # the resolved `export-hf` settings, if given


def export_hf(model: torch.nn.Module, out_dir: Path | str, tokenizer: Tokenizer,
              force: bool = False, settings: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir`` so that ``GPT2LMHeadModel.from_pretrained(out_dir)`` (or Llama's or
    Qwen3's class, ``hf_architecture``) loads this model (and, for the GPT-2 tokenizer,
    ``AutoTokenizer.from_pretrained(out_dir)`` its tokenizer). A model no transformers class
    computes is refused before anything is written, naming the switches.

    The folder is built beside ``out_dir`` and renamed into place: a failure leaves nothing
    half-written, and an existing non-empty folder is replaced only with ``force``.
    """
    gpt = unwrap(model)
    if tokenizer.vocab_size > gpt.config.vocab_size:
        raise IncompatibleError(
            f"The tokenizer has {tokenizer.vocab_size} ids but the model predicts only "
            f"{gpt.config.vocab_size}; they do not belong together."
        )
    arch = hf_architecture(gpt.config)
    dtype = gpt.transformer.wte.weight.dtype
    if arch == "GPT2LMHeadModel":
        tensors, config = hf_state_dict(gpt), hf_config(gpt.config, tokenizer, dtype)
    else:
        tensors, config = llama_state_dict(gpt), llama_config(gpt.config, tokenizer, dtype, arch)

    def fill(tmp: Path) -> None:
        save_tensors(tensors, tmp / WEIGHTS_NAME, {"format": "pt"})
        _write_json(tmp / CONFIG_NAME, config)
        for name, data in write_hf_tokenizer(tokenizer, gpt.config.block_size).items():
            (tmp / name).write_bytes(data)
        if settings is not None:
            _write_json(tmp / SETTINGS_NAME, settings)

    return write_folder(Path(out_dir), fill, force)


def check_output_folder(out: Path, force: bool = False) -> None:
    """Refuse a file, or a non-empty folder unless ``force`` (checked before any slow work)."""
    if out.exists() and not out.is_dir():
        raise MinigptError(f"{out} exists and is a file; pass a folder path for the output.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise MinigptError(
            f"{out} already exists and is not empty; nothing was written. Pick a new folder, "
            "or pass --force to replace it."
        )


def write_folder(out: Path, fill: Callable[[Path], None], force: bool = False) -> Path:
    """Build a folder beside ``out`` with ``fill``, fsync it, and rename it to ``out`` (under
    the output's writer lock, lock.py)."""
    with lock.hold_beside(out):
        return _write_folder(out, fill, force)


def _write_folder(out: Path, fill: Callable[[Path], None], force: bool) -> Path:
    check_output_folder(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old = None
    try:
        fill(tmp)
        mask = current_umask()  # mkdtemp makes 0700 and safetensors 0600: give the usual modes
        for file in tmp.iterdir():
            os.chmod(file, 0o666 & ~mask)
            fsync_path(file)
        os.chmod(tmp, 0o777 & ~mask)
        fsync_path(tmp)
        if out.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old)  # old is empty, so the rename may replace it
        os.replace(tmp, out)
        fsync_path(out.parent)
    except BaseException as e:
        if isinstance(e, OSError):
            with_filename(e, out)  # a failed write() names no file
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)  # put back what was there
        elif old is not None:
            with contextlib.suppress(OSError):
                old.rmdir()  # the empty placeholder (rmdir never removes a non-empty folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out




def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
