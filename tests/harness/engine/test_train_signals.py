"""Ctrl-C or SIGTERM during ``pathbench train``: the step under way ends, a checkpoint is
written (even before the first scheduled one), the command says how to resume, and resuming
finishes the run with every step logged once."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL

ROOT = Path(__file__).parents[3]


def start_training(run: Path, cache: Path, steps: int) -> tuple[subprocess.Popen, list[str]]:
    argv = ["train", "--method", "kl", "--steps", str(steps), "--out", str(run), f"data.cache_dir={cache}",
            f"data.vocab_size={SMALL['vocab_size']}", f"data.seq_len={SMALL['seq_len']}", "batch_size=8",
            "log_every=1", "ckpt_every=100000", "eval_every=100000", "progress=false"]
    proc = subprocess.Popen([sys.executable, "-m", "pathbench.cli", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    return proc, argv


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_writes_a_checkpoint_and_says_how_to_resume(tmp_path, data_cache, bbc_small, signum):
    run = tmp_path / "kl"
    proc, argv = start_training(run, data_cache, steps=400)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"stopped by {signal.Signals(signum).name} at step " in last and "checkpoint written to" in last
    step = int(last.split(" at step ")[1].split()[0])
    assert 0 < step < 400  # before the first scheduled checkpoint (ckpt_every is larger than the run)
    assert json.loads((run / "checkpoint.json").read_text())["step"] == step
    resume = shlex.split(last.split("resume with: ")[1])
    assert resume[:2] == ["pathbench", "train"] and resume[-1] == "--resume" and resume[2:-1] == argv[1:]
    if signum == signal.SIGINT:  # resume as told, with the steps cut to keep the test short
        resume = [a if a != "400" else str(step + 5) for a in resume]
        done = subprocess.run([sys.executable, "-m", "pathbench.cli", *resume[1:]], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-2000:]
        steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, step + 6))  # every step once: nothing lost, nothing repeated
