"""``pathbench sweep``: run an experiment grid through submitit, crash-proof.

One submitit job per training unit: it trains (resuming from the unit's last checkpoint) and
then evaluates every run of that unit that has no complete ``metrics.json``. The job is
``Checkpointable``: on SLURM preemption or timeout submitit requeues the same callable, which
resumes training and skips finished evaluations. Re-running the command after a crash does
the same, so a result is never lost or duplicated: results are per-run files written
atomically (no shared database for SLURM tasks on a shared filesystem to contend for).

Layout of the output folder::

    train/<unit id>/      a pathbench run folder (meta.json, checkpoints, metrics.jsonl, ...)
    runs/<run id>/        config.yaml, metrics.json, eval.log, samples.jsonl or generations.jsonl
    experiments/          every experiment file that ran into the folder, as <name>-<hash of its text>.yaml
                          (with the plugins it ran with); never overwritten
    experiment.yaml       the first of them (older folders have only this one)
    submitit/             submitit's job files and logs
    sweep.log             the progress lines of every invocation (pathbench.sweep.progress)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import submitit
import torch
import torch.distributed as dist
import yaml

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_text, exclusive
from pathbench.engine.plugins import load_all
from pathbench.engine.protocol import GenerationProtocol, Sampling
from pathbench.engine.run import LoadedRun, load_run, train_run
from pathbench.evaluation.evaluate import eval_resolved, with_device
from pathbench.sweep.experiment import Experiment, RunSpec, TrainUnit
from pathbench.sweep.progress import run_complete, train_complete
from pathbench.sweep.slurm import partition_limits, slurm_parameters

__all__ = ["UnitJob", "jobs_for", "make_executor", "run_complete", "train_complete"]


class UnitJob(submitit.helpers.Checkpointable):
    """Train one unit, then evaluate its unfinished runs. Safe to run again at any point."""

    def __init__(self, out_dir: str, unit: dict, runs: list[dict], plugins: tuple[str, ...] = (),
                 device: str | None = None, train_options: dict | None = None,
                 threads: int | None = None) -> None:
        self.out_dir, self.unit, self.runs = out_dir, unit, runs
        self.plugins, self.device, self.threads = tuple(plugins), device, threads
        self.train_options = unit["options"] if train_options is None else train_options

    @property
    def unit_id(self) -> str:
        return TrainUnit(**self.unit).id

    def __call__(self) -> list[str]:
        before = torch.get_num_threads()
        if self.threads:  # before any work; the env vars reach what the job starts (tokenizers, sandboxes)
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = str(self.threads)
            torch.set_num_threads(self.threads)
        try:
            return self._work()
        finally:
            torch.set_num_threads(before)  # the debug executor runs jobs in the sweep's own process

    def _work(self) -> list[str]:

        load_all(self.plugins)  # a fresh process: fill the registries first
        if int(os.environ.get("SLURM_NTASKS", "1")) > 1:  # one task per GPU: torch.distributed env
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        unit = TrainUnit(**self.unit)
        train_dir = Path(self.out_dir) / "train" / unit.id
        train_dir.mkdir(parents=True, exist_ok=True)
        rank = int(os.environ.get("RANK", "0"))
        # one writer per unit: a worker that outlived a killed sweep (submitit workers ignore
        # SIGTERM, as SLURM sends it before the kill) must finish before a new one continues
        with unit_lock(train_dir, rank):
            if not train_complete(train_dir, unit.train["steps"]):
                overrides = {"train": unit.train, "data": unit.data, "model": unit.model, "method": self.train_options}
                # the options are already resolved under the unit's protocol: its record goes as it is
                train_run(unit.method, unit.preset, train_dir, overrides, protocol=unit.protocol,
                          resume=(train_dir / "checkpoint.json").exists(), device=device)
            if dist.is_initialized():
                dist.barrier()  # every rank reads the final checkpoint only once rank 0 has written it
            return self._evaluate(train_dir, device, rank)

    def _evaluate(self, train_dir: Path, device: str, rank: int) -> list[str]:
        """This rank's share of the unit's runs: run i goes to rank i mod world size, each rank on
        its own GPU, so a unit's evaluation uses the whole allocation (one rank: all of them)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if device == "cuda" and world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
        done, run = [], None
        for spec in self.runs[rank::world]:
            run_dir = Path(self.out_dir) / "runs" / spec["id"]
            if not run_complete(run_dir):
                run = run or load_run(train_dir, device)  # loaded once for all of this rank's runs
                # the real-text rows are shared by the sweep's units (one scoring per scorer)
                evaluate_run(spec, run, run_dir, device, Path(self.out_dir) / "reference")
            done.append(spec["id"])
        return done


@contextmanager
def unit_lock(train_dir: Path, rank: int):
    """An exclusive flock on the unit's folder, held by rank 0 (other ranks follow it)."""
    if rank != 0:
        yield
        return
    with exclusive(train_dir / ".lock"):  # blocks while another worker holds it
        yield


def remove_stale_temps(folder: Path) -> None:
    """Delete the temp files of atomic writes (``.config.yaml.*.tmp``) a killed job left in a run
    folder; called only where no writer is at work (a complete run, or the job now evaluating it)."""
    for leftover in folder.glob(".*.tmp") if folder.is_dir() else ():
        leftover.unlink(missing_ok=True)


def evaluate_run(spec: dict, run: LoadedRun, run_dir: Path, device: str,
                 reference_store: Path | None = None) -> None:
    """One run of a unit, from the unit's loaded run, into ``run_dir`` (with its eval.log): its
    sampler and protocol record as the sweep resolved them, its scorer as :func:`_spec` did."""
    train_dir = run.folder
    config = spec["config"]
    protocol: GenerationProtocol = spec["protocol"]  # the record its sampler was resolved with
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(run_dir)  # this job holds the unit's lock: no other writer of the folder
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump({**config, "generation_protocol": protocol.record()},
                                                              sort_keys=True))
    options = dict(config["task_options"])
    if config["scorer"] is not None:
        # a scorer run records the scorer it was given (self:@ar resolved to this sweep's unit)
        # and the device it scored on, as every sweep result has
        options = with_device(config["task"], {**options, "scorer": spec.get("scorer_resolved") or config["scorer"]},
                              device)
    train_log = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in train_log if "val_loss" in r]
    unit = config["train_unit"]
    extra = {"run_id": spec["id"], "train_id": config["train_id"], "status": "complete",
             "preset": unit["preset"], "seed": unit["seed"], "scorer": config["scorer"],
             "train": {"steps": unit["train"]["steps"], "val_loss": val[-1] if val else None,
                       "folder": str(train_dir)}}
    log = logging.getLogger(f"pathbench.eval.{spec['id']}")
    handler = logging.FileHandler(run_dir / "eval.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("run %s: %s %s on %s from %s", spec["id"], unit["method"], config["sampler"],
                 config["task"], train_dir)
        # the unit's method as trained: a unit is sampled under the protocol it was resolved with (two
        # protocols that resolve a unit alike leave its options alike, so neither rebuilds its method)
        sampling = Sampling(run.method, run.method.sampler_config(run.meta["method"], config["sampler"]), protocol)
        result = eval_resolved(run, config["task"], run_dir, sampling, task_options=options,
                               n=config["n"], candidates=config["candidates"], limit=config["limit"],
                               seed=unit["seed"], device=device, extra=extra,
                               **({"batch_size": config["batch_size"]} if config.get("batch_size") else {}),
                               seeding=config.get("seeding", "batch"), memory_gb=spec.get("memory_gb"),
                               overwrite=True,  # the sweep re-evaluates only runs that are not complete
                               reference_store=reference_store)
        log.info("metrics %s", json.dumps(result["metrics"], default=str))
    except Exception:
        log.exception("run %s failed", spec["id"])
        raise
    finally:
        log.removeHandler(handler)
        handler.close()


def jobs_for(exp: Experiment, out_dir: Path, plugins: tuple[str, ...] = (),
             device: str | None = None, threads: int | None = None) -> list[UnitJob]:
    """One job per training unit that still has work; finished units are skipped."""
    jobs = []
    for unit in exp.units:
        runs = [r for r in exp.runs if r.unit.id == unit.id]
        pending = [r for r in runs if not run_complete(out_dir / "runs" / r.id)]
        for done in (r for r in runs if r not in pending):  # a complete run is never written again
            remove_stale_temps(out_dir / "runs" / done.id)
        if pending or not train_complete(out_dir / "train" / unit.id, unit.train["steps"]):
            specs = [_spec(r, exp, out_dir) for r in pending]
            jobs.append(UnitJob(str(out_dir), unit.config(), specs, plugins, device,
                                _train_options(unit, exp, out_dir), threads))
    return jobs


def _own_unit(exp: Experiment, out_dir: Path, method: str, seed: int, who: str, protocol: str | None) -> Path:
    """The training folder of this sweep's unit of ``method`` with ``seed`` (``@method`` names),
    under the same generation protocol where the sweep has one (a baseline's unit is shared)."""
    match = [u for u in exp.units if u.method == method and u.seed == seed]
    if not match:
        raise ConfigError(f"{who} needs a '{method}' method with seed {seed} in the same experiment")
    same = [u for u in match if u.protocol_name == protocol]
    return out_dir / "train" / (same or match)[0].id


def _train_options(unit: TrainUnit, exp: Experiment, out_dir: Path) -> dict[str, Any]:
    """The method options the job trains with: a ``teacher: "@kl"`` option (flow-map students)
    becomes this sweep's own kl unit (the dispatcher starts the student once it is trained). The
    unit id keeps the ``@`` name, so the same grid maps to the same folders wherever it runs."""
    options = dict(unit.options)
    teacher = options.get("teacher")
    if isinstance(teacher, str) and teacher.startswith("@"):
        options["teacher"] = str(_own_unit(exp, out_dir, teacher[1:], unit.seed, f"teacher '{teacher}'",
                                           unit.protocol_name))
    return options


def _spec(run: RunSpec, exp: Experiment, out_dir: Path) -> dict[str, Any]:
    """A run for the job; ``self:@<method>`` scorers point at this sweep's own unit of that
    method with the same seed (the dispatcher starts this unit once that one is trained)."""
    spec = {"id": run.id, "config": run.config(), "protocol": run.protocol,
            **({"memory_gb": run.memory_gb} if run.memory_gb is not None else {})}
    if run.scorer and run.scorer.startswith("self:@"):
        folder = _own_unit(exp, out_dir, run.scorer[len("self:@"):], run.unit.seed, f"scorer '{run.scorer}'",
                           run.unit.protocol_name)
        spec["scorer_resolved"] = f"self:{folder}"
    return spec


def saved_experiment(text: str, listed: list[str], plugins: tuple[str, ...]) -> str:
    """The experiment file as the sweep keeps it: with every plugin module it ran with, so the
    saved copy runs again without ``--plugin`` (the file's own text when it lists them all)."""
    if set(plugins) <= set(listed):
        return text
    raw = yaml.safe_load(text)
    if "plugins" not in raw:  # keep the file's comments: append the key
        return text.rstrip("\n") + f"\n# added by `pathbench sweep --plugin`\nplugins: {json.dumps(list(plugins))}\n"
    return yaml.safe_dump({**raw, "plugins": list(plugins)}, sort_keys=False)


def record_experiment(out_dir: Path, name: str, text: str) -> Path:
    """Keep the record of an experiment that runs into ``out_dir``: ``experiments/<name>-<hash>.yaml``
    keyed by its content (the same file again is the same record), never overwritten; the
    folder's ``experiment.yaml`` is written only when it has none (the first experiment's)."""
    records = out_dir / "experiments"
    records.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "experiment"
    record = records / f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:12]}.yaml"
    if not record.exists():
        atomic_write_text(record, text)
    first = out_dir / "experiment.yaml"
    if not first.exists():
        atomic_write_text(first, text)
    return record


def make_executor(kind: str, folder: Path, settings: dict, threads: int | None = None) -> submitit.AutoExecutor:
    """A submitit executor: ``local`` (subprocesses, explicit timeout), ``slurm`` (job arrays,
    requeued on preemption through UnitJob.checkpoint; requests that fit the partition, see
    :mod:`pathbench.sweep.slurm`), ``debug`` (in-process)."""
    if kind not in ("local", "slurm", "debug"):
        raise ConfigError(f"unknown executor '{kind}'; known: local, slurm, debug")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    timeout = int(settings.get("timeout_min", 24 * 60))
    if kind == "slurm":
        slurm = settings.get("slurm") or {}
        executor.update_parameters(**slurm_parameters(slurm, timeout, threads, partition_limits(slurm.get("partition"))))
    elif kind == "local":
        executor.update_parameters(timeout_min=timeout)  # submitit's local default is 2 minutes
    return executor
