"""``--dry-run``: the plan of a run without training it, and ``--micro-batch auto``.

Memory is estimated as the training state -- float32 weights (4 bytes a parameter), and for a
trained parameter its gradient (4) and optimizer state (AdamW's two moments, 8; Muon's one
momentum buffer, 4); a frozen parameter (finetune's --freeze-blocks, LoRA's base weights) only
its 4 -- plus activations: about 17 values per token per layer and width unit saved for the
backward pass (Korthikanti et al. 2022, "Reducing Activation Recomputation", with fused
attention so no T x T scores; 8 of them the GELU MLP's two 4C hidden tensors, which another
MLP replaces by its own: 2H for squared ReLU, 4H for SwiGLU; RoPE and qk_norm each keep 2 more,
the rotated or normalised queries and keys), or one per layer plus one layer's worth with activation
checkpointing, plus the logits: on a CPU one float32 buffer (the output layer and the loss run
fused, lm_loss.py; under bf16 autocast the bf16 product too), elsewhere the logits kept, cast to
float32, and their gradient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from minigpt_cli.mlp import hidden_width
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.runtime import autocast
from minigpt_cli.train.batching import micro_batch_candidates
from minigpt_cli.train.flops import device_peak, flops_per_token
from minigpt_cli.train.optim import muon_params


def state_bytes(model: torch.nn.Module, optimizer: str) -> int:
    """Bytes of weights, gradients and optimizer state (see the module's docstring)."""
    muon = muon_params(model) if optimizer == "muon" else set()
    total = 0
    for p in model.parameters():
        per = 4 if not p.requires_grad else 12 if id(p) in muon else 16
        total += per * p.numel()
    return total


def activation_widths(config: GPTConfig) -> float:
    """Values saved per token per layer, in units of the width C (17 for GPT-2)."""
    C, H = config.n_embd, hidden_width(config)
    mlp = (4 if config.mlp == "swiglu" else 2) * H / C
    return 9 + mlp + 2 * (config.positions == "rope") + 2 * config.qk_norm


def estimate_memory(config: GPTConfig, state: int, micro_batch: int, seq_len: int,
                    dtype: torch.dtype, checkpointing: bool, device_type: str = "cpu") -> int:
    """Bytes at the peak of one training step on one process (an estimate); ``state``: from
    ``state_bytes``."""
    act_bytes = 2 if dtype in (torch.bfloat16, torch.float16) else 4
    btc = micro_batch * seq_len * config.n_embd
    per_layer = int(activation_widths(config) * btc) * act_bytes
    layers = config.n_layer * btc * act_bytes + per_layer if checkpointing else \
        config.n_layer * per_layer
    per_logit = (4 + (act_bytes if act_bytes == 2 else 0) if device_type == "cpu"
                 else act_bytes + 4 + 4)
    logits = micro_batch * seq_len * config.padded_vocab_size * per_logit
    return state + layers + logits


def available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def auto_micro_batch(config: GPTConfig, state: int, tokens_per_step: int | None, seq_len: int,
                     world: int, device: torch.device, dtype: torch.dtype,
                     checkpointing: bool) -> int:
    """The largest micro-batch that fits (keeping tokens per step exact): on CUDA by trying two
    real training steps, elsewhere by the estimate against available memory (a CPU
    gains nothing from batches past a few dozen sequences, so those stop at 32)."""
    cands = micro_batch_candidates(tokens_per_step, seq_len, world,
                                   cap=512 if device.type == "cuda" else 32)
    if device.type != "cuda":
        budget = available_memory(device) // 2
        for b in cands:
            if estimate_memory(config, state, b, seq_len, dtype, checkpointing,
                               device.type) <= budget:
                return b
        return cands[-1]
    for b in cands:
        if _fits_cuda(config, b, seq_len, device, dtype, checkpointing):
            return b
    return cands[-1]


def _fits_cuda(config, b, seq_len, device, dtype, checkpointing) -> bool:
    try:
        torch.cuda.empty_cache()
        _two_steps(config, b, seq_len, device, dtype, checkpointing)
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:  # the steps' tensors died with their frame (and the exception): give them back
        torch.cuda.empty_cache()


def _two_steps(config, b, seq_len, device, dtype, checkpointing) -> None:
    """Two training steps of ``b`` sequences: the second runs with AdamW's moments already
    allocated, as every step of a real run after the first does (8 bytes a parameter more
    than a first step's peak: 1 GB for gpt2)."""
    model = GPT(config).to(device)
    model.gradient_checkpointing = checkpointing
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    for _ in range(2):
        x = torch.randint(0, config.vocab_size, (b, seq_len + 1), device=device)
        with autocast(device, dtype):
            _, loss = model(x[:, :-1], x[:, 1:], need_logits=False)  # as the trainer runs it
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Plan:
    params: int
    tokens_per_step: int
    micro_batch: int
    seq_len: int
    accum: int
    world: int
    flops_per_step: float
    memory_bytes: int
    memory_available: int
    step_seconds: float
    tok_per_s: float
    mfu: float | None
    start_step: int
    max_steps: int
    eta_seconds: float
    target_tokens: int | None
    target_seconds: float | None
    cost: float | None
    checkpoint_bytes: int
    disk_bytes: int
    device: str
    dtype: str


def measure_step(trainer, warmup: int = 1, timed: int = 2) -> float:
    """Seconds per optimizer step: a few of the loop's own micro-steps (forward + backward,
    ``Trainer.forward_backward``) on the run's data and one of its updates
    (``Trainer.update``), timed after a warm-up; nothing is saved."""
    spec, dev = trainer.spec, trainer.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + timed):
        batch = trainer.train_data.gather(trainer.train_data.take(spec.micro_batch)).to(dev)
        sync()
        t0 = time.perf_counter()
        trainer.forward_backward(batch, max(1, batch.target_count()))
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    trainer.update(trainer.lr())
    trainer.optimizer.zero_grad(set_to_none=True)
    sync()
    opt = time.perf_counter() - t0
    return sorted(times)[len(times) // 2] * spec.accum + opt


def make_plan(trainer, settings, start_step: int) -> Plan:
    spec, raw = trainer.spec, trainer.raw
    params = raw.num_params()
    tps = spec.tokens_per_step
    dtype_name = str(spec.dtype).split(".")[-1]
    step_s = measure_step(trainer)
    tok_s = tps / step_s
    peak = settings.peak_flops or device_peak(trainer.device, spec.dtype)
    fpt = flops_per_token(raw.config, spec.seq_len)
    mfu = fpt * tok_s / (peak * spec.dist.world) if peak else None
    remaining = max(0, settings.max_steps - start_step)
    target_s = None
    if settings.target_tokens:
        target_s = -(-settings.target_tokens // tps) * step_s
    eta = remaining * step_s
    cost = None
    if settings.cost_per_hour is not None:
        cost = (target_s if target_s is not None else eta) / 3600 * settings.cost_per_hour * \
            spec.dist.world
    ckpt_bytes = 12 * params + 64 * 1024
    kept = settings.keep_last + (1 if settings.keep_best else 0) + 1  # +1 while saving
    return Plan(
        params=params, tokens_per_step=tps, micro_batch=spec.micro_batch, seq_len=spec.seq_len,
        accum=spec.accum, world=spec.dist.world, flops_per_step=fpt * tps,
        memory_bytes=estimate_memory(raw.config, state_bytes(raw, settings.optimizer),
                                     spec.micro_batch, spec.seq_len,
                                     spec.dtype, settings.activation_checkpointing,
                                     trainer.device.type),
        memory_available=available_memory(trainer.device), step_seconds=step_s, tok_per_s=tok_s,
        mfu=mfu, start_step=start_step, max_steps=settings.max_steps, eta_seconds=eta,
        target_tokens=settings.target_tokens, target_seconds=target_s, cost=cost,
        checkpoint_bytes=ckpt_bytes, disk_bytes=ckpt_bytes * kept, device=str(trainer.device),
        dtype=dtype_name,
    )
