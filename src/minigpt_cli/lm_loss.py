"""The output layer and its cross-entropy as one autograd step, for training on a CPU.

``F.cross_entropy(x @ W^T, targets)`` keeps the (tokens x vocabulary) logits, writes a second
buffer of that size for ``log_softmax``, and in the backward pass a third, zero-filled, for
``nll_loss``'s gradient and a fourth for ``log_softmax``'s: four passes over 206 MB apiece for
a 1 x 1024 gpt2 micro-batch. ``linear_cross_entropy`` keeps one buffer: the logits are turned
into exp(logit - max) in place in the forward pass (the loss needs only the row sums and each
target's logit, read before), and into the gradient softmax - onehot in place in the backward
pass, which then runs the two matmuls from it. Same function: the loss and both gradients
equal the unfused form's to float32 rounding (tests/test_lm_loss.py).

Under bf16 autocast the matmuls run in bf16 as ``nn.Linear`` would (logits computed in bf16,
the loss in float32, the gradient cast to bf16 for the backward matmuls), so switching the
fused form on changes nothing a user can see but time and memory. Positions whose target is
``ignore_index`` count for nothing; when none counts the loss is 0.0 (not NaN) and still
reaches every weight that fed ``x``, with zero gradients.
"""

from __future__ import annotations

import torch


def _compute_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype in force for matmuls on this device type, or None."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, targets, ignore_index):
        low = _compute_dtype(x.device.type)
        with torch.autocast(x.device.type, enabled=False):
            a, w = (x.to(low), weight.to(low)) if low is not None else (x, weight)
            buf = torch.matmul(a, w.t()).float()  # (N, V): the one buffer
            valid = targets != ignore_index
            safe = targets.masked_fill(~valid, 0)
            picked = buf.gather(1, safe[:, None]).squeeze(1)  # each target's logit
            top = buf.amax(1, keepdim=True)
            sums = buf.sub_(top).exp_().sum(1, keepdim=True)  # buf = exp(logit - max)
            lse = sums.log().add_(top).squeeze(1)
            count = valid.sum()
            nll = (lse - picked).masked_fill_(~valid, 0.0)
            loss = nll.sum() / count.clamp(min=1)
        ctx.save_for_backward(x, weight, buf, sums, safe, valid, count)
        ctx.low = low
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        x, weight, buf, sums, safe, valid, count = ctx.saved_tensors
        g = buf.div_(sums)  # softmax, in place
        g.scatter_add_(1, safe[:, None], torch.full_like(g[:, :1], -1.0))  # - onehot
        scale = (grad_loss / count.clamp(min=1)).to(g.dtype)
        g.mul_(valid[:, None].to(g.dtype) * scale)  # ignored rows: zero
        low = ctx.low
        if low is not None:
            g, a, w = g.to(low), x.to(low), weight.to(low)
        else:
            a, w = x, weight
        grad_x = torch.matmul(g, w).to(x.dtype) if ctx.needs_input_grad[0] else None
        grad_w = torch.matmul(g.t(), a).to(weight.dtype) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None, None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         ignore_index: int = -1) -> torch.Tensor:
    """Mean cross-entropy of ``x @ weight^T`` (x: (N, C), weight: (V, C)) against ``targets``
    (N,), skipping ``ignore_index``; the logits are never returned."""
    return _LinearCrossEntropy.apply(x, weight, targets, ignore_index)
