"""Checkpoints: one safetensors file with everything needed to rebuild the model.

``model.safetensors`` holds the weights (the tied LM head is stored once, as the token embedding)
and string metadata: format name and version, model config, the sha256 of that config (written
with the weights, checked on every read: metadata edited afterwards -- say n_head 4 for weights
trained with 2, the same shapes -- is refused), tokenizer (with its identity hash), step and any
extra JSON the writer adds. No pickle anywhere: nothing a user hands us is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from minigpt_cli import __version__, atomic, oserrors
from minigpt_cli.errors import IncompatibleError, MinigptError
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.tokenizer import Tokenizer, TokenizerIdentity, tokenizer_from_dict

FORMAT = "minigpt-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
TIED = "lm_head.weight"  # stored as transformer.wte.weight (unless tie_embeddings is off)
SWITCHES = ("positions", "rope_base", "norm", "norm_gain", "norm_eps", "qk_norm", "mlp",
            "mlp_hidden", "tie_embeddings", "logit_softcap")  # absent from older checkpoints
CONFIG_HASH = "model_config_sha256"  # absent from checkpoints written before it was added


@dataclass
class Checkpoint:
    path: Path
    config: GPTConfig
    tokenizer: dict
    identity: TokenizerIdentity
    step: int
    extra: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)

    def make_tokenizer(self) -> Tokenizer:
        return tokenizer_from_dict(self.tokenizer)


def unwrap(model: torch.nn.Module) -> GPT:
    """The plain GPT inside DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        else:
            return model


def weights_path(path: Path | str) -> Path:
    """A checkpoint is a ``.safetensors`` file or a folder holding ``model.safetensors``; a run
    folder (``step_NNNNNN/`` checkpoints inside, no weights of its own) means its newest one."""
    path = Path(path)
    if path.is_dir():
        if not (path / WEIGHTS_NAME).exists():
            steps = sorted(path.glob(f"step_*/{WEIGHTS_NAME}"),
                           key=lambda p: int(p.parent.name[5:]) if p.parent.name[5:].isdigit()
                           else -1)
            if steps:
                return steps[-1]
        return path / WEIGHTS_NAME
    return path


def save_checkpoint(
    path: Path | str,
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    step: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the model atomically to ``path`` (a file, or a folder that gets model.safetensors)."""
    path = Path(path)
    target = path / WEIGHTS_NAME if (path.is_dir() or not path.suffix) else path
    gpt = unwrap(model)
    tensors = {
        k: v.detach().to("cpu").contiguous()
        for k, v in gpt.state_dict().items()
        if k != TIED or not gpt.config.tie_embeddings
    }
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "minigpt_version": __version__,
        "model_config": json.dumps(gpt.config.to_dict()),
        CONFIG_HASH: config_sha256(gpt.config.to_dict()),
        "tokenizer": json.dumps({**tokenizer.to_dict(), **_id_fields(tokenizer.identity())}),
        "step": str(int(step)),
        "extra": json.dumps(extra or {}),
    }
    with atomic.atomic_path(target) as tmp:
        save_tensors(tensors, tmp, meta)
    return target


def save_tensors(tensors: dict[str, torch.Tensor], path: Path | str,
                 metadata: dict[str, str] | None = None) -> None:
    """safetensors' ``save_file``, with an I/O failure (a full disk, a size limit) raised as the
    OSError it is, naming ``path``, rather than as a SafetensorError."""

    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:
        err = oserrors.from_safetensors(e, path)
        if err is None:
            raise
        raise err from None


def config_sha256(config: dict) -> str:
    """sha256 of a model config in one canonical JSON spelling (key order and spaces aside)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _id_fields(identity: TokenizerIdentity) -> dict:
    return {"identity": identity.to_dict()}


def read_checkpoint(path: Path | str, load_tensors: bool = True) -> Checkpoint:
    """Read and validate a checkpoint; raises MinigptError with what is wrong and what to do."""

    given = Path(path)
    file = weights_path(given)
    if not file.exists():
        hint = f"a folder without {WEIGHTS_NAME}" if given.is_dir() else "no such file"
        raise MinigptError(
            f"Checkpoint {given} cannot be read: {hint}. Pass a minigpt checkpoint "
            f"(a {WEIGHTS_NAME} file, the step folder that holds it, or a run folder)."
        )
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            names = f.keys()
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in names}
            tensors = {k: f.get_tensor(k) for k in names} if load_tensors else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise MinigptError(
            f"Checkpoint {file} is not a readable safetensors file ({e}). It may be truncated "
            "by an interrupted copy, or not a checkpoint at all (minigpt never loads pickled "
            ".pt/.bin files): copy it again or point to another checkpoint."
        ) from None
    if meta.get("format") != FORMAT:
        raise MinigptError(
            f"{file} is a safetensors file but not a minigpt checkpoint (no '{FORMAT}' "
            "metadata). If it is a Hugging Face GPT-2 model, pass its folder with --from-hf or "
            "convert it with `minigpt import-hf DIR OUT`."
        )
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        version = -1
    if version != FORMAT_VERSION:
        raise MinigptError(
            f"Checkpoint {file} has format version {meta.get('format_version')!r}; this minigpt "
            f"({__version__}) reads version {FORMAT_VERSION}. Use the minigpt version that wrote "
            "it, or re-export it from there."
        )
    try:
        raw_config = json.loads(meta["model_config"])
        config = GPTConfig.from_dict(raw_config)
        tok = json.loads(meta["tokenizer"])
        identity = TokenizerIdentity.from_dict(tok["identity"])
        step = int(meta.get("step", "0"))
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, ValueError, TypeError) as e:
        raise MinigptError(
            f"Checkpoint {file} has damaged metadata ({e!r}); it cannot be rebuilt safely."
        ) from None
    problems = config.validate()
    if problems:
        raise MinigptError(f"Checkpoint {file} holds an invalid model config: {'; '.join(problems)}.")
    recorded = meta.get(CONFIG_HASH)
    if recorded is not None and (not isinstance(raw_config, dict)
                                 or recorded != config_sha256(raw_config)):
        raise IncompatibleError(
            f"Checkpoint {file}: its model config ({_describe(config)}) is not the one its "
            f"weights were saved with (the {CONFIG_HASH} written beside them does not match): "
            "the metadata was edited afterwards. Weights of the same shapes can mean another "
            "model (a different head count splits them differently), so it is not loaded. "
            "Use the file as the run wrote it, or copy it again from there."
        )
    check_shapes(config, shapes, str(file))
    return Checkpoint(file, config, tok, identity, step, extra, tensors)


def _describe(c: GPTConfig) -> str:
    text = (f"n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, "
            f"vocab={c.padded_vocab_size}, block={c.block_size}")
    switches = {k: v for k, v in c.to_dict().items()
                if k in SWITCHES and v != GPTConfig.__dataclass_fields__[k].default}
    return text + "".join(f", {k}={v}" for k, v in switches.items())


def check_weights_match(config: GPTConfig, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Compare tensor names and shapes against what ``config`` builds, before loading."""
    check_shapes(config, {k: tuple(v.shape) for k, v in state_dict.items()}, what)


def check_shapes(config: GPTConfig, got: dict[str, tuple[int, ...]], what: str) -> None:
    """Tensor names and shapes (read without the tensors) against what ``config`` builds."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items()
                    if k != TIED or not config.tie_embeddings}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s) such as {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s) such as {unexpected[0]}")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with the wrong shape, e.g. {k} is {got[k]} "
                         f"but the config needs {expected[k]}")
        raise IncompatibleError(
            f"The weights in {what} do not match its model config ({_describe(config)}): "
            + "; ".join(parts) + ". The file was edited or written by something else."
        )


def build_model(config: GPTConfig, state_dict: dict[str, torch.Tensor], what: str) -> GPT:
    check_weights_match(config, state_dict, what)
    with torch.device("meta"):  # no time spent drawing random weights that are replaced anyway
        model = GPT(config)
    model.load_state_dict(state_dict, strict=False, assign=True)  # TIED is re-tied below
    if config.tie_embeddings:
        model.lm_head.weight = model.transformer.wte.weight  # re-tie after assignment
    return model


def load_checkpoint(path: Path | str) -> tuple[GPT, Tokenizer, Checkpoint]:
    ckpt = read_checkpoint(path)
    model = build_model(ckpt.config, ckpt.state_dict, str(ckpt.path))
    ckpt.state_dict = {}
    tokenizer = ckpt.make_tokenizer()
    if tokenizer.identity() != ckpt.identity:
        raise IncompatibleError(
            f"Checkpoint {ckpt.path} was trained with tokenizer {ckpt.identity}, but the "
            f"tokenizer rebuilt here is {tokenizer.identity()}. The installed BPE files differ "
            "from the ones it was trained with."
        )
    if tokenizer.vocab_size > ckpt.config.vocab_size:
        raise IncompatibleError(
            f"Checkpoint {ckpt.path}: its tokenizer has {tokenizer.vocab_size} ids but the model "
            f"predicts only {ckpt.config.vocab_size}."
        )
    return model, tokenizer, ckpt
