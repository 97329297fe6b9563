"""``pathbench export``: a run as a Hub model folder that loads back and samples bit for bit the same."""

import json

import pytest

from harness.cli import main
from harness.engine.checkpoint import latest_checkpoint
from harness.engine.hub import load_exported
from harness.engine.protocol import sampling_setup
from harness.engine.run import draw_samples, load_run


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
    from harness.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not a pathbench export"):
        load_exported(tmp_path)
