"""The trainer's state: one explicit object the loop owns (``TrainerState``), saved as
``trainer_state.json`` in every checkpoint (step_folder.py), plus the RNG states it carries.

Everything in it is plain JSON: counters, the data position, the guard's and the gradient
scaler's state, every rank's RNG state (the torch state as base64 bytes). No pickle.
"""

from __future__ import annotations

import base64
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    tokens_seen: int = 0
    data: dict[str, Any] = field(default_factory=dict)  # loader position (epoch, cursor, ...)
    lr_scale: float = 1.0  # lowered by the guard on rollbacks
    guard: dict[str, Any] = field(default_factory=dict)
    val_loss: float | None = None  # measured at this step, if it was
    best_val: float | None = None
    best_step: int | None = None
    stale_evals: int = 0  # evals since the best (early stopping)
    elapsed: float = 0.0  # training wall-clock seconds so far, over all segments
    world: int = 1
    tokens_per_step: int = 0
    seq_len: int = 0
    dtype: str | None = None  # the compute format the run trains in (kept by --dtype auto)
    manifest_hash: str | None = None
    rng: list[dict] = field(default_factory=list)  # one per rank
    scaler: dict | None = None
    reason: str = "periodic"
    budget_steps: int | None = None  # --max-time alone: the steps the budget allows, fixed at
    #                                  the first checkpoint (train/budget.py)

    def record_eval(self, step: int, val_loss: float) -> bool:
        """Note a validation loss; True if it is the best so far."""
        self.val_loss = val_loss
        best = self.best_val is None or val_loss < self.best_val
        if best:
            self.best_val, self.best_step, self.stale_evals = val_loss, step, 0
        else:
            self.stale_evals += 1
        return best

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainerState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# -- RNG ------------------------------------------------------------------------------------
def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _unb64(s: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())


def capture_rng(device: torch.device) -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": _b64(torch.get_rng_state()),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if device.type == "cuda":
        out["cuda"] = _b64(torch.cuda.get_rng_state(device))
    return out


def restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(_unb64(state["torch"]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_unb64(state["cuda"]), device)
