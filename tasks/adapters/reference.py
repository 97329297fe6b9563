"""The reference row of unconditional results: real held-out text of the run's data, cut to the
run's length and scored exactly like the samples (the yardstick for gen-PPL and entropy)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from pathbench.core.io import cached_json
from pathbench.data.corpus import prepare_stored

_reference_cache: dict[tuple[str, str], dict[str, float]] = {}


def reference_row(data_cfg: dict, n: int, task, store: Path | None = None) -> dict[str, float]:
    """Real held-out text of a run's data (its meta.json ``data`` section), cut to the run's
    length, scored like samples (computed once per data, n and scorer in a process: every run
    of a sweep job shares it). With ``store`` (a sweep's ``reference/`` folder) it is also
    computed once per sweep: the first unit that needs it writes it there, under a lock, and
    the others read it."""
    # a scorer loaded in another dtype or over a device map scores differently (the default
    # placement adds nothing to the key, so rows stored before placements existed stay valid)
    placement = {k: v for k, v in getattr(task, "placement", {}).items() if v not in (None, "float32")}
    key = json.dumps([data_cfg, n, task.scorer_spec, *([placement] if placement else [])], sort_keys=True)
    local = (key, str(getattr(task, "device", "cpu")))
    if local not in _reference_cache:
        if store is None:
            _reference_cache[local] = _score_reference(data_cfg, n, task)
        else:
            _reference_cache[local] = _stored_reference(store, key, task, lambda: _score_reference(data_cfg, n, task))
    return dict(_reference_cache[local])


def _stored_reference(store: Path, key: str, task, compute) -> dict[str, float]:
    """The reference row from ``store`` when one was computed under the same key, scorer state
    and arithmetic (a ``self:`` scorer's checkpoint record, torch's thread count and the device
    change float sums), else computed and written atomically."""
    spec = task.scorer_spec
    scorer_state = None
    if spec.startswith("self:"):  # a retrained scorer rewrites its checkpoint record
        record = Path(spec[len("self:"):]) / "checkpoint.json"
        scorer_state = [record.read_text(), record.stat().st_mtime_ns] if record.is_file() else None
    full = json.dumps([key, scorer_state, torch.get_num_threads(), str(getattr(task, "device", "cpu"))])
    path = store / f"{hashlib.sha1(full.encode()).hexdigest()[:16]}.json"
    stored = cached_json(path, lambda: {"key": json.loads(full), "reference": compute()},
                         valid=lambda d: isinstance(d, dict) and "reference" in d)
    return stored["reference"]


def _score_reference(data_cfg: dict, n: int, task) -> dict[str, float]:
    data = prepare_stored(data_cfg)
    count = min(n, len(data.val))
    seqs = [[int(t) for t in data.val[i]] for i in range(count)]
    texts = [data.tokenizer.decode(s) for s in seqs]
    return task.score_samples(texts, seqs, data.tokenizer.vocab_size)
