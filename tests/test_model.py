import math

import pytest
import torch
from torch.nn import functional as F

from minigpt_cli.errors import MinigptError
from minigpt_cli.model import GPT, PRESETS, GPTConfig, preset_config


def test_gpt2_preset_has_exactly_124439808_parameters():
    with torch.device("meta"):
        model = GPT(preset_config("gpt2"))
    assert model.num_params() == 124_439_808
    assert model.lm_head.weight is model.transformer.wte.weight  # tied


@pytest.mark.parametrize("name,expected", [
    ("gpt2-medium", 354_823_168), ("gpt2-large", 774_030_080), ("gpt2-xl", 1_557_611_200),
])
def test_larger_presets_match_openai_sizes(name, expected):
    with torch.device("meta"):
        assert GPT(preset_config(name)).num_params() == expected


def test_unknown_preset_lists_known_ones():
    with pytest.raises(MinigptError) as e:
        preset_config("gpt5")
    for name in PRESETS:
        assert name in str(e.value)


def test_overrides_and_invalid_config():
    cfg = preset_config("nano", n_layer=3, block_size=32)
    assert (cfg.n_layer, cfg.block_size, cfg.n_embd) == (3, 32, PRESETS["nano"]["n_embd"])
    with pytest.raises(MinigptError, match="divisible"):
        GPT(GPTConfig(n_embd=30, n_head=4, n_layer=1, vocab_size=10, block_size=8))


def test_padded_vocab_is_never_predicted():
    cfg = preset_config("nano", vocab_size=100, pad_vocab_to=64)
    assert cfg.padded_vocab_size == 128
    model = GPT(cfg)
    assert model.transformer.wte.weight.shape[0] == 128
    logits, loss = model(torch.randint(0, 100, (2, 8)), torch.randint(0, 100, (2, 8)))
    assert logits.shape == (2, 8, 100)
    assert torch.isfinite(loss)
    assert preset_config("gpt2", pad_vocab_to=64).padded_vocab_size == 50304


def test_init_follows_gpt2_paper():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=1000, block_size=64, n_layer=8, n_head=4, n_embd=256)
    model = GPT(cfg)
    std = model.transformer.h[0].attn.c_attn.weight.std().item()
    assert abs(std - 0.02) < 0.002
    resid = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert abs(resid - 0.02 / math.sqrt(2 * cfg.n_layer)) < 0.001
    assert torch.all(model.transformer.h[0].attn.c_attn.bias == 0)


def test_gelu_is_tanh_approximation_and_attention_is_causal():
    model = GPT(preset_config("nano", vocab_size=50))
    x = torch.linspace(-6, 6, 101)
    mlp = model.transformer.h[0].mlp
    with torch.no_grad():
        assert torch.allclose(mlp(x.repeat(32, 1).T),  # GPT-2's tanh GELU between c_fc and c_proj
                              mlp.c_proj(F.gelu(mlp.c_fc(x.repeat(32, 1).T), approximate="tanh")),
                              atol=1e-6)
    model.eval()
    x = torch.randint(0, 50, (1, 10))
    y = x.clone()
    y[0, 7:] = (y[0, 7:] + 1) % 50  # changing the future must not change the past
    a, _ = model(x)
    b, _ = model(y)
    assert torch.allclose(a[0, :7], b[0, :7], atol=1e-6)
    assert not torch.allclose(a[0, 7:], b[0, 7:])


def test_loss_mask_and_ignore_index():
    torch.manual_seed(0)
    model = GPT(preset_config("nano", vocab_size=50))
    x = torch.randint(0, 50, (2, 8))
    t = torch.randint(0, 50, (2, 8))
    mask = torch.zeros(2, 8, dtype=torch.long)
    mask[:, 4:] = 1
    _, masked = model(x, t, loss_mask=mask)
    t2 = t.clone()
    t2[:, :4] = -1
    _, ignored = model(x, t2)
    assert torch.allclose(masked, ignored)


def test_sequence_longer_than_context_is_an_error():
    model = GPT(preset_config("nano", vocab_size=50, block_size=8))
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 9, dtype=torch.long))
