"""``pathbench sweep``: tune (an experiment with an unpinned ``tune:`` block), expand, skip what
is complete, submit the rest, wait (printing progress), report. The units run as
pathbench.sweep.dispatch jobs, in the order pathbench.sweep.scheduler starts them; the tuning
stage's candidates (pathbench.sweep.tuning) are such units too, trained before the grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pathbench.engine.plugins import load_all
from pathbench.sweep.dispatch import UnitJob, jobs_for, make_executor, record_experiment, saved_experiment
from pathbench.sweep.experiment import Experiment, check_tasks, expand, read_experiment
from pathbench.sweep.progress import Progress
from pathbench.sweep.scheduler import run_units
from pathbench.sweep.tuning import (
    is_student,
    parse_tune,
    read_rows,
    read_tuned,
    select,
    student_experiment,
    tune_name,
    tuned_keys,
    tuning_dir,
    tuning_experiment,
)
from pathbench.sweep.tuning_table import write_tuning

__all__ = ["sweep", "tune_stage"]


def default_threads(kind: str, settings: dict) -> int | None:
    """Torch threads per job: the file's ``threads``; else, for several local units at once, the
    cores shared out (each worker would otherwise take them all); else torch's own default."""
    if settings.get("threads"):
        return int(settings["threads"])
    parallel = int(settings.get("parallel", 1))
    return max(1, (os.cpu_count() or 1) // parallel) if kind == "local" and parallel > 1 else None


def tune_stage(raw: dict, out_dir: Path, kind: str, plugins: tuple[str, ...], device: str | None,
               threads: int | None, dry_run: bool) -> dict[str, Any]:
    """Where the file covers a method it neither pins nor has tuned in this folder: train the
    tuning candidates (pathbench.sweep.tuning) in two rounds — the methods that train on their
    own, then the flow-map students against their teachers' choices — pick each method's best
    and write ``tuning/``. Returns ``{"tuned": choices or None, "jobs": [...], "failed": [...]}``;
    a dry run returns the plan instead (``units``; ``later``: student candidates not yet known)."""
    names = [tune_name(m) for m in raw["methods"]]
    spec = parse_tune(raw.get("tune"), names)
    if spec is None:
        return {"tuned": None, "jobs": [], "failed": []}
    name = str(raw.get("name", "experiment"))
    done = read_tuned(out_dir, name) or {}
    if all(n in spec.chosen or n in done or not spec.covers(n) for n in names):
        return {"tuned": done or None, "jobs": [], "failed": []}
    rows, chosen, plan, jobs, failed = [], {}, {}, [], []
    for students in (False, True):  # the students' candidates distil their teachers' chosen ones
        if students:  # the teachers' choices as the grid takes them (pathbench.sweep.experiment.expand)
            units, mine = student_experiment(raw, spec, expand, {**spec.chosen, **tuned_keys(chosen)})
        else:
            units, mine = tuning_experiment(raw, spec, expand)
        if not units:
            continue
        plan.update((unit.id, unit) for unit in units)  # a student's teacher is a candidate already
        exp = Experiment(f"{name} (tuning{' students' if students else ''})", units, [], raw.get("executor") or {})
        pending = jobs_for(exp, out_dir, plugins, device, threads)
        if dry_run and pending:
            later = 0 if students else len(spec.candidates()) * sum(
                is_student(m) and spec.covers(tune_name(m)) for m in raw["methods"])
            return {"tuned": None, "jobs": pending, "failed": [], "units": list(plan.values()), "later": later}
        if not dry_run:
            note = "tuning the flow-map students against their teachers' choices" if students else "tuning"
            failed += _train_round(exp, pending, out_dir, kind, threads, note)
        read_rows(mine, out_dir, {unit.id: unit.train["steps"] for unit in units})
        chosen.update(select(mine, spec))
        rows += mine
        jobs += pending
    if dry_run:  # trained, not yet selected
        return {"tuned": None, "jobs": [], "failed": [], "units": list(plan.values()), "later": 0}
    write_tuning(tuning_dir(out_dir, name), rows, chosen, spec)
    return {"tuned": tuned_keys(chosen), "jobs": jobs, "failed": failed}


def _parallel(kind: str, exp: Experiment, jobs: list[UnitJob]) -> int:
    """Units at once: the file's ``parallel`` locally (one by default: a 2-core laptop), one under
    debug; SLURM queues them all (array_parallelism caps)."""
    return {"local": int(exp.executor.get("parallel", 1)), "debug": 1}.get(kind, max(1, len(jobs)))


def _train_round(exp: Experiment, jobs: list[UnitJob], out_dir: Path, kind: str, threads: int | None,
                 note: str) -> list[str]:
    """Train one round of units (tuning candidates or the grid), printing progress; returns the
    failed ones (a diverging tuning candidate fails its job: recorded as diverged, not the
    sweep's failure)."""
    parallel = _parallel(kind, exp, jobs)
    progress = Progress(exp, out_dir, [job.unit_id for job in jobs], parallel, note)
    progress.begin()
    if not jobs:
        return []
    failed = run_units(make_executor(kind, out_dir / "submitit", exp.executor, threads), kind, jobs, out_dir,
                       parallel, progress)
    progress.end(failed)
    return failed


def sweep(path: Path, out_dir: Path, *, executor: str | None = None, dry_run: bool = False,
          plugins: tuple[str, ...] = (), device: str | None = None) -> dict[str, Any]:
    """Tune (an experiment with an unpinned ``tune:`` block), expand, skip what is complete,
    submit the rest, wait (printing progress), report."""
    raw = read_experiment(path)
    executor_settings = raw.get("executor") or {}
    kind = executor or executor_settings.get("kind", "local")
    threads = default_threads(kind, executor_settings)
    plugins = tuple(dict.fromkeys([*(raw.get("plugins") or []), *plugins]))
    load_all(plugins)
    check_tasks(raw["tasks"])  # a bad task option is one line before the tuning stage trains anything
    tuning = tune_stage(raw, out_dir, kind, plugins, device, threads, dry_run)
    if dry_run and tuning.get("units"):  # the grid's ids depend on the tuning's choices
        exp = Experiment(raw.get("name", path.stem), tuning["units"], [], executor_settings)
        return {"experiment": exp, "jobs": tuning["jobs"], "submitted": 0, "tuning_pending": True,
                "tuning_later": tuning["later"]}
    exp = expand(raw, default_name=path.stem, tuned=tuning["tuned"])
    jobs = jobs_for(exp, out_dir, plugins, device, threads)
    if dry_run:
        return {"experiment": exp, "jobs": jobs, "submitted": 0}
    out_dir.mkdir(parents=True, exist_ok=True)
    record_experiment(out_dir, exp.name, saved_experiment(path.read_text(), exp.plugins, plugins))
    note = (f"{_parallel(kind, exp, jobs)} unit(s) at a time" if kind != "slurm" else "slurm") + \
        (f", {threads} thread(s) each" if threads else "")
    failed = _train_round(exp, jobs, out_dir, kind, threads, note)
    return {"experiment": exp, "jobs": jobs, "submitted": len(jobs), "failed": failed}
