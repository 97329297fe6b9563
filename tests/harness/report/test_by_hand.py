"""The stored per-sample values are enough: an interval and a matched-entropy value recomputed
by hand (plain Python loops over the metrics.json files of real evaluations) equal the stored
and reported ones."""

import json
import math

import numpy as np
import pytest

from pathbench.evaluation.evaluate import eval_run
from pathbench.report.verdict import judge
from pathbench.report.verdict_tables import _groups


@pytest.fixture(scope="module")
def stored(kl_run, tiny_lm, tmp_path_factory):
    """Two sampler settings of one kl run (top-k 1 and the full vocabulary), 6 samples each."""
    out = tmp_path_factory.mktemp("by-hand")
    records = []
    for name, top_k in (("k1", 1), ("full", None)):
        eval_run(kl_run, "unconditional", out / name, {"name": "sampling", "nfe": 4, "top_k": top_k}, n=6,
                 task_options={"scorer": f"hf:{tiny_lm}"})
        records.append(json.loads((out / name / "metrics.json").read_text()))
    return records


def test_the_stored_interval_is_the_bootstrap_of_the_stored_samples(stored):
    metrics = stored[1]["metrics"]
    nll, tokens = metrics["per_sample"]["nll_sum"], metrics["per_sample"]["tokens"]
    rng = np.random.default_rng(0)  # the documented seed; 2000 resamples of whole samples
    values = []
    for _ in range(2000):
        drawn = rng.integers(0, len(nll), size=len(nll))
        values.append(math.exp(sum(nll[i] for i in drawn) / sum(tokens[i] for i in drawn)))
    low = float(np.quantile(values, 0.025))
    high = float(np.quantile(values, 0.975))
    assert metrics["gen_ppl_ci95"] == pytest.approx([low, high], rel=1e-12)
    assert metrics["gen_ppl"] == pytest.approx(math.exp(sum(nll) / sum(tokens)), rel=1e-12)
    assert metrics["entropy"] == pytest.approx(sum(metrics["per_sample"]["entropy"]) / len(nll), rel=1e-12)


def test_the_matched_value_is_the_log_ppl_interpolation_of_the_stored_points(stored):
    points = []
    for r in stored:
        per = r["metrics"]["per_sample"]
        points.append((sum(per["entropy"]) / len(per["entropy"]), sum(per["nll_sum"]) / sum(per["tokens"])))
    (h0, l0), (h1, l1) = sorted(points)
    assert h0 < h1  # top-k 1 draws less diverse samples than the full vocabulary
    target = h0 + 0.25 * (h1 - h0)
    by_hand = math.exp(l0 + (target - h0) * (l1 - l0) / (h1 - h0))
    (scorer, (_, methods)), = _groups(stored).items()
    verdict, = judge(methods, target)
    assert verdict.matched_ppl == pytest.approx(by_hand, rel=1e-12)
    assert verdict.interval[0] <= verdict.matched_ppl <= verdict.interval[1]
