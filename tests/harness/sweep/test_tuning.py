"""Tuning as a stage of a sweep: every method searched on the same grid within the same budget,
the best of each chosen by its own held-out loss, then every seed trained with it."""

import json
import shutil

import pytest
import yaml

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.engine.plugins import load_all
from pathbench.sweep.experiment import expand
from pathbench.sweep.tuning import parse_tune, select, student_experiment, tune_name, tuning_experiment

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


STUDENT = {"name": "flowmap", "options": {"teacher": "@kl"}, "train": {"lr": 3e-4}}  # its own lr: not in the grid


def test_a_students_candidates_distil_the_teachers_chosen_candidate_unit():
    """The teacher unit of a student candidate's expansion is the teacher's chosen tuning
    candidate itself (same keys, steps, seed: the same id), under every protocol."""
    raw = {"methods": ["kl", "dfm", STUDENT], "samplers": [{"name": "basic", "nfe": 2}],
           "tasks": [{"name": "unconditional", "n": 2}], "data": {"vocab_size": 512, "seq_len": 32},
           "train": {"steps": 100}, "protocol": ["kl-flow", "plain"], "seeds": [0, 1],
           "tune": {"grid": {"lr": [1e-3, 1e-2]}, "steps": 10, "seed": 1}}
    spec = parse_tune(raw["tune"], [tune_name(m) for m in raw["methods"]])
    assert tune_name(STUDENT) == "flowmap@kl" and spec.covers("flowmap@kl")
    first, rows = tuning_experiment(raw, spec, expand)
    assert {r["method"] for r in rows} == {"kl", "dfm"}  # the students come second
    units, student_rows = student_experiment(raw, spec, expand, {"kl": {"lr": 1e-2}, "dfm": {"lr": 1e-3}})
    assert len(student_rows) == 4 and {r["method"] for r in student_rows} == {"flowmap@kl"}
    for row in student_rows:  # one kl candidate per protocol, the chosen lr's
        (teacher,) = [r["unit"] for r in rows if r["method"] == "kl" and r["lr"] == 1e-2
                      and r["protocol"] == row["protocol"]]
        assert row["teacher"] == teacher
    first_ids = {u.id for u in first}
    teachers = [u for u in units if u.method == "kl"]
    assert len(teachers) == 2 and all(u.id in first_ids for u in teachers)  # nothing new to train for them
    students = [u for u in units if u.method == "flowmap"]
    assert {(u.train["lr"], u.train["steps"], u.seed) for u in students} == {(1e-3, 10, 1), (1e-2, 10, 1)}
    assert all(u.protocol.tuned == {"lr": u.train["lr"]} for u in students)


def test_a_student_is_pinned_under_name_at_teacher_over_its_own_lr():
    raw = {"methods": ["kl", STUDENT], "samplers": [{"name": "basic", "nfe": 2}],
           "tasks": [{"name": "unconditional", "n": 2}], "data": {"vocab_size": 512, "seq_len": 32},
           "tune": {"grid": {"lr": [1e-3, 1e-2]}, "chosen": {"kl": {"lr": 1e-2}, "flowmap@kl": {"lr": 1e-3}}}}
    student = next(u for u in expand(raw).units if u.method == "flowmap")
    assert student.train["lr"] == 1e-3 and student.protocol.tuned == {"lr": 1e-3}  # the choice wins
    del raw["tune"]["chosen"]["flowmap@kl"]
    with pytest.raises(ConfigError, match="method 'flowmap@kl' has no tuned recipe yet"):
        expand(raw)
    raw["tune"]["methods"] = ["kl"]  # not covered: it keeps its own lr
    assert next(u for u in expand(raw).units if u.method == "flowmap").train["lr"] == 3e-4
    with pytest.raises(ConfigError, match="tune.chosen names 'flowmap', not a method of this file; its methods: "
                                          "kl, flowmap@kl"):
        parse_tune({"grid": {"lr": [1e-3]}, "chosen": {"flowmap": {"lr": 1e-3}}}, ["kl", "flowmap@kl"])


def test_a_sweep_tunes_a_flowmap_student_after_its_teacher(tmp_path, data_cache, tiny_lm, bbc_small, capsys):
    path = tuned_grid(tmp_path, data_cache, tiny_lm, {"grid": {"lr": [1e-3, 1e-2]}, "steps": 3})
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec, "methods": ["kl", STUDENT], "seeds": [0]}))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0  # the plan: teachers, then students
    text = capsys.readouterr().out
    assert "tuning first: 2 candidate unit(s)" in text and "then 2 flow-map student candidate(s)" in text
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    record = json.loads((out / "tuning" / "t" / "tuning.json").read_text())
    assert set(record["chosen"]) == {"kl", "flowmap@kl"}
    teacher = record["chosen"]["kl"]["unit"]
    student_rows = [r for r in record["rows"] if r["method"] == "flowmap@kl"]
    assert len(student_rows) == 2 and all(r["teacher"] == teacher for r in student_rows)
    for row in student_rows:  # distilled from the teacher's chosen candidate, selected by its own held-out loss
        meta = json.loads((out / "train" / row["unit"] / "meta.json").read_text())
        assert meta["method_options"]["teacher"] == str(out / "train" / teacher)
        logged = [json.loads(x) for x in (out / "train" / row["unit"] / "metrics.jsonl").read_text().splitlines()]
        assert row["val_loss"] == [r["val_loss"] for r in logged if "val_loss" in r][-1] and row["status"] == "complete"
    best = min(student_rows, key=lambda r: r["val_loss"])
    assert record["chosen"]["flowmap@kl"]["keys"] == {"lr": best["lr"]}
    assert "flowmap@kl" in (out / "tuning" / "t" / "tuning.md").read_text()
    # no teacher unit beyond the candidates: 2 kl + 2 student candidates, then the grid's kl and student
    train_dirs = sorted(p.name for p in (out / "train").iterdir())
    assert len(train_dirs) == 6
    metrics = {r["method"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*/metrics.json"))}
    assert set(metrics) == {"kl", "flowmap"}
    chosen = record["chosen"]["flowmap@kl"]["keys"]
    assert metrics["flowmap"]["training_recipe"]["lr"] == chosen["lr"] != 3e-4  # over its own lr
    assert metrics["flowmap"]["generation_protocol"]["tuned"] == chosen
    # a folder tuned before students were (its tuning.json lacks them), with one student candidate
    # lost: the tuning runs again, every complete unit skipped, and trains only that candidate
    record["rows"] = [r for r in record["rows"] if r["method"] != "flowmap@kl"]
    del record["chosen"]["flowmap@kl"]
    (out / "tuning" / "t" / "tuning.json").write_text(json.dumps(record))
    shutil.rmtree(out / "train" / student_rows[0]["unit"])
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "1 job(s) would be submitted" in capsys.readouterr().out
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "sweep t (tuning): 2 units, 0 runs" in captured.err and "nothing to do" in captured.err
    assert "sweep t (tuning students): 3 units, 0 runs" in captured.err
    assert "2 of 3 units already complete" in captured.err and "0 job(s) run" in captured.out
    assert sorted(p.name for p in (out / "train").iterdir()) == train_dirs
    again = json.loads((out / "tuning" / "t" / "tuning.json").read_text())
    assert again["chosen"]["flowmap@kl"]["keys"] == chosen
