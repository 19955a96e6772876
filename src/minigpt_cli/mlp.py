"""The feed-forward sub-block a config can ask for (``mlp``):

- ``gelu``: GPT-2's, W2 gelu_tanh(W1 x), hidden width 4C;
- ``relu2``: squared ReLU, W2 relu(W1 x)^2 (So et al. 2021, "Primer"), hidden width 4C;
- ``swiglu``: W2 (silu(Wg x) * Wu x) (Shazeer 2020, "GLU Variants"; Llama), hidden width
  round(8C/3) by default, which keeps the GELU MLP's 8C^2 weights (3 matrices instead of 2).

The SwiGLU gate and up projections are one Linear (``c_fc``, 2H rows: gate then up) so it runs as
one matrix product; hf/export.py splits it into Llama's gate_proj and up_proj. ``mlp_hidden``
overrides the hidden width for any of the three.
"""

from __future__ import annotations

import torch.nn as nn
from torch.nn import functional as F

from minigpt_cli.kernels import tanh_gelu


def hidden_width(config) -> int:
    if config.mlp_hidden:
        return config.mlp_hidden
    if config.mlp == "swiglu":
        return round(8 * config.n_embd / 3)
    return 4 * config.n_embd


class MLP(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        H = hidden_width(config)
        rows = 2 * H if config.mlp == "swiglu" else H
        self.kind = config.mlp
        self.c_fc = nn.Linear(config.n_embd, rows, bias=config.bias)
        self.c_proj = nn.Linear(H, config.n_embd, bias=config.bias)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        y = self.c_proj(activate(self.kind, self.c_fc(x)))
        return self.dropout(y) if self.training else y


def activate(kind: str, h):
    """The hidden activation of ``c_fc``'s output h (..., rows) -> (..., H)."""
    if kind == "gelu":
        return tanh_gelu(h)  # GPT-2's tanh GELU (kernels.py)
    if kind == "relu2":
        return F.relu(h).square()
    gate, up = h.chunk(2, dim=-1)  # (..., H) each
    return F.silu(gate) * up
