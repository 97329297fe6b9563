"""The cache is one absolute folder — $PATHBENCH_CACHE, else the user cache folder — so a run
from any working folder reuses what a run from another one built, and it never enters a run id."""

import os
import subprocess
import sys
from pathlib import Path

from pathbench.core.cache import cache_root
from pathbench.core.config import DataConfig

ROOT = Path(__file__).parents[3]


def test_default_is_the_xdg_user_cache_and_the_variable_overrides_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PATHBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert cache_root() == tmp_path / "xdg" / "pathbench"
    assert DataConfig().cache_dir == str(tmp_path / "xdg" / "pathbench")
    monkeypatch.setenv("PATHBENCH_CACHE", str(tmp_path / "mine"))
    assert DataConfig().cache_dir == str(tmp_path / "mine")


def test_a_run_from_another_folder_reuses_the_data_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PATHBENCH_CACHE"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    prepare = [sys.executable, "-m", "pathbench.cli", "prepare", "data.vocab_size=300", "data.seq_len=32",
               "data.max_tokens=60000"]
    outputs, stamps = [], []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        proc = subprocess.run(prepare, cwd=tmp_path / name, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(proc.stdout.strip().splitlines()[-1])
        [folder] = (tmp_path / "xdg" / "pathbench").glob("data-*")
        stamps.append({p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()})
        assert not (tmp_path / name / ".cache").exists()  # nothing relative to the working folder
    assert outputs[0] == outputs[1] and outputs[0].startswith(str(tmp_path / "xdg" / "pathbench" / "data-"))
    assert stamps[0] == stamps[1]  # the tokenizer and packed tokens were read back, not rebuilt
