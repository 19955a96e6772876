"""lm_loss.linear_cross_entropy: the output layer + cross-entropy fused computes the same
loss and gradients as the unfused form, in float32 and under bf16 autocast, with ignored
positions and with none counting; the model and the trainer use it on a CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minigpt_cli.lm_loss import linear_cross_entropy
from minigpt_cli.model import GPT, GPTConfig


def _case(n=48, c=16, v=97, ignored=(3, 7, 40)):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, generator=g)
    w = torch.randn(v, c, generator=g) * 0.3
    t = torch.randint(0, v, (n,), generator=g)
    t[list(ignored)] = -1
    return x, w, t


def _grads(fn, x, w, t, bf16=False):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        loss = fn(x, w, t)
    (loss * 1.7).backward()
    return loss.detach(), x.grad, w.grad


def _unfused(x, w, t):
    return F.cross_entropy((x @ w.t()).float(), t, ignore_index=-1)


@pytest.mark.parametrize("bf16", [False, True])
def test_fused_equals_unfused(bf16):
    x, w, t = _case()
    ref = _grads(_unfused, x, w, t, bf16)
    got = _grads(linear_cross_entropy, x, w, t, bf16)
    tol = dict(rtol=2e-2, atol=2e-3) if bf16 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, **tol)


def test_no_position_counts_gives_zero_with_zero_gradients():
    x, w, t = _case()
    t[:] = -1
    loss, gx, gw = _grads(linear_cross_entropy, x, w, t)
    assert loss.item() == 0.0 and gx.abs().max() == 0 and gw.abs().max() == 0


def test_the_model_gives_the_same_loss_and_gradients_with_and_without_logits():
    cfg = GPTConfig(vocab_size=61, block_size=32, n_layer=2, n_head=2, n_embd=32, pad_vocab_to=64)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(0, 61, (3, 32))
    y = torch.randint(0, 61, (3, 32))
    mask = (torch.arange(32) % 5 != 0).expand(3, 32)
    out = []
    for need in (True, False):
        model.zero_grad(set_to_none=True)
        logits, loss = model(idx, y, loss_mask=mask, need_logits=need)
        assert (logits is None) == (not need)
        loss.backward()
        out.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-6, atol=1e-6)
    for a, b in zip(out[1][1], out[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_no_counted_target_is_a_zero_loss_in_both_forms():
    """The trainer relies on it: a micro-batch whose targets are all masked adds 0.0, not NaN,
    and every weight still gets a (zero) gradient (DDP reduces every parameter)."""
    cfg = GPTConfig(vocab_size=61, block_size=16, n_layer=1, n_head=2, n_embd=16)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(0, 61, (2, 16))
    for need in (True, False):
        model.zero_grad(set_to_none=True)
        _, loss = model(idx, torch.full((2, 16), -1), need_logits=need)
        loss.backward()
        assert loss.item() == 0.0
        assert all(p.grad is not None and p.grad.abs().max() == 0 for p in model.parameters())
