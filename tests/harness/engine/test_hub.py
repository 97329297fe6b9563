"""``pathbench export``: a run as a Hub model folder that loads back and samples bit for bit the same."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from pathbench.cli import main
from pathbench.engine.checkpoint import latest_checkpoint
from pathbench.engine.hub import load_exported
from pathbench.engine.protocol import sampling_setup
from pathbench.engine.run import draw_samples, load_run

ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def run_dir(kl_run):
    return kl_run  # the session's trained kl run (conftest); nothing here writes into it


def sample_ids(run, seed: int) -> list[list[int]]:
    method, cfg, record = sampling_setup(run.method, run.meta, None, {"name": "sampling", "nfe": 3, "top_k": None})
    records = draw_samples(method, run.model, run.tokenizer, run.meta, run.step, 3, cfg, seed=seed,
                           batch_size=2, protocol=record)
    return [r["ids"] for r in records]


def test_export_round_trip_samples_identically(run_dir, tmp_path, capsys):
    evaluation = tmp_path / "eval" / "metrics.json"
    evaluation.parent.mkdir()
    evaluation.write_text(json.dumps({"task": "unconditional", "metrics": {"gen_ppl": 123.5, "samples": 8,
                                                                           "per_sample": [1.0, 2.0]}}))
    out = tmp_path / "hf"
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out), "--metrics", str(evaluation)]) == 0
    assert "(step 60)" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "pathbench_tokenizer.json", "README.md",
            "metrics.jsonl", "eval_results.json"} <= names
    # the weights are the checkpoint's, byte for byte; config.json is the run's meta and step
    weights = latest_checkpoint(run_dir)[1] / "model.safetensors"
    assert (out / "model.safetensors").read_bytes() == weights.read_bytes()
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["checkpoint_step"], config["method"]) == ("pathbench", 60, "kl")
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pathbench\n")
    assert "## Generation protocol" in card and "`kl-flow`" in card and '"t_max": 0.3' in card
    assert "| val_loss |" in card and "| gen_ppl | 123.5 |" in card and "per_sample" not in card

    run, exported = load_run(run_dir), load_exported(out)
    assert (exported.meta["method_options"], exported.step) == (run.meta["method_options"], run.step)
    assert sample_ids(exported, seed=7) == sample_ids(run, seed=7)
    assert sample_ids(exported, seed=7) != sample_ids(exported, seed=8)
    # every command reads an export as it reads the run
    for folder in (run_dir, out):
        assert main(["sample", "--ckpt", str(folder), "--n", "2", "--nfe", "2", "--seed", "3",
                     "--out", str(tmp_path / f"{folder.name}.jsonl")]) == 0
    ids = [[json.loads(line)["ids"] for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
           for name in (run_dir.name, out.name)]
    assert ids[0] == ids[1]
    assert main(["export", "--ckpt", str(out), "--out", str(tmp_path / "again")]) == 2
    assert "is already an export" in capsys.readouterr().err


def test_export_refuses_to_overwrite_unless_forced(run_dir, tmp_path, capsys):
    out = tmp_path / "hf"
    out.mkdir()  # an empty folder is fine to fill
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out)]) == 0
    (out / "mine.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not empty; pass --force" in err
    assert (out / "mine.txt").read_text() == "keep me"
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out), "--force"]) == 0
    assert not (out / "mine.txt").exists() and (out / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # no temporary or old folder left


def test_bad_inputs_are_one_line(run_dir, tmp_path, capsys):
    assert main(["export", "--ckpt", str(tmp_path), "--out", str(tmp_path / "hf")]) == 2
    assert "is not a pathbench run folder" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["export", "--ckpt", str(run_dir), "--out", str(tmp_path / "hf"), "--metrics", str(bad)]) == 2
    assert "is not a pathbench eval metrics.json" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()
    from pathbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not a pathbench export"):
        load_exported(tmp_path)


FRESH_LOAD = """
import json, sys
from pathbench.engine.hub import PathbenchModel  # no other import or registration call
model = PathbenchModel.from_pretrained(sys.argv[1])
records = model.sample(3, seed=7, name="sampling", nfe=3, top_k=None, batch_size=2)
print(json.dumps([r["ids"] for r in records]))
"""


def fresh_python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})


def test_the_mixin_loads_an_export_in_a_fresh_interpreter_and_samples_the_runs_ids(run_dir, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out)]) == 0
    proc = fresh_python(FRESH_LOAD, str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == sample_ids(load_run(run_dir), seed=7)
    # the card's snippet runs as written, in a fresh interpreter, and prints the samples' text
    card = (out / "README.md").read_text()
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    assert f'from_pretrained("{out}")' in snippet
    proc = fresh_python(snippet, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(proc.stdout.strip().splitlines()) >= 4


def test_export_files_are_world_readable_and_the_card_claims_no_pipeline(run_dir, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out)]) == 0
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*")}
    assert modes and all(mode == (0o755 if (out / name).is_dir() else 0o644) for name, mode in modes.items()), modes
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    meta = ModelCard.load(out / "README.md").data.to_dict()
    assert meta["library_name"] == "pathbench" and "pytorch_model_hub_mixin" in meta["tags"]
    assert "pipeline_tag" not in meta and "license" not in meta
    assert "cache_dir" not in (out / "README.md").read_text()  # no machine's path in the card


def test_save_pretrained_writes_the_export_unchanged(run_dir, tmp_path):
    from pathbench.engine.hub import PathbenchModel

    out = tmp_path / "hf"
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out)]) == 0
    PathbenchModel.from_pretrained(out).save_pretrained(tmp_path / "again")
    files = sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == files
    assert all((out / name).read_bytes() == (tmp_path / "again" / name).read_bytes() for name in files)


def test_push_to_hub_uploads_the_folder_with_huggingface_hub(run_dir, tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    calls = []  # only the network calls are replaced; the folder is the one written above
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(HfApi, "upload_folder",
                        lambda self, **kw: calls.append(("upload", kw)) or "https://hub/commit/1")
    out = tmp_path / "hf"
    assert main(["export", "--ckpt", str(run_dir), "--out", str(out), "--push-to-hub", "me/kl-tiny"]) == 0
    assert calls[0] == ("create", "me/kl-tiny", {"repo_type": "model", "private": False, "exist_ok": True})
    assert calls[1][1]["repo_id"] == "me/kl-tiny" and calls[1][1]["folder_path"] == str(out)
    assert 'from_pretrained("me/kl-tiny")' in (out / "README.md").read_text()
    assert "uploaded" in capsys.readouterr().out
