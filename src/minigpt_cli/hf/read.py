"""Reading a Hugging Face GPT-2, Llama or Qwen3 folder into our GPT (and `import-hf`: into a
checkpoint). Llama and Qwen3 map onto the RoPE + RMSNorm + SwiGLU switches (hf/llama.py).

HF keeps the four projection matrices in OpenAI's Conv1D layout (in, out) where nn.Linear holds
(out, in), so exactly those four are transposed. Only safetensors is read: a pytorch_model.bin
would need unpickling, which minigpt never does to a file it is handed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from minigpt_cli import atomic, lock
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.hf.llama import LLAMA_TYPES, config_from_llama, state_from_llama
from minigpt_cli.hf.tokenizer_files import read_hf_tokenizer
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.model_file import build_model, save_checkpoint
from minigpt_cli.tokenizer import Tokenizer

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")  # both are GELU's tanh approximation
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
BODY = ("wte.", "wpe.", "h.", "ln_f.")  # GPT2Model's own parameters (no "transformer." prefix)
MASK_BUFFER = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")  # causal-mask buffers, not weights
# transformers' GPT2Config defaults: a key absent from config.json means this value
HF_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
    "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False, "model_type": "gpt2",
}


@dataclass
class HfModel:
    model: GPT
    tokenizer: Tokenizer
    folder: Path
    hf_config: dict[str, Any]


def load_hf(path: Path | str) -> tuple[GPT, Tokenizer]:
    """A Hugging Face GPT-2 folder (config.json + model.safetensors) -> (GPT, tokenizer)."""
    hf = read_hf(path)
    return hf.model, hf.tokenizer


def read_hf(path: Path | str) -> HfModel:
    folder = _hf_folder(Path(path))
    raw = _read_config(folder)
    tokenizer = read_hf_tokenizer(folder)
    if raw.get("model_type") in LLAMA_TYPES:
        config = config_from_llama(raw, folder / CONFIG_NAME, tokenizer.vocab_size, _padding_for)
        state = state_from_llama(_read_tensors(folder), config, folder)
    else:
        config = gpt_config_from_hf(raw, folder / CONFIG_NAME, tokenizer.vocab_size)
        state = minigpt_state_dict(_read_tensors(folder), folder)
    model = build_model(config, state, f"the Hugging Face folder {folder}")
    return HfModel(model.eval(), tokenizer, folder, raw)


def _hf_folder(path: Path) -> Path:
    if path.is_file() and (path.name == CONFIG_NAME or path.suffix == ".safetensors"):
        path = path.parent  # a file inside the folder was given: take its folder
    if not path.is_dir():
        raise MinigptError(
            f"Hugging Face folder {path} does not exist or is not a folder. Pass the folder that "
            f"holds {CONFIG_NAME} and {WEIGHTS_NAME} (what `save_pretrained` writes)."
        )
    if not (path / CONFIG_NAME).is_file():
        raise MinigptError(
            f"{path} has no {CONFIG_NAME}, so it is not a Hugging Face model folder. Pass the "
            f"folder that `save_pretrained` wrote (config.json + {WEIGHTS_NAME})."
        )
    return path


def _read_config(folder: Path) -> dict[str, Any]:
    file = folder / CONFIG_NAME
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise MinigptError(f"{file} cannot be read as JSON ({e}). Fix or replace it.") from None
    if not isinstance(raw, dict):
        raise MinigptError(f"{file} is not a JSON object, so not a transformers config.")
    return raw


def gpt_config_from_hf(raw: dict[str, Any], where: Path | str, tokenizer_vocab: int) -> GPTConfig:
    """Map a GPT2Config dict to ours; every way it differs from GPT-2 is reported at once."""
    c = {**HF_DEFAULTS, **raw}
    if "n_positions" not in raw and "n_ctx" in raw:
        c["n_positions"] = raw["n_ctx"]
    problems = []
    if c["model_type"] != "gpt2":
        problems.append(f"model_type is {c['model_type']!r}, not 'gpt2' (nor "
                        f"{' or '.join(map(repr, LLAMA_TYPES))})")
    ints = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
    for key in ints:
        if isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 1:
            problems.append(f"{key} must be a positive integer (got {c[key]!r})")
    if c["activation_function"] not in TANH_GELUS:
        problems.append(f"activation_function is {c['activation_function']!r}; GPT-2 uses the "
                        f"tanh GELU ({' or '.join(TANH_GELUS)})")
    eps = c["layer_norm_epsilon"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        problems.append(f"layer_norm_epsilon is {eps!r}; it must be a positive number")
    inner = c["n_inner"]
    if inner is not None and (isinstance(inner, bool) or not isinstance(inner, int) or inner < 1):
        problems.append(f"n_inner is {inner!r}; it must be a positive integer or null")
    if c["scale_attn_weights"] is not True or c["scale_attn_by_inverse_layer_idx"] is not False:
        problems.append("attention scaling differs from GPT-2 (scale_attn_weights must be true "
                        "and scale_attn_by_inverse_layer_idx false)")
    if c["add_cross_attention"]:
        problems.append("add_cross_attention is set; GPT-2 is decoder-only")
    if not problems and c["vocab_size"] < tokenizer_vocab:
        problems.append(f"vocab_size is {c['vocab_size']} but its tokenizer has "
                        f"{tokenizer_vocab} ids")
    if problems:
        raise MinigptError(
            f"{where} does not describe a GPT-2 minigpt can load exactly: " + "; ".join(problems)
            + ". minigpt imports OpenAI's GPT-2 architecture only (transformers' GPT2LMHeadModel "
            "or GPT2Model with its default settings)."
        )
    return GPTConfig(
        vocab_size=tokenizer_vocab,
        pad_vocab_to=_padding_for(tokenizer_vocab, c["vocab_size"]),
        block_size=c["n_positions"], n_layer=c["n_layer"], n_head=c["n_head"],
        n_embd=c["n_embd"], dropout=0.0, bias=True, norm_eps=float(eps),
        mlp_hidden=0 if inner in (None, 4 * c["n_embd"]) else inner,
    )


def _padding_for(vocab: int, rows: int) -> int:
    """Embedding rows beyond the tokenizer's ids (e.g. nanoGPT's 50304) are padding that is
    never predicted; pick the pad_vocab_to that rebuilds exactly ``rows`` rows."""
    if rows == vocab:
        return 1
    return 64 if math.ceil(vocab / 64) * 64 == rows else rows


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    index = folder / INDEX_NAME
    if (folder / WEIGHTS_NAME).is_file():
        files = [folder / WEIGHTS_NAME]
    elif index.is_file():
        files = _shard_files(index)
    elif any((folder / n).exists() for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        raise MinigptError(
            f"{folder} holds pytorch_model.bin but no {WEIGHTS_NAME}. minigpt never unpickles "
            "a file it is handed (unpickling can run arbitrary code). Convert it once, where "
            "you trust the file, with transformers: python -c \"from transformers import "
            f"GPT2LMHeadModel as M; M.from_pretrained('{folder}').save_pretrained('{folder}')\" "
            f"(that writes {WEIGHTS_NAME}), then run this again."
        )
    else:
        raise MinigptError(
            f"{folder} has no {WEIGHTS_NAME} (nor a sharded {INDEX_NAME}). Save the model with "
            "transformers' `save_pretrained` (safetensors is its default) and pass that folder."
        )

    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                tensors.update({k: f.get_tensor(k) for k in f.keys()})  # noqa: SIM118
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise MinigptError(
                f"{file} is not a readable safetensors file ({e}); it may be truncated by an "
                "interrupted download or copy. Fetch or save it again."
            ) from None
    return tensors


def _shard_files(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise MinigptError(f"{index} is not a readable safetensors index ({e!r}).") from None
    files = []
    for name in names:
        file = index.parent / str(name)
        if Path(str(name)).name != name or not file.is_file():
            raise MinigptError(f"{index} names shard {name!r}, which is not a file in "
                               f"{index.parent}. Copy all the shards the index lists.")
        files.append(file)
    return files


def minigpt_state_dict(hf: dict[str, torch.Tensor], where: Path | str) -> dict[str, torch.Tensor]:
    """HF GPT-2 tensors (GPT2LMHeadModel or GPT2Model/OpenAI layout) -> our names and layout."""
    out: dict[str, torch.Tensor] = {}
    lm_head = None
    for key, t in hf.items():
        name = key.removeprefix("transformer.")
        if MASK_BUFFER.match(name):
            continue
        if name == "lm_head.weight":
            lm_head = t
            continue
        if name.endswith(CONV1D) and t.dim() == 2:
            t = t.t()  # Conv1D (in, out) -> nn.Linear (out, in)
        out["transformer." + name if name.startswith(BODY) else name] = t
    wte = out.get("transformer.wte.weight")
    if lm_head is not None and wte is not None and not (
        lm_head.shape == wte.shape and torch.equal(lm_head, wte)
    ):
        raise IncompatibleError(
            f"The model in {where} has an LM head that differs from its token embedding. GPT-2 "
            "ties the two (and so does minigpt); an untied model cannot be imported exactly."
        )
    return out


def import_hf(source: Path | str, out: Path | str, force: bool = False,
              settings: dict[str, Any] | None = None) -> tuple[Path, HfModel]:
    """HF folder -> minigpt checkpoint at ``out`` (+ settings.json beside it); returns its path."""
    out = Path(out)
    target = out / "model.safetensors" if (out.is_dir() or not out.suffix) else out
    if target.exists() and not force:
        raise MinigptError(f"{target} already exists; nothing was written. Pick another "
                           "output, or pass --force to replace it.")
    hf = read_hf(source)
    extra = {"imported_from": str(hf.folder.resolve()), "hf_config": hf.hf_config}
    with lock.hold_beside(target):
        if target.exists() and not force:  # again, now that no one else writes it
            raise MinigptError(f"{target} already exists; nothing was written. Pick another "
                               "output, or pass --force to replace it.")
        path = save_checkpoint(target, hf.model, hf.tokenizer, step=0, extra=extra)
        if settings is not None:
            name = "settings.json" if target.name == "model.safetensors" else \
                f"{target.stem}.settings.json"
            atomic.write_json(target.with_name(name), settings)
    return path, hf

