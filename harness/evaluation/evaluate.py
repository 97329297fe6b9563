"""Evaluate a run on a registered task; results carry their metric protocol.

``pathbench eval`` (:func:`eval_run`) loads a run folder, resolves the sampler under the
generation protocol once (names -> a :class:`~pathbench.engine.protocol.Sampling` record), binds
the task to the run's data (:meth:`~pathbench.tasks.adapters.base.Task.bind`: a new task, e.g. its scorer
bound to an oracle corpus's HMM and loaded) and hands the loaded run to the bound task's
:meth:`~pathbench.tasks.adapters.base.Task.evaluate`, which generates, writes what it generated and scores
it. A sweep's run (:func:`eval_resolved`) comes with its sampling already resolved and its run
already loaded (one load for all the runs of a unit). Every result is written atomically with both protocols, the environment and the
measured cost of its generation (``generation``: the sampler's wall time, samples/s, tokens/s,
NFE, batch, device, precision, threads; :mod:`pathbench.engine.generation_cost`).
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pathbench.core.devices import inference_precision
from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json
from pathbench.core.registry import TASKS, accepted_options
from pathbench.core.rng import check_seeding
from pathbench.engine.generation_cost import measure_generation
from pathbench.engine.learning import ensure_check
from pathbench.engine.memory import check_memory_gb
from pathbench.engine.protocol import Sampling, sampling_setup
from pathbench.engine.run import LoadedRun, environment, load_run
from pathbench.tasks.adapters.base import EvalSettings, Task

#: the files an evaluation may write into its folder (metrics.json, and a task's generations)
OUTPUTS = ("metrics.json", "samples.jsonl", "generations.jsonl")


def eval_run(ckpt: Path | LoadedRun, task_name: str, out: Path, sampler: dict, *, task_options: dict | None = None,
             n: int = 32, candidates: int = 1, limit: int | None = None, seed: int = 0,
             batch_size: int = 16, device: str = "cpu", extra: dict | None = None,
             protocol: str | None = None, overwrite: bool = False,
             reference_store: Path | None = None, seeding: str = "batch",
             memory_gb: float | str | None = None) -> dict[str, Any]:
    """Generate from ``ckpt`` (a run folder, or a run already loaded) for ``task_name`` and
    score; writes out/metrics.json + the task's generations. ``sampler`` holds the explicit
    keys and ``protocol`` (a name; default: the run's) fills the rest: both are resolved here,
    once, against the loaded run. ``extra`` (run id, status, ...) is merged into the result
    before its one atomic write; ``reference_store`` is a folder where rows shared by a sweep's
    units are kept (the real-text row). ``seeding`` and ``memory_gb``: see
    :class:`pathbench.tasks.adapters.base.EvalSettings` (a row-seeded result says so). An evaluation
    already in ``out`` is refused unless ``overwrite``; a failed evaluation leaves no folder
    behind that it created."""
    options = dict(task_options or {})
    task = _checked_task(task_name, options, out, device=device, candidates=candidates, seeding=seeding,
                         memory_gb=memory_gb, overwrite=overwrite)
    with _removed_on_failure(out):
        run = ckpt if isinstance(ckpt, LoadedRun) else load_run(ckpt, device)
        sampling = sampling_setup(run.method, run.meta, protocol, sampler)
        return _evaluate(task, run, sampling, task_name, out, options, extra, n=n, candidates=candidates,
                         limit=limit, seed=seed, batch_size=batch_size, device=device,
                         reference_store=reference_store, seeding=seeding, memory_gb=memory_gb)


def eval_resolved(run: LoadedRun, task_name: str, out: Path, sampling: Sampling, *, task_options: dict,
                  n: int = 32, candidates: int = 1, limit: int | None = None, seed: int = 0,
                  batch_size: int = 16, device: str = "cpu", extra: dict | None = None, overwrite: bool = False,
                  reference_store: Path | None = None, seeding: str = "batch",
                  memory_gb: float | str | None = None) -> dict[str, Any]:
    """:func:`eval_run` for a loaded run whose sampling is already resolved (a sweep's run: its
    method, sampler and protocol record came from the sweep's expansion and are taken as they
    are). ``task_options`` are recorded as given (a sweep's name its scorer and device)."""
    options = dict(task_options)
    task = _checked_task(task_name, options, out, device=device, candidates=candidates, seeding=seeding,
                         memory_gb=memory_gb, overwrite=overwrite)
    with _removed_on_failure(out):
        return _evaluate(task, run, sampling, task_name, out, options, extra, n=n, candidates=candidates,
                         limit=limit, seed=seed, batch_size=batch_size, device=device,
                         reference_store=reference_store, seeding=seeding, memory_gb=memory_gb)


def _checked_task(task_name: str, options: dict, out: Path, *, device: str, candidates: int, seeding: str,
                  memory_gb: float | str | None, overwrite: bool) -> Task:
    """The task, built and checked with the other settings before anything is loaded."""
    task = check_task(task_name, with_device(task_name, options, device))
    check_seeding(seeding)
    check_memory_gb(memory_gb)  # a bad value fails here, before anything is loaded
    held = [name for name in OUTPUTS if (out / name).exists()]
    if held and not overwrite:
        raise ConfigError(f"{out} already holds an evaluation ({', '.join(held)}); pass --overwrite to "
                          "replace it or choose another --out (nothing was overwritten)")
    if not callable(getattr(task, "evaluate", None)) or not callable(getattr(task, "bind", None)):
        raise ConfigError(f"task '{task_name}' has no evaluate() or bind(); derive it from pathbench.tasks.Task, "
                          "or ExampleTask (examples + score)")
    check_candidates(task, task_name, candidates)
    return task


@contextmanager
def _removed_on_failure(out: Path):
    """Removes ``out`` when the block fails and it was created by it (only this failed command's
    partial files are in it)."""
    created = not out.exists()
    try:
        yield
    except BaseException:
        if created and out.exists():
            shutil.rmtree(out)
        raise


def with_device(task_name: str, options: dict, device: str) -> dict:
    """The task options with the evaluation's device for a task that takes one (its scorer and
    metric models then run where the samples are drawn), unless the options name one: the one
    rule by which a device reaches a task."""
    if task_name in TASKS and "device" not in options and "device" in (accepted_options(TASKS.get(task_name)) or ()):
        return {**options, "device": device}
    return options


def check_task(task_name: str, options: dict) -> Task:
    """The task built from its name and options: every mistake in them (a scorer's name too) is
    one line naming the bad value and the valid ones, before a checkpoint is read or a sample
    drawn."""
    return TASKS.build(task_name, **options)  # an unknown task or option lists the valid ones


def check_candidates(task, task_name: str, candidates: int) -> None:
    """A task that needs more candidates per prompt than asked (Top-k of k) is one line."""
    if candidates < getattr(task, "min_candidates", 1):
        why = f" ({task.candidates_reason})" if getattr(task, "candidates_reason", "") else ""
        raise ConfigError(f"task '{task_name}' needs at least {task.min_candidates} candidates{why}, got {candidates}")


def training_recipe(meta: dict) -> dict:
    """The recipe a run was trained with; a run from before recipes were recorded names its
    optimizer key (every such run used AdamW unless it says ``muon``)."""
    if "recipe" in meta:
        return meta["recipe"]
    train = meta.get("train") or {}
    return {"name": train.get("optimizer", "adamw"), "lr": train.get("lr"), "legacy": True}


def _evaluate(task: Task, run: LoadedRun, sampling: Sampling, task_name: str, out: Path, options: dict,
              extra: dict | None, **settings: Any) -> dict[str, Any]:
    meta = run.meta
    # a new task bound to this run's data: a scorer that cannot load, or cannot score this data, fails
    # before sampling; the task as built (and recorded) is left as it is
    bound = task.bind(meta["data"])
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"method": meta["method"], "method_options": sampling.method.options(),
                              **({"plugins": meta["plugins"]} if meta.get("plugins") else {}),
                              "checkpoint": str(run.folder), "checkpoint_step": run.step, "task": task_name,
                              "task_options": options, "sampler": asdict(sampling.sampler), "seed": settings["seed"],
                              "generation_protocol": sampling.protocol.record(),
                              **({"seeding": "row"} if settings["seeding"] == "row" else {}),
                              **({"inference_precision": inference_precision(settings["device"])}
                                 if inference_precision(settings["device"]) else {})}
    with measure_generation() as cost:  # the sampler's own time: scoring is not counted
        result.update(bound.evaluate(run._replace(method=sampling.method),
                                     EvalSettings(sampling.sampler, sampling.protocol, **settings), out))
    result["generation"] = cost.record(run.model, settings["device"])
    result["protocol"] = bound.protocol()  # the metric protocol; generation_protocol is the sampling one
    result["training_recipe"] = training_recipe(meta)
    # did the model learn at all? (a run that did not is flagged wherever its samples are read)
    result["learning_check"] = ensure_check(run.folder, run.method, run.model, meta, settings["device"])
    result["environment"] = environment()
    result.update(extra or {})
    atomic_write_json(out / "metrics.json", result)
    return result
