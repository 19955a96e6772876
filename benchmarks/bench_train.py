"""Training throughput and MFU of `minigpt pretrain`'s loop on this machine, beside baselines
measured in the same run.

    python benchmarks/bench_train.py                 # everything (gpt2 takes many minutes on a CPU)
    python benchmarks/bench_train.py --skip-gpt2     # baby shape, loader, memory only
    python benchmarks/bench_train.py --device cuda --compile   # the GPU figure (train_device.py)

MFU = FLOPs per token x tokens/s / peak, with FLOPs per token = 6 x (every matmul weight, the
tied output layer included) + 12 x n_layer x seq_len x n_embd, and the peak measured here: the
median FLOP/s of a large square matmul in float32 and in bfloat16.

Figures:
1. matmul peaks (fp32, bf16);
2. the baby shape (4 layers, 4 heads, 128 wide, context 64, batch 12, char vocabulary of the
   Nietzsche texts): the trainer (Trainer.run: loader, accumulation bookkeeping, clipping,
   guard, metrics) vs a bare loop over the same model (forward, backward, fused AdamW) --
   the ratio is the loop's overhead; nanoGPT's figure from the issue is quoted for reference;
3. the gpt2 preset at sequence length 1024: full optimizer steps of 16,384 tokens
   (micro-batch 2 x 1024 x 8 accumulation steps) in float32 and bfloat16 autocast;
4. the loader: batches/s of (16, 1024) windows from memory-mapped shards vs what the trainer
   consumes per second (from 3, or from 2 with --skip-gpt2);
5. peak memory (RSS of a fresh process) of one training step with and without activation
   checkpointing, beside the planner's estimate.
Every timing is a median over repeats; the machine may be shared, so compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MINIGPT_SHARED_DATA", ROOT.parent / "shared" / "data"))
NANOGPT_BABY = 16_100  # tokens/s, nanoGPT's train.py, baby GPT on CPU, eager (issue 4)


def _corpus_ids() -> tuple[np.ndarray, int]:
    from minigpt_cli.tokenizer import CharTokenizer

    folder = SHARED / "nietzsche"
    if folder.is_dir():
        text = "\n\n".join(p.read_text(encoding="utf-8-sig") for p in sorted(folder.glob("*.txt")))
    else:  # a stand-in with a char-sized vocabulary
        rng = np.random.default_rng(0)
        text = "".join(chr(32 + int(i)) for i in rng.integers(0, 90, size=2_000_000))
    tok = CharTokenizer.from_text(text)
    return np.array(tok.encode(text), dtype=np.uint16), tok.vocab_size


def peaks() -> dict[str, float]:
    from minigpt_cli.train.flops import measure_peak

    fp32 = measure_peak("cpu", "float32", size=2048, seconds=3.0)
    # bf16 without AVX512-BF16/AMX runs a slow fallback kernel: 1024^3 keeps this to seconds
    return {"float32": fp32, "bfloat16": measure_peak("cpu", "bfloat16", size=1024, seconds=3.0)}


def trainer_run(preset, ids, vocab, micro, seq, accum, steps, dtype, compile=False,
                checkpointing=False, device="cpu", times=None, wrap_step=None):
    """Median seconds per optimizer step of the real Trainer (warm-up steps dropped).
    ``times``: a list that receives every step's seconds; ``wrap_step(trainer)``: called with
    the built trainer before it runs (train_device.py profiles a step through it)."""
    from minigpt_cli.model import GPT, preset_config
    from minigpt_cli.tokenizer import CharTokenizer
    from minigpt_cli.train import distributed as D
    from minigpt_cli.train import events as E
    from minigpt_cli.train.loader import WindowStream
    from minigpt_cli.train.loop import RunSpec, Trainer
    from minigpt_cli.train.settings import TrainSettings

    s = TrainSettings(max_steps=steps, eval_every=0, sample_every=0, checkpoint_every=0,
                      device=device, dtype="float32", peak_flops=1e12, compile=compile,
                      activation_checkpointing=checkpointing, lr=1e-3)
    torch.manual_seed(0)
    model = GPT(preset_config(preset, vocab_size=vocab, pad_vocab_to=64 if vocab > 1024 else 1))
    times = [] if times is None else times

    def listen(e):
        if isinstance(e, E.StepEvent):
            times.append(e.step_time)

    with tempfile.TemporaryDirectory() as tmp:
        tok = CharTokenizer([chr(32 + i) for i in range(min(vocab - 1, 60000))])
        spec = RunSpec(Path(tmp), tok, micro, seq, accum, D.Dist(device=torch.device(device)),
                       dtype)
        trainer = Trainer(model, WindowStream([ids], None, seq, seed=0), None, s, spec, listen)
        if wrap_step is not None:
            wrap_step(trainer)
        trainer.run()
    warm = max(1, len(times) // 5)
    return statistics.median(times[warm:])


def bare_loop(preset, ids, vocab, micro, seq, steps):
    """The baseline: the same model, forward + backward + fused AdamW, no trainer around it."""
    from minigpt_cli.model import GPT, preset_config

    torch.manual_seed(0)
    model = GPT(preset_config(preset, vocab_size=vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), fused=True)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - seq - 1, size=micro)
        xy = torch.from_numpy(np.stack([ids[i : i + seq + 1] for i in starts]).astype(np.int64))
        t0 = time.perf_counter()
        _, loss = model(xy[:, :-1], xy[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())
        times.append(time.perf_counter() - t0)
    return statistics.median(times[max(1, steps // 5):])


def cli_layouts(steps: int, B: int, T: int) -> list[tuple[str, float]]:
    """The baby shape through `minigpt pretrain` itself, the same 768-token steps laid out on
    the cores three ways: 1 process x 2 torch threads, 1 process x 1 thread, and 2 processes x
    1 thread (torchrun, gloo DDP, micro-batch B/2 each). Median tokens/s from metrics.jsonl."""
    text = SHARED / "nietzsche"
    if not text.is_dir():
        return []
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shards"
        subprocess.run([sys.executable, "-m", "minigpt_cli", "shard", "text", str(text),
                        "--no-stages", "--tokenizer", "char", "--shard-size", "1000000",
                        "--out", str(data)], check=True, capture_output=True)
        common = ["pretrain", "--data", str(data), "--model", "baby", "--seq-len", str(T),
                  "--tokens-per-step", str(B * T), "--max-steps", str(steps), "--eval-every",
                  "0", "--sample-every", "0", "--checkpoint-every", "0", "--peak-flops",
                  "1e12", "--dtype", "float32", "--device", "cpu", "--lr", "1e-3"]
        layouts = [("1 process x 2 threads", 1, 2), ("1 process x 1 thread", 1, 1),
                   ("2 processes x 1 thread (DDP)", 2, 1)]
        for name, procs, threads in layouts:
            run = Path(tmp) / f"run{procs}{threads}"
            head = [sys.executable, "-m", "minigpt_cli"] if procs == 1 else [
                sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", str(procs), "-m", "minigpt_cli"]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            subprocess.run([*head, *common, "--micro-batch", str(B // procs), "--out", str(run)],
                           check=True, capture_output=True, env=env)
            rates = [json.loads(line).get("tok_per_s") for line in
                     (run / "metrics.jsonl").read_text().splitlines()]
            rates = [r for r in rates if r]
            out.append((name, statistics.median(rates[len(rates) // 5:])))
    return out


def loader_rate(batch: int, seq: int, seconds: float = 3.0) -> float:
    """Batches/s of (batch, seq) windows from memory-mapped shards (writes temp shards)."""
    from minigpt_cli import shards
    from minigpt_cli.train.loader import WindowStream

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(4):
            p = Path(tmp) / shards.shard_name("train", i + 1)
            shards.write_shard(p, rng.integers(0, 50257, size=5_000_000, dtype=np.int64))
            paths.append(p)
        stream = WindowStream([shards.open_shard(p) for p in paths], None, seq, seed=0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            stream.gather(stream.take(batch))
            n += 1
        return n / (time.perf_counter() - t0)


_MEM_CHILD = """
import json, os, sys, threading, time, torch
from minigpt_cli.model import GPT, preset_config
preset, micro, seq, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ckpt = sys.argv[5] == "1"
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
torch.manual_seed(0)
model = GPT(preset_config(preset, vocab_size=vocab, pad_vocab_to=64 if vocab > 1024 else 1))
model.gradient_checkpointing = ckpt
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
x = torch.randint(0, vocab, (micro, seq + 1))
for _ in range(2):  # the second step has the optimizer state already: the steady state
    base, peak, done = rss(), [0], [False]
    def watch():
        while not done[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.0005)
    t = threading.Thread(target=watch)
    t.start()
    _, loss = model(x[:, :-1], x[:, 1:])
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    done[0] = True
    t.join()
print(json.dumps({"peak": peak[0], "before": base, "params": model.num_params()}))
"""


def peak_memory(preset, micro, seq, vocab, ckpt) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEM_CHILD, preset, str(micro), str(seq),
                          str(vocab), "1" if ckpt else "0"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def mfu(preset, vocab, seq, tok_s, peak):
    from minigpt_cli.model import preset_config
    from minigpt_cli.train.flops import flops_per_token

    cfg = preset_config(preset, vocab_size=vocab, pad_vocab_to=64 if vocab > 1024 else 1)
    return flops_per_token(cfg, seq) * tok_s / peak


def flops_step(preset, seq, tokens):
    from minigpt_cli.model import preset_config
    from minigpt_cli.train.flops import flops_per_token

    return flops_per_token(preset_config(preset, pad_vocab_to=64), seq) * tokens


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-gpt2", action="store_true", help="skip the gpt2 preset (minutes)")
    ap.add_argument("--gpt2-steps", type=int, default=3, help="timed gpt2 optimizer steps")
    ap.add_argument("--baby-steps", type=int, default=150)
    ap.add_argument("--max-step-minutes", type=float, default=15.0,
                    help="skip a gpt2 dtype whose step would take longer at its matmul peak")
    ap.add_argument("--compile", action="store_true", help="also time the baby shape compiled; "
                    "the device section: torch.compile both models")
    ap.add_argument("--no-layouts", dest="layouts", action="store_false",
                    help="skip the baby shape through the CLI on 1 or 2 processes")
    import train_device  # benchmarks/train_device.py: the GPU (or --gpt2-only) section

    train_device.add_arguments(ap)
    args = ap.parse_args()
    if args.device != "cpu" or args.gpt2_only:
        train_device.main(args)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average {_load()} (other work on "
          "the machine slows every figure; compare the ratios)")
    pk = peaks()
    print(f"\n1. matmul peak (median): fp32 {pk['float32'] / 1e9:.1f} GFLOP/s (2048^3), "
          f"bf16 {pk['bfloat16'] / 1e9:.2f} GFLOP/s (1024^3); bf16 / fp32 = "
          f"{pk['bfloat16'] / pk['float32']:.3f}")

    ids, vocab = _corpus_ids()
    B, T = 12, 64
    print(f"\n2. baby shape: 4 layers x 4 heads x 128, context {T}, batch {B}, vocab {vocab}")
    rows = []
    # alternate the two, so a change in the machine's load hits both alike
    bares, trns = [], []
    for _ in range(3):
        bares.append(bare_loop("baby", ids, vocab, B, T, args.baby_steps // 3))
        trns.append(trainer_run("baby", ids, vocab, B, T, 1, args.baby_steps // 3,
                                torch.float32))
    bare, trn = statistics.median(bares), statistics.median(trns)
    rows.append(("bare loop (baseline)", bare))
    rows.append(("minigpt trainer", trn))
    if args.compile:
        rows.append(("minigpt trainer, compiled",
                     trainer_run("baby", ids, vocab, B, T, 1, args.baby_steps, torch.float32,
                                 compile=True)))
    for name, sec in rows:
        tok_s = B * T / sec
        print(f"   {name:28s} {sec * 1000:7.1f} ms/step  {tok_s:9,.0f} tok/s  "
              f"MFU {100 * mfu('baby', vocab, T, tok_s, pk['float32']):5.1f}% (fp32 peak)  "
              f"{tok_s / NANOGPT_BABY:4.2f}x nanoGPT's 16.1k  target 25k: "
              f"{'met' if tok_s >= 25_000 else 'NOT met'}")
    print(f"   trainer / bare loop time: {trn / bare:.3f}")
    if args.layouts:
        print(f"   through `minigpt pretrain`, {args.baby_steps} steps of {B * T} tokens:")
        for name, tok_s in cli_layouts(args.baby_steps, B, T):
            print(f"   {name:32s} {tok_s:9,.0f} tok/s  MFU "
                  f"{100 * mfu('baby', vocab, T, tok_s, pk['float32']):5.1f}%  "
                  f"{tok_s / NANOGPT_BABY:4.2f}x nanoGPT's 16.1k  target 25k: "
                  f"{'met' if tok_s >= 25_000 else 'NOT met'}")
    consumed = {(B, T): 1 / trn}  # micro-batches/s the trainer takes, by shape

    if not args.skip_gpt2:
        micro, seq, accum = 2, 1024, 8
        print(f"\n3. gpt2 preset, seq {seq}: steps of {micro * seq * accum:,} tokens "
              f"(micro-batch {micro} x {seq} x {accum} accumulation)")
        gpt2_ids = np.random.default_rng(0).integers(0, 50257, size=3_000_000).astype(np.uint16)
        for dtype, name in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
            est = flops_step("gpt2", seq, micro * seq * accum) / pk[name]
            if est > args.max_step_minutes * 60:
                print(f"   {name:9s} skipped: at this CPU's measured {name} matmul peak of "
                      f"{pk[name] / 1e9:.2f} GFLOP/s one step needs at least {est / 3600:.1f} h "
                      f"(> --max-step-minutes {args.max_step_minutes})")
                continue
            sec = trainer_run("gpt2", gpt2_ids, 50257, micro, seq, accum, args.gpt2_steps + 1,
                              dtype)
            tok_s = micro * seq * accum / sec
            print(f"   {name:9s} {sec:7.1f} s/step  {tok_s:7.1f} tok/s  MFU "
                  f"{100 * mfu('gpt2', 50257, seq, tok_s, pk[name]):5.1f}% of its own peak, "
                  f"{100 * mfu('gpt2', 50257, seq, tok_s, max(pk.values())):5.1f}% of the best")
            if dtype == torch.float32:
                consumed[(micro, seq)] = accum / sec

    print("\n4. loader (memory-mapped shards) vs the trainer's consumption, same batch shape")
    for (b, t), used in consumed.items():
        rate = loader_rate(b, t)
        print(f"   ({b}, {t}): loader {rate:,.0f} batches/s, trainer {used:.3g} batches/s -> "
              f"{rate / used:,.0f}x headroom (target >= 100x)")

    print("\n5. peak memory of one training step (fresh process RSS)")
    from minigpt_cli.model import preset_config
    from minigpt_cli.train.dry_run import estimate_memory

    configs = [("baby", 12, 64, vocab)]
    if not args.skip_gpt2:
        configs.append(("gpt2", 4, 1024, 50257))
    for preset, micro, seq, v in configs:
        cfg = preset_config(preset, vocab_size=v, pad_vocab_to=64 if v > 1024 else 1)
        for ckpt in (False, True):
            m = peak_memory(preset, micro, seq, v, ckpt)
            est = estimate_memory(cfg, m["params"], micro, seq, torch.float32, ckpt)
            step = m["peak"] - m["before"]
            # the step allocates activations and gradients on top of weights + AdamW state
            est_step = est - 12 * m["params"]
            print(f"   {preset} B={micro} T={seq} checkpointing={'on ' if ckpt else 'off'}: "
                  f"RSS peak {m['peak'] / 2**20:7.0f} MiB; the step adds {step / 2**20:6.0f} MiB "
                  f"(planner: {est_step / 2**20:6.0f} MiB of activations + gradients; "
                  f"{est / 2**20:6.0f} MiB in all)")


    print(f"\nload average at the end: {_load()}")


if __name__ == "__main__":
    main()
