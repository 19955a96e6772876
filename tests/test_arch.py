"""The model's architecture switches (docs/model.md), in the model itself: GPT-2 stays the
default with the same operations, every switch keeps the KV cache equal to a full recompute,
RoPE's sliding cache equals a sliding-window forward, packed scoring, LoRA merges, checkpoints
(untied heads, checkpoints written before the switches), FLOP and parameter counts."""

from __future__ import annotations

import collections
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils._python_dispatch import TorchDispatchMode

from minigpt_cli.errors import MinigptError
from minigpt_cli.evals.packed import HeadLoss, packed_hidden
from minigpt_cli.generation import SamplingParams, decode_one, generate
from minigpt_cli.lora import add_lora, merged
from minigpt_cli.model import GPT, PRESETS, GPTConfig, preset_config
from minigpt_cli.model_file import config_sha256, load_checkpoint, save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer
from minigpt_cli.train.dry_run import activation_widths
from minigpt_cli.train.flops import matmul_params

SHAPE = dict(vocab_size=70, block_size=16, n_layer=2, n_head=2, n_embd=32)
MODERN = dict(positions="rope", norm="rmsnorm", mlp="swiglu", bias=False, qk_norm=True,
              tie_embeddings=False, logit_softcap=30.0)
SWITCHES = {
    "gpt2": {}, "rope": dict(positions="rope", rope_base=500.0), "rmsnorm": dict(norm="rmsnorm"),
    "rmsnorm-nogain": dict(norm="rmsnorm", norm_gain=False),
    "layernorm-nogain": dict(norm_gain=False), "qk_norm": dict(qk_norm=True),
    "relu2": dict(mlp="relu2"), "swiglu": dict(mlp="swiglu"),
    "swiglu-96": dict(mlp="swiglu", mlp_hidden=96), "nobias": dict(bias=False),
    "untied": dict(tie_embeddings=False), "softcap": dict(logit_softcap=5.0), "modern": MODERN,
}
# GPT-2's aten ops for one fused-loss training step (forward + backward) of a 2-layer model,
# recorded before the switches existed: a switch that is off must add none
GPT2_STEP_OPS = {
    'aten._softmax': 2, 'aten._softmax_backward_data': 2, 'aten._to_copy': 1, 'aten._unsafe_view':
    12, 'aten.add': 10, 'aten.add_': 31, 'aten.addcmul': 4, 'aten.addcmul_': 2, 'aten.addmm': 8,
    'aten.amax': 1, 'aten.baddbmm': 2, 'aten.bitwise_not': 2, 'aten.bmm': 10, 'aten.clamp': 2,
    'aten.clone': 12, 'aten.detach': 4, 'aten.div': 2, 'aten.div_': 1, 'aten.embedding': 1,
    'aten.embedding_dense_backward': 1, 'aten.exp_': 1, 'aten.expand': 2, 'aten.full_like': 1,
    'aten.gather': 1, 'aten.lift_fresh': 4, 'aten.log': 1, 'aten.masked_fill': 1,
    'aten.masked_fill_': 1, 'aten.mm': 19, 'aten.mul': 7, 'aten.mul_': 9,
    'aten.native_layer_norm': 5, 'aten.native_layer_norm_backward': 5, 'aten.ne': 1,
    'aten.ones_like': 1, 'aten.permute': 4, 'aten.scatter_add_': 1, 'aten.sigmoid_': 2,
    'aten.slice': 7, 'aten.slice_backward': 2, 'aten.squeeze': 2, 'aten.stack': 2, 'aten.sub': 1,
    'aten.sub_': 1, 'aten.sum': 12, 'aten.t': 42, 'aten.transpose': 16, 'aten.unbind': 2,
    'aten.unsqueeze': 3, 'aten.view': 56,
}


def spread_(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights with std 0.2 (gains around 1): a tiny model with varied predictions."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = p.dim() == 1 and "norm" not in name.rsplit(".", 2)[-2] and \
                name.endswith("weight")
            gain = gain or name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight",
                                          "q_norm.weight", "k_norm.weight"))
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if gain else 0.0))


def model_with(switches: dict, seed: int = 0, **shape) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**SHAPE, **shape}, **switches))
    spread_(model, seed)
    return model.eval()


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def test_defaults_are_gpt2_and_add_no_operation():
    assert GPTConfig().is_gpt2() and preset_config("gpt2") == GPTConfig()
    torch.manual_seed(0)
    m = GPT(GPTConfig(**SHAPE))
    idx = torch.randint(0, 70, (2, 16))
    m(idx, targets=idx)[1].backward()  # warm-up: cached masks
    with _Ops() as rec:
        m(idx, targets=idx, need_logits=False)[1].backward()
    assert dict(sorted(rec.ops.items())) == GPT2_STEP_OPS


@pytest.mark.parametrize("name", SWITCHES)
def test_kv_cache_equals_full_recompute(name):
    m = model_with(SWITCHES[name])
    idx = torch.randint(0, 70, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = m(idx)
        cache = m.new_cache(2)
        parts = [m(idx[:, a:b], cache=cache)[0] for a, b in ((0, 5), (5, 9), (9, 10))]
        torch.testing.assert_close(torch.cat(parts, 1), full[:, :10], atol=1e-5, rtol=1e-5)
        one = m.new_cache(1)
        m(idx[:1, :9], cache=one)
        torch.testing.assert_close(decode_one(m, idx[0, 9:10], one)[0, 0], full[0, 9],
                                   atol=1e-5, rtol=1e-5)
        # packed scoring (explicit positions and mask) is the same forward
        causal = torch.ones(12, 12, dtype=torch.bool).tril().expand(2, 12, 12)
        h = packed_hidden(m, idx, torch.arange(12).expand(2, 12), causal)
        nll = HeadLoss(m)(h[:, :-1].reshape(-1, 32), idx[:, 1:].reshape(-1))
        ref = torch.nn.functional.cross_entropy(full[:, :-1].reshape(-1, 70),
                                                idx[:, 1:].reshape(-1), reduction="none")
        torch.testing.assert_close(nll, ref, atol=1e-5, rtol=1e-5)
        # the fused output layer + loss of the trainer gives the plain loss
        torch.testing.assert_close(m(idx, targets=idx, need_logits=False)[1],
                                   m(idx, targets=idx)[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["rope", "modern"])
def test_rope_cache_slides_past_the_context(name):
    """Past block_size the RoPE cache overwrites its oldest slot: the logits are those of a
    forward over the whole sequence with a sliding-window causal mask of block_size."""
    m = model_with(SWITCHES[name])
    N, L = 40, SHAPE["block_size"]
    idx = torch.randint(0, 70, (1, N), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        cache = m.new_cache(1)
        logits = [m(idx[:, :10], cache=cache)[0][0, -1]]
        for t in range(10, N):
            logits.append(decode_one(m, idx[0, t : t + 1], cache)[0, 0])
        assert cache.length == L and cache.position == N
        s = torch.arange(N)
        band = (s[None, :] <= s[:, None]) & (s[None, :] > s[:, None] - L)  # (N, N)
        h = packed_hidden(m, idx, s[None], band[None])
        ref = m.head(h)[0, 9:]
    torch.testing.assert_close(torch.stack(logits), ref, atol=1e-4, rtol=1e-4)
    toks = list(generate(m, idx[0, :5].tolist(), SamplingParams(max_new_tokens=50,
                                                                temperature=0)))
    assert len(toks) == 50  # past the 16-token context, no recomputation


def test_learned_positions_still_refuse_a_longer_sequence():
    m = model_with({})
    with pytest.raises(ValueError, match="exceeds the context"):
        m(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("switches, key", [
    (dict(positions="rope", n_embd=30, n_head=2), "even head size"),
    (dict(rope_base=500.0), "rope_base is set"),
    (dict(positions="alibi"), "positions must be one of"),
    (dict(norm="batchnorm"), "norm must be one of"),
    (dict(mlp="geglu"), "mlp must be one of"),
    (dict(logit_softcap=-1.0), "logit_softcap"),
    (dict(mlp_hidden=-3), "mlp_hidden"),
    (dict(norm_eps=0.0), "norm_eps"),
])
def test_bad_combinations_are_refused_naming_the_key(switches, key):
    with pytest.raises(MinigptError, match=key):
        GPT(GPTConfig(**{**SHAPE, **switches}))


def test_parameter_counts_follow_the_switches():
    C, L, V, T = 32, 2, 70, 16
    gpt2 = GPT(GPTConfig(**SHAPE)).num_params()
    assert GPT(GPTConfig(**SHAPE, positions="rope")).num_params() == gpt2 - T * C
    assert GPT(GPTConfig(**SHAPE, tie_embeddings=False)).num_params() == gpt2 + V * C
    assert GPT(GPTConfig(**SHAPE, qk_norm=True)).num_params() == gpt2 + L * 2 * 2 * (C // 2)
    # SwiGLU's default width keeps the GELU MLP's 8 C^2 weights (C = 768: exactly)
    big = dict(vocab_size=V, n_layer=1, n_head=12, n_embd=768, block_size=8, bias=False)
    assert GPT(GPTConfig(**big, mlp="swiglu")).num_params() == GPT(GPTConfig(**big)).num_params()
    for switches in SWITCHES.values():
        cfg = GPTConfig(**SHAPE, **switches)
        m = GPT(cfg)
        matrices = sum(p.numel() for n, p in m.named_parameters()
                       if p.dim() == 2 and not n.startswith(("transformer.wte", "transformer.wpe",
                                                             "lm_head")))
        assert matmul_params(cfg) == matrices + cfg.padded_vocab_size * C
    assert activation_widths(GPTConfig()) == 17


def test_every_preset_builds_and_records_its_switches():
    for name in PRESETS:
        with torch.device("meta"):
            GPT(preset_config(name, vocab_size=100))
    assert preset_config("gpt2").to_dict()["positions"] == "learned"


def test_untied_checkpoint_round_trip_and_old_checkpoints_load_as_gpt2(tmp_path):
    tok = CharTokenizer("".join(chr(32 + i) for i in range(69)))
    m = model_with(MODERN)
    path = save_checkpoint(tmp_path / "m", m, tok)
    back, _, ckpt = load_checkpoint(path)
    assert ckpt.config == m.config and back.lm_head.weight is not back.transformer.wte.weight
    x = torch.randint(0, 70, (1, 16))
    torch.testing.assert_close(back.eval()(x)[0], m(x)[0])
    # a checkpoint written before the switches: no switch keys in its config
    old = model_with({})
    path = save_checkpoint(tmp_path / "old", old, tok)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    raw = json.loads(meta["model_config"])
    raw = {k: raw[k] for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd",
                               "dropout", "bias", "pad_vocab_to")}
    meta.update(model_config=json.dumps(raw), model_config_sha256=config_sha256(raw))
    save_file(tensors, str(path), metadata=meta)
    back, _, ckpt = load_checkpoint(path)
    assert ckpt.config == GPTConfig(**SHAPE) and ckpt.config.is_gpt2()
    torch.testing.assert_close(back.eval()(x)[0], old(x)[0])


@pytest.mark.parametrize("name", ["swiglu", "modern"])
def test_lora_merge_with_switches(name):
    m = model_with(SWITCHES[name])
    add_lora(m, rank=4, alpha=8, targets=["c_attn", "c_proj", "c_fc"])
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("lora_B"):
                p.normal_(0, 0.2)
    plain = merged(m)
    x = torch.randint(0, 70, (2, 16))
    m.eval()
    assert type(plain) is GPT and plain.config == m.config
    torch.testing.assert_close(plain.eval()(x)[0], m(x)[0], atol=1e-5, rtol=1e-5)


def test_hand_written_rms_norm_equals_pytorch():
    from minigpt_cli.norms import _RMSNorm, rms_norm

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(16, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _RMSNorm.apply(a, b, 1e-5), (x, w))
    assert torch.autograd.gradcheck(lambda a: _RMSNorm.apply(a, None, 1e-6), (x,))
    x32, w32 = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    torch.testing.assert_close(rms_norm(x32, w32, 1e-5),
                               torch.nn.functional.rms_norm(x32, (16,), w32, 1e-5),
                               atol=0, rtol=0)
