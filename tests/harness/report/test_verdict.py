"""Matched-entropy perplexity: known answers of the frontier, never extrapolated, intervals, ranks."""

import math

import numpy as np
import pytest

from pathbench.core.errors import ConfigError
from pathbench.report.verdict import Setting, judge, matched_log_ppl, pairwise, within_noise


def test_frontier_interpolates_in_log_ppl_between_the_bracketing_points():
    points = [(2.0, math.log(100)), (4.0, math.log(400))]
    assert matched_log_ppl(points, 3.0) == pytest.approx(math.log(200))  # geometric midpoint
    assert matched_log_ppl(points, 2.0) == pytest.approx(math.log(100))


def test_dominated_settings_are_off_the_frontier():
    # (3.0, 500) is dominated by (4.0, 400): higher entropy and lower PPL
    points = [(2.0, math.log(100)), (3.0, math.log(500)), (4.0, math.log(400))]
    assert matched_log_ppl(points, 3.0) == pytest.approx(math.log(200))


def test_settings_on_both_sides_reach_the_target_even_when_one_dominates():
    # the higher-entropy setting is also the lower-PPL one: the segment still brackets H*
    points = [(3.0, math.log(800)), (4.0, math.log(700))]
    assert matched_log_ppl(points, 3.5) == pytest.approx(0.5 * (math.log(800) + math.log(700)))


def test_a_target_outside_the_settings_is_not_reached():
    points = [(2.0, math.log(100)), (3.0, math.log(300))]
    assert matched_log_ppl(points, 3.5) is None and matched_log_ppl(points, 1.0) is None


def _setting(label, entropy, ppl, n=40, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    tokens = np.full(n, 50.0)
    return Setting(label, np.log(ppl) * tokens * (1 + noise * rng.standard_normal(n)), tokens,
                   entropy + noise * rng.standard_normal(n))


def test_judge_ranks_clear_differences_and_ties_overlapping_intervals():
    methods = {
        "good": [_setting("g-lo", 2.0, 50, seed=1), _setting("g-hi", 4.0, 150, seed=2)],
        "bad": [_setting("b-lo", 2.0, 500, seed=3), _setting("b-hi", 4.0, 1500, seed=4)],
        "good2": [_setting("h-lo", 2.0, 51, seed=5), _setting("h-hi", 4.0, 152, seed=6)],
        "low": [_setting("l", 1.0, 20, seed=7)],
    }
    verdicts = {v.method: v for v in judge(methods, 3.0, resamples=1000)}
    assert verdicts["good"].matched_ppl == pytest.approx(math.sqrt(50 * 150), rel=0.05)
    assert verdicts["good"].interval[0] < verdicts["good"].matched_ppl < verdicts["good"].interval[1]
    assert verdicts["good"].rank == verdicts["good2"].rank == 1 and verdicts["bad"].rank == 3
    assert within_noise(verdicts["good"], verdicts["good2"])
    assert not within_noise(verdicts["good"], verdicts["bad"])
    assert verdicts["low"].matched_ppl is None and verdicts["low"].rank is None  # never extrapolated
    assert verdicts["good"].best_setting == "g-hi"
    share = pairwise(list(verdicts.values()))
    assert share[("good", "bad")] == 1.0 and share[("bad", "good")] == 0.0
    assert 0.2 < share[("good", "good2")] < 0.8
    assert share[("good", "low")] is None


def test_a_run_with_one_sample_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="method 'kl', run one: a bootstrap needs at least 2 samples"):
        judge({"kl": [_setting("one", 2.0, 10, n=1), _setting("two", 3.0, 20)]}, 2.5)


def test_seeds_are_pooled_per_setting_and_their_spread_enters_the_interval():
    def method(levels, offset):
        return [_seeded(_setting(label, h, ppl * level, seed=offset + 10 * i + j), i)
                for i, level in enumerate(levels) for j, (label, h, ppl) in enumerate((("lo", 2.0, 50), ("hi", 4.0, 150)))]
    steady = {v.method: v for v in judge({"a": method((1.0, 1.0, 1.0), 0)}, 3.0, resamples=1000)}["a"]
    shaky = {v.method: v for v in judge({"a": method((0.5, 1.0, 2.0), 0)}, 3.0, resamples=1000)}["a"]
    assert steady.seeds == [0, 1, 2] and len(steady.seed_values) == 3
    assert steady.matched_ppl == pytest.approx(math.sqrt(50 * 150), rel=0.05)
    assert all(v == pytest.approx(math.sqrt(50 * 150), rel=0.1) for v in steady.seed_values.values())
    width = lambda v: math.log(v.interval[1] / v.interval[0])  # noqa: E731
    assert width(shaky) > 3 * width(steady)
    assert shaky.seed_values[0] < shaky.seed_values[1] < shaky.seed_values[2]


def test_seed_wins_count_each_seed_alone():
    from pathbench.report.verdict import seed_wins

    def method(level):
        return [_seeded(_setting(label, h, ppl * level * (1 + 0.3 * (i == 2)), seed=10 * i + j), i)
                for i in range(3) for j, (label, h, ppl) in enumerate((("lo", 2.0, 50), ("hi", 4.0, 150)))]
    verdicts = {v.method: v for v in judge({"a": method(1.0), "b": method(1.2)}, 3.0, resamples=1000)}
    assert seed_wins(verdicts["a"], verdicts["b"]) == (3, 3)
    assert seed_wins(verdicts["b"], verdicts["a"]) == (0, 3)


def _seeded(setting, seed):
    setting.seed = seed
    return setting


def _record(method, nfe, entropy, nll, **sampler):
    return {"method": method, "seed": 0, "scorer": "smollm2", "reference": {"entropy": 3.0},
            "sampler": {"name": "flowmap", "nfe": nfe, "top_k": None, "final": "argmax", **sampler},
            "metrics": {"per_sample": {"nll_sum": [nll, nll + 1.0], "tokens": [10, 10], "entropy": [entropy] * 2}}}


def test_runs_that_differ_in_any_sampler_key_are_separate_settings_of_the_frontier():
    from pathbench.report.verdict_tables import _groups

    # one seed, NFE 4: argmax at the last step (entropy 0) and a draw there (entropy 4) are two
    # settings that bracket the target, not one setting "pooled" from both
    records = [_record("flowmap", 4, 0.0, 20.0), _record("flowmap", 4, 4.0, 60.0, final="sample"),
               _record("flowmap", 4, 3.5, 50.0, grid="error"), _record("flowmap", 4, 3.6, 55.0, temperature=0.8)]
    (_, (target, methods)), = _groups(records).items()
    labels = [s.label for s in methods["flowmap"]]
    assert labels == ["flowmap NFE 4", "flowmap NFE 4 final sample", "flowmap NFE 4 grid error", "flowmap NFE 4 T 0.8"]
    verdict, = judge(methods, target, resamples=50)
    # the frontier brackets 3.0 between entropy 0 and the lowest-PPL setting above it (grid error)
    assert verdict.matched_ppl == pytest.approx(math.exp(2.05 + 3.0 * (5.05 - 2.05) / 3.5))
    assert verdict.best_setting == "flowmap NFE 4 grid error"
