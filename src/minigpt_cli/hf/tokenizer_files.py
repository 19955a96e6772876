"""Tokenizer files in a Hugging Face GPT-2 folder, both ways.

Reading: minigpt's GPT-2 tokenizer applies only if the folder's own tokenizer files (when
present) are OpenAI's GPT-2 vocabulary with no added tokens; a char vocabulary written by
`minigpt export-hf` is read back as a CharTokenizer.

Writing: for GPT-2, OpenAI's files under transformers' names (encoder.json -> vocab.json,
vocab.bpe -> merges.txt) and a tokenizer_config.json, so `AutoTokenizer.from_pretrained` works.
transformers has no character-level tokenizer, so a char vocabulary is written as
minigpt_char_vocab.json: id i is chars[i], the last id is <|endoftext|>.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from minigpt_cli.errors import MinigptError
from minigpt_cli.tokenizer import ENDOFTEXT, CharTokenizer, GPT2Tokenizer, Tokenizer, _gpt2_files

GPT2_VOCAB = 50257
CHAR_VOCAB_NAME = "minigpt_char_vocab.json"
CHAR_VOCAB_FORMAT = "minigpt-char-vocab"
CHAR_NOTE = (
    "transformers has no character-level tokenizer, so this model's vocabulary is kept here: "
    "token id i is chars[i] and id len(chars) is <|endoftext|>. Encode with "
    "[chars.index(c) for c in text]; `minigpt import-hf` and `minigpt sample --from-hf` read "
    "this file back."
)


def read_hf_tokenizer(folder: Path) -> Tokenizer:
    char_file = folder / CHAR_VOCAB_NAME
    if char_file.is_file():
        return _read_char_vocab(char_file)
    _check_gpt2_files(folder)
    return GPT2Tokenizer()


def _load_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise MinigptError(f"{file} cannot be read as JSON ({e}). Fix or remove it.") from None


def _not_gpt2(file: Path, why: str) -> MinigptError:
    return MinigptError(
        f"{file} {why}, so the model does not use OpenAI's GPT-2 tokenizer. minigpt imports "
        "Hugging Face GPT-2 models that use that tokenizer (or a char vocabulary written by "
        "`minigpt export-hf`); token ids would mean something else under another vocabulary."
    )


def _merge_lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#version")]


def _check_gpt2_files(folder: Path) -> None:
    vocab_bpe, encoder_json = _gpt2_files()
    encoder = None
    vocab = folder / "vocab.json"
    if vocab.is_file():
        encoder = json.loads(encoder_json)
        if _load_json(vocab) != encoder:
            raise _not_gpt2(vocab, "is not GPT-2's vocabulary")
    merges = folder / "merges.txt"
    if merges.is_file() and _merge_lines(merges.read_bytes()) != _merge_lines(vocab_bpe):
        raise _not_gpt2(merges, "holds other BPE merges than GPT-2's")
    added: list[int] = []
    fast = folder / "tokenizer.json"
    if fast.is_file():
        d = _load_json(fast)
        d = d if isinstance(d, dict) else {}
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        if model.get("type") != "BPE" or (
            "vocab" in model and model["vocab"] != (encoder or json.loads(encoder_json))
        ):
            raise _not_gpt2(fast, "describes another vocabulary than GPT-2's")
        added += [a.get("id", -1) for a in d.get("added_tokens") or [] if isinstance(a, dict)]
    added_file = folder / "added_tokens.json"
    if added_file.is_file():
        d = _load_json(added_file)
        added += list(d.values()) if isinstance(d, dict) else []
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        d = _load_json(cfg)
        decoder = d.get("added_tokens_decoder") if isinstance(d, dict) else None
        added += [int(k) for k in decoder or {} if str(k).isdigit()]
    extra = sorted({i for i in added if isinstance(i, int) and i >= GPT2_VOCAB})
    if extra:
        raise MinigptError(
            f"The tokenizer in {folder} adds {len(extra)} token(s) to GPT-2's vocabulary (ids "
            f"from {extra[0]}); minigpt's GPT-2 tokenizer has exactly {GPT2_VOCAB} ids, so "
            "this model cannot be imported with its full vocabulary."
        )


def _read_char_vocab(file: Path) -> CharTokenizer:
    d = _load_json(file)
    chars = d.get("chars") if isinstance(d, dict) else None
    if (not isinstance(d, dict) or d.get("format") != CHAR_VOCAB_FORMAT
            or not isinstance(chars, list) or d.get("eot_id") != len(chars)):
        raise MinigptError(
            f"{file} is not a char vocabulary written by `minigpt export-hf` (format "
            f"{CHAR_VOCAB_FORMAT!r}, a 'chars' list, eot_id = len(chars)). Re-export the model."
        )
    return CharTokenizer(chars)


def write_hf_tokenizer(tokenizer: Tokenizer, block_size: int) -> dict[str, bytes]:
    """File name -> contents describing ``tokenizer`` in a Hugging Face model folder."""
    if tokenizer.name == "gpt2":
        vocab_bpe, encoder_json = _gpt2_files()
        config = {
            "tokenizer_class": "GPT2Tokenizer",
            "model_max_length": block_size,
            "bos_token": ENDOFTEXT,
            "eos_token": ENDOFTEXT,
            "unk_token": ENDOFTEXT,
            "add_prefix_space": False,
            "add_bos_token": False,
            "errors": "replace",
            "clean_up_tokenization_spaces": False,
        }
        specials = {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT}
        return {
            "vocab.json": encoder_json,
            "merges.txt": vocab_bpe,
            "tokenizer_config.json": _json_bytes(config),
            "special_tokens_map.json": _json_bytes(specials),
        }
    if isinstance(tokenizer, CharTokenizer):
        vocab = {"format": CHAR_VOCAB_FORMAT, "version": 1, "note": CHAR_NOTE,
                 "chars": tokenizer.chars, "eot_id": tokenizer.eot_id, "eot_token": ENDOFTEXT}
        return {CHAR_VOCAB_NAME: _json_bytes(vocab)}
    raise MinigptError(
        f"Tokenizer {tokenizer.name!r} cannot be written for Hugging Face: minigpt exports the "
        "GPT-2 BPE tokenizer and char vocabularies."
    )


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
