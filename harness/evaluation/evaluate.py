"""Evaluate a run on a registered task; results carry their metric protocol.

``pathbench eval`` loads a run folder (or takes a run a sweep unit already loaded: one load for
all its runs), resolves the sampler under the generation protocol, and hands the loaded run to
the task's :meth:`~pathbench.tasks.base.Task.evaluate`, which generates, writes what it generated and
scores it. Every result is written atomically with both protocols, the environment and the
measured cost of its generation (``generation``: the sampler's wall time, samples/s, tokens/s,
NFE, batch, device, precision, threads; :mod:`pathbench.engine.generation_cost`).
"""

from __future__ import annotations

import shutil
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
from pathbench.engine.protocol import for_sampling, sampling_setup
from pathbench.engine.run import LoadedRun, environment, load_run
from pathbench.tasks.base import EvalSettings
from pathbench.tasks.scorers import check_spec, load_scorer, scorer_for_data

#: the files an evaluation may write into its folder (metrics.json, and a task's generations)
OUTPUTS = ("metrics.json", "samples.jsonl", "generations.jsonl")


def eval_run(ckpt: Path | LoadedRun, task_name: str, out: Path, sampler: dict, *, task_options: dict | None = None,
             n: int = 32, candidates: int = 1, limit: int | None = None, seed: int = 0,
             batch_size: int = 16, device: str = "cpu", extra: dict | None = None,
             protocol: str | dict | None = None, overwrite: bool = False,
             reference_store: Path | None = None, seeding: str = "batch",
             memory_gb: float | str | None = None) -> dict[str, Any]:
    """Generate from ``ckpt`` (a run folder, or a run already loaded) for ``task_name`` and
    score; writes out/metrics.json + the task's generations. ``sampler`` holds the explicit
    keys and ``protocol`` (a name; default: the run's) fills the rest, or ``protocol`` is a
    record already resolved into ``sampler`` (a sweep's run). ``extra`` (run id, status, ...)
    is merged into the result before its one atomic write; ``reference_store`` is a folder
    where rows shared by a sweep's units are kept (the real-text row). ``seeding`` and
    ``memory_gb``: see :class:`pathbench.tasks.base.EvalSettings` (a row-seeded result says so).
    An evaluation already in ``out`` is refused unless ``overwrite``; a failed evaluation
    leaves no folder behind that it created."""
    # bad names fail before anything is loaded; the record keeps the options as given
    task = check_task(task_name, with_device(task_name, task_options or {}, device))
    check_seeding(seeding)
    check_memory_gb(memory_gb)  # a bad value fails here, before anything is loaded
    held = [name for name in OUTPUTS if (out / name).exists()]
    if held and not overwrite:
        raise ConfigError(f"{out} already holds an evaluation ({', '.join(held)}); pass --overwrite to "
                          "replace it or choose another --out (nothing was overwritten)")
    if not callable(getattr(task, "evaluate", None)):
        raise ConfigError(f"task '{task_name}' has no evaluate(); derive it from pathbench.tasks.base.Task, or ExampleTask "
                          "(examples + score)")
    check_candidates(task, task_name, candidates)
    created = not out.exists()
    try:
        run = ckpt if isinstance(ckpt, LoadedRun) else load_run(ckpt, device)
        return _eval_run(task, run, task_name, out, sampler, dict(task_options or {}), protocol, extra,
                         n=n, candidates=candidates, limit=limit, seed=seed, batch_size=batch_size,
                         device=device, reference_store=reference_store, seeding=seeding, memory_gb=memory_gb)
    except BaseException:
        if created and out.exists():
            shutil.rmtree(out)  # only this failed command's partial files are in it
        raise


def with_device(task_name: str, options: dict, device: str) -> dict:
    """The task options with the evaluation's device for a task that takes one (its scorer and
    metric models then run where the samples are drawn), unless the options name one."""
    if task_name in TASKS and "device" not in options and "device" in (accepted_options(TASKS.get(task_name)) or ()):
        return {**options, "device": device}
    return options


def check_task(task_name: str, options: dict):
    """The task built from its name and options, its scorer's name checked: every mistake in
    them is one line naming the bad value and the valid ones, before a checkpoint is read or a
    sample drawn."""
    task = TASKS.build(task_name, **options)  # an unknown task or option lists the valid ones
    spec = getattr(task, "scorer_spec", None)
    if spec is not None:
        check_spec(spec)
    return task


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


def _eval_run(task, run: LoadedRun, task_name: str, out: Path, sampler: dict, options: dict,
              protocol: str | dict | None, extra: dict | None, **settings: Any) -> dict[str, Any]:
    meta = run.meta
    if getattr(task, "scorer_spec", None) is not None:
        # a scorer that cannot load, or cannot score this run's data, fails before sampling
        load_scorer(scorer_for_data(task.scorer_spec, meta["data"]), getattr(task, "device", "cpu"),
                    **getattr(task, "placement", {}))
    if isinstance(protocol, dict):
        method, _ = for_sampling(run.method, meta, protocol["name"])
        cfg, record = method.sampler_config(meta["method"], sampler), protocol
    else:
        method, cfg, record = sampling_setup(run.method, meta, protocol, sampler)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"method": meta["method"], "method_options": method.options(),
                              **({"plugins": meta["plugins"]} if meta.get("plugins") else {}),
                              "checkpoint": str(run.folder), "checkpoint_step": run.step, "task": task_name,
                              "task_options": options, "sampler": asdict(cfg), "seed": settings["seed"],
                              "generation_protocol": record,
                              **({"seeding": "row"} if settings["seeding"] == "row" else {}),
                              **({"inference_precision": inference_precision(settings["device"])}
                                 if inference_precision(settings["device"]) else {})}
    with measure_generation() as cost:  # the sampler's own time: scoring is not counted
        result.update(task.evaluate(run._replace(method=method), EvalSettings(cfg, record, **settings), out))
    result["generation"] = cost.record(run.model, settings["device"])
    result["protocol"] = task.protocol()  # the metric protocol; generation_protocol is the sampling one
    result["training_recipe"] = training_recipe(meta)
    # did the model learn at all? (a run that did not is flagged wherever its samples are read)
    result["learning_check"] = ensure_check(run.folder, run.method, run.model, meta, settings["device"])
    result["environment"] = environment()
    result.update(extra or {})
    atomic_write_json(out / "metrics.json", result)
    return result
