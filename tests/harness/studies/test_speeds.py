"""``pathbench study speeds``: a sweep's unconditional evaluations re-timed as they ran, and the
report reading the result instead of the runs' own timings."""

import json

import pytest

from pathbench.cli import main


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, kl_run, tiny_lm):
    """A sweep folder as `pathbench sweep` leaves it: an evaluation of kl_run under runs/ (two
    scorers of one sampler setting share one draw, so one measurement)."""
    root = tmp_path_factory.mktemp("speeds-sweep")
    for run_id in ("e1", "e2"):
        out = root / "runs" / run_id
        assert main(["eval", "--ckpt", str(kl_run), "--task", "unconditional", "--n", "4", "--batch-size", "2",
                     "--nfe", "3", "--out", str(out), f"scorer=hf:{tiny_lm}"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        (out / "metrics.json").write_text(json.dumps({**metrics, "run_id": run_id, "status": "complete"}))
    return root


def test_every_evaluation_is_re_timed_with_its_spread(sweep, tmp_path, capsys):
    out = tmp_path / "speeds.json"
    assert main(["study", "speeds", str(sweep), "--out", str(out), "--repeats", "2"]) == 0
    result = json.loads(out.read_text())
    assert set(result["runs"]) == {"e1", "e2"}
    assert result["measured"]["repeats"] == 2 and result["measured"]["torch"]
    for row in result["runs"].values():
        assert row["samples"] == 4 and row["batch_size"] == 2 and row["nfe"] == 3 and row["repeats"] == 2
        assert row["samples_per_s_low"] <= row["samples_per_s"] <= row["samples_per_s_high"]
        assert row["samples_per_s"] == pytest.approx(4 / row["seconds"])
    assert result["runs"]["e1"] == result["runs"]["e2"]  # one draw, one measurement
    assert capsys.readouterr().out.count("samples/s [") == 2


def test_a_folder_without_runs_and_a_missing_speeds_file_are_one_line(tmp_path, capsys):
    assert main(["study", "speeds", str(tmp_path), "--out", str(tmp_path / "s.json")]) == 2
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r"), "--speeds", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a sweep folder" in err[0] and "pathbench study speeds writes it" in err[1]
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "r").exists()
