"""Tuning as a stage of a sweep: every method searched on the same grid within the same budget,
the best of each chosen by its own held-out loss, then every seed trained with it."""

import json

import pytest
import yaml

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.engine.plugins import load_all
from pathbench.sweep.experiment import expand
from pathbench.sweep.tuning import parse_tune, select

load_all()


def tuned_grid(tmp_path, data_cache, tiny_lm, tune):
    spec = {
        "name": "t", "preset": "tiny",
        "data": {"corpus": "bbc", "vocab_size": 512, "seq_len": 32, "cache_dir": str(data_cache)},
        "train": {"steps": 6, "batch_size": 8, "eval_every": 3, "ckpt_every": 3, "progress": False, "lr": 3e-3},
        "methods": ["kl", "ar"], "samplers": [{"name": "basic", "nfe": 2}], "seeds": [0, 1],
        "tasks": [{"name": "unconditional", "n": 2, "scorers": [f"hf:{tiny_lm}"]}],
        "executor": {"kind": "debug"}, "tune": tune,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_sweep_tunes_first_then_trains_every_seed_with_each_methods_choice(tmp_path, data_cache, tiny_lm,
                                                                              bbc_small, capsys):
    grid = {"lr": [1e-3, 1e-2], "optimizer": ["adamw", "kl-flow-muon"]}
    path, out = tuned_grid(tmp_path, data_cache, tiny_lm, {"grid": grid, "steps": 3}), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    record = json.loads((out / "tuning" / "t" / "tuning.json").read_text())
    assert len(record["rows"]) == 8 and {r["method"] for r in record["rows"]} == {"kl", "ar"}
    for method in ("kl", "ar"):
        mine = [r for r in record["rows"] if r["method"] == method]
        best = min(mine, key=lambda r: r["val_loss"])  # the rule: lowest held-out loss, within the method
        assert record["chosen"][method]["keys"] == {"lr": best["lr"], "optimizer": best["optimizer"]}
    for name in ("tuning.csv", "tuning.md", "tuning.png"):
        assert (out / "tuning" / "t" / name).stat().st_size > 0
    metrics = [json.loads(p.read_text()) for p in (out / "runs").glob("*/metrics.json")]
    assert len(metrics) == 4
    for result in metrics:  # every seed trained with its method's choice, and the record says so
        chosen = record["chosen"][result["method"]]["keys"]
        assert result["training_recipe"]["name"] == chosen["optimizer"]
        assert result["training_recipe"]["lr"] == chosen["lr"]
        assert result["generation_protocol"]["tuned"] == chosen
        assert "learning_check" in result
    train_dirs = sorted(p.name for p in (out / "train").iterdir())
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(out)]) == 0  # complete: nothing is tuned or trained again
    assert sorted(p.name for p in (out / "train").iterdir()) == train_dirs
    assert "0 job(s) run" in capsys.readouterr().out


def test_pinned_choices_need_no_tuning_and_unpinned_ones_say_so():
    raw = {"methods": ["kl", "dfm"], "samplers": [{"name": "basic", "nfe": 2}],
           "tasks": [{"name": "unconditional", "n": 2}], "data": {"vocab_size": 512, "seq_len": 32},
           "tune": {"grid": {"lr": [1e-3, 1e-2]}, "chosen": {"kl": {"lr": 1e-2}, "dfm": {"lr": 1e-3}}}}
    exp = expand(raw)
    assert {(u.method, u.train["lr"]) for u in exp.units} == {("kl", 1e-2), ("dfm", 1e-3)}
    del raw["tune"]["chosen"]["dfm"]
    with pytest.raises(ConfigError, match="method 'dfm' has no tuned recipe yet"):
        expand(raw)


@pytest.mark.parametrize("tune,message", [
    ({"grid": {}}, "tune.grid is empty"),
    ({"grid": {"lr": []}}, "tune.grid.lr is empty"),
    ({"grid": {"lr": [1e-3]}, "select": "bleu"}, "unknown selection rule 'bleu'; known: val_loss"),
    ({"grid": {"optimizer": ["sgd"]}}, "unknown training recipe 'sgd'; known: adamw, kl-flow-muon, muon"),
    ({"grid": {"steps": [10]}}, "tune.grid cannot search 'steps'"),
    ({"grid": {"lr": [1e-3]}, "methods": ["sedd"]}, "tune.methods names 'sedd', not a method of this file"),
    ({"grid": {"lr": [1e-3]}, "chosen": {"kl": {"optimizer": "adamw"}}}, "tune.chosen.kl must give the grid's keys"),
    ("fast", "tune must be a mapping"),
])
def test_bad_tuning_blocks_are_one_line(tune, message):
    with pytest.raises(ConfigError, match=message):
        parse_tune(tune, ["kl", "dfm"])


def test_bad_tuning_block_from_the_cli_exits_2_and_creates_nothing(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"],
                                    "tune": {"grid": {"lr": [1e-3]}, "select": "bleu"}}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown selection rule 'bleu'" in err[0]
    assert not (tmp_path / "out").exists()


def test_selection_flags_a_choice_at_the_edge_and_skips_diverged_candidates():
    spec = parse_tune({"grid": {"lr": [1e-3, 1e-2, 1e-1]}}, ["kl"])
    rows = [{"method": "kl", "lr": 1e-3, "val_loss": 3.0, "unit": "a"},
            {"method": "kl", "lr": 1e-2, "val_loss": 2.0, "unit": "b"},
            {"method": "kl", "lr": 1e-1, "val_loss": None, "unit": "c"}]
    chosen = select(rows, spec)["kl"]
    assert chosen["keys"] == {"lr": 1e-2} and chosen["at_edge"] == []
    rows[1]["val_loss"] = 9.0
    assert select(rows, spec)["kl"]["at_edge"] == ["lr"]
