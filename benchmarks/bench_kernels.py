"""kernels.py vs PyTorch's own CPU kernels: causal attention and the tanh GELU, forward +
backward, at the shapes CPU training uses; Muon's Newton-Schulz in Gram form vs the plain
iteration (train/muon.py); then whole training steps of small GPTs with all of it on and off
(the Nietzsche recipe's step with Muon: kernels and Gram form vs neither). Every
pair is measured alternately in the same run (rounds of on/off), and the figure is the median
of the per-round ratios: the machine may be shared.

    python benchmarks/bench_kernels.py            # about a minute
    python benchmarks/bench_kernels.py --rounds 9 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.nn import functional as F

from minigpt_cli import kernels
from minigpt_cli.model import GPT, preset_config
from minigpt_cli.train import muon

GRAM_FORM_RATIO = muon.GRAM_FORM_RATIO  # the library's setting, restored after each pair


def timed(fn, reps: int) -> float:
    fn()  # warm
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def paired(make_on, make_off, rounds: int, reps: int) -> tuple[float, float, float]:
    """(median ms on, median ms off, median off/on ratio) over alternating rounds."""
    on, off = [], []
    for _ in range(rounds):
        on.append(timed(make_on, reps))
        off.append(timed(make_off, reps))
    ratio = statistics.median(b / a for a, b in zip(on, off))
    return statistics.median(on) * 1e3, statistics.median(off) * 1e3, ratio


def fwd_bwd(f, *inputs):
    g = None

    def run():
        nonlocal g
        y = f(*inputs)
        g = torch.ones_like(y) if g is None else g
        y.backward(g)
    return run


def attention_rows(rounds: int) -> list[tuple]:
    rows = []
    for B, H, T, D in ((12, 4, 64, 32), (8, 4, 128, 32), (4, 4, 256, 32), (2, 4, 512, 32),
                       (1, 12, 1024, 64)):
        qkv = torch.randn(B, T, 3, H, D, requires_grad=True)

        def split():
            return qkv.permute(2, 0, 3, 1, 4).unbind(0)

        def ours():
            return kernels.explicit_causal_attention(*split())  # whatever T

        def sdpa():
            return F.scaled_dot_product_attention(*split(), is_causal=True)
        reps = max(3, int(4e6 // (B * H * T * T)))
        used = "explicit" if T <= kernels.SHORT_CONTEXT else "SDPA (above SHORT_CONTEXT)"
        rows.append((f"attention B{B} heads {H}x{D} T{T} -> {used}",
                     *paired(fwd_bwd(ours), fwd_bwd(sdpa), rounds, reps)))
    return rows


def gelu_rows(rounds: int) -> list[tuple]:
    rows = []
    for shape in ((8, 128, 512), (12, 64, 512), (4, 1024, 3072)):
        x = torch.randn(*shape, requires_grad=True)
        reps = max(3, int(2e7 // x.numel()))
        rows.append((f"tanh GELU {'x'.join(map(str, shape))}",
                     *paired(fwd_bwd(kernels._TanhGelu.apply, x),
                             fwd_bwd(lambda t: F.gelu(t, approximate="tanh"), x), rounds, reps)))
    return rows


def newton_schulz_rows(rounds: int) -> list[tuple]:
    rows = []
    for shape in ((4, 512, 128), (4, 128, 512), (4, 384, 128), (1, 768, 3072)):
        g = torch.randn(*shape)

        def ns(gram: bool, g=g):
            def run():
                muon.GRAM_FORM_RATIO = GRAM_FORM_RATIO if gram else 10**9
                muon.orthogonalize(g, 5)
            return run
        reps = max(2, int(4e8 // (g.numel() * min(shape[1:]))))
        rows.append((f"Muon Newton-Schulz x5, Gram form, {'x'.join(map(str, shape))}",
                     *paired(ns(True), ns(False), rounds, reps)))
    muon.GRAM_FORM_RATIO = GRAM_FORM_RATIO
    return rows


def fast(on: bool) -> None:
    """Everything this benchmark compares on (kernels.py, Gram-form Newton-Schulz) or off."""
    kernels.enabled = on
    muon.GRAM_FORM_RATIO = GRAM_FORM_RATIO if on else 10**9


def step_rows(rounds: int) -> list[tuple]:
    from minigpt_cli.train.optim import build_optimizer
    from minigpt_cli.train.settings import TrainSettings

    def adamw(model):
        return torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def recipe_muon(model):  # the Nietzsche recipe's optimizers, as the trainer builds them
        return build_optimizer(model, TrainSettings(optimizer="muon", lr=3e-3, muon_lr=0.02,
                                                    beta2=0.99), torch.device("cpu"))
    rows = []
    for name, B, T, V, make_opt, reps in (
            ("baby GPT train step, 12 x 64", 12, 64, 65, adamw, 20),
            ("Nietzsche recipe step, 8 x 128", 8, 128, 65, adamw, 20),
            ("Nietzsche recipe step with Muon, 8 x 128", 8, 128, 100, recipe_muon, 15)):
        torch.manual_seed(0)
        model = GPT(preset_config("baby", vocab_size=V, block_size=T))
        opt = make_opt(model)
        x = torch.randint(0, V, (B, T))
        y = torch.randint(0, V, (B, T))

        def step(on: bool, model=model, opt=opt, x=x, y=y):
            def run():
                fast(on)
                _, loss = model(x, y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
                opt.step()
                opt.zero_grad(set_to_none=True)
            return run
        on, off, ratio = paired(step(True), step(False), rounds, reps)
        rows.append((f"{name} ({B * T / on * 1e3:,.0f} vs {B * T / off * 1e3:,.0f} tok/s)",
                     on, off, ratio))
    fast(True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = ap.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'forward + backward (Newton-Schulz: the update)':64} {'ours ms':>8} "
          f"{'torch ms':>8} {'speed-up':>8}")
    for rows in (attention_rows, gelu_rows, newton_schulz_rows, step_rows):
        for name, on, off, ratio in rows(args.rounds):
            print(f"{name:64} {on:>8.3f} {off:>8.3f} {ratio:>7.2f}x", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}; SHORT_CONTEXT = "
          f"{kernels.SHORT_CONTEXT}; speed-up = median over {args.rounds} rounds of "
          "torch (or plain Newton-Schulz) time / ours")


if __name__ == "__main__":
    main()
