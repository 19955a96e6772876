"""Text generation with a KV cache: temperature, top-k, top-p, streaming, stop at end-of-text.

The cache (``model.KVCache``) is allocated once per call, sized to the prompt + the new tokens,
and written in place: nothing grows per token. One sample on a CPU decodes through
``decode_one``: the model's own weights, the same function as ``GPT.forward`` for one position,
with every matrix applied as a matrix-vector product (``addmv``) instead of a (1 x C) matrix
product. Batch-1 decoding reads every weight once per token; PyTorch's bf16 matrix product runs
well below the memory bandwidth at one row (15.7 GB/s for the LM head on the AMX machine,
against 22 GB/s for ``mv``), so with bf16 weights this path gave 42 tokens/s against 31 for the
``forward`` path (gpt2, one thread); in fp32 the two run alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from minigpt_cli.mlp import activate
from minigpt_cli.model import GPT, KVCache
from minigpt_cli.norms import apply_norm
from minigpt_cli.rope import apply_rope


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 200
    temperature: float = 1.0  # 0 = greedy
    top_k: int | None = None
    top_p: float | None = None


def crop_prompt(ids: list[int], block_size: int) -> tuple[list[int], int]:
    """Keep the last ``block_size - 1`` prompt tokens (room for one new token); return how many
    were dropped so the caller can warn."""
    keep = block_size - 1
    if len(ids) <= keep:
        return ids, 0
    return ids[-keep:], len(ids) - keep


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """logits (B, V) -> the same with -inf outside the top ``top_k`` and outside the nucleus:
    the smallest set of the likeliest tokens whose probability reaches ``top_p`` (Holtzman et
    al. 2019). The likeliest token always stays."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, V)
        probs = F.softmax(sorted_logits, dim=-1)
        # drop a token when the mass before it already reaches top_p
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p  # (B, V)
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None):
    """logits (B, V) -> token ids (B,)."""
    if params.temperature == 0.0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits.float() / params.temperature, params.top_k, params.top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def _mv(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """layer(x) for one vector x (C,)."""
    if layer.bias is None:
        return torch.mv(layer.weight, x)
    return torch.addmv(layer.bias, layer.weight, x)


def decode_one(model: GPT, token: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """GPT.forward for one new token of one sample, through the cache: token (1,) ->
    logits (1, 1, vocab_size). The same modules and the same function; only the matrix
    products are written as matrix-vector products (see the module docstring)."""
    cfg = model.config
    C, nh = cfg.n_embd, cfg.n_head
    t = cache.position
    if not cache.room(1) or (t + 1 > cfg.block_size and not cache.sliding):
        raise ValueError(f"KV cache of {cache.max_len} positions cannot hold {t + 1}")
    tr = model.transformer
    x = tr.wte.weight[token[0]]  # (C,)
    if "wpe" in tr:
        x = x + tr.wpe.weight[t]
    for i, block in enumerate(tr.h):
        attn = block.attn
        h = apply_norm(block.ln_1, x)
        q, k, v = _mv(attn.c_attn, h).view(3, 1, nh, 1, C // nh).unbind(0)
        if attn.qk_norm:
            q, k = attn.q_norm(q), attn.k_norm(k)
        if attn.rotary is not None:
            cos, sin = attn.rotary.table(t, 1, x.device, q.dtype)  # (1, hs)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = cache.update(i, k, v)  # (1, nh, <= t + 1, hs), keys/values written in place
        y = F.scaled_dot_product_attention(q, k, v)  # (1, nh, 1, hs): attends to all so far
        x = x + _mv(attn.c_proj, y.view(C))
        h = apply_norm(block.ln_2, x)
        x = x + _mv(block.mlp.c_proj, activate(block.mlp.kind, _mv(block.mlp.c_fc, h)))
    cache.advance(1)
    x = apply_norm(tr.ln_f, x)
    logits = torch.mv(model.lm_head.weight[: cfg.vocab_size], x)
    if cfg.logit_softcap:
        logits = torch.tanh(logits / cfg.logit_softcap) * cfg.logit_softcap
    return logits.view(1, 1, -1)


@torch.inference_mode()
def generate(
    model: GPT,
    prompt: list[int],
    params: SamplingParams,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    eot_id: int | None = None,
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield one tensor (num_samples,) of new token ids per step.

    The prompt (already cropped to the context) is shared by all samples. A sample that produced
    ``eot_id`` is finished; generation stops once all are. With the cache, each step feeds one
    token; once the context is full, each step recomputes over the last ``block_size`` tokens
    (learned absolute positions cannot slide), exactly as a cache-less loop would. With RoPE the
    cache slides instead (model.KVCache): each new token attends to the last ``block_size``
    tokens' cached keys, with no recomputation.
    """
    model.eval()
    device = model.transformer.wte.weight.device
    block = model.config.block_size
    if not prompt:
        prompt = [eot_id if eot_id is not None else 0]
    ids = torch.tensor(prompt, dtype=torch.long, device=device).unsqueeze(0)
    ids = ids.expand(num_samples, -1).contiguous()  # (B, T)
    total = ids.size(1) + params.max_new_tokens
    seq = torch.empty(num_samples, total, dtype=torch.long, device=device)  # all tokens so far
    seq[:, : ids.size(1)] = ids
    n = ids.size(1)
    # room for what this call can use: 20 MB instead of 75 MB per sample for gpt2 at 16 + 256
    cache = model.new_cache(num_samples, min(block, total)) if use_cache else None
    logits, _ = model(seq[:, :n][:, -block:], cache=cache, last_only=True)
    done = torch.zeros(num_samples, dtype=torch.bool, device=device)
    one = num_samples == 1 and device.type == "cpu" and not model.training
    for step in range(params.max_new_tokens):
        tok = next_token(logits[:, -1, :], params, generator)  # (B,)
        if eot_id is not None:
            tok = torch.where(done, torch.full_like(tok, eot_id), tok)
            done |= tok == eot_id
        yield tok
        if step == params.max_new_tokens - 1 or (eot_id is not None and bool(done.all())):
            return
        seq[:, n] = tok
        n += 1
        if cache is not None and cache.room(1):
            if one:
                logits = decode_one(model, seq[0, n - 1 : n], cache)
            else:
                logits, _ = model(seq[:, n - 1 : n], cache=cache, last_only=True)
        else:
            logits, _ = model(seq[:, max(0, n - block) : n], last_only=True)
