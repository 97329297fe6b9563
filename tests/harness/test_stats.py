"""Bootstrap intervals: known answers, reproducibility, coverage, and the stored per-sample data."""

import math

import numpy as np
import pytest

from harness import stats
from harness.errors import ConfigError


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
