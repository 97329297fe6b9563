"""The learning check: did a run's model learn at all, before anyone reads its samples?

A denoiser that never learned to read x_t predicts every position from the data's marginal —
its held-out cross-entropy sits at the unigram cross-entropy at every t — and samples from it
collapse (one repeated token under top-k 1). That is a fact about the training run, not about
its path, and must never be read as one. So every simplex run stores, after training:

* ``held_out_ce[k]`` — the held-out cross-entropy −log p_θ(x1 | x_t) (nats per generated token)
  at fixed times t_k, the midpoints of ``CELLS`` equal cells of [0, t_max] (the grid of
  ``pathbench study denoiser-gap``, so on an oracle corpus the Bayes-optimal curve sits beside
  it), each over the same few held-out batches with a fixed noise seed;
* ``marginal_ce`` — the cross-entropy of the same held-out tokens under the training split's
  unigram distribution (add-½ smoothed): what a model that ignores its input can reach;
* ``learned`` — ``min_k held_out_ce[k] ≤ marginal_ce − MARGIN_NATS``. A run that fails it is
  marked "did not learn to read x_t" in its metrics.json, the verdict table and the report's
  first screen.

An autoregressive run is checked the same way with its next-token cross-entropy (one number,
no t); a method whose objective is not a per-token cross-entropy of the clean data given its
input (dfm's and sedd's masked objectives, a flow-map student) is listed as not checked, with
the reason. Written to ``learning_check.json`` in the run folder (atomic).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from pathbench.core.config import DataConfig, line_infill_option
from pathbench.core.io import atomic_write_json
from pathbench.data.corpus import BatchLoader, PackedData, prepare_stored
from pathbench.engine.methods import Method, PathMethod, masked_cross_entropy

FILE = "learning_check.json"
#: how far below the marginal a run's best held-out cross-entropy must reach (nats per token)
MARGIN_NATS = 0.1
CELLS = 8
BATCHES = 4
#: training tokens read for the unigram (a prefix of the split is enough for its marginal)
MARGINAL_TOKENS = 4_000_000
SEED = 4321


@dataclass
class LearningCheck:
    """One run's learning check (``kind``: denoiser, next_token or not_checked)."""

    kind: str
    learned: bool | None
    marginal_ce: float | None = None
    margin: float = MARGIN_NATS
    times: list[float] = field(default_factory=list)
    held_out_ce: list[float] = field(default_factory=list)
    best_ce: float | None = None
    best_t: float | None = None
    tokens: int = 0
    reason: str = ""

    @property
    def verdict(self) -> str:
        if self.learned is None:
            return f"not checked ({self.reason})"
        what = "read x_t" if self.kind == "denoiser" else "predict the next token"
        if self.learned:
            return (f"learned to {what}: best held-out CE {self.best_ce:.3f} vs the marginal's "
                    f"{self.marginal_ce:.3f} nats/token")
        return (f"did not learn to {what}: best held-out CE {self.best_ce:.3f} is not {self.margin} nats below "
                f"the marginal's {self.marginal_ce:.3f}")

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def check_times(t_max: float, cells: int = CELLS) -> list[float]:
    """Midpoints of ``cells`` equal cells of [0, t_max]."""
    return [t_max * (k + 0.5) / cells for k in range(cells)]


def marginal_cross_entropy(train_tokens: np.ndarray, batches: list, vocab: int) -> tuple[float, int]:
    """(CE of the batches' generated tokens under the training unigram, their count)."""
    flat = np.asarray(train_tokens).reshape(-1)[:MARGINAL_TOKENS].astype(np.int64)
    counts = np.bincount(flat, minlength=vocab)[:vocab].astype(np.float64) + 0.5
    log_p = torch.from_numpy(np.log(counts / counts.sum()))
    total, tokens = 0.0, 0
    for batch in batches:
        keep = ~batch.given
        total += float(-log_p[batch.ids[keep].clamp(0, vocab - 1)].sum())
        tokens += int(keep.sum())
    return total / max(tokens, 1), tokens


@torch.no_grad()
def _mean_ce(per_batch: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    total, tokens = 0.0, 0
    for loss, given in per_batch:
        n = int((~given).sum())
        total += float(loss) * n
        tokens += n
    return total / max(tokens, 1)


@torch.no_grad()
def check_model(method: Method, model: torch.nn.Module, batches: list, train_tokens: np.ndarray,
                device: torch.device | str) -> LearningCheck:
    """The learning check of ``model`` trained with ``method`` on held-out ``batches``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        vocab = model.config.vocab_size - method.extra_tokens
        if isinstance(method, PathMethod) and method.path_name:
            kind = "denoiser"
        elif getattr(method, "causal", False):
            kind = "next_token"
        else:
            return LearningCheck("not_checked", None, reason=f"'{type(method).__name__}' trains no per-token "
                                 "cross-entropy of the clean data given its input")
        marginal, tokens = marginal_cross_entropy(train_tokens, batches, vocab)
        if kind == "denoiser":
            times = check_times(method.path.t_max)
            curve = []
            for t in times:
                generator = torch.Generator(device).manual_seed(SEED)
                curve.append(_mean_ce(
                    (masked_cross_entropy(method.denoise_at(model, b.ids.to(device), b.given.to(device),
                                                            torch.full((len(b.ids),), t, device=device), generator),
                                          b.ids.to(device), b.given.to(device)), b.given) for b in batches))
        else:
            times = []
            generator = torch.Generator(device).manual_seed(SEED)
            curve = [_mean_ce((method.loss(model, b.ids.to(device), b.given.to(device), generator), b.given)
                              for b in batches)]
        best = min(range(len(curve)), key=lambda k: curve[k])
        ok = all(math.isfinite(c) for c in curve) and curve[best] <= marginal - MARGIN_NATS
        return LearningCheck(kind, ok, marginal, MARGIN_NATS, times, curve, curve[best],
                             times[best] if times else None, tokens)
    finally:
        model.train(was_training)


def write_check(folder: Path, check: LearningCheck) -> dict:
    record = check.to_dict()
    atomic_write_json(folder / FILE, record)
    return record


def read_check(folder: Path) -> dict | None:
    path = Path(folder) / FILE
    return json.loads(path.read_text()) if path.is_file() else None


def held_out(data: PackedData, data_cfg: DataConfig, batch_size: int) -> list:
    """The first :data:`BATCHES` held-out batches, with the run's given-position policy."""
    infill = line_infill_option(data_cfg)
    masks = {"line_infill": infill, "is_newline": data.newline_table() if infill else None}
    return list(islice(BatchLoader(data.val, batch_size, shuffle=False, **masks).epoch(), BATCHES))


def run_check(folder: Path, method: Method, model: torch.nn.Module, data: PackedData, data_cfg: DataConfig,
              batch_size: int, device: torch.device | str) -> dict:
    """Check a trained run and write its ``learning_check.json``; returns the record."""
    return write_check(folder, check_model(method, model, held_out(data, data_cfg, batch_size), data.train, device))


def ensure_check(folder: Path, method: Method, model: torch.nn.Module, meta: dict,
                 device: torch.device | str = "cpu") -> dict:
    """A run's learning check: the stored one, else computed now from its recorded data (a run
    trained before the check existed) and stored."""
    found = read_check(folder)
    if found is not None:
        return found
    data_cfg = DataConfig(**meta["data"])
    batch_size = int((meta.get("train") or {}).get("batch_size", 16))
    return run_check(folder, method, model, prepare_stored(meta["data"]), data_cfg, batch_size, device)
