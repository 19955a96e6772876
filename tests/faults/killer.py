"""Run `minigpt ARGS...` and SIGKILL the process at a chosen point: the fault suite's seam.

    MINIGPT_TEST_KILL=POINT:N python tests/faults/killer.py pretrain ...

kills this process with a real ``SIGKILL`` the N-th time it reaches POINT (in the process of
rank ``MINIGPT_TEST_KILL_RANK``, default 0, under torchrun). Nothing in the package knows about
it: the points are functions wrapped here, before the CLI starts.

Points:
- ``step``        mid optimizer step: the step's gradients are summed, the update not applied
                  (at the gradient clipping every step does between the two)
- ``checkpoint``  mid checkpoint: model.safetensors is in the temporary folder, the optimizer
                  state and trainer state are not
- ``shard``       mid shard: a shard file is complete under its temporary name, not renamed
- ``progress``    mid resume state: the shard run's state.json (or its tensors file) is complete
                  under its temporary name, not renamed
- ``manifest``    mid manifest: manifest.json is complete under its temporary name, not renamed
"""

from __future__ import annotations

import os
import signal
import sys

SHARD_NAMES = ("val_", "train_")


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _Counter:
    def __init__(self, point: str, n: int) -> None:
        self.point, self.n, self.seen = point, n, 0

    def hit(self) -> None:
        self.seen += 1
        if self.seen == self.n:
            _die()


def _install(point: str, n: int) -> None:
    counter = _Counter(point, n)
    if point == "step":
        import torch

        real_clip = torch.nn.utils.clip_grad_norm_

        def clip(*a, **k):
            counter.hit()
            return real_clip(*a, **k)

        torch.nn.utils.clip_grad_norm_ = clip
    elif point == "checkpoint":
        from minigpt_cli.train import step_folder as state

        real_save = state.save_checkpoint

        def save(*a, **k):
            out = real_save(*a, **k)
            counter.hit()
            return out

        state.save_checkpoint = save
    elif point in ("shard", "progress", "manifest"):
        from minigpt_cli import atomic

        real_commit = atomic._commit

        def wanted(name: str) -> bool:
            if point == "shard":
                return name.startswith(SHARD_NAMES) and name.endswith(".bin")
            if point == "progress":
                return name == "state.json" or name.startswith("checkpoint_")
            return name == "manifest.json"

        def commit(fd, tmp, target):
            if wanted(target.name):
                os.fsync(fd)
                counter.hit()
            return real_commit(fd, tmp, target)

        atomic._commit = commit
    else:
        raise SystemExit(f"killer.py: unknown point {point!r}")


def main() -> None:
    spec = os.environ.get("MINIGPT_TEST_KILL")
    rank = os.environ.get("RANK", "0")
    if spec and rank == os.environ.get("MINIGPT_TEST_KILL_RANK", "0"):
        point, _, n = spec.partition(":")
        _install(point, int(n or 1))
    from minigpt_cli.cli import main as cli_main

    sys.argv = ["minigpt", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
