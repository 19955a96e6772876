"""One training step under torch.profiler: the top CUDA kernels (or CPU operators) by self
time, and the shares of matmul, attention, optimizer and compiled (Triton) fusions. Used by
train_device.py (``bench_train.py --device cuda``) on the trainer's last step, which is left
out of the timings."""

from __future__ import annotations

import torch


def kernel_table(prof, device: torch.device, top: int = 15) -> dict:
    """The profiled step's top kernels (CUDA) or operators (CPU) by self time."""
    from torch.autograd import DeviceType

    cuda = device.type == "cuda"
    rows = []
    for e in prof.key_averages():
        t = e.self_device_time_total if cuda else e.self_cpu_time_total
        if t > 0 and (not cuda or e.device_type == DeviceType.CUDA):
            rows.append((e.key, t / 1e3, e.count))
    rows.sort(key=lambda r: -r[1])
    total = sum(r[1] for r in rows) or 1.0
    kinds = {"attention": ("flash", "fmha", "attention", "sdpa"),  # first: cuDNN's say gemm
             "optimizer": ("adam", "multi_tensor"),
             "matmul": ("gemm", "cutlass", "nvjet", "xmma", "aten::mm", "aten::addmm",
                        "aten::bmm", "matmul"),
             "triton (compiled fusions)": ("triton",)}
    shares = dict.fromkeys([*kinds, "other"], 0.0)
    attention = []
    for name, ms, _ in rows:
        low = name.lower()
        kind = next((k for k, keys in kinds.items() if any(x in low for x in keys)), "other")
        shares[kind] += ms / total
        if kind == "attention":
            attention.append(name[:160])
    return {"unit": "CUDA kernels" if cuda else "CPU operators", "total_ms": total,
            "flash_attention_seen": any("flash" in r[0].lower() for r in rows),
            "attention_kernels": attention, "shares": shares,
            "top": [{"name": n[:120], "ms": ms, "calls": c, "share": ms / total}
                    for n, ms, c in rows[:top]]}


def profiled(trainer, device: torch.device, out: dict) -> None:
    """Make the trainer's last step run under torch.profiler (its time is left out)."""
    from torch.profiler import ProfilerActivity, profile

    inner, last = trainer.step, trainer.cap

    def step(n, stop):
        if n != last:
            return inner(n, stop)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            result = inner(n, stop)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        out.update(kernel_table(prof, device))
        return result

    trainer.step = step
