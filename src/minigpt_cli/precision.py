"""Is bfloat16 fast here? A measured answer, and the number format `--dtype auto` picks from it.

Machines differ: a CPU with AMX or AVX512-BF16 multiplies bf16 matrices several times faster
than fp32 (about 7x at this probe's size, one thread, on the 2-core Xeon with AMX the project is
measured on), one without them emulates bf16 at a small fraction of fp32's speed (0.94 GFLOP/s on
an earlier AVX2 machine). So nothing is assumed from the CPU's name or flags: ``bf16_speedup``
times one square matrix product in each format on the device (tens of milliseconds; once per
device and process, on one thread on a CPU) and ``choose_dtype`` picks bf16 only where it
measured at least ``AUTO_MIN_SPEEDUP`` times fp32's speed.
"""

from __future__ import annotations

import time

import torch

AUTO_MIN_SPEEDUP = 1.5  # bf16 must be this much faster than fp32 for `--dtype auto` to pick it
_N = 512  # matrix size of the probe: 0.27 GFLOP a product
_BUDGET_S = 0.02  # time each format for about this long (at least 2 products)
_speedups: dict[str, float] = {}

NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _seconds_per_product(dtype: torch.dtype, device: torch.device) -> float:
    """Fastest of a few timed products of two (_N x _N) matrices (after one warm-up)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(_N, _N, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(_N, _N, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(_N, _N, device=device, dtype=dtype)
    t0 = time.perf_counter()
    torch.mm(a, b, out=out)  # warm-up: kernel selection, lazy initialisation
    _sync(device)
    warm = time.perf_counter() - t0
    if warm > 5 * _BUDGET_S:  # emulated: one product says enough (0.3 s at 1 GFLOP/s)
        return warm
    best, spent = float("inf"), 0.0
    for i in range(20):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if i >= 1 and spent >= _BUDGET_S:
            break
    return best


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
                fp32 = _seconds_per_product(torch.float32, device)
                try:
                    bf16 = _seconds_per_product(torch.bfloat16, device)
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
        return NAMES[name], f"{name} (asked for)"
    s = bf16_speedup(device)
    where = torch.device(device).type
    if s >= AUTO_MIN_SPEEDUP:
        return torch.bfloat16, (f"bfloat16 (auto: bf16 matrix products measured {s:.1f}x "
                                f"float32's on this {where})")
    return torch.float32, (f"float32 (auto: bf16 matrix products measured {s:.2f}x float32's "
                           f"on this {where}, below {AUTO_MIN_SPEEDUP}x)")
