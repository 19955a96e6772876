"""FLOPs and model FLOPs utilisation (MFU).

FLOPs per trained token = 6 x (every matmul weight, the tied output layer included: forward is
2 FLOPs per weight, backward 4) + 12 x n_layer x seq_len x n_embd for attention (QK^T and AV,
forward and backward; Chowdhery et al. 2022, appendix B). MFU divides the achieved FLOP/s by
the peak of a large matmul measured on this device in the training dtype.

Only matrix products count, as in that convention: a SwiGLU MLP counts its three matrices
(3 C H), squared ReLU and GELU their two (2 C H); RoPE has no weights (its rotation, like norms,
activations and a soft cap, is elementwise and not counted), and a learned position table is a
lookup, not a matmul, so neither adds FLOPs.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

from minigpt_cli.mlp import hidden_width
from minigpt_cli.model import GPTConfig


def matmul_params(config: GPTConfig) -> int:
    """Weights that take part in a matmul: per block qkv 3C^2, proj C^2 and the MLP (GPT-2:
    8C^2), and the output layer (padded vocab x C, tied to the embedding or not)."""
    C, H = config.n_embd, hidden_width(config)
    mlp = (3 if config.mlp == "swiglu" else 2) * C * H
    return config.n_layer * (4 * C * C + mlp) + config.padded_vocab_size * C


def flops_per_token(config: GPTConfig, seq_len: int) -> float:
    return 6.0 * matmul_params(config) + 12.0 * config.n_layer * seq_len * config.n_embd


@lru_cache(maxsize=8)
def measure_peak(device_type: str, dtype_name: str, size: int = 0, seconds: float = 0.3) -> float:
    """FLOP/s of a large square matmul on this device (median over a short burst)."""
    dtype = getattr(torch, dtype_name)
    if size == 0:
        size = 8192 if device_type == "cuda" else 1024
    device = torch.device(device_type)
    gen = torch.Generator(device=device).manual_seed(0)  # own stream: a resumed run's RNG
    a = torch.randn(size, size, device=device, generator=gen).to(dtype)  # stays as restored
    b = torch.randn(size, size, device=device, generator=gen).to(dtype)
    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    a @ b  # warm-up
    sync()
    times = []
    deadline = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 50):
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 2.0 * size**3 / times[len(times) // 2]


def device_peak(device: torch.device, dtype: torch.dtype) -> float:
    """The MFU denominator: the faster of a float32 matmul and one in the training dtype (a CPU
    without native bfloat16 runs bf16 matmuls slower than float32; the peak is what the
    hardware can do, not what one format gets)."""
    fp32 = measure_peak(device.type, "float32")
    if dtype == torch.float32:
        return fp32
    name = str(dtype).removeprefix("torch.")
    if device.type == "cpu" and measure_peak("cpu", name, size=256, seconds=0.05) < fp32 / 2:
        return fp32  # a slow fallback kernel (no AVX512-BF16 / AMX): not worth a large probe
    return max(fp32, measure_peak(device.type, name))
