"""`minigpt sample`'s generation speed on one device (a GPU, or the CPU): batch 1, greedy, with
the KV cache, beside the same model recomputing the whole context for every token (nanoGPT's
``generate`` loop) in the same run.

The model is a checkpoint (``--checkpoint``, e.g. the run gpu_check.sh trained for a few steps)
or, without one, the ``--preset``'s random weights (seeded); either is loaded the way `minigpt
sample` loads it (``loading.load_model``) and run through the function it streams from
(``sampling.generate``), with no end-of-text stop so every run makes exactly ``--new-tokens``
tokens. Each variant is warmed up, then the variants take turns for ``--repeats`` rounds; CUDA is
synchronised before each clock read; medians are reported. Tokens/s counts the whole call, the
prompt's prefill included.

Batch-1 decoding reads every weight once per token, so its bound is the copy bandwidth (a
large device-to-device copy measured here, bytes read + written) over the bytes read per token
(the blocks, the final LayerNorm, the whole tied LM head, two embedding rows, the cached keys
and values). ``--cli`` also times one `minigpt sample` process end to end (start, imports,
load, generation).

    python benchmarks/bench_sample.py --device cuda --checkpoint runs/x --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device, mib: int) -> float:
    n = mib * 2**20 // 4
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(10):
        sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n * 4 / statistics.median(times)


def bytes_per_token(model, prompt_len: int, new: int, elem: int) -> float:
    cfg = model.config
    C = cfg.n_embd
    blocks = sum(p.numel() for p in model.transformer.h.parameters())
    ln_f = sum(p.numel() for p in model.transformer.ln_f.parameters())
    weights = blocks + ln_f + model.lm_head.weight.numel() + 2 * C
    kv = sum(2 * cfg.n_layer * (prompt_len + j) * C for j in range(new)) / new
    return elem * (weights + kv)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="a minigpt checkpoint (file or run folder)")
    ap.add_argument("--preset", default="gpt2", help="without --checkpoint: random weights")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bw-mib", type=int, default=0, help="copied buffer (0: 1024 on CUDA, 64)")
    ap.add_argument("--cli", action="store_true", help="also time one `minigpt sample` process")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from minigpt_cli.generation import SamplingParams, generate
    from minigpt_cli.loading import load_model
    from minigpt_cli.model import GPT, preset_config
    from minigpt_cli.model_file import save_checkpoint
    from minigpt_cli.tokenizer import GPT2Tokenizer

    device = torch.device(args.device)
    tmp = tempfile.TemporaryDirectory()
    ckpt, weights = args.checkpoint, "checkpoint"
    if ckpt is None:
        torch.manual_seed(1337)
        ckpt = Path(tmp.name) / "random.safetensors"
        save_checkpoint(ckpt, GPT(preset_config(args.preset)), GPT2Tokenizer(), step=0)
        weights = f"random {args.preset} weights (seed 1337)"
    g = torch.Generator().manual_seed(0)
    variants = {"kv cache, fp32": (torch.float32, True), "kv cache, bf16": (torch.bfloat16, True),
                "recompute, fp32 (nanoGPT loop)": (torch.float32, False)}
    models, runs, tokens = {}, {k: [] for k in variants}, {}
    for name, (dtype, _) in variants.items():
        models[name] = load_model(ckpt, None, device, dtype)[0]
    model0 = next(iter(models.values()))
    prompt = torch.randint(0, model0.config.vocab_size, (args.prompt_len,), generator=g).tolist()

    def once(name: str, n: int) -> float:
        dtype, cache = variants[name]
        params = SamplingParams(max_new_tokens=n, temperature=0.0)
        sync(device)
        t0 = time.perf_counter()
        out = [int(t[0]) for t in generate(models[name], prompt, params, use_cache=cache)]
        sync(device)
        tokens[name] = out
        return time.perf_counter() - t0

    for name in variants:
        once(name, 8)  # warm-up: kernels, allocator, cuBLAS handles
    names = list(variants)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            runs[name].append(once(name, args.new_tokens))
    bw = copy_bandwidth(device, args.bw_mib or (1024 if device.type == "cuda" else 64))
    res: dict = {"device": str(device), "weights": weights, "checkpoint": str(args.checkpoint),
                 "params": model0.num_params(), "prompt_len": args.prompt_len,
                 "new_tokens": args.new_tokens, "repeats": args.repeats, "batch": 1,
                 "copy_bandwidth_bytes_per_s": bw, "variants": {}}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
    ref = tokens["recompute, fp32 (nanoGPT loop)"]
    for name, (dtype, cache) in variants.items():
        tok_s = args.new_tokens / statistics.median(runs[name])
        need = bytes_per_token(model0, args.prompt_len, args.new_tokens,
                               torch.finfo(dtype).bits // 8)
        res["variants"][name] = {
            "tok_per_s": tok_s, "runs_seconds": runs[name], "ms_per_token": 1e3 / tok_s,
            "bandwidth_bound_tok_per_s": bw / need, "of_bound": tok_s / (bw / need),
            "tokens_same_as_recompute": tokens[name] == ref}
    v = res["variants"]
    res["cache_over_recompute"] = v["kv cache, fp32"]["tok_per_s"] / \
        v["recompute, fp32 (nanoGPT loop)"]["tok_per_s"]
    if args.cli:
        cmd = [sys.executable, "-m", "minigpt_cli", "sample", "--checkpoint", str(ckpt), "-n",
               str(args.new_tokens), "-t", "0", "--device", args.device, "--prompt", "import "]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        res["cli"] = {"command": " ".join(cmd[1:]), "seconds": time.perf_counter() - t0,
                      "returncode": done.returncode, "stdout_chars": len(done.stdout),
                      "stderr_tail": done.stderr[-500:]}
    print(f"{res.get('gpu', res['device'])}: {weights}, {res['params'] / 1e6:.1f}M params, "
          f"prompt {args.prompt_len}, {args.new_tokens} new tokens, batch 1, greedy; copy "
          f"bandwidth {bw / 1e9:,.0f} GB/s")
    for name, f in v.items():
        print(f"  {name:32s} {f['tok_per_s']:9.1f} tok/s  {f['ms_per_token']:7.2f} ms/token  "
              f"{100 * f['of_bound']:5.1f}% of the bandwidth bound  tokens "
              f"{'same as recompute' if f['tokens_same_as_recompute'] else 'differ'}")
    print(f"  kv cache / recompute: {res['cache_over_recompute']:.2f}x")
    if "cli" in res:
        c = res["cli"]
        print(f"  `minigpt sample -n {args.new_tokens}` process: {c['seconds']:.1f} s end to end, "
              f"exit {c['returncode']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    tmp.cleanup()
    return res


if __name__ == "__main__":
    main()
