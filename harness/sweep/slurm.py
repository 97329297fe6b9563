"""SLURM requests that fit the partition: what a sweep asks ``sbatch`` for, checked against ``sinfo``.

An experiment's ``executor.slurm`` keys become submitit parameters. Nothing is asked for that the
file does not ask for: no GPU unless ``gpus_per_task`` is given (a GPU request on a partition
without GPUs is refused by sbatch), and ``cpus_per_task`` defaults to the executor's ``threads``
or 8, capped at the partition's CPUs per node (a request larger than every node leaves a job
array pending for ever, without a message). Where ``sinfo`` answers, an explicit request that no
node of the partition can meet is a one-line error before anything is submitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from pathbench.core.errors import ConfigError

DEFAULT_CPUS = 8
#: seconds a job may be missing from ``squeue`` without a result before it counts as vanished
#: (cancelled, or lost with its node) — the result file can lag the queue on a shared filesystem
VANISH_GRACE_S = float(os.environ.get("PATHBENCH_SLURM_VANISH_S", "30"))


@dataclass(frozen=True)
class PartitionLimits:
    """The largest node of a partition: CPUs and GPUs (generic resources ``gpu[:type]:N``)."""

    cpus: int
    gpus: int


def parse_sinfo(text: str) -> PartitionLimits | None:
    """Limits from ``sinfo -h -o "%c|%G"`` lines (one per node group); None when empty."""
    cpus, gpus, seen = 0, 0, False
    for line in text.splitlines():
        if "|" not in line:
            continue
        cpu_field, gres = line.split("|", 1)
        try:
            cpus = max(cpus, int(cpu_field.strip().rstrip("+")))
        except ValueError:
            continue
        seen = True
        for item in gres.split(","):
            parts = item.split("(")[0].split(":")  # gpu:h100:8(S:0-1) -> gpu, h100, 8
            if parts[0].strip() == "gpu" and parts[-1].strip().isdigit():
                gpus = max(gpus, int(parts[-1]))
    return PartitionLimits(cpus, gpus) if seen else None


def partition_limits(partition: str | None) -> PartitionLimits | None:
    """What ``sinfo`` says about ``partition`` (the default one if None); None without sinfo."""
    if shutil.which("sinfo") is None:
        return None
    cmd = ["sinfo", "-h", "-o", "%c|%G", *(["-p", partition] if partition else [])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    limits = parse_sinfo(done.stdout)
    if limits is None and partition:
        raise ConfigError(f"SLURM partition '{partition}' has no node (sinfo lists none); check executor.slurm.partition")
    return limits


def queued_jobs() -> set[str] | None:
    """Every job id SLURM still holds (pending, running, requeued, completing), array tasks
    expanded (``123_4``); None when ``squeue`` cannot be asked (then nothing counts as vanished)."""
    if shutil.which("squeue") is None:
        return None
    try:
        done = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {line.strip() for line in done.stdout.splitlines() if line.strip()} if done.returncode == 0 else None


def slurm_parameters(slurm: dict, timeout_min: int, threads: int | None,
                     limits: PartitionLimits | None) -> dict:
    """submitit parameters for ``executor.slurm`` settings, checked against ``limits``."""
    gpus = int(slurm.get("gpus_per_task", 0))
    asked_cpus = slurm.get("cpus_per_task")
    cpus = int(asked_cpus) if asked_cpus is not None else int(threads or DEFAULT_CPUS)
    where = f"partition '{slurm.get('partition')}'" if slurm.get("partition") else "the default partition"
    if limits is not None:
        if asked_cpus is None:
            cpus = min(cpus, limits.cpus)
        elif cpus > limits.cpus:
            raise ConfigError(f"executor.slurm.cpus_per_task = {cpus} exceeds every node of {where} "
                              f"({limits.cpus} CPUs per node); lower it")
        if gpus > limits.gpus:
            have = f"at most {limits.gpus} GPUs per node" if limits.gpus else "no GPU"
            raise ConfigError(f"executor.slurm.gpus_per_task = {gpus} cannot be met on {where} ({have}); "
                              "drop gpus_per_task for a CPU run or choose a GPU partition")
    params = {"timeout_min": int(slurm.get("time_min", timeout_min)), "tasks_per_node": max(1, gpus),
              "nodes": int(slurm.get("nodes", 1)), "cpus_per_task": cpus,
              "slurm_array_parallelism": int(slurm.get("array_parallelism", 64))}
    if gpus:
        params["gpus_per_node"] = gpus
    for key in ("partition", "account", "qos"):
        if slurm.get(key):
            params[f"slurm_{key}"] = slurm[key]
    if slurm.get("mem_gb"):
        params["mem_gb"] = int(slurm["mem_gb"])
    return params
