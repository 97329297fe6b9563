"""Experiment files, local sweeps that survive being killed, and the SLURM submission."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.engine.plugins import load_all
from pathbench.sweep.dispatch import UnitJob, jobs_for, make_executor, run_complete
from pathbench.sweep.experiment import expand, load_experiment
from pathbench.sweep.tuning import tune_name

load_all()  # built-in paths, methods and tasks, as the CLI has them
ROOT = Path(__file__).parents[3]


def grid(tmp_path, data_cache, tiny_lm, steps=20, **extra):
    spec = {
        "name": "t", "preset": "tiny",
        "data": {"corpus": "bbc", "vocab_size": 512, "seq_len": 32, "cache_dir": str(data_cache)},
        "train": {"steps": steps, "batch_size": 8, "eval_every": 10, "ckpt_every": 5, "progress": False},
        "methods": ["kl", "linear"], "samplers": [{"name": "basic", "nfe": [2, 4]}], "seeds": [0],
        "tasks": [{"name": "unconditional", "n": 4, "scorers": [f"hf:{tiny_lm}"]}],
        "executor": {"kind": "local", "timeout_min": 20}, **extra,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def metrics(out):
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "runs").glob("*/metrics.json")}


def test_two_by_two_sweep_runs_locally_end_to_end(tmp_path, data_cache, tiny_lm, bbc_small, capsys):
    path, out = grid(tmp_path, data_cache, tiny_lm), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    lines = capsys.readouterr().err.strip().splitlines()  # progress: one line per event, on stderr
    assert lines[0] == f"sweep t: 2 units, 4 runs -> {out}; starting; 1 unit(s) at a time"
    assert "units 0/2, runs 0/4 | kl seed 0 kl-flow: started, trains 20 steps, then evaluates 2 of 2 runs" in lines[1]
    assert lines[1].endswith("| rest: estimate after the first unit")
    done = [line for line in lines if ": done in " in line]
    assert len(done) == 2 and "units 1/2, runs 2/4 | kl seed 0 kl-flow: done in" in done[0]
    assert "units 2/2, runs 4/4 | linear seed 0 kl-flow: done in" in done[1] and done[1].endswith("| rest 0s")
    assert "| rest ~" in next(line for line in lines if "linear seed 0 kl-flow: started" in line)  # kl's time
    assert lines[-1].startswith("all done: 2/2 units, 4/4 runs complete in ")
    logged = (out / "sweep.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in logged] == lines  # the same lines, time-stamped
    results = metrics(out)
    assert len(results) == 4 and all(r["status"] == "complete" for r in results.values())
    assert {(r["method"], r["sampler"]["nfe"]) for r in results.values()} == {
        ("kl", 2), ("kl", 4), ("linear", 2), ("linear", 4)}
    for run_id, r in results.items():
        assert r["run_id"] == run_id and r["metrics"]["entropy"] > 0 and "gen_ppl" in r["reference"]
        # no protocol in the file: kl-flow, resolved into the sampler and recorded with the result
        assert r["generation_protocol"]["name"] == "kl-flow" and r["sampler"]["final_at"] == "t_max"
        assert r["generation_protocol"]["sampler"] == {"top_k": 1, "final": "argmax", "final_at": "t_max"}
        assert (out / "runs" / run_id / "config.yaml").exists() and (out / "runs" / run_id / "samples.jsonl").exists()
        assert "metrics {" in (out / "runs" / run_id / "eval.log").read_text()
    assert len(list((out / "train").iterdir())) == 2  # NFE settings share their unit's checkpoint
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    csv_rows = (tmp_path / "report" / "leaderboard.csv").read_text().strip().splitlines()
    assert len(csv_rows) == 1 + 4  # header + the four runs
    board = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "real text" in board and board.count("| kl ") >= 2 and board.count("| linear ") >= 2
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(out)]) == 0  # everything complete: nothing runs
    captured = capsys.readouterr()
    assert "0 job(s) run; 4/4 runs complete" in captured.out
    assert captured.err == f"sweep t: 2 units, 4 runs -> {out}; all 2 units and 4 runs already complete, nothing to do\n"


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path, data_cache, tiny_lm, bbc_small, capsys):
    path, out = grid(tmp_path, data_cache, tiny_lm, steps=60), tmp_path / "out"
    cmd = [sys.executable, "-m", "pathbench.cli", "sweep", str(path), "--out", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    pointer = None
    while time.time() < deadline and proc.poll() is None:  # wait for the first unit's 2nd checkpoint
        found = list((out / "train").glob("*/checkpoint.json")) if (out / "train").exists() else []
        if found and json.loads(found[0].read_text())["step"] >= 10:
            pointer = found[0]
            break
        time.sleep(0.2)
    assert pointer is not None and proc.poll() is None, "the sweep finished before it could be killed"
    os.killpg(proc.pid, signal.SIGTERM)  # the sweep and its submitit workers
    proc.wait(timeout=60)
    time.sleep(1)
    killed_at = json.loads(pointer.read_text())["step"]
    assert 10 <= killed_at < 60
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "0 of 2 units already complete (0 of 4 runs), resuming; 1 unit(s) partly trained" in err
    resumed = re.search(r"resumes training at step (\d+)/60, then evaluates 2 of 2 runs", err)
    assert resumed and int(resumed.group(1)) >= killed_at  # (a surviving worker may have saved one more)
    results = metrics(out)
    assert len(results) == 4 and all(r["status"] == "complete" for r in results.values())
    for unit in (out / "train").iterdir():
        steps = [json.loads(line)["step"] for line in (unit / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == 60  # resumed, no step logged twice
    before = {k: v for k, v in ((p, p.read_bytes()) for p in (out / "runs").glob("*/metrics.json"))}
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert before == {p: p.read_bytes() for p in (out / "runs").glob("*/metrics.json")}  # untouched


def test_parallel_units_write_the_same_bytes_and_wait_for_their_scorer(tmp_path, data_cache, tiny_lm, bbc_small,
                                                                      capsys):
    """Two units at once, one torch thread each, write the same samples and metrics as one at a
    time; kl, listed first, is scored by the sweep's own ar model and starts once ar is trained."""
    out, files = tmp_path / "out", {}
    for parallel in (1, 2):
        path = grid(tmp_path, data_cache, tiny_lm, steps=10, methods=["kl", "ar"],
                    samplers=[{"name": "basic", "nfe": 2}],
                    tasks=[{"name": "unconditional", "n": 4, "scorers": ["self:@ar"]}],
                    executor={"kind": "local", "timeout_min": 20, "parallel": parallel, "threads": 1})
        assert main(["sweep", str(path), "--out", str(out)]) == 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[0].endswith(f"starting; {parallel} unit(s) at a time, 1 thread(s) each")
        started = [line.split("| ")[1].split(":")[0] for line in lines if ": started, " in line]
        assert started == ["ar seed 0", "kl seed 0 kl-flow"]
        assert "kl seed 0 kl-flow: waits for ar seed 0 to finish training" in lines[1]
        assert lines[-1].startswith("all done: 2/2 units, 2/2 runs complete")
        files[parallel] = {p.relative_to(out): same_commit(p) for p in (out / "runs").glob("*/*")
                           if p.name in ("metrics.json", "samples.jsonl")}
        # the real text is scored once per sweep and scorer, by whichever unit needs it first
        stored = [json.loads(p.read_text()) for p in (out / "reference").glob("*.json")]
        assert len(stored) == 1 and json.loads(stored[0]["key"][0])[2].startswith(f"self:{out / 'train'}")
        rows = [json.loads(p.read_text())["reference"] for p in (out / "runs").glob("*/metrics.json")]
        assert rows and all(row == stored[0]["reference"] for row in rows)
        shutil.rmtree(out)  # the same folder for both: metrics.json names it
    assert len(files[1]) == 4 and files[1] == files[2]


def test_a_stored_reference_row_is_reused_until_its_scorer_is_retrained(tmp_path):
    from types import SimpleNamespace

    from pathbench.tasks.adapters.reference import _stored_reference

    scorer_run = tmp_path / "ar"
    scorer_run.mkdir()
    (scorer_run / "checkpoint.json").write_text('{"step": 10}')
    task, calls = SimpleNamespace(scorer_spec=f"self:{scorer_run}", device="cpu"), []

    def compute():
        calls.append(1)
        return {"gen_ppl": 10.0 + len(calls)}

    store = tmp_path / "reference"
    assert _stored_reference(store, "k", task, compute) == {"gen_ppl": 11.0}
    assert _stored_reference(store, "k", task, compute) == {"gen_ppl": 11.0} and len(calls) == 1
    assert _stored_reference(store, "other", task, compute) == {"gen_ppl": 12.0}  # another data/n/scorer
    time.sleep(0.01)
    (scorer_run / "checkpoint.json").write_text('{"step": 20}')  # the scorer was trained further
    assert _stored_reference(store, "k", task, compute) == {"gen_ppl": 13.0} and len(calls) == 3


def same_commit(path):
    """The file's bytes; in metrics.json the git revision is blanked (a commit made by someone
    else between the two sweeps is not a difference of the results) and the measured cost of
    generation dropped (wall times and thread counts are measurements, not results)."""
    data = path.read_bytes()
    if path.suffix != ".json":
        return data
    record = json.loads(data)
    record.pop("generation", None)
    return re.sub(rb'"git_revision": "[0-9a-f]*"', b'"git_revision": ""', json.dumps(record, sort_keys=True).encode())


def test_dry_run_lists_runs_and_ids_are_stable(tmp_path, data_cache, tiny_lm, capsys):
    path = grid(tmp_path, data_cache, tiny_lm, samplers=[{"name": "hybrid", "nfe": 4, "t_star": [0.1, 0.28]},
                                                         {"name": "basic", "nfe": [2, 4]}])
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 training units, 8 runs" in text and text.count("[pending]") == 8
    a, b = load_experiment(path), load_experiment(path)
    assert [r.id for r in a.runs] == [r.id for r in b.runs] and len({r.id for r in a.runs}) == 8
    assert not (tmp_path / "o").exists()


def test_baselines_get_their_own_samplers():
    exp = expand({"methods": ["kl", "dfm", "ar"], "samplers": [{"name": "hybrid", "nfe": [8, 16]}],
                  "tasks": [{"name": "unconditional", "scorers": ["smollm2"]}], "data": {"seq_len": 32}})
    by_method = {}
    for run in exp.runs:
        by_method.setdefault(run.unit.method, []).append((run.sampler["name"], run.sampler["nfe"]))
    assert by_method == {"kl": [("hybrid", 8), ("hybrid", 16)], "dfm": [("euler", 8), ("euler", 16)],
                         "ar": [("ancestral", 31)]}


@pytest.mark.parametrize("raw, message", [
    ({"methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"], "epochs": 3},
     "unknown key 'epochs' in experiment; valid: data, executor, methods"),
    ({"methods": [], "samplers": [{"name": "basic"}], "tasks": ["unconditional"]}, "no 'methods'"),
    ({"methods": ["kl"], "samplers": [{"name": "basic", "nfe": []}], "tasks": ["unconditional"]},
     "sampler 'basic' has an empty axis 'nfe'"),
    ({"methods": ["kl"], "samplers": [{"name": "basic", "steps": 3}], "tasks": ["unconditional"]},
     "unknown key 'steps' in sampler 'basic'"),
    ({"methods": ["kll"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"]}, "unknown method 'kll'"),
    ({"methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["translate"]}, "unknown task 'translate'"),
    ({"methods": ["kl"], "samplers": [{"name": "basic", "t_star": 2}], "tasks": ["unconditional"]}, r"t\* = 2"),
    ({"methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"],
      "executor": {"kind": "cloud"}}, "unknown executor 'cloud'; known: local, slurm, debug"),
    ({"methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"],
      "executor": {"parallel": 2, "threads": 0}}, "executor.threads = 0 must be a positive integer"),
    ({"methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"],
      "executor": {"parallel": "2"}}, "executor.parallel = '2' must be a positive integer"),
])
def test_bad_experiment_files(raw, message):
    with pytest.raises(ConfigError, match=message):
        expand(raw, default_name="experiment")


def test_slurm_submission_parameters_and_pickled_callable(tmp_path, monkeypatch):
    """No cluster here: a fake srun makes submitit build its sbatch script, which is checked."""
    import cloudpickle
    import submitit

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = {"timeout_min": 90, "slurm": {"partition": "gpu", "gpus_per_task": 4, "cpus_per_task": 12,
                                            "array_parallelism": 16, "account": "lab"}}
    executor = make_executor("slurm", tmp_path / "submitit", settings)
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --cpus-per-task=12", "#SBATCH --time=90", "#SBATCH --account=lab",
                 "#SBATCH --signal=USR2@90"):
        assert line in script, line
    exp = expand({"methods": ["kl"], "samplers": [{"name": "basic", "nfe": 4}],
                  "tasks": [{"name": "unconditional", "scorers": ["smollm2"]}]})
    (job,) = jobs_for(exp, tmp_path / "out")
    clone = cloudpickle.loads(cloudpickle.dumps(job))
    assert isinstance(clone, UnitJob) and clone.unit == job.unit and clone.runs == job.runs
    requeue = clone.checkpoint()  # what submitit calls on preemption or timeout
    assert isinstance(requeue, submitit.helpers.DelayedSubmission) and requeue.function is clone
    assert not run_complete(tmp_path / "out" / "runs" / job.runs[0]["id"])


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiment_files_expand(path):
    raw = yaml.safe_load(path.read_text())
    tune = raw.get("tune") or {}
    # a file whose search has not run yet (no tune.chosen) expands as its sweep will: at a choice
    # from its grid for every method it tunes (here the grid's first candidate)
    first = {k: v[0] for k, v in (tune.get("grid") or {}).items()}
    tuned = {tune_name(m): first for m in raw["methods"]} if tune and "chosen" not in tune else None
    exp = load_experiment(path, tuned=tuned)
    assert exp.runs and {r.unit.method for r in exp.runs} == {u.method for u in exp.units}
    for run in exp.runs:
        if run.scorer and run.scorer.startswith("self:@"):  # the sweep's own AR model scores
            assert any(u.method == run.scorer[6:] for u in exp.units)


def test_self_scorer_points_at_the_sweeps_own_unit(tmp_path):
    exp = expand({"methods": ["ar", "kl"], "samplers": [{"name": "basic", "nfe": 4}],
                  "tasks": [{"name": "unconditional", "scorers": ["self:@ar"]}]})
    (ar_unit,) = [u for u in exp.units if u.method == "ar"]
    specs = [s for job in jobs_for(exp, tmp_path) for s in job.runs]
    assert {s["scorer_resolved"] for s in specs} == {f"self:{tmp_path / 'train' / ar_unit.id}"}
    with pytest.raises(ConfigError, match="needs a 'ar' method with seed 0"):
        jobs_for(expand({"methods": ["kl"], "samplers": [{"name": "basic", "nfe": 4}],
                         "tasks": [{"name": "unconditional", "scorers": ["self:@ar"]}]}), tmp_path)


def test_a_students_teacher_is_the_sweeps_own_unit_and_keeps_its_own_lr(tmp_path):
    exp = expand({"methods": ["kl", {"name": "flowmap", "options": {"teacher": "@kl"}, "train": {"lr": 1e-3}}],
                  "samplers": [{"name": "basic", "nfe": 4}, {"name": "flowmap", "nfe": [1, 2]}],
                  "train": {"lr": 3e-3}, "tasks": [{"name": "unconditional", "scorers": ["smollm2"]}]})
    kl, student = exp.units
    assert (kl.train["lr"], student.train["lr"]) == (3e-3, 1e-3)
    assert student.options["teacher"] == "@kl" and student.options["path"] == "kl"
    assert sorted(r.sampler["nfe"] for r in exp.runs if r.unit is student) == [1, 2]
    jobs = {job.unit["method"]: job for job in jobs_for(exp, tmp_path)}
    assert jobs["flowmap"].train_options["teacher"] == str(tmp_path / "train" / kl.id)
    assert jobs["flowmap"].unit["options"]["teacher"] == "@kl"  # the id keeps the @ name
    with pytest.raises(ConfigError, match="teacher '@linear' needs a 'linear' method with seed 0"):
        jobs_for(expand({"methods": [{"name": "flowmap", "options": {"teacher": "@linear"}}],
                         "samplers": [{"name": "flowmap", "nfe": 1}],
                         "tasks": [{"name": "unconditional", "scorers": ["smollm2"]}]}), tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'optoins' in method 'kl'"):
        expand({"methods": [{"name": "kl", "optoins": {}}], "samplers": [{"name": "basic", "nfe": 4}],
                "tasks": ["unconditional"]})


class FakeJob:
    """A submitit job whose unit "trains" (writes its checkpoint pointer) after ``polls`` looks."""

    def __init__(self, job, out, log, polls, fail):
        self.job, self.out, self.log, self.polls, self.fail = job, out, log, polls, fail
        self.job_id = job.unit["method"]

    def done(self):
        self.polls -= 1
        if self.polls > 0:
            return False
        if not self.fail:
            train = self.out / "train" / self.job.unit_id
            train.mkdir(parents=True, exist_ok=True)
            (train / "checkpoint.json").write_text(json.dumps({"step": self.job.unit["train"]["steps"]}))
            for spec in self.job.runs:
                (self.out / "runs" / spec["id"]).mkdir(parents=True, exist_ok=True)
                (self.out / "runs" / spec["id"] / "metrics.json").write_text('{"status": "complete"}')
        self.log.append(("end", self.job_id))
        return True

    def result(self):
        if self.fail:
            raise RuntimeError("boom")


class FakeExecutor:
    def __init__(self, out, polls, fail=()):
        self.out, self.polls, self.fail, self.log = out, polls, fail, []

    def submit(self, job):
        self.log.append(("start", job.unit["method"]))
        return FakeJob(job, self.out, self.log, self.polls[job.unit["method"]], job.unit["method"] in self.fail)


def fake_sweep(tmp_path, raw, parallel, polls, fail=()):
    from pathbench.sweep import scheduler
    from pathbench.sweep.progress import Progress

    exp, out = expand(raw), tmp_path / "out"
    jobs = jobs_for(exp, out, threads=1)
    ex = FakeExecutor(out, polls, fail)
    progress = Progress(exp, out, [job.unit_id for job in jobs], parallel)
    scheduler.POLL_S["fake"] = 0.0
    failed = scheduler.run_units(ex, "fake", jobs, out, parallel, progress)
    return ex.log, failed


def test_units_keep_parallel_in_flight_and_start_after_the_units_they_use(tmp_path, capsys):
    """A slot is refilled as soon as a unit ends (no waves), and a student listed before its
    teacher starts only once the teacher is trained."""
    raw = {"methods": [{"name": "flowmap", "options": {"teacher": "@kl"}}, "kl", "linear", "dfm"],
           "samplers": [{"name": "basic", "nfe": 4}, {"name": "flowmap", "nfe": 1}],
           "tasks": [{"name": "unconditional", "scorers": ["smollm2"]}]}
    log, failed = fake_sweep(tmp_path, raw, 2, {"kl": 2, "linear": 8, "flowmap": 2, "dfm": 2})
    assert not failed
    assert log[:4] == [("start", "kl"), ("start", "linear"), ("end", "kl"), ("start", "flowmap")]
    assert log.index(("start", "dfm")) < log.index(("end", "linear"))  # linear still runs meanwhile
    in_flight = most = 0
    for what, _ in log:
        in_flight += 1 if what == "start" else -1
        most = max(most, in_flight)
    assert most == 2
    err = capsys.readouterr().err
    assert "flowmap seed 0: waits for kl seed 0 kl-flow to finish training" in err
    assert "units 4/4, runs" in err.strip().splitlines()[-1]


def test_a_unit_whose_scorer_unit_failed_is_not_run(tmp_path, capsys):
    raw = {"methods": ["kl", "ar"], "samplers": [{"name": "basic", "nfe": 4}],
           "tasks": [{"name": "unconditional", "scorers": ["self:@ar"]}]}
    log, failed = fake_sweep(tmp_path, raw, 2, {"kl": 1, "ar": 2}, fail=("ar",))
    assert log == [("start", "ar"), ("end", "ar")]  # ar scores its own runs: no wait on itself
    assert len(failed) == 2 and "boom" in failed[0] and "not run" in failed[1]
    err = capsys.readouterr().err
    assert "ar seed 0: FAILED after 0s: boom" in err
    assert "kl seed 0 kl-flow: not run, ar seed 0 did not finish training" in err


def test_a_unit_started_in_the_same_round_as_its_user_is_waited_for(tmp_path, capsys):
    """ar (listed first) starts in the first round; kl, scored by self:@ar, waits for it — it is
    not dropped as if ar would never train (the first quick sweep under parallel 2 did)."""
    raw = {"methods": ["ar", "kl", "linear"], "samplers": [{"name": "basic", "nfe": 4}],
           "tasks": [{"name": "unconditional", "scorers": ["self:@ar"]}]}
    log, failed = fake_sweep(tmp_path, raw, 2, {"ar": 2, "kl": 1, "linear": 1})
    assert not failed
    assert log[:2] == [("start", "ar"), ("end", "ar")] and ("start", "kl") in log and ("start", "linear") in log
    assert ("2 units wait for the models they use to finish training: kl seed 0 kl-flow, linear seed 0 kl-flow "
            "for ar seed 0") in capsys.readouterr().err


def test_an_experiment_names_its_plugins_and_the_sweep_saves_the_ones_it_ran_with(tmp_path, monkeypatch):
    from pathbench.sweep.dispatch import saved_experiment

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    raw = {"name": "p", "plugins": ["unigram_plugin"], "methods": ["unigram"],
           "samplers": [{"name": "independent"}], "tasks": [{"name": "unconditional", "n": 2}]}
    exp = expand(raw)
    assert exp.plugins == ["unigram_plugin"] and [u.method for u in exp.units] == ["unigram"]
    with pytest.raises(ConfigError, match="experiment 'q' needs plugin module 'no_such_plugin'"):
        expand({**raw, "name": "q", "plugins": ["no_such_plugin"]})
    text = "# my grid\nname: p\nmethods: [unigram]\n"
    assert saved_experiment(text, [], ()) == text
    saved = saved_experiment(text, [], ("unigram_plugin",))
    assert saved.startswith(text) and yaml.safe_load(saved)["plugins"] == ["unigram_plugin"]  # comments kept
    listed = "name: p\nplugins: [a]\n"
    assert yaml.safe_load(saved_experiment(listed, ["a"], ("a", "b")))["plugins"] == ["a", "b"]


def test_the_evaluation_batch_is_settable_and_names_its_runs_only_when_set(tmp_path, data_cache, tiny_lm):
    raw = yaml.safe_load(grid(tmp_path, data_cache, tiny_lm).read_text())
    plain = expand(raw).runs
    raw["tasks"][0]["batch_size"] = 4
    batched = expand(raw).runs
    assert [r.batch_size for r in plain] == [None] * len(plain) and "batch_size" not in plain[0].config()
    assert [r.batch_size for r in batched] == [4] * len(batched) and batched[0].config()["batch_size"] == 4
    assert {r.id for r in plain}.isdisjoint(r.id for r in batched)  # other draws, other runs
    raw["tasks"][0]["batch_size"] = 0
    with pytest.raises(ConfigError, match=r"task 'unconditional': batch_size = 0 must be an integer >= 1"):
        expand(raw)


def test_row_seeding_names_its_runs_and_a_memory_budget_does_not(tmp_path, data_cache, tiny_lm):
    raw = yaml.safe_load(grid(tmp_path, data_cache, tiny_lm).read_text())
    plain = expand(raw).runs
    raw["tasks"][0].update(seeding="row", memory_gb=40)
    rows = expand(raw).runs
    assert [r.seeding for r in rows] == ["row"] * len(rows) and rows[0].config()["seeding"] == "row"
    assert "seeding" not in plain[0].config() and "memory_gb" not in rows[0].config()
    raw["tasks"][0].pop("seeding")
    assert [r.id for r in expand(raw).runs] == [r.id for r in plain]  # an execution setting, as the device
    raw["tasks"][0]["seeding"] = "sample"
    with pytest.raises(ConfigError, match="unknown seeding 'sample'; known: batch, row"):
        expand(raw)
    raw["tasks"][0].update(seeding="row", memory_gb="plenty")
    with pytest.raises(ConfigError, match="memory_gb = 'plenty' must be a number of GB"):
        expand(raw)


SHARD_SCRIPT = """
import json, os, sys
from pathlib import Path
from pathbench.engine.plugins import load_all
from pathbench.sweep.dispatch import jobs_for
from pathbench.sweep.experiment import load_experiment
load_all()
exp = load_experiment(Path(sys.argv[1]))
job = next(j for j in jobs_for(exp, Path(sys.argv[2])) if j.unit["method"] == "kl")
print("RANK", os.environ["RANK"], json.dumps(job()))
"""


def test_a_units_runs_are_shared_over_its_ranks_and_score_as_on_one(tmp_path, data_cache, tiny_lm, bbc_small):
    """Two DDP ranks (gloo, CPU) train the unit, wait for rank 0's final checkpoint and evaluate
    half of its runs each; evaluated again by one process, every run gives the same metrics."""
    path, out = grid(tmp_path, data_cache, tiny_lm, steps=4,
                     samplers=[{"name": "basic", "nfe": [2, 3, 4]}]), tmp_path / "out"
    script = tmp_path / "shard.py"
    script.write_text(SHARD_SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                           str(path), str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr[-3000:]
    shares = dict(line.split(" ", 2)[1:] for line in done.stdout.splitlines() if line.startswith("RANK "))
    assert len(json.loads(shares["0"])) == 2 and len(json.loads(shares["1"])) == 1  # runs 0, 2 | run 1
    assert set(json.loads(shares["0"])).isdisjoint(json.loads(shares["1"]))
    sharded = {k: v for k, v in metrics(out).items()}
    assert len(sharded) == 3
    for run_id in sharded:
        shutil.rmtree(out / "runs" / run_id)
    load_all()
    for job in jobs_for(load_experiment(path), out):
        if job.unit["method"] == "kl":
            job()  # one process, trained already: evaluates all three
    for run_id, result in metrics(out).items():
        assert result["metrics"] == sharded[run_id]["metrics"] and result["reference"] == sharded[run_id]["reference"]


@pytest.mark.parametrize("experiment,results", [
    ("geodesic_ablation_cpu_quick", "geodesic_ablation_cpu"), ("geodesic_ablation_cpu", "geodesic_ablation_cpu/full"),
    ("oracle_ablation_cpu_small_v", "oracle_ablation_cpu/v64"), ("oracle_ablation_cpu", "oracle_ablation_cpu/v8192")])
def test_the_committed_results_carry_the_ids_their_experiment_files_expand_to(experiment, results):
    """A new train option must not rename the committed runs: a fresh `make` would otherwise
    retrain under new ids and rewrite every leaderboard row's run_id."""
    import csv

    load_all()
    root = Path(__file__).resolve().parents[3]
    expanded = {run.id for run in load_experiment(root / "experiments" / f"{experiment}.yaml").runs}
    with open(root / "results" / results / "leaderboard.csv", newline="") as handle:
        committed = {row["run_id"] for row in csv.DictReader(handle)}
    assert committed and committed <= expanded
