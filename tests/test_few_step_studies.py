"""scripts/few_step_studies.py (make few-step, few-step-protocols, calibration): it works on the
units the pinned few-step files name, and refuses an unfinished sweep before it writes anything."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "few_step_studies.py"


def studies(*args: str, sweep: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FEW_STEP_SWEEP": str(sweep)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_bad_arguments_are_a_usage_line(tmp_path):
    done = studies("gaps", "ode", str(tmp_path / "out"), sweep=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("usage:") and "kl-flow,plain" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_an_unfinished_sweep_is_refused_naming_the_unit_and_nothing_is_written(tmp_path):
    for args in (("calibration", str(tmp_path / "out")), ("gaps", "kl-flow", str(tmp_path / "out"))):
        done = studies(*args, sweep=tmp_path / "sweep")
        assert done.returncode == 2, done.stderr
        assert "is not trained to the end" in done.stderr and str(tmp_path / "sweep" / "train") in done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
