"""Where pathbench keeps what it builds once and reuses: trained BPE tokenizers and packed data,
the de-quantised SmolLM2 scorer, the stdlib harvest and the code problems' recorded cases.

``$PATHBENCH_CACHE`` when set, else the platform's user cache folder (platformdirs; on Linux
``$XDG_CACHE_HOME/pathbench``, by default ``~/.cache/pathbench``). One absolute folder, not one
relative to the working directory, so a run from any folder reuses what another one built.
The cache holds no results: it is left out of every run id (pathbench.sweep.experiment).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

CACHE_ENV = "PATHBENCH_CACHE"


def cache_root() -> Path:
    """The cache folder now (read at each call: a test or a job may set the variable)."""
    chosen = os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else Path(user_cache_dir("pathbench", appauthor=False))
