"""Is bfloat16 fast here? Measured answers, and the number format `--dtype auto` picks.

Machines differ: a CPU with AMX or AVX512-BF16 multiplies bf16 matrices several times faster
than fp32 (about 7x at the probe's size, one thread, on the 2-core Xeon with AMX the project is
measured on), one without them emulates bf16 at a small fraction of fp32's speed (0.94 GFLOP/s on
an earlier AVX2 machine). So nothing is assumed from the CPU's name or flags. Two questions:

- Generation (`minigpt sample`, weights in bf16): is a bf16 matrix product faster?
  ``bf16_speedup`` times one square product in each format on the device (tens of
  milliseconds; once per device and process, on one thread on a CPU) and ``choose_dtype`` picks
  bf16 only where it measured at least ``AUTO_MIN_SPEEDUP`` times fp32's speed.
- Training (`pretrain`/`finetune`, bf16 autocast over fp32 weights): is a step faster? On a CPU
  ``choose`` times the work that dominates a step at the shape the model actually runs -- one
  MLP forward and backward, tokens x d_model -> 4 d_model -> d_model, rows capped at 512 --
  with bf16 autocast and without (``mlp_bf16_speedup``), and takes bf16 only where it is at
  least ``AUTO_MIN_SPEEDUP`` times faster: a tiny model, whose step is dispatch-bound, stays in
  float32 even on bf16 hardware, because autocast's casts cost more than its matmuls save.

No probe draws from the global random streams (exact resume: train/loop.py restores them after
start-up); results are cached per process.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from minigpt_cli.runtime import DTYPES

AUTO_MIN_SPEEDUP = 1.5  # bf16 must be this much faster than fp32 for `--dtype auto` to pick it
_N = 512  # matrix size of the product probe: 0.27 GFLOP a product
MAX_ROWS = 512  # the training probe's tokens
_speedups: dict[str, float] = {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _seconds(run, budget: float) -> float:
    """Fastest of a few timed ``run()`` calls after a timed warm-up, repeating for about
    ``budget`` seconds (at least three); a warm-up over 5 x ``budget`` is the answer itself
    (emulated bf16: one run says enough)."""
    t0 = time.perf_counter()
    run()  # warm-up: kernel selection, lazy initialisation
    warm = time.perf_counter() - t0
    if warm > 5 * budget:
        return warm
    best, spent, n = float("inf"), 0.0, 0
    while n < 3 or (spent < budget and n < 20):
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def _product(dtype: torch.dtype, device: torch.device):
    """One (_N x _N) matrix product in ``dtype`` on ``device``, as a timed callable."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(_N, _N, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(_N, _N, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(_N, _N, device=device, dtype=dtype)

    def run() -> None:
        torch.mm(a, b, out=out)
        _sync(device)

    return run


def bf16_speedup(device: torch.device | str = "cpu") -> float:
    """bf16 matrix-product speed / fp32's on ``device``, measured (cached per process)."""
    device = torch.device(device)
    key = str(device)
    if key not in _speedups:
        threads = torch.get_num_threads()
        if device.type == "cpu":  # one core: what the hardware does, not what a busy
            torch.set_num_threads(1)  # machine's scheduler gives two threads at once
        try:
            with torch.inference_mode():
                fp32 = _seconds(_product(torch.float32, device), 0.02)
                try:
                    bf16 = _seconds(_product(torch.bfloat16, device), 0.02)
                except (RuntimeError, TypeError):  # a backend without bf16 products
                    bf16 = float("inf")
        finally:
            torch.set_num_threads(threads)
        _speedups[key] = fp32 / bf16
    return _speedups[key]


def choose_dtype(name: str, device: torch.device | str = "cpu") -> tuple[torch.dtype, str]:
    """``--dtype`` -> (dtype, why, in words). ``auto``: bf16 where measured at least
    ``AUTO_MIN_SPEEDUP`` x fp32's matrix-product speed on ``device``, else fp32."""
    if name != "auto":
        return DTYPES[name], f"{name} (asked for)"
    s = bf16_speedup(device)
    where = torch.device(device).type
    if s >= AUTO_MIN_SPEEDUP:
        return torch.bfloat16, (f"bfloat16 (auto: bf16 matrix products measured {s:.1f}x "
                                f"float32's on this {where})")
    return torch.float32, (f"float32 (auto: bf16 matrix products measured {s:.2f}x float32's "
                           f"on this {where}, below {AUTO_MIN_SPEEDUP}x)")


@dataclass(frozen=True)
class Choice:
    dtype: torch.dtype
    reason: str  # one line for the run's start notes

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


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
def mlp_bf16_speedup(rows: int, d: int) -> float:
    """fp32 time / bf16-autocast time of one MLP forward+backward of ``rows`` tokens at width
    ``d`` on this CPU (> 1: bf16 faster)."""
    rows = max(1, min(rows, MAX_ROWS))
    # the matrix-product probe first: where bf16 is emulated (up to 200x slower) the MLP
    # probe would take seconds, and its answer is already known
    matmul = bf16_speedup("cpu")
    if matmul < 1.0:
        return matmul
    return _seconds(_block(rows, d, False), 0.15) / _seconds(_block(rows, d, True), 0.15)


def choose(name: str, device: torch.device, rows: int, d_model: int) -> Choice:
    """The compute dtype for ``--dtype name``; ``rows`` = tokens per micro-batch."""
    if name != "auto":
        return Choice(DTYPES[name], f"--dtype {name}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Choice(torch.bfloat16, "dtype auto: bfloat16 (a CUDA GPU with bf16 support)")
        return Choice(torch.float32, "dtype auto: float32 (this CUDA GPU has no bf16)")
    if device.type != "cpu":
        return Choice(torch.float32, f"dtype auto: float32 (on {device.type})")
    rows = max(1, min(rows, MAX_ROWS))
    x = mlp_bf16_speedup(rows, d_model)
    what = f"this model's MLP ({rows} tokens x {d_model} wide, forward+backward)"
    if x >= AUTO_MIN_SPEEDUP:
        return Choice(torch.bfloat16, f"dtype auto: bfloat16 autocast ({what} ran {x:.1f}x as "
                                      "fast as in float32)")
    return Choice(torch.float32, f"dtype auto: float32 ({what} ran {x:.2f}x as fast in bf16; "
                                 f"bf16 needs {AUTO_MIN_SPEEDUP}x)")
