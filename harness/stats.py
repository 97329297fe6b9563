"""Seeded bootstrap intervals over samples: the uncertainty printed beside a headline number.

A statistic θ(x_1..x_n) of n per-sample records is recomputed on R resamples drawn with
replacement (indices from a seeded NumPy generator, so the interval is reproducible); the
95 % interval is the 2.5 and 97.5 percentiles of the R values (percentile bootstrap).
Token-pooled gen-PPL resamples whole samples: exp(Σ_i NLL_i / Σ_i T_i) over the drawn i,
so long and short samples keep their weight.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.errors import ConfigError

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95


def describe(resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> str:
    """How an interval was made, in words (stored beside it)."""
    return f"percentile bootstrap over samples, {resamples} resamples, seed {seed}, {100 * level:g} %"


def bootstrap_interval(statistic: Callable[[np.ndarray], np.ndarray], n: int, *, resamples: int = RESAMPLES,
                       seed: int = SEED, level: float = LEVEL) -> list[float]:
    """[low, high] of ``statistic`` over bootstrap resamples of n records.

    ``statistic`` maps an (R, n) array of record indices to R values (vectorised)."""
    if n < 2:
        raise ConfigError(f"a bootstrap interval needs at least 2 samples, got {n}")
    if resamples < 1000:
        raise ConfigError(f"resamples = {resamples} is too few for a 95 % interval (>= 1000)")
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = statistic(index)
    tail = (1.0 - level) / 2
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return [float(low), float(high)]


def pooled_ppl_interval(nll_sums: list[float], tokens: list[int], **options) -> list[float]:
    """Interval of exp(Σ NLL / Σ tokens) resampling whole samples."""
    nll, count = np.asarray(nll_sums, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    return bootstrap_interval(lambda i: np.exp(nll[i].sum(1) / count[i].sum(1)), len(nll), **options)


def mean_interval(values: list[float], **options) -> list[float]:
    """Interval of the mean of per-sample values."""
    x = np.asarray(values, dtype=np.float64)
    return bootstrap_interval(lambda i: x[i].mean(1), len(x), **options)
