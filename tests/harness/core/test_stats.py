"""Bootstrap intervals: known answers, reproducibility, coverage, and the stored per-sample data."""

import math

import numpy as np
import pytest

from pathbench.core import stats
from pathbench.core.errors import ConfigError


def test_a_constant_sample_has_a_degenerate_interval():
    assert stats.mean_interval([2.5] * 10) == [2.5, 2.5]
    assert stats.pooled_ppl_interval([10.0] * 5, [5] * 5) == pytest.approx([math.exp(2.0)] * 2)


def test_intervals_are_seeded_and_reproducible():
    x = list(np.random.default_rng(1).normal(size=30))
    assert stats.mean_interval(x) == stats.mean_interval(x)
    assert stats.mean_interval(x) != stats.mean_interval(x, seed=1)


def test_pooled_ppl_resamples_whole_samples():
    # one long sample of low NLL and one short of high NLL: the pooled value weights by tokens,
    # and every resample lies between the two samples' own perplexities
    low, high = stats.pooled_ppl_interval([10.0, 6.0], [10, 2])
    assert math.exp(1.0) <= low <= math.exp(16 / 12) <= high <= math.exp(3.0)


def test_95_percent_intervals_cover_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = sum(lo <= 1.0 <= hi for lo, hi in
               (stats.mean_interval(list(rng.exponential(size=40)), resamples=1000) for _ in range(200)))
    assert 0.88 <= hits / 200 <= 0.99


def test_too_few_resamples_or_no_sample_is_refused():
    with pytest.raises(ConfigError, match="resamples = 100"):
        stats.mean_interval([1.0, 2.0], resamples=100)
    with pytest.raises(ConfigError, match="at least 2 samples, got 1"):
        stats.mean_interval([3.0])


def _per_sample(nll_per_token, n=20, tokens=50, spread=0.02, seed=0):
    rng = np.random.default_rng(seed)
    t = np.full(n, tokens)
    return {"nll_sum": list(nll_per_token * t * (1 + spread * rng.standard_normal(n))), "tokens": list(t),
            "entropy": list(3.0 + spread * rng.standard_normal(n))}


def test_one_seed_pools_to_the_bootstrap_over_samples():
    per = _per_sample(4.0)
    one = stats.seed_pooled([per])
    assert one["gen_ppl_ci95"] == stats.pooled_ppl_interval(per["nll_sum"], per["tokens"])
    assert one["seeds"] == 1 and "over samples" in one["interval"]


def test_seeds_that_disagree_widen_the_interval_beyond_the_sampling_noise():
    # three trained models whose levels differ far more than their samples do
    seeds = [_per_sample(level, seed=i) for i, level in enumerate((3.5, 4.0, 4.5))]
    pooled = stats.seed_pooled(seeds)
    within = stats.pooled_ppl_interval(sum((p["nll_sum"] for p in seeds), []), sum((p["tokens"] for p in seeds), []))
    assert pooled["gen_ppl"] == pytest.approx(math.exp(4.0), rel=0.01)
    assert pooled["gen_ppl_ci95"][1] - pooled["gen_ppl_ci95"][0] > 5 * (within[1] - within[0])
    # a two-stage resample can draw the low seed three times, never beyond it
    assert math.exp(3.5) * 0.97 < pooled["gen_ppl_ci95"][0] < pooled["gen_ppl"] < pooled["gen_ppl_ci95"][1] < math.exp(4.5) * 1.03
    assert pooled["seeds"] == 3 and "over 3 seeds" in pooled["interval"]


def test_two_stage_sums_follow_the_drawn_seeds():
    rng = np.random.default_rng(0)
    per_seed = [np.ones((4, 1)), 10 * np.ones((2, 1))]
    drawn = np.array([[0, 0], [1, 1], [0, 1]])
    sums, counts = stats.resampled_sums(per_seed, drawn, rng)
    assert sums[:, 0].tolist() == [8.0, 40.0, 24.0] and counts.tolist() == [8, 4, 6]
