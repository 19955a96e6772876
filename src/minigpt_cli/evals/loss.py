"""Language-modelling loss: ``evaluate_loss`` (the trainer's in-loop validation calls it too) and
the ``loss`` eval task (mean loss, perplexity, bits per byte, bits per character).

Definitions (every scored target token t counts once; ``nats`` = sum of -ln p(t | context)):

- ``loss``        nats / scored tokens (natural log, as the trainer logs it)
- ``perplexity``  exp(loss)
- ``bits_per_byte`` nats / (ln 2 x UTF-8 bytes of the scored text). Tokenizer-independent: a
  char model and a BPE model scored on the same text divide by the same byte count, so their
  figures compare (Gao et al. 2020, The Pile, section 4). End-of-text separators are scored
  (predicting a document boundary is part of modelling the data) but are 0 bytes of text.
- ``bits_per_char`` the same over Unicode characters (code points) instead of bytes.

A text file is scored as ``<|endoftext|>`` + its tokens, so every token of the text is
predicted and the bytes counted are exactly the file's bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch.nn import functional as F

from minigpt_cli.errors import MinigptError
from minigpt_cli.evals.completion import at_least_fp32
from minigpt_cli.evals.task import EvalOptions, Progress, ProgressFn
from minigpt_cli.evals.tokens import ScoredText, open_streams, windows
from minigpt_cli.model_file import unwrap
from minigpt_cli.runtime import autocast

LN2 = math.log(2)


@dataclass
class LossSums:
    """Summed cross-entropy (nats) and the number of targets it covers; add across batches or
    processes (the trainer all-reduces ``[nats, tokens]``), then read the mean."""

    nats: float = 0.0
    tokens: int = 0

    @property
    def mean(self) -> float:
        return self.nats / self.tokens if self.tokens else math.nan

    @property
    def perplexity(self) -> float:
        m = self.mean
        return math.exp(m) if m < 700 else math.inf


def _parts(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A batch is an object with ``x``, ``y`` (and ``mask``), or a tuple (x, y[, mask])."""
    if hasattr(batch, "x"):
        return batch.x, batch.y, getattr(batch, "mask", None)
    x, y, *rest = batch
    return x, y, (rest[0] if rest else None)


def token_losses(model, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype = torch.float32):
    """Per-target cross-entropy in nats: x, y (B, T) -> (B, T), at least float32."""
    device = x.device
    with autocast(device, dtype):
        logits, _ = model(x)  # (B, T, V)
    V = logits.size(-1)
    return F.cross_entropy(at_least_fp32(logits).reshape(-1, V), y.reshape(-1),
                           reduction="none").view_as(y)  # (B, T)


@torch.no_grad()
def evaluate_loss(
    model: torch.nn.Module,
    batches: Iterable,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    on_batch: Callable[[LossSums], None] | None = None,
) -> LossSums:
    """Sum the cross-entropy of ``model`` over ``batches``; targets count where ``mask`` is 1.

    ``batches`` yields (x, y[, mask]) tuples or objects with those attributes (the trainer's
    ``Batch``), each (B, T). ``model`` may be compiled or wrapped; it is put in eval mode for the
    call and its previous mode restored. ``dtype`` is the autocast compute dtype. Returns the
    local sums: a distributed caller all-reduces ``[sums.nats, sums.tokens]`` itself.
    """
    raw = unwrap(model)
    if device is None:
        device = raw.transformer.wte.weight.device
    device = torch.device(device)
    was_training = raw.training
    model.eval()
    sums = LossSums()
    try:
        for batch in batches:
            x, y, mask = _parts(batch)
            x, y = x.to(device), y.to(device)
            per = token_losses(model, x, y, dtype)
            if mask is not None:
                mask = mask.to(device) != 0
                per = per.masked_fill(~mask, 0.0)
                n = int(mask.sum())
            else:
                n = y.numel()
            sums.nats += float(per.sum(dtype=torch.float64))
            sums.tokens += n
            if on_batch is not None:
                on_batch(sums)
    finally:
        if was_training:
            model.train()
    return sums


class LossOptions(EvalOptions):
    limit: int | None = Field(None, ge=1, description="Score at most this many tokens.")
    batch_size: int = Field(8, ge=1, le=4096, description="Windows per forward pass.")
    seq_len: int | None = Field(None, ge=1, description="Window length in tokens (default: "
                                "the model's context).")
    stride: int | None = Field(None, ge=1, description="Tokens newly scored per window; each "
                               "window gives the earlier seq_len - stride tokens as context "
                               "(default: seq_len / 2).")
    split: Literal["val", "train", "all"] = Field("val", description="For a shard folder: "
                                                  "which shards to score.")


class LossTask:
    name = "loss"
    Options = LossOptions
    headline = ("loss", "perplexity", "bits_per_byte")
    references: ClassVar[dict[str, dict[str, float]]] = {}

    def run(self, model, tokenizer, data: Path | None, options: LossOptions,
            on_progress: ProgressFn) -> dict[str, Any]:

        streams, described = open_streams(data, tokenizer, options.split, options.limit)
        raw = unwrap(model)
        seq_len = min(options.seq_len or raw.config.block_size, raw.config.block_size)
        stride = min(options.stride or max(1, seq_len // 2), seq_len)
        total = sum(max(0, len(s.tokens) - 1) for s in streams)
        text = ScoredText(tokenizer)
        device = raw.transformer.wte.weight.device

        def batches():
            for stream in streams:
                for batch in windows(stream, seq_len, stride, options.batch_size):
                    text.add(batch.scored_ids)
                    yield batch.x, batch.y, batch.mask

        def progress(s: LossSums) -> None:
            on_progress(Progress(self.name, text.targets, total, "tokens", "scoring"))

        sums = evaluate_loss(model, batches(), device=device, on_batch=progress)
        if sums.tokens == 0:

            raise MinigptError(f"--data {data}: no token could be scored (the data holds "
                               "fewer than two tokens, or its loss mask selects none).")
        bpb = sums.nats / (LN2 * text.bytes) if text.bytes else math.nan
        bpc = sums.nats / (LN2 * text.chars) if text.chars else math.nan
        return {
            "metrics": {"loss": sums.mean, "perplexity": sums.perplexity, "bits_per_byte": bpb,
                        "bits_per_char": bpc},
            "items": sums.tokens,
            "unit": "tokens",
            "nats": sums.nats,
            "bytes": text.bytes,
            "chars": text.chars,
            "seq_len": seq_len,
            "stride": stride,
            "data_kind": described,
        }

