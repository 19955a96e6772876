"""Muon (Jordan et al. 2024, "Muon: MomentUm Orthogonalized by Newton-Schulz"): SGD momentum
whose update for each 2-D hidden weight matrix is replaced by the nearest semi-orthogonal
matrix, found with a few Newton-Schulz iterations. Embeddings, the output layer, biases and
LayerNorm gains stay with AdamW (``Chain`` presents the two optimizers as one).

Written for CPUs as much as GPUs: the iterations run in float32 unless the device is a GPU
(PyTorch's own ``torch.optim.Muon`` casts to bfloat16, which CPUs without bf16 units run
~150x slower than float32), and matrices of the same shape are orthogonalised together as one
batched matmul chain, not one small matmul at a time.

Update for a (rows x cols) weight with gradient g, momentum mu, learning rate lr:
    m <- mu m + g;  d <- g + mu m (Nesterov);  W <- W - lr sqrt(max(1, rows/cols)) NS5(d)
with decoupled weight decay W <- W (1 - lr wd) before it.
"""

from __future__ import annotations

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # quintic iteration, Jordan et al.
# Matrices at least this many times wider than tall iterate in the Gram form (cheaper there).
GRAM_FORM_RATIO = 2


def orthogonalize(g: torch.Tensor, steps: int) -> torch.Tensor:
    """Approximately U V^T of each (.., rows, cols) matrix's SVD U S V^T, by Newton-Schulz."""
    a, b, c = NS_COEFFICIENTS
    single = g.dim() == 2
    x = g.unsqueeze(0) if single else g  # (n, rows, cols)
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral norm <= 1
    wide = x.size(-2) <= x.size(-1)
    if not wide:
        x = x.mT  # iterate on the smaller Gram matrix
    if steps > 1 and x.size(-1) >= GRAM_FORM_RATIO * x.size(-2):
        x = _newton_schulz_gram(x, steps)
    else:
        for _ in range(steps):
            gram = x @ x.mT
            poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b G + c G^2
            x = torch.baddbmm(x, poly, x, beta=a)  # a X + (b G + c G^2) X
    x = x if wide else x.mT
    return x[0] if single else x


def _newton_schulz_gram(x: torch.Tensor, steps: int) -> torch.Tensor:
    """The same iteration for (n, r, c) matrices with c >= 2 r, run on r x r matrices only.

    Every iterate is X_k = Q_k X_0 with Q_k a polynomial in G = X_0 X_0^T, so
    X_k X_k^T = Q_k G Q_k and Q_{k+1} = p(Q_k G Q_k) Q_k: the long side is touched twice
    (G, then Q_K X_0) instead of twice per iteration. For the 128 x 512 matrices of a
    128-wide model that is 25 r^3 multiply-adds for five iterations instead of 45."""
    a, b, c = NS_COEFFICIENTS
    gram = x @ x.mT  # G, (n, r, r)
    eye = torch.eye(gram.size(-1), dtype=x.dtype, device=x.device)
    cur, q = gram, None  # cur = X_k X_k^T; q = Q_k (None for the identity)
    for k in range(steps):
        poly = torch.baddbmm(cur, cur, cur, beta=b, alpha=c).add_(eye, alpha=a)  # p(cur)
        q = poly if q is None else poly @ q
        if k < steps - 1:
            cur = q @ gram @ q  # Q G Q: q is a polynomial in G, so symmetric and commuting
    return q @ x


class Muon(torch.optim.Optimizer):
    """Muon for 2-D parameters. Its state (``momentum_buffer`` per parameter) saves and loads
    like any optimizer's."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.0,
                 ns_steps: int = 5) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, ns_steps=ns_steps)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon takes 2-D weights only (got shape {tuple(p.shape)})")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            by_shape: dict[tuple, list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault((tuple(p.shape), p.device), []).append(p)
            for (shape, device), params in by_shape.items():
                self._update(group, shape, device, params)
        return loss

    def _update(self, group: dict, shape: tuple, device: torch.device, params: list) -> None:
        mu, lr = group["momentum"], group["lr"]
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs.append(state["momentum_buffer"])
        grads = [p.grad for p in params]
        torch._foreach_mul_(bufs, mu)
        torch._foreach_add_(bufs, grads)
        work = torch.float32 if device.type == "cpu" else torch.bfloat16
        d = torch.stack(grads).add_(torch.stack(bufs), alpha=mu).to(work)  # Nesterov
        u = orthogonalize(d, group["ns_steps"]).to(params[0].dtype).unbind(0)
        if group["weight_decay"]:
            torch._foreach_mul_(params, 1.0 - lr * group["weight_decay"])
        scale = max(1.0, shape[0] / shape[1]) ** 0.5
        torch._foreach_add_(params, u, alpha=-lr * scale)


class Chain:
    """Optimizers over disjoint parameters acting as one: ``param_groups`` (the parts' own
    group dicts, so setting a group's lr reaches its optimizer), ``step``, ``zero_grad``,
    ``state_dict`` / ``load_state_dict`` in the standard layout, parameters numbered across
    the parts in order."""

    def __init__(self, *parts: torch.optim.Optimizer) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.parts for g in o.param_groups]

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for o in self.parts:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def _sizes(self) -> list[int]:
        return [sum(len(g["params"]) for g in o.param_groups) for o in self.parts]

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for o, n in zip(self.parts, self._sizes()):
            sd = o.state_dict()
            state |= {i + offset: s for i, s in sd["state"].items()}
            groups += [{**g, "params": [i + offset for i in g["params"]]}
                       for g in sd["param_groups"]]
            offset += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        offset, start = 0, 0
        for o, n in zip(self.parts, self._sizes()):
            k = len(o.param_groups)
            groups = [{**g, "params": [i - offset for i in g["params"]]}
                      for g in sd["param_groups"][start:start + k]]
            state = {i - offset: s for i, s in sd["state"].items() if offset <= i < offset + n}
            o.load_state_dict({"state": state, "param_groups": groups})
            offset, start = offset + n, start + k
