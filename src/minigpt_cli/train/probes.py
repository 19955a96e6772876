"""What the loop looks at between steps: the validation loss and a text sample."""

from __future__ import annotations

import torch

from minigpt_cli.evals.loss import evaluate_loss
from minigpt_cli.generation import SamplingParams, generate
from minigpt_cli.tokenizer import Tokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train.loader import ValWindows


@torch.no_grad()
def validation_loss(model: torch.nn.Module, val: ValWindows, micro_batch: int, batches: int,
                    d: D.Dist, dtype: torch.dtype) -> float:
    """Mean loss per counted target over the first ``micro_batch * batches`` validation
    windows, every rank's share summed (the code `minigpt eval loss` runs)."""

    parts = val.batches(micro_batch, batches, d.rank, d.world)
    sums = evaluate_loss(model, parts, device=d.device, dtype=dtype)
    total, count = D.all_sum(d, [sums.nats, float(sums.tokens)], d.device)
    return total / max(count, 1.0)


def sample_text(model: torch.nn.Module, tokenizer: Tokenizer, prompt: str | None, tokens: int,
                seed: int, device: torch.device) -> str:
    """``tokens`` sampled at temperature 1, top-k 200, from their own generator (the training
    RNG streams are not touched); the model is back in training mode after."""

    ids = tokenizer.encode(prompt, allow_special=True) if prompt else [tokenizer.eot_id]
    ids = ids[-(model.config.block_size - 1):]
    gen = torch.Generator(device=device).manual_seed(seed)
    params = SamplingParams(tokens, temperature=1.0, top_k=200)
    out = [int(t[0]) for t in generate(model, ids, params, 1, gen, tokenizer.eot_id)]
    model.train()
    return tokenizer.decode([i for i in out if i != tokenizer.eot_id])
