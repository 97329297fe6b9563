"""Byte for byte, for real: a fresh run of the cheapest committed quick result — the code-infilling
sweep `make main` runs (`experiments/code_cpu_quick.yaml`, ≈75 s on 2 idle cores, longer on shared
ones) — and its report are the committed files, byte for byte. The leaderboard CSV holds the
results (every run's metrics); report.html and leaderboard.md are the rendering of them, so a
committed report left stale by a renderer change (or a result that varied with an optional
system package, such as the sandbox's bubblewrap) fails here. Run like `make main`, from a
working folder, with ``--out runs/code_cpu_quick``: the folders a report names are relative."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
COMMITTED = ROOT / "results" / "code_cpu_quick"
TITLE = "Code infilling on held-out stdlib functions (CPU, code_cpu_quick)"  # as the Makefile's `main`


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    work = tmp_path_factory.mktemp("make-main")
    for argv in (["sweep", str(ROOT / "experiments" / "code_cpu_quick.yaml"), "--out", "runs/code_cpu_quick"],
                 ["report", "runs/code_cpu_quick", "--out", "results/code_cpu_quick", "--title", TITLE,
                  "--experiment", str(ROOT / "experiments" / "code_cpu_quick.yaml")]):  # as `make main` does
        done = subprocess.run([sys.executable, "-m", "pathbench.cli", *argv], cwd=work, capture_output=True, text=True,
                              timeout=1200, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-3000:]
    return work / "results" / "code_cpu_quick"


def test_a_fresh_quick_run_gives_the_committed_results(fresh):
    assert (fresh / "leaderboard.csv").read_bytes() == (COMMITTED / "leaderboard.csv").read_bytes()


@pytest.mark.parametrize("name", ["leaderboard.md", "report.html"])
def test_its_report_is_the_committed_report(fresh, name):
    assert (fresh / name).read_bytes() == (COMMITTED / name).read_bytes(), (
        f"results/code_cpu_quick/{name} is not what the code renders from the same results: regenerate the "
        "committed reports (`make main`) after changing the report")
