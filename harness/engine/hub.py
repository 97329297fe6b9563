"""A run as a Hugging Face Hub model folder: ``pathbench export`` and :func:`load_exported`.

The folder is what ``save_pretrained`` writes (``model.safetensors`` + ``config.json``) plus the
tokenizer files at its root (``tokenizer.json`` for BPE, ``hf/`` for a Hub tokenizer, and
``pathbench_tokenizer.json``), the run's ``calibration.json`` and training ``metrics.jsonl``
when it has them, and a model card (``README.md``) holding the run's meta, generation protocol
and metrics. ``config.json`` is the run's meta.json with ``model_type: pathbench`` and the
checkpoint step added, so loading it back needs nothing else: weights are copied byte for byte
from the checkpoint, and sampling the export with a seed gives the run's ids exactly.

The folder is written in a temporary sibling and renamed into place, so a reader never sees
half an export and an existing one is replaced only with ``force``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from harness.core.errors import ConfigError
from harness.core.io import atomic_write_json
from harness.engine.calibration import CALIBRATION
from harness.engine.checkpoint import (
    EXPORT_CONFIG,
    EXPORT_FORMAT,
    EXPORT_WEIGHTS,
    is_export,
    latest_checkpoint,
    read_export,
)
from harness.engine.run import LoadedRun, load_run


@dataclass
class Export:
    """What ``pathbench export`` wrote."""

    folder: Path
    step: int
    files: list[str]


def export_run(ckpt: Path, out: Path, *, eval_metrics: list[Path] = (), force: bool = False) -> Export:
    """Write run ``ckpt`` (its latest checkpoint) as a Hub model folder ``out``; ``eval_metrics``
    are ``pathbench eval`` metrics.json files whose results go into the model card."""
    out = Path(out)
    if (out.is_file() or (out.is_dir() and any(out.iterdir()))) and not force:
        raise ConfigError(f"--out {out} exists and is not empty; pass --force to replace it")
    if is_export(ckpt):
        raise ConfigError(f"--ckpt {ckpt} is already an export; copy the folder instead")
    run = load_run(ckpt)  # checks the run is whole and consistent before anything is written
    found = latest_checkpoint(ckpt)
    assert found is not None  # load_run raised otherwise
    results = [_read_eval(path) for path in eval_metrics]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        shutil.copytree(ckpt / run.meta["tokenizer"], tmp, dirs_exist_ok=True)
        shutil.copyfile(found[1] / EXPORT_WEIGHTS, tmp / EXPORT_WEIGHTS)
        for name in (CALIBRATION, "metrics.jsonl"):
            if (ckpt / name).is_file():
                shutil.copyfile(ckpt / name, tmp / name)
        meta = {**run.meta, "tokenizer": "."}
        atomic_write_json(tmp / EXPORT_CONFIG, {"model_type": "pathbench",
                                                "pathbench_export_format": EXPORT_FORMAT,
                                                "checkpoint_step": run.step, **meta})
        if results:
            atomic_write_json(tmp / "eval_results.json", results)
        model_card(meta, run.step, _training_summary(ckpt / "metrics.jsonl"), results).save(tmp / "README.md")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Export(out, run.step, files)


def load_exported(folder: Path, device: str = "cpu", method_name: str | None = None) -> LoadedRun:
    """The run in export ``folder``: what :func:`harness.engine.run.load_run` gives for the run it
    came from (same method, weights, tokenizer, meta and step). ``load_run`` reads an export
    too; this one refuses anything else."""
    read_export(folder)  # one clear error for a folder that is no export
    return load_run(Path(folder), device, method_name)


def model_card(meta: dict, step: int, training: dict, results: list[dict]) -> ModelCard:
    """The README.md: Hub metadata (library, tags) and the run's meta, protocol and metrics."""
    data = ModelCardData(library_name="pathbench", license="mit", pipeline_tag="text-generation",
                         tags=["pathbench", "non-autoregressive", meta["method"]])
    protocol = meta.get("generation_protocol") or {}
    lines = [
        f"# pathbench {meta['method']} ({meta.get('preset', '')})", "",
        f"A `{meta['method']}` model trained with pathbench to step {step}, "
        f"exported by `pathbench export`. Load it with `harness.engine.hub.load_exported(folder)`.", "",
        "## Run", "", _json_block({k: meta.get(k) for k in ("method", "method_options", "preset", "model", "data",
                                                          "train", "plugins") if k in meta}),
        "## Generation protocol", "", f"`{protocol.get('name', 'none recorded')}`", "", _json_block(protocol),
        "## Training metrics", "", _table(training) if training else "No metrics.jsonl in the run.", "",
    ]
    for result in results:
        lines += [f"## Evaluation: {result['task']} ({result['source']})", "", _table(result["metrics"]), ""]
    if "environment" in meta:
        lines += ["## Environment", "", _json_block(meta["environment"])]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _training_summary(path: Path) -> dict[str, Any]:
    """The last step's loss and the last validation loss of metrics.jsonl ({} without one)."""
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        return {}
    summary = {"step": records[-1]["step"], "loss": records[-1].get("loss")}
    val = [r for r in records if "val_loss" in r]
    if val:
        summary.update(val_loss=val[-1]["val_loss"], val_step=val[-1]["step"])
    return summary


def _read_eval(path: Path) -> dict[str, Any]:
    """One ``pathbench eval`` metrics.json as {source, task, metrics} (scalar metrics only)."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--metrics {path} cannot be read as JSON: {err}") from err
    metrics = result.get("metrics") if isinstance(result, dict) else None
    if not isinstance(metrics, dict):
        raise ConfigError(f"--metrics {path} is not a pathbench eval metrics.json (no 'metrics' object)")
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    return {"source": str(path), "task": result.get("task", "?"), "metrics": scalars}


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``; an old ``out`` is renamed aside first and deleted
    only once the new one is in place."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def _json_block(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n```\n"


def _table(metrics: dict[str, Any]) -> str:
    rows = [f"| {k} | {f'{v:.6g}' if isinstance(v, float) else v} |" for k, v in metrics.items()]
    return "\n".join(["| metric | value |", "| --- | --- |", *rows])
