"""kernels.py: the CPU forms of causal attention and of the tanh GELU are the same functions as
PyTorch's."""

import pytest
import torch
from torch.nn import functional as F

from minigpt_cli import kernels
from minigpt_cli.model import GPT, GPTConfig


@pytest.mark.parametrize("T", [1, 7, 64, kernels.SHORT_CONTEXT])
def test_attention_matches_sdpa_forward_and_backward(T):
    torch.manual_seed(T)
    qkv = torch.randn(3, T, 3, 4, 16, requires_grad=True)  # (B, T, 3, heads, hs) like the model
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # non-contiguous views, as in the model
    ours = kernels.causal_attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(ours, ref, atol=1e-5)
    g = torch.randn_like(ref)
    (ga,) = torch.autograd.grad(ours, qkv, g)
    (gb,) = torch.autograd.grad(ref, qkv, g)
    assert torch.allclose(ga, gb, atol=1e-5)


def test_model_same_loss_and_gradients_with_and_without_the_kernels(monkeypatch):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=32))
    x = torch.randint(0, 50, (3, 32))
    y = torch.randint(0, 50, (3, 32))
    results = []
    for on in (True, False):
        monkeypatch.setattr(kernels, "enabled", on)
        model.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    (la, ga), (lb, gb) = results
    assert la == pytest.approx(lb, rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ga, gb))


def test_tanh_gelu_matches_pytorch_forward_and_backward():
    x = torch.linspace(-12, 12, 2001, dtype=torch.float64).requires_grad_()
    ours = kernels._TanhGelu.apply(x)  # the float32 path's function, checked in float64
    ref = F.gelu(x, approximate="tanh")
    assert torch.allclose(ours, ref, atol=1e-12)
    g = torch.randn_like(ref)
    (ga,) = torch.autograd.grad(ours, x, g)
    (gb,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(ga, gb, atol=1e-12)
    assert torch.autograd.gradcheck(kernels._TanhGelu.apply, (x[::97].detach().requires_grad_(),))


def test_tanh_gelu_float32_path_and_fallback(monkeypatch):
    x = torch.randn(4, 8, 32)
    ref = F.gelu(x, approximate="tanh")
    assert kernels.tanh_gelu(x).grad_fn is None and torch.allclose(kernels.tanh_gelu(x), ref,
                                                                   atol=1e-6)
    y = kernels.tanh_gelu(x.clone().requires_grad_())
    assert y.grad_fn.name() == "_TanhGeluBackward"  # the hand-written backward
    monkeypatch.setattr(kernels, "GELU_MAX_NUMEL", x.numel() - 1)  # too big: PyTorch's
    assert kernels.tanh_gelu(x.clone().requires_grad_()).grad_fn.name() == "GeluBackward0"
    monkeypatch.setattr(kernels, "GELU_MAX_NUMEL", x.numel())
    monkeypatch.setattr(kernels, "enabled", False)
    assert kernels.tanh_gelu(x.clone().requires_grad_()).grad_fn.name() == "GeluBackward0"
