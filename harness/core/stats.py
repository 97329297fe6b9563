"""Seeded bootstrap intervals over samples (and seeds): the uncertainty beside a headline number.

A statistic θ(x_1..x_n) of n per-sample records is recomputed on R resamples drawn with
replacement (indices from a seeded NumPy generator, so the interval is reproducible); the
95 % interval is the 2.5 and 97.5 percentiles of the R values (percentile bootstrap).
Token-pooled gen-PPL resamples whole samples: exp(Σ_i NLL_i / Σ_i T_i) over the drawn i,
so long and short samples keep their weight.

With several seeds (independently trained models of one setting) the interval is a two-stage
bootstrap: each resample draws K seeds with replacement from the K trained, then each drawn
seed's n_s samples with replacement, and pools what was drawn,

    PPL* = exp( Σ_{q=1..K} Σ_{i ∈ I_q} NLL_{s_q,i} / Σ_q Σ_{i ∈ I_q} T_{s_q,i} ),

so the interval carries both the spread between trained models and the sampling noise within
each (Davison & Hinkley 1997, §3.8). One seed reduces it to the bootstrap over samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pathbench.core.errors import ConfigError

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95


def describe(resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL, seeds: int = 1) -> str:
    """How an interval was made, in words (stored beside it)."""
    over = f"two-stage percentile bootstrap over {seeds} seeds, then samples" if seeds > 1 else \
        "percentile bootstrap over samples"
    return f"{over}, {resamples} resamples, seed {seed}, {100 * level:g} %"


def bootstrap_interval(statistic: Callable[[np.ndarray], np.ndarray], n: int, *, resamples: int = RESAMPLES,
                       seed: int = SEED, level: float = LEVEL) -> list[float]:
    """[low, high] of ``statistic`` over bootstrap resamples of n records.

    ``statistic`` maps an (R, n) array of record indices to R values (vectorised)."""
    if n < 2:
        raise ConfigError(f"a bootstrap interval needs at least 2 samples, got {n}")
    if resamples < 1000:
        raise ConfigError(f"resamples = {resamples} is too few for a 95 % interval (>= 1000)")
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    return percentile_interval(statistic(index), level)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """[low, high]: the (1 ± level)/2 quantiles of bootstrap values."""
    tail = (1.0 - level) / 2
    return [float(v) for v in np.quantile(values, [tail, 1.0 - tail])]


def pooled_ppl_interval(nll_sums: list[float], tokens: list[int], **options) -> list[float]:
    """Interval of exp(Σ NLL / Σ tokens) resampling whole samples."""
    nll, count = np.asarray(nll_sums, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    return bootstrap_interval(lambda i: np.exp(nll[i].sum(1) / count[i].sum(1)), len(nll), **options)


def mean_interval(values: list[float], **options) -> list[float]:
    """Interval of the mean of per-sample values."""
    x = np.asarray(values, dtype=np.float64)
    return bootstrap_interval(lambda i: x[i].mean(1), len(x), **options)


def draw_seeds(n_seeds: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(R, K) seed indices of a two-stage bootstrap; one seed: all zeros (no draw spent)."""
    if n_seeds == 1:
        return np.zeros((resamples, 1), dtype=np.int64)
    return rng.integers(0, n_seeds, size=(resamples, n_seeds))


def resampled_sums(per_seed: list[np.ndarray], seeds: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two-stage resample sums: ``per_seed[s]`` is an (n_s, C) array of per-sample columns,
    ``seeds`` the (R, K) drawn seed indices (None entries of ``per_seed``, a seed a setting
    lacks, contribute nothing). Returns the (R, C) column sums over drawn seeds and drawn
    samples and the (R,) number of samples drawn."""
    columns = next(a.shape[1] for a in per_seed if a is not None)
    sums, counts = np.zeros((len(seeds), columns)), np.zeros(len(seeds))
    for q in range(seeds.shape[1]):
        for s, records in enumerate(per_seed):
            rows = np.flatnonzero(seeds[:, q] == s)
            if records is None or not len(rows):
                continue
            index = rng.integers(0, len(records), size=(len(rows), len(records)))
            sums[rows] += records[index].sum(1)
            counts[rows] += len(records)
    return sums, counts


def per_sample_columns(per_sample: dict) -> np.ndarray:
    """(n, 3) float64 columns nll_sum, tokens, entropy of one run's stored per-sample data."""
    return np.stack([np.asarray(per_sample[k], dtype=np.float64) for k in ("nll_sum", "tokens", "entropy")], 1)


def seed_pooled(per_seed: list[dict], *, resamples: int = RESAMPLES, seed: int = SEED,
                level: float = LEVEL) -> dict:
    """Gen-PPL and entropy of one setting pooled over its seeds' samples, with their interval
    (two-stage over seeds and samples with several seeds, over samples with one)."""
    data = [per_sample_columns(p) for p in per_seed]
    total = sum(len(d) for d in data)
    if total < 2:
        raise ConfigError(f"a bootstrap interval needs at least 2 samples, got {total}")
    if resamples < 1000:
        raise ConfigError(f"resamples = {resamples} is too few for a 95 % interval (>= 1000)")
    pooled = np.concatenate(data)
    rng = np.random.default_rng(seed)
    sums, counts = resampled_sums(data, draw_seeds(len(data), resamples, rng), rng)
    return {"gen_ppl": float(np.exp(pooled[:, 0].sum() / pooled[:, 1].sum())),
            "gen_ppl_ci95": percentile_interval(np.exp(sums[:, 0] / sums[:, 1]), level),
            "entropy": float(pooled[:, 2].mean()), "entropy_ci95": percentile_interval(sums[:, 2] / counts, level),
            "seeds": len(data), "samples": int(total),
            "interval": describe(resamples, seed, level, seeds=len(data))}
