"""The JSON side of benchmarks/gpu_check.sh (standard library only, except ``env``'s torch):

    gpu_check_report.py env OUT.json            the machine: torch, CUDA, GPU, driver, cores
    gpu_check_report.py phase WORK NAME RC SECONDS LIMIT [NOTE]   one phase's outcome
    gpu_check_report.py pytest JUNIT.xml OUT.json
    gpu_check_report.py pretrain RUN SHARDS SHARD_S PRETRAIN_S OUT.json
    gpu_check_report.py merge WORK SUMMARY.json [--print]

``merge`` gathers WORK/{env,install,a,b,c,d}.json and WORK/phases.jsonl into one summary
(schema: docs/gpu.md) and prints the human-readable summary.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

SCHEMA = "minigpt-gpu-check/1"
PHASES = ["env", "install", "a", "b", "c", "d"]
TITLES = {"env": "environment", "install": "offline install", "a": "pytest -m gpu",
          "b": "bench_train.py (gpt2, compiled)", "c": "minigpt pretrain, 0.5M-token steps",
          "d": "minigpt sample tokens/s"}


def load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def env(out: str) -> None:
    info: dict = {"python": sys.version.split()[0], "executable": sys.executable,
                  "platform": platform.platform(), "cpu_count": os.cpu_count(),
                  "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        info["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() \
            else []:
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                            "clocks.sm,clocks.max.sm,power.limit,temperature.gpu",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        info["nvidia_smi"] = f"not available: {e}"
    import torch

    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                    gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    bf16=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version(),
                    flash_sdp=torch.backends.cuda.flash_sdp_enabled())
    for mod in ("triton", "setuptools", "pytest", "numpy", "safetensors", "tiktoken"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - a missing or broken module is a finding
            info[mod] = f"unavailable: {type(e).__name__}"
    Path(out).write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


def phase(work: str, name: str, rc: str, seconds: str, limit: str, note: str = "") -> None:
    rec = {"phase": name, "rc": int(rc), "seconds": round(float(seconds), 1),
           "limit": int(limit), "timed_out": int(rc) in (124, 137), "note": note}
    with open(Path(work) / "phases.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")


def pytest_summary(xml: str, out: str) -> None:
    tests = []
    if Path(xml).exists():
        for case in ET.parse(xml).getroot().iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                el = case.find(tag)
                if el is not None:
                    outcome = {"failure": "failed", "error": "error"}.get(tag, "skipped")
                    message = (el.get("message") or "")[:400]
            tests.append({"name": case.get("name"), "outcome": outcome,
                          "seconds": float(case.get("time") or 0), "message": message})
    counts = {k: sum(t["outcome"] == k for t in tests)
              for k in ("passed", "failed", "error", "skipped")}
    Path(out).write_text(json.dumps({"counts": counts, "tests": tests}, indent=1))


def pretrain_summary(run: str, shards: str, shard_s: str, pretrain_s: str, out: str) -> None:
    run_p, res = Path(run), {"shard_seconds": float(shard_s), "pretrain_seconds":
                             float(pretrain_s)}
    manifest = load(Path(shards) / "manifest.json") or {}
    res["shard_tokens"] = {s["split"]: 0 for s in manifest.get("shards", [])}
    for s in manifest.get("shards", []):
        res["shard_tokens"][s["split"]] += s["tokens"]
    lines = []
    if (run_p / "metrics.jsonl").exists():
        lines = [json.loads(x) for x in (run_p / "metrics.jsonl").read_text().splitlines()
                 if x.strip()]
    steps = [m for m in lines if "loss" in m]
    res["steps"] = steps
    res["evals"] = [m for m in lines if "val_loss" in m]
    res["guard_events"] = [m for m in lines if "event" in m]
    timed = steps[1:]  # the first step compiles
    if timed:
        res["tok_per_s_median"] = statistics.median(m["tok_per_s"] for m in timed)
        mfus = [m["mfu"] for m in timed if m.get("mfu") is not None]
        res["mfu_median"] = statistics.median(mfus) if mfus else None
        res["first_step_tok_per_s"] = steps[0]["tok_per_s"]
    if steps:
        res["tokens_seen"] = steps[-1]["tokens_seen"]
        res["elapsed_training"] = steps[-1]["elapsed"]
        res["wall_tok_per_s"] = steps[-1]["tokens_seen"] / float(pretrain_s)
    settings = load(run_p / "settings.json") or {}
    res["settings"] = {k: settings.get(k) for k in ("model", "seq_len", "micro_batch",
                                                     "tokens_per_step", "dtype", "compile",
                                                     "max_steps", "device")}
    note = Path(shards).parent / "c.note"
    if note.exists():
        res["note"] = note.read_text().strip()
    res["run_json"] = load(run_p / "run.json")
    res["checkpoints"] = [
        {"name": p.parent.name, "bytes": sum(f.stat().st_size for f in p.parent.iterdir())}
        for p in sorted(run_p.glob("step_*/model.safetensors"))]
    Path(out).write_text(json.dumps(res, indent=1, default=str))


def merge(work: str, out: str, show: bool) -> dict:
    w = Path(work)
    phases = []
    if (w / "phases.jsonl").exists():
        phases = [json.loads(x) for x in (w / "phases.jsonl").read_text().splitlines() if x]
    summary = {"schema": SCHEMA, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "dry": os.environ.get("MINIGPT_GPU_DRY") == "1", "phases": phases}
    for name in PHASES:
        data = load(w / f"{name}.json")
        if data is not None:
            summary[name] = data
    summary["targets"] = targets(summary)
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(tmp, out)
    if show:
        print(human(summary))
    return summary


def targets(s: dict) -> dict:
    t: dict = {}
    if "b" in s and "minigpt" in s["b"]:
        t["mfu_at_least_50pct"] = s["b"]["minigpt"]["mfu"] >= 0.5
    if "a" in s:
        c = s["a"]["counts"]
        t["no_gpu_test_failing"] = c["failed"] == 0 and c["error"] == 0 and c["passed"] > 0
    return t


def human(s: dict) -> str:
    e = s.get("env", {})
    out = [f"GPU check{' (DRY RUN on the CPU)' if s['dry'] else ''}: {e.get('gpu', 'no GPU')}, "
           f"torch {e.get('torch')} (CUDA {e.get('torch_cuda')}), Python {e.get('python')}, "
           f"{e.get('cores_usable', e.get('cpu_count'))} cores, {e.get('date', '')}",
           f"nvidia-smi: {e.get('nvidia_smi', '-')}", "",
           f"{'phase':8s} {'rc':>4s} {'seconds':>8s} {'limit':>6s}  what"]
    for p in s["phases"]:
        status = "TIMED OUT" if p["timed_out"] else "ok" if p["rc"] == 0 else \
            "SKIPPED" if p["rc"] == 125 else "FAILED"
        note = f" - {p['note']}" if p["note"] else ""
        out.append(f"{p['phase']:8s} {p['rc']:4d} {p['seconds']:8.1f} {p['limit']:6d}  "
                   f"{TITLES.get(p['phase'], '')}: {status}{note}")
    if "a" in s:
        c = s["a"]["counts"]
        out.append(f"\na. gpu tests: {c['passed']} passed, {c['failed']} failed, {c['error']} "
                   f"errors, {c['skipped']} skipped")
        for t in s["a"]["tests"]:
            if t["outcome"] != "passed":
                out.append(f"   {t['outcome']}: {t['name']}: {t['message'][:200]}")
    b = s.get("b")
    if b and "minigpt" in b:
        m = b["minigpt"]
        out.append(f"b. {b['preset']} seq {b['seq_len']}, {b['tokens_per_step']:,} tokens/step "
                   f"({b['micro_batch']} x {b['accum']}), {b['dtype']}, compile "
                   f"{'on' if b['compile'] else 'off'}; peak {b['mfu_peak'] / 1e12:.1f} TFLOP/s "
                   "measured")
        out.append(f"   minigpt: {m['tok_per_s']:,.0f} tok/s, MFU {100 * m['mfu']:.1f}%"
                   + (f" ({100 * m['mfu_vs_datasheet']:.1f}% of the datasheet)"
                      if "mfu_vs_datasheet" in m else "")
                   + f", first step {m['first_step_seconds']:.1f} s")
        n = b.get("nanogpt", {})
        if "tok_per_s" in n:
            out.append(f"   nanoGPT: {n['tok_per_s']:,.0f} tok/s, MFU {100 * n['mfu']:.1f}%; "
                       f"minigpt / nanoGPT {b['minigpt_over_nanogpt']:.3f}")
        elif n:
            out.append(f"   nanoGPT: {n.get('skipped') or n.get('error', '')[:300]}")
        if "compile_error" in b:
            out.append(f"   torch.compile FAILED, eager figures: {b['compile_error'][:300]}")
        if "profile" in b:
            p = b["profile"]
            out.append("   profile: " + ", ".join(f"{k} {100 * v:.0f}%"
                                                  for k, v in p["shares"].items())
                       + f"; flash kernels {'seen' if p['flash_attention_seen'] else 'NOT seen'}")
    c = s.get("c")
    if c and "tok_per_s_median" in c:
        mfu = f", MFU {100 * c['mfu_median']:.1f}%" if c.get("mfu_median") else ""
        out.append(f"c. minigpt pretrain: {len(c['steps'])} steps, median "
                   f"{c['tok_per_s_median']:,.0f} tok/s{mfu}; {c['tokens_seen']:,} tokens in "
                   f"{c['pretrain_seconds']:.0f} s wall ({c['wall_tok_per_s']:,.0f} tok/s, "
                   f"start-up and compile included); shards {c['shard_tokens']} in "
                   f"{c['shard_seconds']:.0f} s; checkpoints "
                   + ", ".join(k["name"] for k in c["checkpoints"]))
    d = s.get("d")
    if d and "variants" in d:
        out.append(f"d. sample ({d['weights']}, batch 1, {d['new_tokens']} tokens): " + "; ".join(
            f"{k} {v['tok_per_s']:,.0f} tok/s" for k, v in d["variants"].items())
            + (f"; `minigpt sample` process {d['cli']['seconds']:.1f} s (exit "
               f"{d['cli']['returncode']})" if "cli" in d else ""))
    if s["targets"]:
        out.append("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}"
                                           for k, v in s["targets"].items()))
    return "\n".join(out)


def main(argv: list[str]) -> None:
    cmd, rest = argv[0], argv[1:]
    if cmd == "env":
        env(*rest)
    elif cmd == "phase":
        phase(*rest)
    elif cmd == "pytest":
        pytest_summary(*rest)
    elif cmd == "pretrain":
        pretrain_summary(*rest)
    elif cmd == "merge":
        merge(rest[0], rest[1], "--print" in rest)
    else:
        sys.exit(f"unknown command {cmd!r}; see the docstring")


if __name__ == "__main__":
    main(sys.argv[1:])
