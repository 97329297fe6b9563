"""The verdict: each method's generative perplexity at matched entropy, with its uncertainty.

A method is run at several sampler settings s, each giving (H_s, log PPL_s) — mean unigram
entropy and token-pooled log gen-PPL of its samples under one scorer. The matched perplexity
at a target entropy H* (default: real text's under the same scorer) is read off its
PPL–entropy frontier: the lowest log-PPL at H* over the segments between a setting a below
and a setting b above the target,

    log PPL(H*) = min_{H_a ≤ H* ≤ H_b} log PPL_a + (H* − H_a) · (log PPL_b − log PPL_a) / (H_b − H_a)

(where the Pareto frontier brackets H* this is its linear interpolation), and *not reached*
when no setting lies on one side of H* (never extrapolated). Uncertainty:
every setting's samples are resampled with replacement (seeded, ``harness.stats``), the
frontier recomputed, and the 2.5/97.5 percentiles of the matched value taken over the
resamples where it is reached. The pairwise share P(A < B) counts the resamples in which A's
matched PPL is below B's; two methods whose intervals overlap are *within noise*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness import stats
from harness.errors import ConfigError


@dataclass
class Setting:
    """One run: its label and per-sample NLL sums, token counts and entropies."""

    label: str
    nll_sum: np.ndarray
    tokens: np.ndarray
    entropy: np.ndarray

    def point(self) -> tuple[float, float]:
        return float(self.entropy.mean()), float(self.nll_sum.sum() / self.tokens.sum())


@dataclass
class MethodVerdict:
    method: str
    matched_ppl: float | None            # None: not reached
    interval: list[float] | None
    reached_share: float                 # share of resamples in which the target was reached
    best_setting: str | None             # lowest-PPL setting with entropy >= the target
    rank: int | None = None
    draws: np.ndarray = field(default_factory=lambda: np.array([]), repr=False)  # log PPL per resample


def matched_log_ppl(points: list[tuple[float, float]], target: float) -> float | None:
    """log PPL at entropy ``target`` on the lower envelope of the segments between a setting
    below and a setting above it (the frontier where it brackets the target); None when no
    setting lies on one side."""
    below = [p for p in points if p[0] <= target]
    above = [p for p in points if p[0] >= target]
    if not below or not above:
        return None
    best = math.inf
    for ha, la in below:
        for hb, lb in above:
            best = min(best, la if hb == ha else la + (target - ha) * (lb - la) / (hb - ha))
    return best


def _resampled_points(settings: list[Setting], resamples: int, seed: int) -> np.ndarray:
    """(R, settings, 2) bootstrap (entropy, log PPL) of every setting."""
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(settings), 2))
    for j, s in enumerate(settings):
        index = rng.integers(0, len(s.entropy), size=(resamples, len(s.entropy)))
        out[:, j, 0] = s.entropy[index].mean(1)
        out[:, j, 1] = s.nll_sum[index].sum(1) / s.tokens[index].sum(1)
    return out


def judge(methods: dict[str, list[Setting]], target: float, *, resamples: int = stats.RESAMPLES,
          seed: int = stats.SEED) -> list[MethodVerdict]:
    """One verdict per method, ranked (ties where the intervals overlap)."""
    verdicts = []
    for name, settings in methods.items():
        for s in settings:
            if len(s.entropy) < 2:
                raise ConfigError(f"method '{name}', run {s.label}: a bootstrap needs at least 2 samples, "
                                  f"it has {len(s.entropy)}")
    for k, (name, settings) in enumerate(sorted(methods.items())):
        point = matched_log_ppl([s.point() for s in settings], target)
        boot = _resampled_points(settings, resamples, seed + k)
        draws = np.array([v if v is not None else np.nan for v in
                          (matched_log_ppl([tuple(p) for p in rep], target) for rep in boot)])
        ok = draws[~np.isnan(draws)]
        interval = [float(np.exp(q)) for q in np.quantile(ok, [0.025, 0.975])] if point is not None and len(ok) else None
        reaching = [s for s in settings if s.point()[0] >= target]
        best = min(reaching, key=lambda s: s.point()[1]).label if reaching else None
        verdicts.append(MethodVerdict(name, math.exp(point) if point is not None else None, interval,
                                      len(ok) / resamples, best, draws=draws))
    for v in verdicts:
        if v.interval is not None:  # 1 + the methods surely better (their interval lies below)
            v.rank = 1 + sum(o.interval is not None and o.interval[1] < v.interval[0] for o in verdicts)
    return sorted(verdicts, key=lambda v: (v.rank is None, v.rank or 0, v.matched_ppl or 0.0))


def pairwise(verdicts: list[MethodVerdict]) -> dict[tuple[str, str], float | None]:
    """P(A's matched PPL < B's) over the resamples in which both reach the target."""
    out = {}
    for a in verdicts:
        for b in verdicts:
            if a is b:
                continue
            both = ~np.isnan(a.draws) & ~np.isnan(b.draws) if len(a.draws) and len(b.draws) else None
            out[(a.method, b.method)] = (float((a.draws[both] < b.draws[both]).mean())
                                         if both is not None and both.any() else None)
    return out


def within_noise(a: MethodVerdict, b: MethodVerdict) -> bool:
    """Both reached and their 95 % intervals overlap."""
    return (a.interval is not None and b.interval is not None
            and a.interval[0] <= b.interval[1] and b.interval[0] <= a.interval[1])
