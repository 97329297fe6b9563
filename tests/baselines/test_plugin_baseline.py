"""A baseline that lives only in tests/ registers, trains, samples and is listed — through the
CLI, with nothing in the packages edited. The README's example is this very file."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).parents[1] / "plugins"
ROOT = Path(__file__).parents[2]


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": f"{PLUGINS}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_unigram_plugin_trains_samples_and_is_listed(tmp_path, data_cache, bbc_small):
    listed = cli("list", "--plugin", "unigram_plugin", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "\n  unigram  Predicts every token from its position alone" in listed.stdout
    run = tmp_path / "run"
    trained = cli("train", "--plugin", "unigram_plugin", "--method", "unigram", "--steps", "30",
                  "--out", str(run), f"data.cache_dir={data_cache}", "data.vocab_size=512",
                  "data.seq_len=32", "batch_size=16", "eval_every=15", "progress=false", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-1500:]
    vals = [json.loads(line)["val_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "val_loss" in line]
    assert vals[-1] < 6.2  # below ln 512: it learnt the token frequencies
    sampled = cli("sample", "--plugin", "unigram_plugin", "--ckpt", str(run), "--n", "3",
                  "--out", str(tmp_path / "s.jsonl"), cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr[-1500:]
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(records) == 3 and records[0]["method"] == "unigram"
    assert records[0]["sampler"]["name"] == "independent"
    unknown = cli("sample", "--ckpt", str(run), "--n", "1", "--out", str(tmp_path / "x.jsonl"), cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown method 'unigram'" in unknown.stderr


def test_readme_example_is_the_tested_plugin():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n# tests/plugins/unigram_plugin.py\n(.*?)```", readme, re.S)
    assert block, "README lost its 'Add a baseline' example"
    assert block.group(1) == (PLUGINS / "unigram_plugin.py").read_text()
