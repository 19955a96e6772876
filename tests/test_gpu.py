"""The CUDA path, checked against the CPU: numerics (fp32 parity, tf32, bf16 autocast), the real
training loop in bf16 against fp32, KV-cache greedy decoding, checkpoints written on the GPU and
read on the CPU (and resumed there), and ``--micro-batch auto`` under a GPU memory cap.

Marked ``gpu``: skipped without CUDA (conftest.py), except under ``MINIGPT_GPU_DRY=1``
(``benchmarks/gpu_check.sh --dry``), which runs them on the CPU to find mistakes in the test code
before a GPU is lent; there the device side is the CPU too and the CUDA-only checks skip.
Tolerances are relative norms ``|a - ref| / |ref|`` against a float64 CPU reference.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.generation import SamplingParams, generate
from minigpt_cli.loading import load_model
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.model_file import load_checkpoint, save_checkpoint
from minigpt_cli.runtime import autocast
from minigpt_cli.tokenizer import CharTokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train.loader import WindowStream
from minigpt_cli.train.loop import Trainer
from minigpt_cli.train.settings import TrainSettings
from minigpt_cli.train.spec import RunSpec

# one CPU thread: the CPU side of each check is tiny, and the machine may be shared (conftest.py)
pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("one_thread")]

CUDA = torch.cuda.is_available()
CFG = GPTConfig(vocab_size=500, block_size=128, n_layer=2, n_head=4, n_embd=64, pad_vocab_to=64)
TRAIN_CFG = GPTConfig(vocab_size=64, block_size=64, n_layer=2, n_head=4, n_embd=64)
TOK = CharTokenizer([chr(65 + i) for i in range(63)])  # 63 characters + end-of-text = 64 ids

FP32_TOL = 1e-4  # fp32 on both sides: reduction order only (METHOD.md: "far under 1e-3")
TF32_TOL = 1e-2  # tf32 matmuls (10-bit mantissa), what `minigpt pretrain` enables for float32
BF16_LOGITS_TOL, BF16_GRAD_TOL = 3e-2, 5e-2  # bf16 autocast (8-bit mantissa); CPU: 4e-3, 6e-3
BF16_LOSS_TOL = 1e-2  # bf16 training loss vs fp32, every step of 40 (relative; CPU: 2e-4)


@pytest.fixture
def dev() -> torch.device:
    return torch.device("cuda") if CUDA else torch.device("cpu")  # CPU: the dry run only


def cuda_only(what: str) -> None:
    if not CUDA:
        pytest.skip(f"dry run on the CPU: {what} needs CUDA")


@pytest.fixture
def exact_fp32():
    """Plain fp32 matmuls (no tf32) for the test; the global setting is restored after."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.double().cpu(), ref.double().cpu()
    assert torch.isfinite(a).all()
    return float((a - ref).norm() / ref.norm())


def forward_backward(model, x, device, dtype=torch.float32):
    model = model.to(device)
    model.zero_grad(set_to_none=True)
    with autocast(device, dtype):
        logits, loss = model(x[:, :-1].to(device), x[:, 1:].to(device))
    loss.backward()
    grads = {n: p.grad.detach().double().cpu() for n, p in model.named_parameters()}
    return logits.detach().double().cpu(), float(loss.detach()), grads


def test_forward_backward_match_a_float64_reference(dev, exact_fp32):
    torch.manual_seed(0)
    base = GPT(CFG)
    x = torch.randint(0, CFG.vocab_size, (4, CFG.block_size + 1))
    ref_logits, ref_loss, ref_grads = forward_backward(copy.deepcopy(base).double(), x, "cpu")

    def check(dtype, logits_tol, grad_tol, what):
        logits, loss, grads = forward_backward(copy.deepcopy(base), x, dev, dtype)
        assert rel(logits, ref_logits) < logits_tol, what
        assert abs(loss - ref_loss) < logits_tol * ref_loss, what
        worst = max(grads, key=lambda n: rel(grads[n], ref_grads[n]))
        assert rel(grads[worst], ref_grads[worst]) < grad_tol, f"{what}: gradient of {worst}"

    check(torch.float32, FP32_TOL, FP32_TOL, "fp32")
    check(torch.bfloat16, BF16_LOGITS_TOL, BF16_GRAD_TOL, "bf16 autocast")
    if CUDA:  # tf32 is a CUDA matmul mode
        torch.backends.cuda.matmul.allow_tf32 = True
        check(torch.float32, TF32_TOL, TF32_TOL, "tf32")


def markov_ids(n: int = 40_000, seed: int = 0) -> np.ndarray:
    """A learnable stream: each id follows from the last by a fixed table 80% of the time."""
    rng = np.random.default_rng(seed)
    table = rng.integers(0, TOK.vocab_size, size=TOK.vocab_size)
    ids = np.empty(n, dtype=np.int64)
    ids[0] = 0
    noise = rng.random(n) < 0.2
    rand = rng.integers(0, TOK.vocab_size, size=n)
    for i in range(1, n):
        ids[i] = rand[i] if noise[i] else table[ids[i - 1]]
    return ids


def train(dev, dtype, out, steps, resume=None, checkpoint_every=0):
    """The real loop (Trainer.run) on the tiny config; returns (trainer, loss per step)."""
    torch.manual_seed(0)
    s = TrainSettings(max_steps=steps, eval_every=0, sample_every=0,
                      checkpoint_every=checkpoint_every, device=dev.type, peak_flops=1e12, lr=3e-3,
                      warmup_steps=2)
    spec = RunSpec(out, TOK, 8, 64, 2, D.Dist(device=dev), dtype, resume=resume)
    losses: list[float] = []

    def listen(e):
        if isinstance(e, E.StepEvent):
            losses.append(e.loss)

    trainer = Trainer(GPT(TRAIN_CFG), WindowStream([markov_ids()], None, 64, seed=0), None, s,
                      spec, listen)
    trainer.run()
    return trainer, losses


def test_bf16_training_loss_tracks_fp32(dev, tmp_path, exact_fp32):
    _, fp32 = train(dev, torch.float32, tmp_path / "fp32", 40)
    _, bf16 = train(dev, torch.bfloat16, tmp_path / "bf16", 40)
    assert fp32[-1] < 0.6 * fp32[0]  # it learns, so the curves are compared while they move
    gaps = [abs(b - f) / f for b, f in zip(bf16, fp32)]
    assert max(gaps) < BF16_LOSS_TOL, f"worst step {gaps.index(max(gaps)) + 1}: {max(gaps):.4f}"


def greedy(model, prompt: list[int], n: int, use_cache: bool = True) -> list[int]:
    params = SamplingParams(max_new_tokens=n, temperature=0.0)
    return [int(t[0]) for t in generate(model, prompt, params, use_cache=use_cache)]


def assert_same_or_tie(cpu_model, prompt, cpu_tokens, other, what):
    """Same greedy tokens, or the first difference is where the CPU's top two logits tie
    (within 1e-4: either token is right, and fp32 rounding may pick the other)."""
    i = next((k for k, (a, b) in enumerate(zip(cpu_tokens, other)) if a != b), None)
    assert len(other) == len(cpu_tokens), what
    if i is None:
        return
    ctx = torch.tensor([(prompt + cpu_tokens[:i])[-cpu_model.config.block_size:]])
    with torch.inference_mode():
        top2 = cpu_model(ctx, last_only=True)[0][0, -1].topk(2).values
    assert float(top2[0] - top2[1]) < 1e-4, f"{what}: token {i} differs without a tie"


def test_kv_cache_greedy_tokens_match_the_cpu(dev, exact_fp32):
    cpu_model, tok, _ = load_model(None, None, "cpu")  # the built-in Nietzsche model
    dev_model, _, _ = load_model(None, None, dev)
    prompt = tok.encode("The philosopher ")
    n = 200  # past the context of 128: the sliding window is exercised too
    cpu_tokens = greedy(cpu_model, prompt, n)
    assert_same_or_tie(cpu_model, prompt, cpu_tokens, greedy(dev_model, prompt, n), "cache")
    assert_same_or_tie(cpu_model, prompt, cpu_tokens, greedy(dev_model, prompt, n, False),
                       "recompute")
    bf16 = greedy(load_model(None, None, dev, torch.bfloat16)[0], prompt, 50)
    assert len(bf16) == 50 and all(0 <= t < tok.vocab_size for t in bf16)
    # the CLI streams the same tokens on this device
    r = CliRunner().invoke(app, ["sample", "--device", dev.type, "-t", "0", "-n", "40",
                                 "--prompt", "The philosopher "], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    expected = "The philosopher " + tok.decode(greedy(dev_model, prompt, 40))
    assert expected in r.output


def test_checkpoint_written_on_the_gpu_loads_and_resumes_on_the_cpu(dev, tmp_path, exact_fp32):
    run = tmp_path / "run"
    trainer, losses = train(dev, torch.float32, run, 5, checkpoint_every=3)
    trained = {k: v.detach().cpu() for k, v in trainer.raw.state_dict().items()}
    on_cpu = load_checkpoint(run / "step_000005")[0]
    for k, v in on_cpu.state_dict().items():
        assert torch.equal(v, trained[k]), k  # bit for bit
    back = copy.deepcopy(on_cpu).to(dev)  # and back: onto the device, written again from there
    save_checkpoint(tmp_path / "again.safetensors", back, TOK, step=5)
    again = load_checkpoint(tmp_path / "again.safetensors")[0].state_dict()
    assert all(torch.equal(again[k], v) for k, v in on_cpu.state_dict().items())
    # the step-3 checkpoint (weights, fused AdamW's moments, data position) resumed on the CPU,
    # and on the device again, takes the same steps 4 and 5 as the device did (step 5's loss
    # follows step 4's update, made with the restored moments)
    for where in (torch.device("cpu"), dev):
        _, resumed = train(where, torch.float32, run, 5, resume=run / "step_000003")
        assert len(resumed) == 2, where
        for got, want in zip(resumed, losses[3:]):
            assert abs(got - want) < FP32_TOL * want, (where, resumed, losses)


def test_micro_batch_auto_picks_the_largest_size_under_a_memory_cap(dev, tmp_path):
    cuda_only("a GPU memory cap (torch.cuda.set_per_process_memory_fraction)")
    from test_train_support import char_shards

    from minigpt_cli.shard_folder import open_shard_folder
    from minigpt_cli.train.dry_run import _fits_cuda
    from minigpt_cli.train.pretrain import model_config
    from minigpt_cli.train.settings import PretrainSettings

    # activations (~140 MB a sequence) dwarf the weights and AdamW state (~200 MB), so the
    # boundary between 4 and 8 sequences is ~280 MB wide on either side of the cap
    data = char_shards(tmp_path / "shards", repeat=200)
    T = 2048
    flags = dict(model="micro", n_layer=4, n_head=8, n_embd=512, block_size=T, seq_len=T,
                 tokens_per_step=T * 16, micro_batch="auto", dtype="bfloat16")
    config = model_config(PretrainSettings(data=data, **flags),
                          open_shard_folder(data).tokenizer.vocab_size)  # what the CLI builds
    peak = {}
    assert _fits_cuda(config, 1, T, dev, torch.bfloat16, False)  # one-time allocations first
    for b in (1, 2):  # what _fits_cuda itself reserves at 1 and 2 sequences
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        assert _fits_cuda(config, b, T, dev, torch.bfloat16, False)
        peak[b] = torch.cuda.max_memory_reserved(dev)
    per = peak[2] - peak[1]
    assert per > 64 << 20, f"{per} bytes per sequence: too little for a sharp boundary"
    cap = peak[1] + 5 * per  # 4 sequences fit with 2 to spare; 8 are 2 over
    total = torch.cuda.get_device_properties(dev).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(cap / total, dev)
    try:
        args = ["pretrain", "--data", str(data), "--out", str(tmp_path / "run"), "--device",
                "cuda", "--max-steps", "2", "--eval-every", "0", "--sample-every", "0",
                "--peak-flops", "1e12"]
        for k, v in flags.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        r = CliRunner().invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output  # it trained at the size it chose, under the cap
        m = re.search(r"--micro-batch auto chose (\d+)", r.output)
        assert m, r.output
        assert int(m.group(1)) == 4, (m.group(0), peak, cap)
        assert not _fits_cuda(config, 8, T, dev, torch.bfloat16, False)  # the next size up
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
        torch.cuda.empty_cache()
