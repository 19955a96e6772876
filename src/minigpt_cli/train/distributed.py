"""Data-parallel training across processes started by torchrun (one process per device).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous for multi-node runs); we
join the process group with NCCL on GPUs and gloo on CPUs. Without those variables the run is a
single process and every collective here is a no-op.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from minigpt_cli.errors import MinigptError
from minigpt_cli.runtime import resolve_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes files and emits display events."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_name: str) -> Dist:
    """Join the process group if torchrun started us; pick this process's device."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return Dist(device=resolve_device(device_name))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name in ("auto", "cuda") and torch.cuda.is_available():
        if local >= torch.cuda.device_count():
            raise MinigptError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs: "
                               "start at most one process per GPU (--nproc_per_node).")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device_name in ("auto", "cpu"):
        device, backend = torch.device("cpu"), "gloo"
    else:
        raise MinigptError(f"--device {device_name} cannot be used for multi-process training "
                           "here; use cuda (NCCL) or cpu (gloo).")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=30))
    return Dist(rank, local, world, device)


def teardown(d: Dist, clean: bool) -> None:
    """Leave the process group. After a clean run every rank first meets the others: a rank
    that destroys its group while a peer still talks to it (rank 0 writing the last checkpoint)
    lets gloo's pair threads abort the process ("terminate called without an active
    exception", seen 1 run in 5 here). After an error, no meeting: the peer may never come."""
    if d.enabled and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def all_sum(d: Dist, values: list[float], device: torch.device) -> list[float]:
    """Sum a few floats over all processes (one collective)."""
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather_objects(d: Dist, obj) -> list:
    """Every process's ``obj`` (JSON-able), on every process."""
    if not d.enabled:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(d: Dist, obj):
    """Rank 0's ``obj`` on every process."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def wrap_ddp(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    if not d.enabled:
        return model

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DDP(model, device_ids=ids)
