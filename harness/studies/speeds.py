"""``pathbench study speeds``: the generation cost of a sweep's evaluations, re-measured on a quiet machine.

Every evaluation records what its sampler took (``generation`` of metrics.json,
:mod:`pathbench.engine.generation_cost`), but a sweep measures it while other units train on the
same cores, and one timing has no interval. This study re-times each unconditional evaluation of
a sweep folder as it ran — the run's checkpoint, its generation protocol's method options, the
recorded sampler, sample count, batch size, seed and thread count — once to warm up, then
``repeats`` times, and writes per run id the median samples/s with the [min, max] over repeats.

The file is a measured artefact (date, revision, machine and torch version in its header): a
report given ``--speeds FILE`` draws its quality–speed section from it instead of the runs' own
timings, so a committed report does not change bytes each time its sweep is re-run, and its speeds
come from one measurement on one machine. Evaluations that drew the same samples (two scorers of
one sampler setting) share one measurement.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import date
from pathlib import Path
from typing import Any

import torch

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json
from pathbench.engine.generation_cost import measure_generation
from pathbench.engine.protocol import sampling_setup
from pathbench.engine.run import LoadedRun, draw_samples, environment, load_run

NOTE = ("median over repeats of the sampler's own wall time (device synchronised), after one warm-up draw; "
        "[low, high] = the fastest and slowest repeat; decoding, files and scoring excluded")


def timed_evaluations(sweep_dir: Path) -> list[tuple[str, dict]]:
    """(run id, metrics) of the sweep's complete evaluations that drew unconditional samples scored
    by generative perplexity (the runs the quality–speed frontier shows) and measured their
    generation, in run-id order."""
    found = []
    for path in sorted((sweep_dir / "runs").glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        if (metrics.get("metrics") or {}).get("gen_ppl") is not None and (metrics.get("generation") or {}).get("samples"):
            found.append((metrics.get("run_id") or path.parent.name, metrics))
    return found


def _checkpoint(sweep_dir: Path, metrics: dict) -> Path:
    """The run an evaluation drew from: the sweep's training unit, else the folder it names."""
    for folder in ((sweep_dir / "train" / metrics["train_id"]) if metrics.get("train_id") else None,
                   Path(metrics["checkpoint"]) if metrics.get("checkpoint") else None):
        if folder is not None and (folder / "meta.json").is_file():
            return folder
    raise ConfigError(f"evaluation {metrics.get('run_id')}: its checkpoint ({metrics.get('checkpoint')}) is not in "
                      f"{sweep_dir / 'train'} nor where it names; run the study from the folder the sweep ran in")


def _setting(metrics: dict) -> str:
    """What decides the cost of an evaluation's draw: evaluations with the same key drew the same samples."""
    gen = metrics["generation"]
    return json.dumps([metrics.get("train_id") or metrics.get("checkpoint"), (metrics.get("generation_protocol") or {}).get("name"),
                       metrics["sampler"], metrics.get("method_options"), gen["samples"], gen["batch_size"],
                       metrics.get("seed"), gen.get("threads")], sort_keys=True)


def _time_draws(run: LoadedRun, metrics: dict, repeats: int, device: str) -> list[float]:
    """Seconds of the sampler in each of ``repeats`` draws (after one warm-up draw)."""
    gen = metrics["generation"]
    protocol = (metrics.get("generation_protocol") or {}).get("name")
    method, cfg, record = sampling_setup(run.method, run.meta, protocol, dict(metrics["sampler"]))
    if method.options() != metrics.get("method_options", method.options()):
        raise ConfigError(f"run {metrics['run_id']}: its method options {metrics['method_options']} cannot be "
                          f"rebuilt from protocol {protocol!r} ({method.options()}); not timed")
    seconds = []
    for attempt in range(repeats + 1):
        with measure_generation() as cost:
            draw_samples(method, run.model, run.tokenizer, run.meta, run.step, int(gen["samples"]), cfg,
                         seed=int(metrics.get("seed", 0)), batch_size=int(gen["batch_size"]), device=device,
                         protocol=record)
        if attempt:  # the first draw warms caches and allocators up
            seconds.append(cost.seconds)
    return seconds


def _machine() -> str:
    """The processor's model name (Linux) or what platform knows, and the cores torch may use."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def measure_speeds(sweep_dir: str | Path, out: str | Path, *, repeats: int = 3, device: str = "cpu",
                   progress=print) -> dict[str, Any]:
    """Re-time every unconditional evaluation of ``sweep_dir`` and write ``out`` (JSON, atomically)."""
    sweep_dir, out = Path(sweep_dir), Path(out)
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats} must be >= 1")
    evaluations = timed_evaluations(sweep_dir)
    if not evaluations:
        raise ConfigError(f"{sweep_dir} holds no complete unconditional evaluation with a measured generation "
                          "cost (runs/*/metrics.json); run its sweep first")
    threads = torch.get_num_threads()
    measured: dict[str, list[float]] = {}
    runs: dict[str, dict] = {}
    loaded: dict[Path, LoadedRun] = {}
    for index, (run_id, metrics) in enumerate(evaluations, 1):
        key, gen = _setting(metrics), metrics["generation"]
        if key not in measured:
            folder = _checkpoint(sweep_dir, metrics)
            if folder not in loaded:
                loaded.clear()  # one checkpoint in memory at a time
                loaded[folder] = load_run(folder, device)
            torch.set_num_threads(int(gen.get("threads") or threads))  # as the evaluation ran
            try:
                measured[key] = _time_draws(loaded[folder], metrics, repeats, device)
            finally:
                torch.set_num_threads(threads)
        seconds = measured[key]
        median = statistics.median(seconds)
        samples, tokens = int(gen["samples"]), int(gen["tokens"])
        runs[run_id] = {**{k: gen.get(k) for k in ("samples", "tokens", "nfe", "model_calls", "batches", "batch_size",
                                                     "device", "device_name", "precision", "threads")},
                        "seconds": median, "samples_per_s": samples / median, "tokens_per_s": tokens / median,
                        "samples_per_s_low": samples / max(seconds), "samples_per_s_high": samples / min(seconds),
                        "repeats": len(seconds), "note": NOTE}
        row = runs[run_id]
        progress(f"[{index}/{len(evaluations)}] {run_id} {metrics['method']} {metrics['sampler']['name']}: "
                 f"{row['samples_per_s']:.2f} samples/s [{row['samples_per_s_low']:.2f}, {row['samples_per_s_high']:.2f}]")
    revision = (environment()["git_revision"] or "")[:7] or None
    result = {"measured": {"date": date.today().isoformat(), "revision": revision, "sweep": sweep_dir.name,
                           "machine": _machine(), "torch": torch.__version__, "repeats": repeats, "note": NOTE},
              "runs": runs}
    atomic_write_json(out, result)
    return result


def read_speeds(path: str | Path) -> dict[str, Any]:
    """A speeds file written by :func:`measure_speeds`, checked enough that a report can read it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--speeds {path} does not exist (pathbench study speeds writes it)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"--speeds {path} is not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict) or "measured" not in data:
        raise ConfigError(f"--speeds {path} is not a speeds file (expected 'measured' and 'runs'; "
                          "pathbench study speeds writes it)")
    return data
