"""Checkpoints that a crash can never corrupt.

Layout of a run folder::

    checkpoint.json            pointer to the latest complete checkpoint (atomic rename)
    checkpoints/step-000200/   model.safetensors, state.pt (optimizers, RNG, step, data position)
    meta.json                  what the run is: method, model config, data, tokenizer

A checkpoint folder is written completely before the pointer moves to it, so the pointer
always names a whole checkpoint; older folders are pruned only after the pointer moved.

A Hub export (``pathbench export``, :mod:`pathbench.engine.hub`) is a second layout of the same
run: ``config.json`` (meta.json plus ``model_type: pathbench`` and the checkpoint step) and
``model.safetensors`` at the top; :func:`read_export` reads it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open, atomic_write_json

POINTER = "checkpoint.json"
META = "meta.json"
EXPORT_CONFIG = "config.json"
EXPORT_WEIGHTS = "model.safetensors"
EXPORT_FORMAT = 1  # bumped when the export layout changes, so an older reader refuses it clearly
EXPORT_KEYS = ("model_type", "pathbench_export_format", "checkpoint_step")  # config.json = these + meta


@dataclass
class Checkpoint:
    step: int
    folder: Path
    state: dict[str, Any]


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, state: dict[str, Any],
                    keep: int = 1) -> Path:
    """Write weights (safetensors) and trainer state, then move the pointer; prune old ones."""
    folder = run_dir / "checkpoints" / f"step-{step:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp_model = folder / ".model.safetensors.tmp"
    save_model(model, str(tmp_model))
    tmp_model.replace(folder / "model.safetensors")
    with atomic_open(folder / "state.pt", "wb") as handle:
        torch.save({**state, "step": step}, handle)
    publish(run_dir, step, folder, keep)
    return folder


def publish(run_dir: Path, step: int, folder: Path, keep: int = 1) -> None:
    """Move the pointer to the complete checkpoint ``folder``, then prune all but ``keep``."""
    atomic_write_json(run_dir / POINTER, {"step": step, "folder": str(folder.relative_to(run_dir))})
    folders = sorted((run_dir / "checkpoints").glob("step-*"))
    for old in folders[: max(0, len(folders) - keep)]:
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """(step, folder) named by the pointer, or None when the run has no checkpoint yet."""
    pointer = run_dir / POINTER
    if not pointer.exists():
        return None
    try:
        info = json.loads(pointer.read_text())
        return int(info["step"]), run_dir / info["folder"]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"checkpoint pointer {pointer} is corrupt ({err}); delete it to start over") from err


def load_checkpoint(run_dir: Path, model: torch.nn.Module, *, with_state: bool = True) -> Checkpoint:
    """Load the latest weights into ``model``; a truncated or corrupt file is one clear error."""
    found = latest_checkpoint(run_dir)
    if found is None:
        raise ConfigError(f"no checkpoint in {run_dir} (expected {run_dir / POINTER}); train first")
    step, folder = found
    load_weights(model, folder / "model.safetensors")
    state: dict[str, Any] = {}
    if with_state:
        try:
            state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - pickle/zip errors have many types
            raise ConfigError(f"checkpoint {folder / 'state.pt'} is corrupt or truncated: {err}") from err
    return Checkpoint(step, folder, state)


def load_weights(model: torch.nn.Module, weights: Path) -> None:
    """Load a safetensors file into ``model``; a truncated, corrupt or ill-fitting file is one clear error."""
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        raise ConfigError(f"checkpoint {weights} is corrupt or truncated: {err}") from err
    if missing or unexpected:
        raise ConfigError(f"checkpoint {weights} does not fit the model: missing {sorted(missing)[:3]}, "
                          f"unexpected {sorted(unexpected)[:3]}")


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    atomic_write_json(run_dir / META, meta)


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / META
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a pathbench run folder (no {META})")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is corrupt: {err}") from err


def is_export(folder: Path) -> bool:
    """Whether ``folder`` is a pathbench Hub export rather than a run folder."""
    return not (Path(folder) / META).exists() and (Path(folder) / EXPORT_CONFIG).is_file()


def read_export(folder: Path) -> tuple[dict[str, Any], int]:
    """(meta, checkpoint step) of the export in ``folder``; anything else is one clear error."""
    path = Path(folder) / EXPORT_CONFIG
    if not path.is_file():
        raise ConfigError(f"{folder} is not a pathbench export (no {EXPORT_CONFIG})")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is corrupt: {err}") from err
    if not isinstance(config, dict) or config.get("model_type") != "pathbench":
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise ConfigError(f"{folder} holds a '{kind}' model, not a pathbench export")
    if config.get("pathbench_export_format") != EXPORT_FORMAT:
        raise ConfigError(f"{folder} is export format {config.get('pathbench_export_format')}; this "
                          f"pathbench reads format {EXPORT_FORMAT}")
    return {k: v for k, v in config.items() if k not in EXPORT_KEYS}, int(config["checkpoint_step"])
