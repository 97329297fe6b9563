"""scripts/pin_tuning.py: a sweep's tuning choices pinned into its experiment file expand to the
same units the tuned sweep trained, and the table is copied beside the results."""

import json
import subprocess
import sys
from pathlib import Path

from pathbench.engine.plugins import load_all
from pathbench.sweep.experiment import expand, load_experiment

load_all()
ROOT = Path(__file__).parents[1]
FILE = """name: pin-me
# a comment that must stay
methods: [kl, dfm]
samplers: [{name: basic, nfe: 2}]
tasks: [{name: unconditional, n: 2}]
data: {vocab_size: 512, seq_len: 32}
tune:
  grid: {lr: [1.0e-3, 1.0e-2], optimizer: [adamw, kl-flow-muon]}
  select: val_loss
"""


def test_pinned_choices_expand_to_the_tuned_units(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(FILE)
    chosen = {"kl": {"keys": {"lr": 0.01, "optimizer": "kl-flow-muon"}}, "dfm": {"keys": {"lr": 0.001, "optimizer": "adamw"}}}
    source = tmp_path / "sweep" / "tuning" / "pin-me"
    source.mkdir(parents=True)
    (source / "tuning.json").write_text(json.dumps({"chosen": chosen}))
    (source / "tuning.md").write_text("table\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "pin_tuning.py"), str(experiment),
                           str(tmp_path / "sweep"), str(tmp_path / "results")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = experiment.read_text()
    assert "# a comment that must stay" in text and f"from: {tmp_path / 'results' / 'tuning' / 'pin-me'}" in text
    assert (tmp_path / "results" / "tuning" / "pin-me" / "tuning.md").read_text() == "table\n"
    import yaml

    tuned = expand(yaml.safe_load(FILE), tuned={m: c["keys"] for m, c in chosen.items()})
    assert {u.id for u in load_experiment(experiment).units} == {u.id for u in tuned.units}
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "pin_tuning.py"), str(experiment),
                            str(tmp_path / "sweep"), str(tmp_path / "results")], capture_output=True, text=True)
    assert again.returncode != 0 and "already pins" in again.stderr


def test_a_students_choice_is_pinned_under_its_tune_name(tmp_path):
    """A flow-map student's choice (``flowmap@kl``) is pinned as any method's, and the pinned file
    trains the student with it over its own lr, its record saying ``tuned``."""
    text = FILE.replace("methods: [kl, dfm]", 'methods: [kl, {name: flowmap, options: {teacher: "@kl"}, '
                                              "train: {lr: 3.0e-4}}]")
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(text)
    chosen = {"kl": {"keys": {"lr": 0.01, "optimizer": "kl-flow-muon"}},
              "flowmap@kl": {"keys": {"lr": 0.001, "optimizer": "adamw"}}}
    source = tmp_path / "sweep" / "tuning" / "pin-me"
    source.mkdir(parents=True)
    (source / "tuning.json").write_text(json.dumps({"chosen": chosen}))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "pin_tuning.py"), str(experiment),
                           str(tmp_path / "sweep"), str(tmp_path / "results")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'flowmap@kl: {lr: 0.001, optimizer: "adamw"}' in experiment.read_text()
    import yaml

    pinned = load_experiment(experiment)
    tuned = expand(yaml.safe_load(text), tuned={m: c["keys"] for m, c in chosen.items()})
    assert {u.id for u in pinned.units} == {u.id for u in tuned.units}
    student = next(u for u in pinned.units if u.method == "flowmap")
    assert student.train["lr"] == 0.001 and student.protocol.tuned == {"lr": 0.001, "optimizer": "adamw"}
