"""Automatic t*: the selection rule on a synthetic curve with a known optimum, and end to end."""

import json

import pytest

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.studies.tune_tstar import grid_edge, read_start, select_tstar, start_grid, widened


def synthetic(t_star, top_k):
    """PPL falls as t* grows (more deterministic steps) while entropy collapses below real text;
    top-k 1 halves PPL but costs a full nat of entropy."""
    ppl = 1000.0 * (1.2 - t_star) * (0.5 if top_k == 1 else 1.0)
    entropy = 4.0 - 2.5 * t_star - (1.0 if top_k == 1 else 0.0)
    return {"t_star": t_star, "top_k": top_k, "gen_ppl": ppl, "entropy": entropy}


def test_the_known_optimum_of_a_synthetic_curve():
    rows = [synthetic(t, k) for t in (0.0, 0.1, 0.2, 0.28, 0.4, 0.6, 0.8) for k in (1, 5)]
    # real entropy 3.5 ± 0.3: top-k 5 needs t* in [0.08, 0.32]; top-k 1 never gets in
    best = select_tstar(rows, real_entropy=3.5, margin=0.3)
    assert (best["t_star"], best["top_k"]) == (0.28, 5)  # lowest PPL inside the band
    best = select_tstar(rows, real_entropy=3.5, margin=0.75)  # a wider band lets top-k 1 in (t* ≤ 0.1)
    assert (best["t_star"], best["top_k"]) == (0.1, 1)
    assert min(rows, key=lambda r: r["gen_ppl"])["t_star"] == 0.8  # PPL alone would pick repetition


def test_no_setting_in_the_band_is_a_clear_error():
    rows = [synthetic(t, 5) for t in (0.6, 0.8)]
    with pytest.raises(ConfigError, match="no setting keeps entropy within 0.1 nats of real text.*closest: t\\* 0.6"):
        select_tstar(rows, real_entropy=3.5, margin=0.1)
    with pytest.raises(ConfigError, match="margin = -1"):
        select_tstar(rows, real_entropy=3.5, margin=-1)


def test_a_choice_at_the_edge_of_the_grid_is_flagged_where_a_wider_grid_could_beat_it():
    grid = [0.145, 0.217, 0.29, 0.3]
    assert grid_edge(grid, 0.145, t_max=0.3) == "lower"  # a smaller t* was never tried
    assert grid_edge(grid, 0.217, t_max=0.3) is None
    assert grid_edge(grid, 0.3, t_max=0.3) is None  # t_max is the run's bound, nothing lies past it
    assert grid_edge([0.1, 0.2], 0.2, t_max=1.0) == "upper"
    assert grid_edge([0.0, 0.2], 0.0, t_max=1.0) is None  # nor before 0
    assert grid_edge([0.2], 0.2, t_max=1.0) is None
    # widening steps past the edge by the start grid's outer factor, never past [0, t_max]
    assert widened([0.1, 0.2], "lower", t_max=0.3) == 0.05 and widened([0.001, 0.2], "lower", t_max=0.3) == 0.0
    assert widened([0.1, 0.2], "upper", t_max=0.3) == 0.3 and widened([0.1, 0.2], "upper", t_max=1.0) == 0.4


def test_start_grid_and_reading_a_posterior_gap_crossing(tmp_path):
    assert start_grid(0.28) == [0.14, 0.21, 0.28, 0.42, 0.56]
    assert start_grid(0.8)[-1] == 1.0
    # kl-flow samples on [0, 0.3]: the factors past t_max collapse into t* = t_max (never switch), once
    assert start_grid(0.29, t_max=0.3) == [0.145, 0.217, 0.29, 0.3]
    with pytest.raises(ConfigError, match="t\\* start = 0.4 is outside this run's \\[0, 0.3\\]"):
        start_grid(0.4, t_max=0.3)
    path = tmp_path / "crossing.json"
    path.write_text(json.dumps({"threshold": 0.1, "crossing": {"point_mass": 0.31, "uniform": 0.22}}))
    assert read_start(str(path)) == 0.22 and read_start("0.3") == 0.3
    path.write_text(json.dumps({"crossing": {"uniform": 0.42}, "sharp": {"point_mass": 0.01, "uniform": 0.29}}))
    assert read_start(str(path)) == 0.29  # where the exact posterior turns sharp comes first
    with pytest.raises(ConfigError, match="neither a number nor a crossing.json"):
        read_start(str(tmp_path / "missing.json"))


def test_tune_tstar_end_to_end_stores_the_choice_and_sampler_tuned_uses_it(kl_run, tiny_lm, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--ckpt", str(kl_run), "--sampler", "tuned", "--n", "1", "--out", str(out)]) == 2
    assert "run `pathbench study tune-tstar --ckpt DIR` first" in capsys.readouterr().err
    # a kl-flow run samples on [0, 0.3]: a t* past it is refused before anything is drawn or stored
    calibration = kl_run / "calibration.json"
    before = calibration.read_text() if calibration.exists() else None
    assert main(["study", "tune-tstar", "--ckpt", str(kl_run), "--scorer", f"hf:{tiny_lm}", "--t-stars", "0.1,0.5",
                 "--top-k", "5", "--nfe", "4", "--n", "4"]) == 2
    assert "t* 0.5 outside this run's [0, 0.3] (protocol kl-flow)" in capsys.readouterr().err
    assert (calibration.read_text() if calibration.exists() else None) == before
    assert main(["study", "tune-tstar", "--ckpt", str(kl_run), "--scorer", f"hf:{tiny_lm}", "--t-stars", "0.1,0.25",
                 "--top-k", "5", "--nfe", "4", "--n", "4", "--margin", "10"]) == 0
    printed = capsys.readouterr().out
    tuned = json.loads((kl_run / "calibration.json").read_text())["tuned_sampler"]
    rows = tuned["candidates"]
    assert len(rows) == 2 and tuned["sampler"]["name"] == "hybrid" and tuned["sampler"]["nfe"] == 4
    assert tuned["gen_ppl"] == min(r["gen_ppl"] for r in rows)  # margin 10: every row is in the band
    assert f"chosen: t* {tuned['sampler']['t_star']}" in printed
    edge = {0.1: "lower", 0.25: "upper"}[tuned["sampler"]["t_star"]]  # a grid of two: either end is an edge
    assert tuned["edge"] == edge and f"at the grid's {edge} edge" in printed
    assert (kl_run / "tune_tstar" / "tune_tstar.csv").read_text().count("\n") == 3
    assert main(["sample", "--ckpt", str(kl_run), "--sampler", "tuned", "--n", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["sampler"] == tuned["sampler"]
    # a grid of two always chooses at an edge: --widen extends it past that edge, then selects again
    assert main(["study", "tune-tstar", "--ckpt", str(kl_run), "--scorer", f"hf:{tiny_lm}", "--t-stars", "0.1,0.2",
                 "--top-k", "5", "--nfe", "4", "--n", "4", "--margin", "10", "--widen", "2"]) == 0
    printed = capsys.readouterr().out
    tuned = json.loads((kl_run / "calibration.json").read_text())["tuned_sampler"]
    grid = [r["t_star"] for r in tuned["candidates"]]
    assert tuned["widened"] and grid == [0.1, 0.2, *tuned["widened"]] and "widened past the grid's edge" in printed
    assert tuned["widened"][0] == {0.1: 0.05, 0.2: 0.3}[grid[int(tuned["candidates"][0]["gen_ppl"]
                                                              > tuned["candidates"][1]["gen_ppl"])]]
    assert tuned["gen_ppl"] == min(r["gen_ppl"] for r in tuned["candidates"])
    assert tuned["edge"] == grid_edge(grid, tuned["sampler"]["t_star"], t_max=0.3)
