"""Generation speed on CPU: minigpt's KV cache, next to recomputing and to transformers.

One run times, in turns, greedy generation of ``--new-tokens`` tokens after a ``--prompt-len``
token prompt, batch 1, with the ``gpt2`` preset's random weights (seeded; the same weights
everywhere):

- minigpt, KV cache: ``minigpt_cli.generation.generate`` (what ``minigpt sample`` runs), fp32;
- minigpt, KV cache with bf16 weights: where ``--dtype auto`` (the default, as `minigpt
  sample`'s) chooses bf16 on this machine (``precision.choose_dtype``: bf16 matrix products
  measured >= 1.5x fp32's), or always with ``--dtype bfloat16``;
- transformers: ``GPT2LMHeadModel.generate(use_cache=True, do_sample=False)`` on the same
  weights (our checkpoint written as a Hugging Face folder: the four Conv1D matrices
  transposed), fp32;
- with ``--recompute`` (and ``--quick``): ``generate(..., use_cache=False)``, the whole sequence
  again every step, nanoGPT's ``generate`` loop (minutes per run at 256 tokens on a CPU).

Each variant lives in its own worker process (so each gets its own peak RSS, read with
``resource.getrusage``), loads its model the way a user would, warms up, and then the variants
take turns for ``--repeats`` rounds, so load from other processes hits them all alike; medians
and ratios are reported. Tokens/s counts the whole call (prompt prefill included).

Batch-1 decoding is memory-bandwidth bound: every generated token reads every weight once. A
bandwidth worker measures the machine's copy bandwidth in the same rounds (a torch copy of a
buffer 8x the L3 cache, bytes read + written counted, as STREAM does), and the table gives
each cached variant's tokens/s as a fraction of ``bandwidth / bytes read per token``. Counted
per token: every parameter of the 12 blocks (weights, biases, LayerNorms), the final
LayerNorm, the whole tied LM head (= the token-embedding table), one token-embedding row and one
position-embedding row, plus the keys and values the attention reads (averaged over the run).
Not counted: activations (kilobytes), the logits written, cache writes.

Usage: python benchmarks/bench_generate.py [--threads N] [--repeats 3] [--dtype auto]
       python benchmarks/bench_generate.py --quick     # seconds: nano preset, a smoke run
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

CACHE, RECOMPUTE, HF, BF16, BANDWIDTH = "cache", "recompute", "transformers", "cache-bf16", "bw"
LABELS = {
    CACHE: "minigpt KV cache",
    RECOMPUTE: "minigpt recompute (nanoGPT loop)",
    HF: "transformers generate(use_cache)",
    BF16: "minigpt KV cache, bf16 weights",
}
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


# ----------------------------------------------------------------------------- workers


def _prepare(args, out) -> None:
    """Build the seeded model, write it as our checkpoint and as a Hugging Face folder; reply
    with the prompt and the bytes a decode step reads."""
    import torch
    from safetensors.torch import save_file

    from minigpt_cli.model import GPT, preset_config
    from minigpt_cli.model_file import save_checkpoint
    from minigpt_cli.tokenizer import GPT2Tokenizer

    torch.manual_seed(args.seed)
    config = preset_config(args.preset)
    model = GPT(config).eval()
    work = Path(args.work)
    save_checkpoint(work / "minigpt.safetensors", model, GPT2Tokenizer(), step=0)
    if args.with_hf:
        hf = work / "hf"
        hf.mkdir()
        state = {
            k: (v.t() if k.endswith(CONV1D) else v).contiguous()
            for k, v in model.state_dict().items()
            if k != "lm_head.weight"  # tied: transformers ties it back to wte
        }
        save_file(state, str(hf / "model.safetensors"), metadata={"format": "pt"})
        (hf / "config.json").write_text(json.dumps({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": config.vocab_size, "n_positions": config.block_size,
            "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head,
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "tie_word_embeddings": True, "dtype": "float32", "torch_dtype": "float32",
        }))
    g = torch.Generator().manual_seed(args.seed)
    prompt = torch.randint(0, config.vocab_size, (args.prompt_len,), generator=g).tolist()
    # bytes one decode step reads (fp32): the blocks, ln_f, the whole tied LM head, two rows
    C = config.n_embd
    blocks = sum(p.numel() for p in model.transformer.h.parameters())
    ln_f = sum(p.numel() for p in model.transformer.ln_f.parameters())
    weights = blocks + ln_f + model.lm_head.weight.numel() + 2 * C
    # keys + values read by the attention: forward j (0 = prefill) covers P + j positions
    P, N = args.prompt_len, args.new_tokens
    kv = sum(2 * config.n_layer * (P + j) * C for j in range(N)) / N
    _send(out, {"prompt": prompt, "params": model.num_params(), "weight_elems": weights,
                "kv_elems": kv})


def _load(kind: str, args):
    """-> run(): one timed greedy generation, returning the new token ids."""
    import torch

    if kind == BANDWIDTH:
        n = args.bw_mib * 2**20 // 4  # fp32 elements: 8x the 32 MiB L3 by default
        src, dst = torch.ones(n), torch.zeros(n)

        def copy_bandwidth() -> list[list[float]]:
            times = []  # (wall, process CPU) seconds per copy
            for _ in range(5):
                cpu0, t0 = time.process_time(), time.perf_counter()
                dst.copy_(src)
                times.append([time.perf_counter() - t0, time.process_time() - cpu0])
            return [[2 * n * 4 / wall, 2 * n * 4 / cpu] for wall, cpu in times]  # read + write

        copy_bandwidth()
        return copy_bandwidth

    prompt = args.prompt_ids
    N = args.new_tokens
    if kind == HF:
        from transformers import GPT2LMHeadModel

        model = GPT2LMHeadModel.from_pretrained(Path(args.work) / "hf").eval()
        assert model.dtype == torch.float32
        model.generation_config.eos_token_id = None  # run all N steps, as the others do
        model.generation_config.pad_token_id = 0
        ids = torch.tensor([prompt])
        mask = torch.ones_like(ids)

        @torch.inference_mode()
        def run(n: int = N) -> list[int]:
            out = model.generate(ids, attention_mask=mask, max_new_tokens=n, do_sample=False,
                                 use_cache=True)
            return out[0, len(prompt):].tolist()

    else:
        from minigpt_cli.generation import SamplingParams, generate
        from minigpt_cli.loading import load_model

        dtype = torch.bfloat16 if kind == BF16 else torch.float32
        model, _, _ = load_model(Path(args.work) / "minigpt.safetensors", None, "cpu", dtype)
        use_cache = kind != RECOMPUTE

        def run(n: int = N) -> list[int]:
            params = SamplingParams(max_new_tokens=n, temperature=0.0)
            return [int(t[0]) for t in generate(model, prompt, params, use_cache=use_cache)]

    run(4)  # warm-up: first-call allocations, lazy initialisation
    return run


def _worker(args) -> None:
    out = os.fdopen(os.dup(1), "w")  # replies go here; stray prints (C level too) to stderr
    os.dup2(2, 1)
    import resource

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker == BANDWIDTH:  # the first worker also writes the weights the others load
        _prepare(args, out)
    else:  # import while the weights are being written, then wait for them and the prompt
        if args.worker == HF:
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import transformers  # noqa: F401
        else:
            import minigpt_cli.loading  # noqa: F401
        args.prompt_ids = json.loads(sys.stdin.readline())["prompt"]
    run = _load(args.worker, args)
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    try:  # Linux: restart the high-water mark so the peak below is the generation's alone
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    _send(out, {"ready": True, "threads": torch.get_num_threads()})
    for line in sys.stdin:
        if line.strip() != "run":
            break
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        _send(out, {"result": result, "seconds": wall, "cpu": cpu})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _send(out, {"load_peak_kib": load_peak, "peak_kib": peak, "reset": reset})


def _send(out, obj) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


# ----------------------------------------------------------------------------- orchestration


class Worker:
    def __init__(self, kind: str, extra: list[str]) -> None:
        self.kind = kind
        cmd = [sys.executable, __file__, "--worker", kind, *extra]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.kind!r} died (exit {self.proc.wait()}); "
                               "see its messages above")
        return json.loads(line)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str) -> dict:
        self.send(command)
        return self.receive()

    def close(self) -> dict:
        reply = self.ask("quit")
        self.proc.wait()
        return reply


def _common_flags(args, work: str) -> list[str]:
    flags = ["--work", work, "--preset", args.preset, "--prompt-len", str(args.prompt_len),
             "--new-tokens", str(args.new_tokens), "--seed", str(args.seed),
             "--threads", str(args.threads), "--bw-mib", str(args.bw_mib)]
    return flags + ([] if args.with_hf else ["--no-transformers"])


def measure(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_generate_") as work:
        flags = _common_flags(args, work)
        kinds = [CACHE] + ([BF16] if args.bf16 else []) + ([HF] if args.with_hf else []) + (
            [RECOMPUTE] if args.recompute else [])
        workers = [Worker(k, flags) for k in [BANDWIDTH, *kinds]]  # all start importing
        try:
            info = workers[0].receive()  # weights written, prompt drawn, bytes counted
            for w in workers[1:]:
                w.send(json.dumps({"prompt": info["prompt"]}))
            threads = {w.kind: w.receive()["threads"] for w in workers}
            runs: dict[str, list[dict]] = {w.kind: [] for w in workers}
            for r in range(args.repeats):
                for w in workers[r % len(workers):] + workers[: r % len(workers)]:  # rotate
                    runs[w.kind].append(w.ask("run"))
            peaks = {w.kind: w.close() for w in workers}
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.proc.kill()
    return dict(info=info, kinds=kinds, runs=runs, peaks=peaks, threads=threads)


def report(args, m: dict) -> str:
    info, runs, peaks, kinds = m["info"], m["runs"], m["peaks"], m["kinds"]
    N, threads = args.new_tokens, m["threads"]
    copies = [c for run in runs[BANDWIDTH] for c in run["result"]]  # [wall, CPU] bytes/s
    bw_wall = statistics.median(c[0] for c in copies)
    bw_cpu = statistics.median(c[1] * threads[BANDWIDTH] for c in copies)
    # tokens/s by the clock, and per second the process actually ran (CPU time / threads)
    wall = {k: statistics.median(N / r["seconds"] for r in runs[k]) for k in kinds}
    cpu = {k: statistics.median(N * threads[k] / r["cpu"] for r in runs[k]) for k in kinds}
    fp32_bytes = 4 * (info["weight_elems"] + info["kv_elems"])
    lines = [
        f"minigpt generation benchmark: preset {args.preset} ({info['params'] / 1e6:.1f}M "
        f"params, random weights), prompt {args.prompt_len} tokens, {N} new tokens, batch 1, "
        f"greedy, torch threads {'/'.join(map(str, sorted(set(threads.values()))))}, "
        f"{args.repeats} interleaved runs",
        f"machine: {m['cpu']}, {os.cpu_count()} CPUs, torch {m['torch']}, "
        f"{time.strftime('%Y-%m-%d')}; load average {m['load'][0]:.2f} at start, "
        f"{m['load'][1]:.2f} at end",
        f"dtype {args.dtype}: {m['why']}",
        f"copy bandwidth: {bw_wall / 1e9:.1f} GB/s wall, {bw_cpu / 1e9:.1f} GB/s on CPU (median "
        f"of {len(copies)} torch copies of {args.bw_mib} MiB, bytes read + written)",
        f"read per token (fp32): {4 * info['weight_elems'] / 1e6:.1f} MB weights + "
        f"{4 * info['kv_elems'] / 1e6:.1f} MB keys/values (run average) = "
        f"{fp32_bytes / 1e6:.1f} MB -> bandwidth bound {bw_wall / fp32_bytes:.1f} tokens/s "
        f"wall, {bw_cpu / fp32_bytes:.1f} on CPU (bf16: half the bytes, twice the bound)",
        "",
    ]
    ref = RECOMPUTE if RECOMPUTE in kinds else CACHE
    head = (f"{'variant':34s} {'tok/s':>6s} {'on CPU':>7s} {'runs (wall)':>17s} "
            f"{'vs fp32':>10s} {'vs transformers':>16s} {'of bound':>9s} "
            f"{'CPU share':>9s} {'peak RSS':>9s} {'tokens':>13s}")
    lines += [head, "-" * len(head)]
    reference = runs[ref][0]["result"]
    for k in kinds:
        half = 2 if k == BF16 else 1
        of_bound = "-" if k == RECOMPUTE else (
            f"{wall[k] / (bw_wall * half / fp32_bytes):.0%}/"
            f"{cpu[k] / (bw_cpu * half / fp32_bytes):.0%}")
        vs_hf = f"{wall[k] / wall[HF]:.2f}/{cpu[k] / cpu[HF]:.2f}x" if HF in kinds else "-"
        vs_32 = f"{wall[k] / wall[CACHE]:.2f}/{cpu[k] / cpu[CACHE]:.2f}x"
        share = statistics.median(r["cpu"] / (r["seconds"] * threads[k]) for r in runs[k])
        same = all(r["result"] == reference for r in runs[k])
        if k == ref:
            tokens = "reference"
        elif same:
            tokens = "same"
        else:
            first = next(i for i, (a, b) in enumerate(zip(runs[k][0]["result"], reference))
                         if a != b)
            tokens = f"differ at {first}" if k == BF16 else "DIFFER"
        each = " ".join(f"{N / r['seconds']:.1f}" for r in runs[k])
        lines.append(
            f"{LABELS[k]:34s} {wall[k]:6.1f} {cpu[k]:7.1f} {each:>17s} {vs_32:>10s} "
            f"{vs_hf:>16s} {of_bound:>9s} {share:9.0%} "
            f"{peaks[k]['peak_kib'] / 1024:5.0f} MiB {tokens:>13s}")
    reset = all(p.get("reset") for p in peaks.values())
    lines += [
        "",
        "tok/s: new tokens / wall seconds of the whole call (prefill included), median; "
        "on CPU: per second of process CPU time / threads (what the run got of the cores).",
        "ratios and of bound: wall / on CPU. of bound: tokens/s / (copy bandwidth / bytes read "
        "per token), bf16 rows against half the bytes. CPU share: CPU time / (wall x threads);",
        "below 100% other processes held the cores for part of the run. peak RSS: " + (
            "while generating (high-water mark reset after loading)" if reset else
            "whole worker process") + "; with loading: " + ", ".join(
            f"{k} {peaks[k]['load_peak_kib'] / 1024:.0f} MiB" for k in kinds) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads in every worker (0: torch's default) [default: 1]")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="a bf16-weights row is added where this chooses bfloat16 (auto: where "
                   "bf16 matrix products measure >= 1.5x fp32's, as `minigpt sample` decides)")
    p.add_argument("--recompute", action="store_true",
                   help="add nanoGPT's loop (the whole sequence every step; minutes per run)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--bw-mib", type=int, default=256, help="size of the copied buffer (MiB)")
    p.add_argument("--no-transformers", dest="with_hf", action="store_false",
                   help="leave out the transformers row")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: nano preset, 24 new tokens, 3 rounds")
    # internal: worker processes
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    if args.quick:
        args.preset, args.new_tokens, args.bw_mib, args.recompute = "nano", 24, 64, True
    import torch

    from minigpt_cli.precision import choose_dtype
    from minigpt_cli.train.machine import cpu_model

    if args.threads:
        torch.set_num_threads(args.threads)  # the probe runs on one thread either way
    dtype, why = choose_dtype(args.dtype, "cpu")
    args.bf16 = dtype == torch.bfloat16
    if args.with_hf:
        import importlib.util

        if importlib.util.find_spec("transformers") is None:
            print("transformers is not installed: leaving out its row", file=sys.stderr)
            args.with_hf = False
    load0 = os.getloadavg()[0]
    m = measure(args)
    m.update(cpu=cpu_model(), torch=torch.__version__, why=why, load=(load0, os.getloadavg()[0]))
    print(report(args, m))


if __name__ == "__main__":
    main()
