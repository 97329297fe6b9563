#!/usr/bin/env bash
# The first thing to run when a GPU is lent: `pathbench study bench gpu` at the paper's sizes
# (paper-150m, V = 50,257, S = 1024; bf16 + torch.compile training steps of every method, a
# few steps of every sampler with peak memory, dfm and sedd on CUDA, a random GPT-2-large-sized
# scorer), about five minutes on one H100/H200. Writes results/gpu_check/<UTC time>/
# (gpu_check.json, gpu_check.md, nvidia-smi.txt, bench.log); commit that folder.
#   scripts/gpu_check.sh [BUDGET_SECONDS]   (default 280)
# PYTHON selects the interpreter (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-280}
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
out=results/gpu_check/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi unavailable" > "$out/nvidia-smi.txt"
"$python" -m pathbench.cli bench gpu --device cuda --budget-s "$budget" --out "$out" 2>&1 | tee "$out/bench.log"
echo "wrote $out: commit it (git add $out)"
