"""Where training records go: ``metrics.jsonl`` always, and one optional live-curve logger
(``train.logger=tensorboard|wandb|mlflow``) beside it.

Every sink is handed the very record the trainer appends to ``metrics.jsonl`` (``step``,
``loss``, ``lr``, and on evaluation steps ``val_loss``, ``tokens_per_s``, ...), in the same
order, so a curve in TensorBoard, W&B or MLflow is that file drawn, never a second
bookkeeping that could disagree with it. A logger only observes: nothing it does reaches the
model, the data order or any random draw, and a sweep leaves ``logger`` out of a unit's
identity (:meth:`pathbench.sweep.experiment.TrainUnit.identity`), so turning it on changes
neither the run id nor a number.

The loggers' libraries are optional (``pip install 'pathbench[logging]'`` for TensorBoard,
``[wandb]``, ``[mlflow]``) and imported only when their sink opens; a missing one is found
when the train options are read (:func:`check_logger`), before any data is prepared.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_text
from pathbench.core.registry import LOGGERS


class MetricSink(Protocol):
    """Receives every training record, in order; ``close`` flushes what it buffered."""

    def log(self, record: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """``metrics.jsonl``: one JSON record per line, appended as it comes (a crash loses no
    finished line). On resume the records after the checkpoint's step are dropped first, so
    no step appears twice."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        if path.exists():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= start]
            path.write_text("".join(line + "\n" for line in kept))

    def log(self, record: dict[str, float]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        pass


class FanOut:
    """Several sinks as one: each record goes to every sink, and every sink is closed."""

    def __init__(self, sinks: list[MetricSink]) -> None:
        self.sinks = sinks

    def log(self, record: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.log(record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def check_logger(name: str) -> None:
    """A one-line error for an unknown logger name (listing the known ones) or a logger whose
    library is not installed (with the pip command that installs it)."""
    sink = LOGGERS.get(name)
    if importlib.util.find_spec(sink.package) is None:
        raise ConfigError(f"train.logger={name} needs the '{sink.package}' package, which is not installed: "
                          f"pip install 'pathbench[{sink.extra}]'")


def open_sinks(logger: str | None, run_dir: Path, start: int) -> FanOut:
    """``metrics.jsonl`` plus the named logger, writing under ``run_dir``; ``start`` is the
    step training continues from (0 for a new run), so a resumed logger drops what came after it."""
    sinks: list[MetricSink] = [JsonlSink(run_dir / "metrics.jsonl", start)]
    if logger is not None:
        check_logger(logger)
        sinks.append(LOGGERS.get(logger)(run_dir, start, _run_config(run_dir)))
    return FanOut(sinks)


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The run's meta.json (method, model, data, train options) for the logger's config panel."""
    try:
        return json.loads((run_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def _remembered_id(run_dir: Path, name: str) -> str:
    """An id kept in the run folder, so that a resumed run continues the same logged run."""
    path = run_dir / name
    if path.exists():
        return path.read_text().strip()
    new = uuid.uuid4().hex[:16]
    atomic_write_text(path, new + "\n")
    return new


def _scalars(record: dict[str, float]) -> dict[str, float]:
    return {key: float(value) for key, value in record.items() if key != "step"}


@LOGGERS.register("tensorboard", "tb")
class TensorBoardSink:
    """TensorBoard event files in <run>/tensorboard/ (offline; pathbench[logging]).

    ``tensorboard --logdir`` a run folder, or a sweep's ``train/`` folder for every unit at
    once. Scalars are stored as float32, as TensorBoard does."""

    package, extra = "tensorboard", "logging"

    def __init__(self, run_dir: Path, start: int, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when asked for

        # purge_step: on resume, TensorBoard hides what a crashed session logged after the checkpoint
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start + 1 if start else None)

    def log(self, record: dict[str, float]) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.writer.close()


@LOGGERS.register("wandb")
class WandbSink:
    """A Weights & Biases run, its files in <run>/wandb/ (pathbench[wandb]; WANDB_MODE applies).

    Named after the run folder; wandb's own settings apply: ``WANDB_MODE=offline`` (or ``disabled``) keeps everything
    local, ``WANDB_PROJECT`` names the project (default ``pathbench``)."""

    package, extra = "wandb", "wandb"

    def __init__(self, run_dir: Path, start: int, config: dict[str, Any]) -> None:
        import wandb  # optional and heavy

        self.wandb = wandb
        # no mode= argument: WANDB_MODE decides; the remembered id resumes the same W&B run
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "pathbench"), name=run_dir.name,
                              dir=str(run_dir), id=_remembered_id(run_dir, "wandb_id"), resume="allow",
                              config=config)

    def log(self, record: dict[str, float]) -> None:
        self.run.log(_scalars(record), step=int(record["step"]))

    def close(self) -> None:
        self.run.finish()


@LOGGERS.register("mlflow")
class MlflowSink:
    """An MLflow run in a local file store, <run>/mlruns/ (pathbench[mlflow]).

    ``mlflow ui --backend-store-uri <run>/mlruns`` shows it; ``MLFLOW_TRACKING_URI`` names
    another store, ``MLFLOW_EXPERIMENT_NAME`` the experiment (default ``pathbench``)."""

    package, extra = "mlflow", "mlflow"

    def __init__(self, run_dir: Path, start: int, config: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param  # optional and heavy
        from mlflow.tracking import MlflowClient

        self.metric = Metric
        uri = os.environ.get("MLFLOW_TRACKING_URI") or (run_dir / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "pathbench")
        found = self.client.get_experiment_by_name(name)
        experiment = found.experiment_id if found is not None else self.client.create_experiment(name)
        id_file = run_dir / "mlflow_run_id"
        if id_file.exists():
            self.run_id = id_file.read_text().strip()
        else:
            self.run_id = self.client.create_run(experiment, run_name=run_dir.name).info.run_id
            atomic_write_text(id_file, self.run_id + "\n")
            params = [Param(key, str(value)[:500]) for key, value in _flatten(config).items()]
            for first in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[first:first + 100])

    def log(self, record: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self.metric(key, value, now, int(record["step"]))
                                                    for key, value in _scalars(record).items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
