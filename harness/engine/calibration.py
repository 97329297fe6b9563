"""What is fitted on a trained checkpoint and travels with it: ``calibration.json``.

A run folder may hold, next to ``meta.json``, one ``calibration.json`` with a section per
fitted quantity, each tagged with the checkpoint step it was measured on:

* ``time_warp``      the decoding-error curve behind the sampler grid ``error`` (``pathbench study reparam``)
* ``tuned_sampler``  the hybrid t* / top-k chosen by ``pathbench study tune-tstar`` (sampler ``tuned``)

Sections are replaced one at a time with an atomic write, so fitting one never loses another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json

CALIBRATION = "calibration.json"


def read_calibration(run_dir: Path) -> dict[str, Any]:
    """The run's calibration sections ({} when nothing was fitted yet)."""
    path = Path(run_dir) / CALIBRATION
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is corrupt ({err}); delete it and fit again") from err


def store_calibration(run_dir: Path, section: str, value: dict[str, Any]) -> Path:
    """Replace one section of the run's calibration.json (atomically); returns the file."""
    path = Path(run_dir) / CALIBRATION
    atomic_write_json(path, {**read_calibration(run_dir), section: value})
    return path
