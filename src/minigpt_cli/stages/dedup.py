"""Exact and near-duplicate removal, keeping the first document of each group seen.

Both stages compare a *normalized* text: Unicode NFKC, lowercase, every digit -> ``0``, every
run of punctuation, symbols, underscores and whitespace -> one space, stripped. So case,
spacing, punctuation and numbers ("page 3 of 7" vs "page 4 of 7") do not make two copies
differ (FineWeb normalizes the same way before MinHash).

Memory: both remember keys for the whole run in a ``U64Set`` (16-32 bytes a key): exact dedup
one key a document, MinHash one key a band (14 by default: 224-448 bytes a document, about
0.2-0.45 GB per million documents). For crawls of billions of documents split the input with
``--part`` and dedup each part (FineWeb deduplicates each crawl dump on its own too).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import ClassVar

import numpy as np
from pydantic import Field

from minigpt_cli.documents import Document, Drop, PluginOptions
from minigpt_cli.stages.hashset import U64Set
from minigpt_cli.stages.minhash import MinHasher

_DIGIT = re.compile(r"\d")
_NON_WORD = re.compile(r"[\W_]+")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# One byte table does the digit and punctuation rules for ASCII bytes; bytes >= 128 (UTF-8 of
# other characters, already folded by the regexes) pass through.
_ASCII = bytes(
    b if b >= 128 or chr(b).isalpha() else ord("0") if chr(b).isdigit() else ord(" ")
    for b in range(256)
)


def _fold(run: re.Match[str]) -> str:
    return _NON_WORD.sub(" ", _DIGIT.sub("0", run.group()))


def normalized_bytes(text: str) -> bytes:
    """UTF-8 of the text that dedup compares (see the module docstring)."""
    text = text.lower()
    if not text.isascii():  # web text: mostly ASCII with a few quotes and dashes
        if not unicodedata.is_normalized("NFKC", text):  # a quick check; rarely false
            text = unicodedata.normalize("NFKC", text).lower()
        text = _NON_ASCII_RUN.sub(_fold, text)
    return b" ".join(text.encode("utf-8").translate(_ASCII).split())


def normalize(text: str) -> str:
    """The text that dedup compares (see the module docstring)."""
    return normalized_bytes(text).decode("utf-8")


class _SeenKeys:
    """The resume state of a dedup stage: its key set (saved as one uint64 array)."""

    seen: U64Set

    def state_dict(self) -> dict:
        return self.seen.state_dict()

    def load_state_dict(self, d: dict) -> None:
        self.seen.load_state_dict(d)


class ExactDedup(_SeenKeys):
    """Drop a document whose normalized text was seen before (64-bit BLAKE2b of it)."""

    name: ClassVar[str] = "exact_dedup"
    stateless: ClassVar[bool] = False

    class Options(PluginOptions):
        pass

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or self.Options()
        self.seen = U64Set()

    def __call__(self, doc: Document) -> Document | Drop:
        digest = hashlib.blake2b(normalized_bytes(doc.text), digest_size=8).digest()
        key = np.frombuffer(digest, dtype=np.uint64)  # (1,)
        if self.seen.add(key)[0]:
            return Drop("exact_dedup:duplicate")
        return doc


class MinHashDedup(_SeenKeys):
    """Drop a document that shares a MinHash LSH band with any earlier document.

    Like FineWeb, a band collision is the verdict (no exact Jaccard check, which would need
    every signature kept), and a dropped document's bands are remembered too, so a chain of
    near-copies collapses to its first member as FineWeb's clustering does.
    """

    name: ClassVar[str] = "minhash_dedup"
    stateless: ClassVar[bool] = False

    class Options(PluginOptions):
        ngram: int = Field(5, ge=1, description="words per shingle")
        bands: int = Field(14, ge=1, description="LSH bands")
        rows: int = Field(8, ge=1, description="hash values per band (bands*rows hashes)")
        seed: int = Field(1, ge=0, description="seed of the hash functions")

    def __init__(self, options: Options | None = None) -> None:
        self.options = o = options or self.Options()
        self.hasher = MinHasher(num_perm=o.bands * o.rows, ngram=o.ngram, seed=o.seed)
        self.seen = U64Set()

    def __call__(self, doc: Document) -> Document | Drop:
        sig = self.hasher.signature(normalized_bytes(doc.text))  # (bands * rows,)
        keys = self.hasher.band_keys(sig, self.options.bands, self.options.rows)  # (bands,)
        if self.seen.add(keys).any():
            return Drop("minhash_dedup:near_duplicate")
        return doc
