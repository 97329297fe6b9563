"""Bad experiment files are one line, exit 2, before anything is written; a sweep folder keeps
the record of every experiment that ran into it; a resumed sweep leaves no temp file."""

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.engine.plugins import load_all
from pathbench.sweep.dispatch import record_experiment, remove_stale_temps
from pathbench.sweep.experiment import expand
from pathbench.sweep.experiment_schema import check_experiment

load_all()
GOOD = {"name": "x", "data": {"corpus": "bbc", "vocab_size": 64, "seq_len": 16}, "train": {"steps": 2},
        "methods": ["kl"], "samplers": [{"name": "basic", "nfe": [2, 4]}], "seeds": [0],
        "tasks": [{"name": "unconditional", "n": 2}]}
BAD = [
    ({"seeds": ["zero"]}, "seeds[0] = 'zero' must be an integer >= 0"),
    ({"seeds": "zero"}, "seeds = 'zero' must be an integer >= 0"),
    ({"seeds": [True]}, "seeds[0] = True must be an integer"),
    ({"methods": 7}, "methods = 7 must be a list"),
    ({"methods": "kl"}, "methods = 'kl' must be a list"),
    ({"methods": [["kl"]]}, "methods[0] = ['kl'] must be a method name or a mapping"),
    ({"methods": [{"name": "kl", "options": [1]}]}, "methods[0].options = [1] must be a mapping"),
    ({"samplers": {"name": "basic"}}, "samplers = {'name': 'basic'} must be a list"),
    ({"samplers": ["basic"]}, "samplers[0] = 'basic' must be a mapping"),
    ({"samplers": [{"nfe": 4}]}, "samplers[0].name = None must be a sampler name"),
    ({"samplers": [{"name": "basic", "nfe": [4, "x"]}]}, "samplers[0].nfe[1] = 'x' must be an integer"),
    ({"samplers": [{"name": "basic", "top_k": {"a": 1}}]}, "samplers[0].top_k = {'a': 1} must be an integer or null"),
    ({"tasks": "unconditional"}, "tasks = 'unconditional' must be a list"),
    ({"tasks": [{"name": "unconditional", "n": "two"}]}, "tasks[0].n = 'two' must be an integer >= 1"),
    ({"tasks": [{"name": "unconditional", "scorers": 3}]}, "tasks[0].scorers = 3 must be a string or a list"),
    ({"tasks": [{"name": "unconditional", "options": "k=1"}]}, "tasks[0].options = 'k=1' must be a mapping"),
    ({"data": 5}, "data = 5 must be a mapping"),
    ({"train": ["steps"]}, "train = ['steps'] must be a mapping"),
    ({"tune": 3}, "tune = 3 must be a mapping"),
    ({"name": 3}, "name = 3 must be a non-empty string"),
    ({"protocol": 3}, "protocol = 3 must be a string or a list of strings"),
    ({"plugins": [1]}, "plugins[0] = 1 must be a non-empty string"),
    ({"executor": {"slurm": {"partition": ["a", "b"]}}}, "executor.slurm.partition = ['a', 'b'] must be a single"),
    ({"executor": "local"}, "executor = 'local' must be a mapping"),
    ({"methods": []}, "has no 'methods'"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_every_key_and_axis_item_is_type_checked(change, message):
    with pytest.raises(ConfigError, match="^experiment.*" + message.replace("[", r"\[").replace("(", r"\(")):
        expand({**GOOD, **change})


def test_a_good_file_passes_and_tune_is_left_to_its_own_checks():
    check_experiment({**GOOD, "tune": {"anything": [1, 2]}})
    assert len(expand(GOOD).runs) == 2


@pytest.mark.parametrize("change, message", BAD[:4] + BAD[7:8] + BAD[12:13])
def test_the_cli_says_one_line_exits_2_and_changes_no_byte(change, message, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "runs" / "abc").mkdir(parents=True)
    kept = {out / "experiment.yaml": b"name: first\n", out / "runs" / "abc" / "config.yaml": b"a: 1\n"}
    for path, data in kept.items():
        path.write_bytes(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    for args in (["sweep", str(path), "--out", str(out)], ["sweep", str(path), "--out", str(out), "--dry-run"],
                 ["prepare", "--experiment", str(path)]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (args, err)
    assert {p: p.read_bytes() for p in kept} == kept
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["experiment.yaml", "runs", "runs/abc",
                                                                             "runs/abc/config.yaml"]


def test_prepare_refuses_fewer_than_one_worker(capsys):
    for workers in ("0", "-3"):
        assert main(["prepare", "--workers", workers]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--workers {workers} must be an integer >= 1" in err[0]


def test_every_experiment_run_into_a_folder_keeps_its_record(tmp_path):
    first, second = "name: a\nmethods: [kl]\n", "name: b\nmethods: [linear]\n"
    one = record_experiment(tmp_path, "a", first)
    two = record_experiment(tmp_path, "b", second)
    again = record_experiment(tmp_path, "a", first)  # the same file again is the same record
    changed = record_experiment(tmp_path, "a", first + "seeds: [1]\n")  # same name, new content: a new record
    assert one == again and len({one, two, changed}) == 3
    assert one.name == f"a-{hashlib.sha1(first.encode()).hexdigest()[:12]}.yaml"
    assert [one.read_text(), two.read_text()] == [first, second]
    assert (tmp_path / "experiment.yaml").read_text() == first  # the first's, never overwritten
    assert sorted(p.name for p in (tmp_path / "experiments").iterdir()) == sorted([one.name, two.name, changed.name])


def test_a_resumed_sweep_removes_the_temp_files_a_kill_left(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    leftovers = [run / ".config.yaml.k2j3.tmp", run / ".metrics.json.x9.tmp"]
    for path in leftovers:
        path.write_text("half")
    remove_stale_temps(run)
    remove_stale_temps(tmp_path / "runs" / "missing")  # a folder not made yet: nothing to do
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]
    assert Path(run / "metrics.json").read_text() == "{}"


BAD_TASK_OPTIONS = [
    ({"name": "headline_lead", "options": {"top_k_list": [0, 2]}},
     "top_k_list = [0, 2] must be a non-empty list of positive ints"),
    ({"name": "humaneval_infill", "options": {"isolation": "chroot"}},
     "isolation = 'chroot' is not one of auto, bwrap, guard"),
    ({"name": "unconditional", "options": {"topk": 3}}, "unknown option 'topk' for task 'unconditional'; valid: "),
    ({"name": "unconditional", "scorers": ["smollm2", "gpt5"]}, "unknown scorer 'gpt5'; known: "),
    ({"name": "headline_lead", "options": {"top_k_list": [1, 4]}, "candidates": 2},
     "task 'headline_lead' needs at least 4 candidates (top_k_list = [1, 4]), got 2"),
]


@pytest.mark.parametrize("tune", [None, {"grid": {"lr": [1e-3, 1e-2]}, "steps": 2}], ids=["plain", "tuned-first"])
@pytest.mark.parametrize("task, message", BAD_TASK_OPTIONS)
def test_a_sweep_checks_task_options_before_anything_trains(task, message, tune, tmp_path, capsys):
    """What ``pathbench eval`` checks before a model loads, a sweep checks when it reads the file:
    a bad task option is one line naming it and the valid values, exit 2, and no sweep folder
    (no experiment.yaml, no training; with a tune block, not even its candidate units)."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "tasks": [{"name": "unconditional", "n": 2}, task],
                                    **({"tune": tune} if tune else {})}))
    out = tmp_path / "out"
    for args in (["sweep", str(path), "--out", str(out)], ["sweep", str(path), "--out", str(out), "--dry-run"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (args, err)
        assert not out.exists()
    with pytest.raises(ConfigError, match=re.escape(message)):
        expand({**GOOD, "tasks": [task]})  # the grid's own expansion refuses it too


def test_good_task_options_expand_and_a_sweeps_own_scorer_is_left_to_the_sweep():
    tasks = [{"name": "unconditional", "n": 2, "scorers": ["smollm2", "self:@kl"]},
             {"name": "headline_lead", "options": {"top_k_list": [1, 2], "bertscore": False}, "candidates": 2},
             {"name": "humaneval_infill", "options": {"ks": [1], "isolation": "guard"}}]
    assert len(expand({**GOOD, "tasks": tasks}).runs) == 2 * 4
