"""What a run ran on: ``describe()`` -> the ``hardware`` table of ``run.json`` in the run folder
(the run card of `minigpt report` shows it); ``record()`` writes it. Each process segment of a
resumed run adds itself (a resumed run may move machines)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from minigpt_cli import allocator, atomic

try:
    import resource
except ImportError:  # not POSIX
    resource = None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device, dtype: torch.dtype, world: int, peak_flops: float | None,
             allocators: list[str] | None = None) -> dict[str, object]:
    """The machine as the trainer saw it: device, processor, cores, threads, versions, peak,
    and the C allocator's policy in each process (``allocators``, one per rank)."""
    hw: dict[str, object] = {"device": str(device), "dtype": str(dtype).removeprefix("torch.")}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        hw["gpu"] = props.name
        hw["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    hw["cpu"] = cpu_model()
    try:
        hw["cpu_cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        hw["cpu_cores_usable"] = os.cpu_count() or 0
    hw["torch_threads"] = torch.get_num_threads()
    hw["processes"] = world
    mine = allocators or [allocator.current()]
    hw["allocator"] = mine[0] if len(set(mine)) == 1 else mine
    if peak_flops:
        hw["peak_flops_per_process"] = float(peak_flops)
    hw["host"] = platform.node()
    hw["os"] = f"{platform.system()} {platform.release()}"
    hw["python"] = platform.python_version()
    hw["torch"] = torch.__version__
    return hw


def minor_faults() -> int:
    """Minor page faults of this process so far (all threads): fresh pages the kernel had to
    map, the cost allocator.py removes from training steps."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def record(run_dir: Path, step: int, hardware: dict[str, object]) -> None:
    """Add a segment starting at ``step`` to ``run_dir/run.json``; ``hardware`` is the newest."""
    path = run_dir / "run.json"
    try:
        segments = json.loads(path.read_text()).get("segments", []) if path.is_file() else []
    except (OSError, ValueError):
        segments = []
    segments.append({"from_step": step, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "hardware": hardware})
    atomic.write_json(path, {"hardware": hardware, "segments": segments})
