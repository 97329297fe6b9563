"""The denoiser gap on an oracle corpus: the Bayes-optimal denoiser bounds every trained one."""

import csv
import json

import pytest

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.studies.denoiser_gap import write_denoiser_gap

CORPUS = "oracle:V=32,H=4,k=4,succ=2,n=600"


@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory):
    """A kl, a linear and an ar run, 30 small steps each, on one oracle corpus (a sweep-like folder)."""
    root = tmp_path_factory.mktemp("oracle-runs")
    for method in ("kl", "linear", "ar"):
        assert main(["train", "--method", method, "--steps", "30", "--out", str(root / "train" / method),
                     f"data.corpus={CORPUS}", "data.tokenizer=oracle", f"data.cache_dir={root / 'cache'}",
                     "data.seq_len=12", "batch_size=16", "lr=3e-3", "warmup=5", "model.n_layer=2",
                     "model.d_model=64", "progress=false"]) == 0
    return root


def test_gap_is_bounded_below_by_zero_and_files_are_written(oracle_runs, tmp_path):
    result = write_denoiser_gap([oracle_runs], tmp_path, cells=4, sequences=24, progress=False)
    rows = result["rows"]
    assert {r["method"] for r in rows} == {"kl", "linear"} and len(rows) == 8
    assert {r["protocol"] for r in rows} == {"kl-flow"}
    assert set(result["skipped"]) == {"ar"} and "not a simplex path" in result["skipped"]["ar"]
    for r in rows:
        assert r["vocab"] == 32 and 0 < r["t"] < 0.3
        assert r["gap"] > -3 * r["gap_se"] - 1e-9, r  # no denoiser beats the Bayes-optimal one
        assert r["ce_bayes"] >= 0
    # the Bayes-optimal cross-entropy falls as t grows (the state says more about its token)
    for method in ("kl", "linear"):
        bayes = [r["ce_bayes"] for r in sorted(rows, key=lambda r: r["t"]) if r["method"] == method]
        assert bayes[0] > bayes[-1]
    with open(tmp_path / "denoiser_gap.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
    saved = json.loads((tmp_path / "denoiser_gap.json").read_text())
    assert {s["method"] for s in saved["summary"]} == {"kl", "linear"}
    assert saved["runs"]["kl"]["excess_loss"] == pytest.approx(
        sum(r["gap"] for r in rows if r["method"] == "kl") / 4)
    assert (tmp_path / "denoiser_gap.png").stat().st_size > 10_000


def test_same_draws_give_the_same_numbers(oracle_runs, tmp_path):
    a = write_denoiser_gap([oracle_runs / "train" / "kl"], tmp_path / "a", cells=2, sequences=16, progress=False)
    b = write_denoiser_gap([oracle_runs / "train" / "kl"], tmp_path / "b", cells=2, sequences=16, progress=False)
    assert a["rows"] == b["rows"]


def test_runs_without_a_known_law_are_refused(oracle_runs, kl_run, tmp_path):
    with pytest.raises(ConfigError, match="is not an oracle corpus"):
        write_denoiser_gap([kl_run], tmp_path, progress=False)
    with pytest.raises(ConfigError, match="neither a run folder"):
        write_denoiser_gap([tmp_path], tmp_path, progress=False)
    assert main(["study", "denoiser-gap", str(oracle_runs / "train" / "ar"), "--out", str(tmp_path / "x")]) == 2
    with pytest.raises(ConfigError, match="no run in .* was trained under protocol 'plain'"):
        write_denoiser_gap([oracle_runs / "train" / "kl"], tmp_path, protocol="plain", progress=False)
