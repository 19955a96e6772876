"""``--dtype auto``: the compute format this machine runs fastest, measured, not assumed.

On a CUDA GPU with bf16 support auto is bf16 autocast. On a CPU it depends on the silicon:
with AMX or AVX512-BF16 a bf16 matmul runs several times faster than fp32 (6x measured on a
Xeon with AMX), without them it is emulated and runs up to 200x slower. So auto times the
work that dominates a step at the shape the model actually runs -- one MLP forward and
backward, tokens x d_model -> 4 d_model -> d_model, rows capped at 512 -- with bf16 autocast
and without, and takes bf16 only where it is at least ``MIN_SPEEDUP`` times faster: a tiny
model, whose step is dispatch-bound, stays in float32 even on bf16 hardware, because
autocast's casts cost more than its matmuls save.

The probe draws no random numbers (exact resume: train/loop.py restores the RNG streams
after start-up) and takes well under a second; results are cached per process and shape.
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MIN_SPEEDUP = 1.5
MAX_ROWS = 512


@dataclass(frozen=True)
class Choice:
    dtype: torch.dtype
    reason: str  # one line for the run's start notes

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def _seconds(run, budget: float = 0.15) -> float:
    """Median seconds of ``run()`` (after one warm-up), repeating within about ``budget``."""
    run()
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (spent < budget and len(times) < 20):
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
        if dt > budget:  # one slow run says enough (emulated bf16: do not wait for three)
            break
    return statistics.median(times)


def _block(rows: int, d: int, bf16: bool):
    """The MLP of a block, forward and backward, as the trainer runs it: fp32 weights, bf16
    autocast or none. Operands are deterministic and RNG-free, values bounded."""
    x = torch.arange(rows * d, dtype=torch.float32).remainder_(97).div_(97).reshape(rows, d)
    w1 = torch.arange(d * 4 * d, dtype=torch.float32).remainder_(89).div_(89 * d)
    w1 = w1.reshape(4 * d, d).requires_grad_()
    w2 = torch.arange(d * 4 * d, dtype=torch.float32).remainder_(83).div_(83 * d)
    w2 = w2.reshape(d, 4 * d).requires_grad_()

    def run() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            y = F.linear(F.gelu(F.linear(x, w1), approximate="tanh"), w2)
        y.float().sum().backward()
        w1.grad = w2.grad = None

    return run


@functools.cache
def bf16_speedup(rows: int, d: int) -> float:
    """fp32 time / bf16-autocast time of one MLP forward+backward of ``rows`` tokens at width
    ``d`` on this CPU (> 1: bf16 faster)."""
    rows = max(1, min(rows, MAX_ROWS))
    # one small bf16 matmul first: where bf16 is emulated (up to 200x slower) the full probe
    # would take seconds, and its answer is already known
    a = torch.ones(64, d)
    b = torch.ones(d, 4 * d)
    matmul = _seconds(lambda: a @ b) / _seconds(lambda: a.bfloat16() @ b.bfloat16())
    if matmul < 1.0:
        return matmul
    return _seconds(_block(rows, d, False)) / _seconds(_block(rows, d, True))


def choose(name: str, device: torch.device, rows: int, d_model: int) -> Choice:
    """The compute dtype for ``--dtype name``; ``rows`` = tokens per micro-batch."""
    if name != "auto":
        return Choice(getattr(torch, name), f"--dtype {name}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Choice(torch.bfloat16, "dtype auto: bfloat16 (a CUDA GPU with bf16 support)")
        return Choice(torch.float32, "dtype auto: float32 (this CUDA GPU has no bf16)")
    if device.type != "cpu":
        return Choice(torch.float32, f"dtype auto: float32 (on {device.type})")
    rows = max(1, min(rows, MAX_ROWS))
    x = bf16_speedup(rows, d_model)
    what = f"this model's MLP ({rows} tokens x {d_model} wide, forward+backward)"
    if x >= MIN_SPEEDUP:
        return Choice(torch.bfloat16, f"dtype auto: bfloat16 autocast ({what} ran {x:.1f}x as "
                                      "fast as in float32)")
    return Choice(torch.float32, f"dtype auto: float32 ({what} ran {x:.2f}x as fast in bf16; "
                                 f"bf16 needs {MIN_SPEEDUP}x)")
