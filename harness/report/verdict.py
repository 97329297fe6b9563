"""The verdict: each method's generative perplexity at matched entropy, with its uncertainty.

A method is run at several sampler settings s, each giving (H_s, log PPL_s) — mean unigram
entropy and token-pooled log gen-PPL of its samples under one scorer. The matched perplexity
at a target entropy H* (default: real text's under the same scorer) is read off its
PPL–entropy frontier: the lowest log-PPL at H* over the segments between a setting a below
and a setting b above the target,

    log PPL(H*) = min_{H_a ≤ H* ≤ H_b} log PPL_a + (H* − H_a) · (log PPL_b − log PPL_a) / (H_b − H_a)

(where the Pareto frontier brackets H* this is its linear interpolation), and *not reached*
when no setting lies on one side of H* (never extrapolated). A setting trained with several
seeds pools their samples. Uncertainty: each resample draws the method's seeds with
replacement and then every drawn seed's samples of every setting (one seed draw shared by all
settings of a resample: a seed is one trained model, which made all of them; with one seed
only samples are drawn; ``pathbench.core.stats``), the frontier is recomputed, and the 2.5/97.5
percentiles of the matched value are taken over the resamples where it is reached. The
pairwise share P(A < B) counts the resamples in which A's matched PPL is below B's, and with
several seeds each seed's own matched values are compared too; two methods whose intervals
overlap are *within noise*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pathbench.core import stats
from pathbench.core.errors import ConfigError


@dataclass
class Setting:
    """One run: its setting's label, training seed and per-sample NLL sums, token counts, entropies."""

    label: str
    nll_sum: np.ndarray
    tokens: np.ndarray
    entropy: np.ndarray
    seed: int = 0

    def point(self) -> tuple[float, float]:
        return float(self.entropy.mean()), float(self.nll_sum.sum() / self.tokens.sum())

    def columns(self) -> np.ndarray:
        return np.stack([self.nll_sum, self.tokens, self.entropy], 1).astype(np.float64)


def pooled_point(runs: list[Setting]) -> tuple[float, float]:
    """(entropy, log PPL) of one setting pooled over its seeds' samples."""
    data = np.concatenate([r.columns() for r in runs])
    return float(data[:, 2].mean()), float(data[:, 0].sum() / data[:, 1].sum())


@dataclass
class MethodVerdict:
    method: str
    matched_ppl: float | None            # None: not reached
    interval: list[float] | None
    reached_share: float                 # share of resamples in which the target was reached
    best_setting: str | None             # lowest-PPL setting with entropy >= the target
    seeds: list[int] = field(default_factory=list)
    seed_values: dict[int, float | None] = field(default_factory=dict)  # matched PPL of each seed alone
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


def _by_label(settings: list[Setting]) -> dict[str, list[Setting]]:
    out: dict[str, list[Setting]] = {}
    for s in settings:
        out.setdefault(s.label, []).append(s)
    return out


def _resampled_points(by_label: dict[str, list[Setting]], seeds: list[int], resamples: int,
                      seed: int) -> np.ndarray:
    """(R, settings, 2) two-stage bootstrap (entropy, log PPL) of every setting; one draw of
    seeds per resample shared by all settings."""
    rng = np.random.default_rng(seed)
    drawn = stats.draw_seeds(len(seeds), resamples, rng)
    out = np.empty((resamples, len(by_label), 2))
    for j, runs in enumerate(by_label.values()):
        of_seed = {r.seed: r.columns() for r in runs}
        sums, counts = stats.resampled_sums([of_seed.get(s) for s in seeds], drawn, rng)
        with np.errstate(invalid="ignore", divide="ignore"):  # a drawn set missing this setting: nan
            out[:, j, 0] = np.where(counts > 0, sums[:, 2] / np.maximum(counts, 1), np.nan)
            out[:, j, 1] = np.where(counts > 0, sums[:, 0] / np.maximum(sums[:, 1], 1), np.nan)
    return out


def _matched(points: np.ndarray, target: float) -> float:
    kept = [tuple(p) for p in points if not np.isnan(p[0])]
    value = matched_log_ppl(kept, target)
    return np.nan if value is None else value


def judge(methods: dict[str, list[Setting]], target: float, *, resamples: int = stats.RESAMPLES,
          seed: int = stats.SEED) -> list[MethodVerdict]:
    """One verdict per method, ranked (ties where the intervals overlap). A method's settings
    are its runs grouped by label; runs of one label with different seeds are pooled."""
    verdicts = []
    for name, settings in methods.items():
        for s in settings:
            if len(s.entropy) < 2:
                raise ConfigError(f"method '{name}', run {s.label}: a bootstrap needs at least 2 samples, "
                                  f"it has {len(s.entropy)}")
    for k, (name, settings) in enumerate(sorted(methods.items())):
        by_label = _by_label(settings)
        seeds = sorted({s.seed for s in settings})
        points = {label: pooled_point(runs) for label, runs in by_label.items()}
        point = matched_log_ppl(list(points.values()), target)
        boot = _resampled_points(by_label, seeds, resamples, seed + k)
        draws = np.array([_matched(rep, target) for rep in boot])
        ok = draws[~np.isnan(draws)]
        interval = [math.exp(q) for q in stats.percentile_interval(ok)] if point is not None and len(ok) else None
        reaching = [label for label, p in points.items() if p[0] >= target]
        best = min(reaching, key=lambda label: points[label][1]) if reaching else None
        seed_values = {}
        for s in seeds:
            alone = matched_log_ppl([r.point() for r in settings if r.seed == s], target)
            seed_values[s] = math.exp(alone) if alone is not None else None
        verdicts.append(MethodVerdict(name, math.exp(point) if point is not None else None, interval,
                                      len(ok) / resamples, best, seeds, seed_values, draws=draws))
    for v in verdicts:
        if v.interval is not None:  # 1 + the methods surely better (their interval lies below)
            v.rank = 1 + sum(o.interval is not None and o.interval[1] < v.interval[0] for o in verdicts)
    return sorted(verdicts, key=lambda v: (v.rank is None, v.rank or 0, v.matched_ppl or 0.0))


def seed_wins(a: MethodVerdict, b: MethodVerdict) -> tuple[int, int]:
    """(seeds where A's own matched PPL is below B's, seeds where both reach the target)."""
    common = [s for s in a.seeds if a.seed_values.get(s) is not None and b.seed_values.get(s) is not None]
    return sum(a.seed_values[s] < b.seed_values[s] for s in common), len(common)


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
