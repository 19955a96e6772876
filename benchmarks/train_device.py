"""``bench_train.py --device cuda`` (or ``--gpt2-only`` on any device): the GPT-2 recipe's
training speed on one device, beside nanoGPT's model in the same run.

Figures, all in one process on one device:
1. the matmul peaks measured here (bf16 and fp32 with tf32, 8192^3 on CUDA, random data), and
   the MFU denominator by the project's count (``train.flops.device_peak``, what `minigpt
   pretrain` divides by);
2. minigpt's training loop (``Trainer.run``: loader, accumulation, clipping, guard, metrics,
   the final checkpoint) on the preset at ``--seq-len``, ``--micro-batch`` x accumulation to
   ``--tokens-per-step``, autocast ``--dtype``, ``torch.compile`` with ``--compile``;
   attention is ``F.scaled_dot_product_attention(is_causal=True)``, flash on CUDA in bf16;
3. the baseline: nanoGPT's ``model.py`` (unmodified, copied to a temporary folder) in
   nanoGPT's own train.py step (pinned random windows, loss / accumulation, clip, fused AdamW
   on CUDA), same shape, dtype and compile setting;
4. the loader's batches/s against what the loop consumes;
5. peak device memory against the planner's estimate; a torch.profiler table of the top
   kernels of one extra step (not timed), with the share of matmul, attention, Triton.

Tokens/s and MFU use the median step after the first (which compiles). MFU = FLOPs per token
(``train.flops.flops_per_token``, the same count for both models) x tokens/s / peak.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
BASELINE_DIRS = [ROOT / ".baselines" / "nanoGPT", ROOT.parent / "shared" / "baselines" / "nanoGPT"]
DATASHEET_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}  # dense, SXM datasheets
TARGET_MFU = 0.5  # issue 21


def add_arguments(ap) -> None:
    ap.add_argument("--device", default="cpu", help="cpu (the sections above) or cuda")
    ap.add_argument("--gpt2-only", action="store_true",
                    help="only this device section (implied by --device cuda)")
    ap.add_argument("--preset", default="gpt2", help="device section: model preset")
    ap.add_argument("--seq-len", type=int, default=1024, help="device section: context")
    ap.add_argument("--micro-batch", type=int, default=32, help="device section: sequences per "
                    "forward pass")
    ap.add_argument("--tokens-per-step", type=int, default=524288, help="device section: "
                    "tokens per optimizer step (accumulation makes up the rest)")
    ap.add_argument("--steps", type=int, default=5, help="device section: timed steps (one "
                    "more compiles / warms up first)")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="device section: skip nanoGPT's model")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="device section: skip the profiled extra step")
    ap.add_argument("--peak-size", type=int, default=0, help="matmul size of the peak "
                    "measurement (0: 8192 on CUDA, 1024 on a CPU)")
    ap.add_argument("--json", type=Path, help="also write the figures here as JSON")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def nanogpt_run(args, device, dtype, ids, accum) -> dict:
    """nanoGPT's model in nanoGPT's training step; median seconds per optimizer step."""
    src = next((d for d in BASELINE_DIRS if (d / "model.py").is_file()), None)
    if src is None:
        return {"skipped": "nanoGPT's model.py not found (bash benchmarks/gpu_wheels.sh copies "
                "it into .baselines/)"}
    from minigpt_cli.model import preset_config

    cfg = preset_config(args.preset, pad_vocab_to=64)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(src / "model.py", Path(tmp) / "model.py")
        spec = importlib.util.spec_from_file_location("nanogpt_model", Path(tmp) / "model.py")
        nano = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(nano)
    torch.manual_seed(0)
    model = nano.GPT(nano.GPTConfig(block_size=args.seq_len, vocab_size=cfg.padded_vocab_size,
                                    n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                    dropout=0.0, bias=True)).to(device)
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device.type)
    step_model = torch.compile(model) if args.compile else model
    rng = np.random.default_rng(0)
    B, T = args.micro_batch, args.seq_len

    def batch():  # nanoGPT train.py's get_batch
        ix = rng.integers(0, len(ids) - T - 1, size=B)
        x = torch.stack([torch.from_numpy(ids[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(ids[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), \
                y.pin_memory().to(device, non_blocking=True)
        return x, y

    times = []
    for _ in range(args.steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(accum):
            x, y = batch()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                _, loss = step_model(x, y)
            (loss / accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {"source": str(src), "step_seconds": times,
            "step_seconds_median": statistics.median(times[1:]), "first_step_seconds": times[0]}


def main(args) -> dict:
    from bench_train import loader_rate, trainer_run
    from profile_step import profiled

    from minigpt_cli.model import GPT, preset_config
    from minigpt_cli.train.dry_run import estimate_memory, state_bytes
    from minigpt_cli.train.flops import device_peak, flops_per_token, measure_peak
    from minigpt_cli.train.setup import enable_tf32

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    enable_tf32(device)  # as `minigpt pretrain` does
    B, T = args.micro_batch, args.seq_len
    accum = args.tokens_per_step // (B * T)
    if accum * B * T != args.tokens_per_step:
        sys.exit(f"--tokens-per-step {args.tokens_per_step} is not a multiple of {B} x {T}")
    cfg = preset_config(args.preset, vocab_size=50257, pad_vocab_to=64)
    fpt = flops_per_token(cfg, T)
    size = args.peak_size or (8192 if device.type == "cuda" else 1024)
    peaks = {n: measure_peak(device.type, n, size=size, seconds=2.0)
             for n in ("bfloat16", "float32")}
    peak = device_peak(device, dtype)
    r: dict = {"device": str(device), "torch": torch.__version__, "preset": args.preset,
               "seq_len": T, "micro_batch": B, "accum": accum,
               "tokens_per_step": args.tokens_per_step, "dtype": args.dtype,
               "compile": bool(args.compile), "flops_per_token": fpt,
               "peaks_measured": peaks, "peak_size": size, "mfu_peak": peak}
    datasheet = None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        r["gpu"] = name
        datasheet = next((v for k, v in DATASHEET_BF16.items() if k in name), None)
        r["attention"] = {"flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled()}
    r["datasheet_peak"] = datasheet

    def figures(sec: float) -> dict:
        tok_s = args.tokens_per_step / sec
        out = {"tok_per_s": tok_s, "mfu": fpt * tok_s / peak}
        if datasheet:
            out["mfu_vs_datasheet"] = fpt * tok_s / datasheet
        return out

    ids = np.random.default_rng(0).integers(0, 50257, size=max(8_000_000, 4 * args.tokens_per_step)
                                            ).astype(np.uint16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: list[float] = []
    prof: dict = {}

    def run_trainer(compiled: bool) -> None:
        times.clear()
        prof.clear()
        trainer_run(args.preset, ids, 50257, B, T, accum, args.steps + 1 + int(args.profile),
                    dtype, compile=compiled, device=str(device), times=times,
                    wrap_step=(lambda tr: profiled(tr, device, prof)) if args.profile else None)

    try:
        run_trainer(args.compile)
    except Exception as e:  # noqa: BLE001 - a failed compile still leaves the eager figure
        if not args.compile:
            raise
        r["compile_error"] = f"{type(e).__name__}: {str(e)[:2000]}"
        print(f"torch.compile failed ({r['compile_error'][:300]}); timing eager instead")
        r["compile"] = args.compile = False
        if device.type == "cuda":
            torch.cuda.empty_cache()
        run_trainer(False)
    timed = times[1:args.steps + 1]
    sec = statistics.median(timed)
    mine = {"step_seconds": times, "first_step_seconds": times[0], "step_seconds_median": sec,
            **figures(sec)}
    if device.type == "cuda":
        mine["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        model = GPT(cfg)
        mine["planner_memory_gib"] = estimate_memory(cfg, state_bytes(model, "adamw"), B, T,
                                                     dtype, False, device.type) / 2**30
        del model
    r["minigpt"] = mine
    r["target"] = {"mfu": TARGET_MFU, "met": mine["mfu"] >= TARGET_MFU}
    if prof:
        r["profile"] = prof
        if device.type == "cuda":
            r["attention"]["flash_kernels_seen"] = prof["flash_attention_seen"]
    save(r, args.json)  # the main figure is kept whatever happens next
    if args.baseline:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            base = nanogpt_run(args, device, dtype, ids, accum)
        except Exception as e:  # noqa: BLE001 - the baseline's failure is a finding, not ours
            base = {"error": f"{type(e).__name__}: {str(e)[:2000]}"}
        if "step_seconds_median" in base:
            base.update(figures(base["step_seconds_median"]))
            r["minigpt_over_nanogpt"] = mine["tok_per_s"] / base["tok_per_s"]
        r["nanogpt"] = base
        save(r, args.json)
    rate = loader_rate(B, T)
    r["loader"] = {"batches_per_s": rate, "consumed_per_s": accum / sec,
                   "headroom": rate / (accum / sec)}
    save(r, args.json)
    report(r)
    return r


def save(r: dict, path: Path | None) -> None:
    if path is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(r, indent=1))
        tmp.replace(path)


def report(r: dict) -> None:
    m = r["minigpt"]
    pk = r["peaks_measured"]
    print(f"{r.get('gpu', r['device'])}, torch {r['torch']}: matmul peak (median, "
          f"{r['peak_size']}^3) bf16 {pk['bfloat16'] / 1e12:.1f} TFLOP/s, fp32/tf32 "
          f"{pk['float32'] / 1e12:.1f}; MFU denominator {r['mfu_peak'] / 1e12:.1f}")
    print(f"{r['preset']}, seq {r['seq_len']}, steps of {r['tokens_per_step']:,} tokens "
          f"({r['micro_batch']} x {r['seq_len']} x {r['accum']} accumulation), {r['dtype']}, "
          f"compile {'on' if r['compile'] else 'off'}; "
          f"{r['flops_per_token'] / 1e6:.0f} MFLOP/token")
    rows = [("minigpt trainer", m)]
    if "tok_per_s" in r.get("nanogpt", {}):
        rows.append(("nanoGPT model.py (baseline)", r["nanogpt"]))
    for name, f in rows:
        extra = f", vs datasheet {100 * f['mfu_vs_datasheet']:.1f}%" if "mfu_vs_datasheet" in f \
            else ""
        print(f"  {name:28s} {f['step_seconds_median']:8.3f} s/step  {f['tok_per_s']:12,.0f} tok/s"
              f"  MFU {100 * f['mfu']:5.1f}%{extra}  (first step {f['first_step_seconds']:.1f} s)")
    for why in ("skipped", "error"):
        if why in r.get("nanogpt", {}):
            print(f"  nanoGPT baseline {why}: {r['nanogpt'][why][:300]}")
    if "minigpt_over_nanogpt" in r:
        print(f"  minigpt / nanoGPT tokens/s: {r['minigpt_over_nanogpt']:.3f}")
    if "peak_memory_gib" in m:
        print(f"  peak memory {m['peak_memory_gib']:.1f} GiB (planner: "
              f"{m['planner_memory_gib']:.1f} GiB)")
    ld = r["loader"]
    print(f"  loader {ld['batches_per_s']:,.0f} batches/s vs {ld['consumed_per_s']:.1f} consumed: "
          f"{ld['headroom']:,.0f}x headroom")
    if "profile" in r:
        p = r["profile"]
        print(f"  profiled step: {p['total_ms']:.0f} ms of {p['unit']}; " + ", ".join(
            f"{k} {100 * v:.0f}%" for k, v in p["shares"].items()) +
            f"; flash attention kernels {'seen' if p['flash_attention_seen'] else 'NOT seen'}")
        for row in p["top"][:8]:
            print(f"    {100 * row['share']:5.1f}% {row['ms']:8.1f} ms  {row['name'][:90]}")
    print(f"  target MFU >= {100 * TARGET_MFU:.0f}%: {'met' if r['target']['met'] else 'NOT met'}")
