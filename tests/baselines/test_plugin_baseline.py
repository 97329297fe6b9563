"""A baseline that lives only in tests/ registers, trains, samples and is listed — through the
CLI, with nothing in the packages edited. The "Add a baseline" guide's example is this very file."""

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
    return subprocess.run([sys.executable, "-m", "pathbench.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_unigram_plugin_trains_samples_and_is_listed(tmp_path, data_cache, bbc_small, tiny_lm):
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
    assert json.loads((run / "meta.json").read_text())["plugins"] == ["unigram_plugin"]
    # the run remembers its plugin: sample and eval need no --plugin
    again = cli("sample", "--ckpt", str(run), "--n", "1", "--out", str(tmp_path / "x.jsonl"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-1500:]
    evaluated = cli("eval", "--ckpt", str(run), "--task", "unconditional", "--n", "2", "--out",
                    str(tmp_path / "ev"), f"scorer=hf:{tiny_lm}", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-1500:]
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["plugins"] == ["unigram_plugin"]
    missing = subprocess.run([sys.executable, "-m", "pathbench.cli", "sample", "--ckpt", str(run), "--n", "1",
                              "--out", str(tmp_path / "y.jsonl")], capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert f"run {run} needs plugin module 'unigram_plugin'" in missing.stderr


def test_a_plugin_that_returns_the_mask_id_fails_in_one_line(tmp_path, data_cache, bbc_small):
    run = tmp_path / "run"
    common = [f"data.cache_dir={data_cache}", "data.vocab_size=512", "data.seq_len=32", "batch_size=8",
              "eval_every=10", "progress=false"]
    trained = cli("train", "--plugin", "masked_plugin", "--method", "masked", "--steps", "10", "--out", str(run),
                  "method.leave_masks=true", *common, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-1500:]
    sampled = cli("sample", "--ckpt", str(run), "--n", "2", "--nfe", "4", "--out", str(tmp_path / "s.jsonl"),
                  cwd=tmp_path)
    lines = sampled.stderr.strip().splitlines()
    assert sampled.returncode == 2 and not (tmp_path / "s.jsonl").exists()
    assert re.match(r"pathbench sample: error: method 'masked': sample\(\) returned id 512 at \(row \d, "
                    r"position 31\), outside the tokenizer's vocabulary \[0, 512\)", lines[-1]), lines[-1]
    assert "Traceback" not in sampled.stderr
    good = tmp_path / "good"
    assert cli("train", "--plugin", "masked_plugin", "--method", "masked", "--steps", "10", "--out", str(good),
               *common, cwd=tmp_path).returncode == 0
    fine = cli("sample", "--ckpt", str(good), "--n", "2", "--nfe", "4", "--out", str(tmp_path / "g.jsonl"),
               cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr[-1500:]
    ids = [json.loads(line)["ids"] for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(ids) == 2 and all(0 <= i < 512 for row in ids for i in row)


def test_an_unknown_method_option_lists_the_valid_ones(tmp_path):
    out = cli("train", "--method", "sedd", "--steps", "1", "--out", str(tmp_path / "r"), "method.epss=0.1",
              cwd=tmp_path)
    assert out.returncode == 2 and "unknown option 'epss' for method 'sedd'; valid: eps" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_the_guides_example_is_the_tested_plugin():
    readme = (ROOT / "docs" / "guides" / "add-a-baseline.md").read_text()
    block = re.search(r"```python\n# tests/plugins/unigram_plugin.py\n(.*?)```", readme, re.S)
    assert block, "docs/guides/add-a-baseline.md lost its example"
    assert block.group(1) == (PLUGINS / "unigram_plugin.py").read_text()
