"""Writes the operating system refuses, on the real CLI in real subprocesses: a read-only --out
for every command that writes, a file-size limit (RLIMIT_FSIZE) hit in the middle of a
checkpoint save and of a shard run, a disk that fills up (a small tmpfs) during a checkpoint.
Each must end in one paragraph naming the path and what to do (exit 2, no traceback), with
what was written before intact and no temporary file left."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from faults_support import (
    check_limits_allowed,
    env,
    minigpt,
    one_paragraph_error,
    readonly_prefix,
    temporaries,
    tree,
)
from test_train_support import TINY, char_corpus, char_shards

from minigpt_cli.hf import export_hf
from minigpt_cli.model import GPT, preset_config
from minigpt_cli.model_file import save_checkpoint
from minigpt_cli.tokenizer import CharTokenizer

TEXT_INPUT = "the will to power; the joyful wisdom. " * 400
FT = ["--seq-len", "32", "--micro-batch", "4", "--device", "cpu", "--max-steps", "1",
      "--peak-flops", "1e11"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A shard folder, a checkpoint of its tokenizer, that checkpoint as a HF folder, a text."""
    root = tmp_path_factory.mktemp("writes")
    shards = char_shards(root / "shards")
    tok = CharTokenizer.from_text(char_corpus())
    ckpt = root / "ckpt"
    save_checkpoint(ckpt, GPT(preset_config("nano", vocab_size=tok.vocab_size)), tok)
    hf = export_hf(GPT(preset_config("nano", vocab_size=tok.vocab_size)), root / "hf", tok)
    text = root / "in.txt"
    text.write_text(TEXT_INPUT)
    return {"shards": shards, "ckpt": ckpt, "hf": hf, "text": text}


COMMANDS = {
    "shard": (lambda m, ro: ["shard", "text", m["text"], "--out", ro / "x", "-j", "0",
                             "--no-stages"], "--out"),
    "pretrain": (lambda m, ro: ["pretrain", "--data", m["shards"], "--out", ro / "x", *TINY,
                                "--max-steps", "1"], "--out"),
    "finetune": (lambda m, ro: ["finetune", "--from", m["ckpt"], "--data", m["shards"],
                                "--out", ro / "x", *FT], "--out"),
    "make-math": (lambda m, ro: ["make-math", "--n", "100", "--n-test", "10", "--out",
                                 ro / "x"], "--out"),
    "export-hf": (lambda m, ro: ["export-hf", m["ckpt"], ro / "x"], "OUT"),
    "import-hf": (lambda m, ro: ["import-hf", m["hf"], ro / "x"], "OUT"),
}
# every command through the real CLI (CliRunner) in one interpreter, so torch loads once
DRIVER = """
import json, sys
from typer.testing import CliRunner
from minigpt_cli.cli import app
out = {}
for name, args in json.loads(sys.argv[1]).items():
    r = CliRunner().invoke(app, args)
    crash = r.exception is not None and not isinstance(r.exception, SystemExit)
    out[name] = {"code": r.exit_code, "output": r.output, "crash": repr(r.exception) if crash
                 else None}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def readonly_runs(made, tmp_path_factory):
    """(folder, what the OS says, {command: result}): every writing command with its output in
    a read-only mount where the machine allows it (root: a private mount namespace), else in
    a folder without write permission."""
    folder = tmp_path_factory.mktemp("readonly")
    prefix = readonly_prefix(folder)
    says = "read-only file system"
    if prefix is None:
        if os.geteuid() == 0:
            pytest.skip("root without a private mount namespace: no way to make a folder it "
                        "cannot write")
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        prefix, says = [], "permission denied"
    runs = {name: [str(a) for a in args(made, folder)] for name, (args, _) in COMMANDS.items()}
    r = subprocess.run([*prefix, sys.executable, "-c", DRIVER, json.dumps(runs)], env=env(),
                       capture_output=True, text=True, timeout=600)
    folder.chmod(stat.S_IRWXU)
    assert r.returncode == 0, r.stderr[-3000:]
    return folder, says, json.loads(r.stdout.splitlines()[-1])


@pytest.mark.parametrize("command", list(COMMANDS))
def test_read_only_out_is_one_paragraph_naming_it(command, readonly_runs):
    folder, says, results = readonly_runs
    r, label = results[command], COMMANDS[command][1]
    assert r["crash"] is None and r["code"] == 2 and "Traceback" not in r["output"], r
    msg = " ".join(r["output"][r["output"].index("error:"):].split())
    assert f"{label} {folder / 'x'}" in msg and msg.startswith("error: Cannot "), msg
    assert says in msg and ("another location" in msg or f"another {label}" in msg), msg
    assert not (folder / "x").exists()


@pytest.fixture(scope="module")
def first_run(made, tmp_path_factory):
    """A run folder with its step-2 checkpoint, written without any limit."""
    check_limits_allowed()
    run = tmp_path_factory.mktemp("run") / "run"
    r = minigpt("pretrain", "--data", made["shards"], "--out", run, *TINY, "--max-steps", "2",
                "--eval-every", "0", "--sample-every", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "step_000002" / "optimizer.safetensors").exists()
    return run


@pytest.mark.parametrize("fails_in", ["model.safetensors", "optimizer.safetensors"])
def test_checkpoint_save_past_the_file_size_limit(fails_in, first_run, tmp_path):
    """RLIMIT_FSIZE set between the sizes of the checkpoint's files: the save of step 4 fails
    part-way (in the weights, or after them in the optimizer state)."""
    run = tmp_path / "run"
    shutil.copytree(first_run, run)
    step2 = run / "step_000002"
    sizes = {p.name: p.stat().st_size for p in step2.iterdir()}
    small = max(sizes["trainer_state.json"], (run / "metrics.jsonl").stat().st_size) + 4096
    limit = {"model.safetensors": small, "optimizer.safetensors":
             sizes["model.safetensors"] + 4096}[fails_in]
    assert limit < sizes[fails_in] and small <= limit  # only the file named fails
    before = tree(step2)
    r = minigpt("pretrain", "--data", _data(first_run), "--out", run, *TINY, "--max-steps",
                "4", "--resume", "auto", "--eval-every", "0", "--sample-every", "0",
                fsize=limit)
    msg = one_paragraph_error(r)
    assert "File too large" in msg and "ulimit -f" in msg, msg
    assert f"--out {run} ({run / 'step_000004' / fails_in})" in msg, msg
    assert tree(step2) == before  # the previous checkpoint is intact
    assert not (run / "step_000004").exists() and temporaries(run) == []
    if fails_in == "model.safetensors":  # and the same command without the limit goes on
        r = minigpt("pretrain", "--data", _data(first_run), "--out", run, *TINY, "--max-steps",
                    "4", "--resume", "auto", "--eval-every", "0", "--sample-every", "0")
        assert r.returncode == 0 and (run / "step_000004").is_dir(), r.stderr[-2000:]


def _data(run) -> str:
    return json.loads((run / "settings.json").read_text())["data"]


def test_checkpoint_save_on_a_full_disk(made, tmp_path):
    """A real full disk: a 640 KiB tmpfs (in a private mount namespace) holds the step-2
    checkpoint but not a second one. The run is copied out before the namespace ends."""
    check_limits_allowed()
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to mount a small tmpfs")
    py = [sys.executable, "-m", "minigpt_cli", "pretrain", "--data", str(made["shards"]),
          "--out", str(disk / "run"), *TINY, "--eval-every", "0", "--sample-every", "0"]
    first, second = " ".join(py + ["--max-steps", "2"]), " ".join(py + ["--max-steps", "4",
                                                                          "--resume", "auto"])
    script = (f'mount -t tmpfs -o size=640k tmpfs "{disk}" || exit 77; {first} || exit 78; '
              f'sha256sum {disk}/run/step_000002/* > "{tmp_path}/before"; {second}; '
              f'echo "rc=$?"; cp -a "{disk}/run" "{kept}"')
    r = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c", script],
                       env=env(), capture_output=True, text=True, timeout=300)
    if r.returncode == 77:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rc=2" in r.stdout and "Traceback" not in r.stderr, r.stderr[-3000:]
    msg = " ".join(r.stderr[r.stderr.index("error:"):].split())
    assert msg.startswith(f"error: The disk is full: no space left on the device holding "
                          f"{disk}"), msg
    assert f"--out {disk / 'run'}" in msg and "run the same command again" in msg, msg
    before = dict(line.split()[::-1] for line in (tmp_path / "before").read_text().splitlines())
    after = {str(disk / "run" / "step_000002" / name): digest
             for name, digest in tree(kept / "step_000002").items()}
    assert after == before and not (kept / "step_000004").exists()
    assert temporaries(kept) == []


def _shard(out, text, size=200):
    return ["shard", "text", text, "--out", out, "--shard-size", str(size), "-j", "0",
            "--no-stages"]


def test_shard_run_past_the_file_size_limit_resumes_to_the_same_bytes(made, tmp_path):
    """A limit above every shard's size but below the manifest's: the run fails after its
    shards; they are intact, nothing temporary is left, and the same command without the
    limit finishes the folder byte for byte as an uninterrupted run."""
    check_limits_allowed()
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert minigpt(*_shard(ref, made["text"])).returncode == 0
    shard_size = max(p.stat().st_size for p in ref.glob("*.bin"))
    limit = shard_size + 1
    assert (ref / "manifest.json").stat().st_size > limit
    r = minigpt(*_shard(out, made["text"]), fsize=limit)
    msg = one_paragraph_error(r)
    assert "File too large" in msg and f"--out {out}" in msg, msg
    written = {name: d for name, d in tree(out).items() if name.endswith(".bin")}
    assert written and all(d == tree(ref)[name] for name, d in written.items())
    assert temporaries(out) == [] and not (out / "manifest.json").exists()
    r = minigpt(*_shard(out, made["text"]))
    assert r.returncode == 0, r.stderr[-2000:]
    bins = {n: d for n, d in tree(out).items() if n.endswith(".bin")}
    assert bins == {n: d for n, d in tree(ref).items() if n.endswith(".bin")}
    assert minigpt("shard", "--verify", out).returncode == 0


def test_shard_run_that_cannot_write_its_first_shard_leaves_no_folder(made, tmp_path):
    check_limits_allowed()
    out = tmp_path / "new" / "out"
    r = minigpt(*_shard(out, made["text"], 1000), fsize=2000)  # a shard file is 3,024 bytes
    msg = one_paragraph_error(r)
    assert "File too large" in msg and f"--out {out}" in msg, msg
    assert not (tmp_path / "new").exists()  # the folders this run made are gone again
