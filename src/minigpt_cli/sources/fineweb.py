"""`fineweb`: FineWeb / FineWeb-Edu, Common Crawl text already filtered by Hugging Face.

Reads local copies of the dataset (its parquet shards, or JSON lines with the same fields), or
streams it from the Hugging Face hub through `datasets` (optional extra:
``pip install 'minigpt[hf-datasets]'``; never needed for local files). Each row's ``text``
becomes the document; ``id`` its id; the other fields (url, date, dump, language,
language_score, token_count, and FineWeb-Edu's score / int_score) its metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field, model_validator

from minigpt_cli.documents import Document
from minigpt_cli.errors import MinigptError
from minigpt_cli.sources.files import FilesOptions, FileSource, read_jsonl, read_parquet

HUB_PREFIX = "hf://"


class FineWebOptions(FilesOptions):
    suffixes: list[str] = Field(
        default_factory=lambda: [".parquet", ".jsonl", ".jsonl.gz"],
        description="File name endings kept when walking a directory.")
    dataset: str | None = Field(
        None, description="Stream this hub dataset instead of reading files, e.g. "
        "HuggingFaceFW/fineweb-edu (needs the hf-datasets extra and network).")
    subset: str | None = Field(None, description="The hub dataset's config, e.g. sample-10BT.")
    split: str = Field("train", description="The hub dataset's split.")

    @model_validator(mode="after")
    def _files_or_hub(self):
        if self.dataset and self.inputs:
            raise ValueError("give local inputs or dataset=..., not both")
        return self


class FineWebSource(FileSource):
    name: ClassVar[str] = "fineweb"
    Options: ClassVar[type[FineWebOptions]] = FineWebOptions

    def __init__(self, options: FineWebOptions) -> None:
        if options.dataset:
            self.options = options
            self._inputs = [(f"{HUB_PREFIX}{options.dataset}/{options.subset or 'default'}"
                            f"/{options.split}")]
            self._provenance = {}
            self._total = None
        else:
            super().__init__(options)

    def _read(self, path: str, prov: dict[str, Any]) -> Iterator[Document]:
        for n, row in enumerate(self._rows(path, prov)):
            text = row.get("text")
            if not isinstance(text, str):
                prov["missing_text"] = prov.get("missing_text", 0) + 1
                continue
            rid = row.get("id")
            meta = {k: v for k, v in row.items() if k not in ("text", "id")}
            yield Document(text=text, id=str(rid) if rid is not None else f"{path}:{n}",
                           source=self.name, meta=meta)

    def _rows(self, path: str, prov: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if path.startswith(HUB_PREFIX):
            return self._hub_rows(prov)
        if path.endswith(".parquet"):
            return read_parquet(path, prov, None)
        return read_jsonl(path, prov, self.options.encoding_errors)

    def _hub_rows(self, prov: dict[str, Any]) -> Iterator[dict[str, Any]]:
        try:
            import datasets
        except ImportError:
            raise MinigptError(
                "Streaming FineWeb from the hub needs the `datasets` package: install it with "
                "`pip install 'minigpt[hf-datasets]'`, or download the parquet files and pass "
                "them as inputs."
            ) from None
        o = self.options
        stream = datasets.load_dataset(o.dataset, name=o.subset, split=o.split, streaming=True)
        for row in stream:
            prov["records"] = prov.get("records", 0) + 1
            yield row
