"""``metrics.jsonl``: one JSON object per line, every line with a ``step``.

Step lines carry loss, lr, grad_norm, tokens_seen, tok_per_s, mfu, elapsed (and skipped when
the guard skipped the update); eval lines carry val_loss; guard lines carry event and message.
Optionally the same scalars go to TensorBoard. Only rank 0 writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from minigpt_cli import atomic
from minigpt_cli.errors import MinigptError
from minigpt_cli.oserrors import with_filename

METRICS_NAME = "metrics.jsonl"


class MetricsLog:
    def __init__(self, run: Path, resume_step: int | None, tensorboard: bool) -> None:
        self.path = run / METRICS_NAME
        if resume_step is not None:
            self._truncate_after(resume_step)
        elif self.path.exists():
            self.path.unlink()
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        self._tb = None
        if tensorboard:
            self._tb = check_tensorboard()(str(run / "tensorboard"))

    def _truncate_after(self, step: int) -> None:
        """A resumed run replays the steps after its checkpoint: drop their old lines."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except ValueError:
                continue  # a line cut by kill -9
        atomic.write_text(self.path, "".join(k + "\n" for k in kept))

    def write_step(self, e) -> None:
        """A step line from an ``events.StepEvent``."""
        rec = {"step": e.step, "loss": e.loss, "lr": e.lr, "grad_norm": e.grad_norm,
               "tokens_seen": e.tokens_seen, "tok_per_s": e.tok_per_s, "mfu": e.mfu,
               "elapsed": e.elapsed}
        if e.page_faults is not None:
            rec["page_faults"] = e.page_faults
        if e.skipped:
            rec["skipped"] = True
        self.write(rec)

    def write(self, record: dict) -> None:
        try:
            self._file.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk: name the file (the CLI says what to do)
            raise with_filename(e, self.path)
        if self._tb is not None:
            step = record["step"]
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # a line that could not be flushed was already reported by write()
        if self._tb is not None:
            self._tb.close()


def check_tensorboard():
    """The SummaryWriter class, or a MinigptError saying what to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MinigptError("--tensorboard needs the tensorboard package: "
                           "pip install tensorboard (or leave --tensorboard off).") from None
    return SummaryWriter


def read_metrics(run: Path) -> list[dict]:
    path = Path(run) / METRICS_NAME
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
