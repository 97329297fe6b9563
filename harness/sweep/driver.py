"""``pathbench sweep``: tune (an experiment with an unpinned ``tune:`` block), expand, skip what
is complete, submit the rest, wait (printing progress), report. The units run as
pathbench.sweep.dispatch jobs, in the order pathbench.sweep.scheduler starts them; the tuning
stage's candidates (pathbench.sweep.tuning) are such units too, trained before the grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pathbench.engine.learning import read_check
from pathbench.engine.plugins import load_all
from pathbench.sweep.dispatch import jobs_for, make_executor, record_experiment, saved_experiment
from pathbench.sweep.experiment import Experiment, check_tasks, expand, read_experiment
from pathbench.sweep.progress import Progress, train_complete
from pathbench.sweep.scheduler import run_units
from pathbench.sweep.tuning import final_val_loss, parse_tune, read_tuned, select, tuning_dir, tuning_experiment
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
    """Train the tuning candidates of every method the file neither pins nor has tuned in this
    folder, pick each method's best and write ``tuning/`` (pathbench.sweep.tuning). Returns
    ``{"tuned": choices or None, "jobs": [...], "failed": [...]}``."""
    names = [m if isinstance(m, str) else str(m.get("name")) for m in raw["methods"]]
    spec = parse_tune(raw.get("tune"), names)
    if spec is None:
        return {"tuned": None, "jobs": [], "failed": []}
    name = str(raw.get("name", "experiment"))
    done = read_tuned(out_dir, name) or {}
    if all(n in spec.chosen or n in done or not spec.covers(n) for n in names):
        return {"tuned": done or None, "jobs": [], "failed": []}
    units, rows = tuning_experiment(raw, spec, expand)
    exp = Experiment(f"{raw.get('name', 'experiment')} (tuning)", units, [], raw.get("executor") or {})
    jobs = jobs_for(exp, out_dir, plugins, device, threads)
    if dry_run:
        return {"tuned": None, "jobs": jobs, "failed": [], "units": units}
    parallel = {"local": int(exp.executor.get("parallel", 1)), "debug": 1}.get(kind, max(1, len(jobs)))
    progress = Progress(exp, out_dir, [job.unit_id for job in jobs], parallel, "tuning")
    progress.begin()
    failed: list[str] = []
    if jobs:  # a diverging candidate fails its job: recorded as diverged, not the sweep's failure
        failed = run_units(make_executor(kind, out_dir / "submitit", exp.executor, threads), kind, jobs, out_dir,
                           parallel, progress)
        progress.end(failed)
    steps = {unit.id: unit.train["steps"] for unit in units}
    for row in rows:
        folder = out_dir / "train" / row["unit"]
        complete = train_complete(folder, steps[row["unit"]])
        row["val_loss"] = final_val_loss(folder) if complete else None
        row["status"] = "complete" if complete else "diverged or failed"
        check = read_check(folder)
        row["learned"] = None if check is None else check.get("learned")
    chosen = select(rows, spec)
    write_tuning(tuning_dir(out_dir, name), rows, chosen, spec)
    return {"tuned": {m: c["keys"] for m, c in chosen.items()}, "jobs": jobs, "failed": failed}


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
        return {"experiment": exp, "jobs": tuning["jobs"], "submitted": 0, "tuning_pending": True}
    exp = expand(raw, default_name=path.stem, tuned=tuning["tuned"])
    jobs = jobs_for(exp, out_dir, plugins, device, threads)
    if dry_run:
        return {"experiment": exp, "jobs": jobs, "submitted": 0}
    out_dir.mkdir(parents=True, exist_ok=True)
    record_experiment(out_dir, exp.name, saved_experiment(path.read_text(), exp.plugins, plugins))
    # one unit at a time by default: a 2-core laptop; SLURM queues them all (array_parallelism caps)
    parallel = {"local": int(exp.executor.get("parallel", 1)), "debug": 1}.get(kind, max(1, len(jobs)))
    note = (f"{parallel} unit(s) at a time" if kind != "slurm" else "slurm") + \
        (f", {threads} thread(s) each" if threads else "")
    progress = Progress(exp, out_dir, [job.unit_id for job in jobs], parallel, note)
    progress.begin()
    if not jobs:
        return {"experiment": exp, "jobs": [], "submitted": 0, "failed": []}
    ex = make_executor(kind, out_dir / "submitit", exp.executor, threads)
    failed = run_units(ex, kind, jobs, out_dir, parallel, progress)
    progress.end(failed)
    return {"experiment": exp, "jobs": jobs, "submitted": len(jobs), "failed": failed}
