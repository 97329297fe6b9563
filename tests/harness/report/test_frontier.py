"""The quality–speed frontier on a synthetic results folder with known answers."""

import json

import pandas as pd
import pytest

from pathbench.report.frontier import quality_speed_frontier
from pathbench.report.leaderboard import load

CPU = {"device": "cpu", "device_name": "cpu", "precision": "float32", "threads": 2}


def write(root, run_id, method, sampler, nfe, ppl, interval, speed, entropy=4.4, seed=0, generation=CPU, top_k=None):
    record = {"run_id": run_id, "method": method, "task": "unconditional", "scorer": "smollm2", "seed": seed,
              "status": "complete", "preset": "tiny",
              "sampler": {"name": sampler, "nfe": nfe, "top_k": top_k, "final": "argmax"},
              "metrics": {"gen_ppl": ppl, "gen_ppl_ci95": list(interval), "entropy": entropy,
                          "entropy_ci95": [entropy - 0.1, entropy + 0.1]},
              **({"generation": {**generation, "samples_per_s": speed, "tokens_per_s": 128 * speed}}
                 if speed is not None else {})}
    (root / run_id).mkdir(parents=True)
    (root / run_id / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path):
    write(tmp_path, "kl8", "kl", "basic", 8, 60.0, (55, 65), 6.0)
    write(tmp_path, "kl1", "kl", "basic", 1, 300.0, (280, 320), 40.0)
    write(tmp_path, "fm1", "flowmap", "flowmap", 1, 70.0, (62, 78), 48.0)
    write(tmp_path, "fm8", "flowmap", "flowmap", 8, 58.0, (54, 62), 6.0)
    write(tmp_path, "dfm", "dfm", "euler", 8, 90.0, (85, 95), 4.0)
    write(tmp_path, "ar", "ar", "ancestral", 127, 50.0, (47, 53), 12.0)
    write(tmp_path, "lin", "linear", "basic", 8, 70.0, (60, 80), None)  # evaluated before costs were measured
    return tmp_path


def test_rows_carry_quality_speed_and_the_device(results, tmp_path):
    df, problems, records = load(results)
    assert not problems
    out = quality_speed_frontier(df, records, tmp_path / "frontier.png")
    rows = out.rows.set_index("method", drop=False)
    assert list(out.rows["samples_per_s"].iloc[:2]) == [48.0, 40.0]  # fastest first
    assert rows.loc["ar", "autoregressive"] and not rows.loc["dfm", "autoregressive"]
    assert (rows.loc["dfm", "gen_ppl"], rows.loc["dfm", "gen_ppl_lo"], rows.loc["dfm", "gen_ppl_hi"]) == (90, 85, 95)
    assert rows.loc["dfm", "entropy"] == 4.4 and rows.loc["dfm", "tokens_per_s"] == 512
    assert rows.loc["dfm", "device"] == "cpu, float32, 2 threads"
    assert rows.loc["linear", "device"] == "not measured" and pd.isna(rows.loc["linear", "samples_per_s"])
    assert out.plot == tmp_path / "frontier.png" and out.plot.read_bytes().startswith(b"\x89PNG")


def test_speedup_columns_of_the_few_step_table(results):
    out = quality_speed_frontier(*load(results)[::2])
    rows = out.rows.set_index(["method", "nfe"])
    assert rows.loc[("flowmap", 1), "speedup_vs_nfe8"] == pytest.approx(8.0)
    assert rows.loc[("flowmap", 1), "speedup_vs_ar"] == pytest.approx(4.0)
    assert rows.loc[("kl", 8), "speedup_vs_nfe8"] == pytest.approx(1.0)
    assert rows.loc[("dfm", 8), "speedup_vs_ar"] == pytest.approx(4 / 12)  # slower than AR: below 1
    assert pd.isna(rows.loc[("ar", 127), "speedup_vs_ar"])  # AR is the baseline itself


def test_sentences_say_faster_and_better_only_with_disjoint_intervals(results):
    sentences = quality_speed_frontier(*load(results)[::2]).sentences
    text = "\n".join(sentences)
    # flowmap NFE 1 (48/s, 70 [62, 78]) beats dfm (4/s, 90 [85, 95]) outright
    assert ("flowmap (flowmap, NFE 1) is both faster and better than dfm (euler, NFE 8): 48 against 4 samples/s "
            "(12.0x), gen-PPL 70.0 [62.0, 78.0] at entropy 4.40 against gen-PPL 90.0 [85.0, 95.0] at entropy 4.40"
            ) in text
    # the AR baseline (12/s, 50 [47, 53]) is faster and better than kl at NFE 8 (6/s, 60 [55, 65])
    assert "ar (ancestral, KV cache) is both faster and better than kl (basic, NFE 8): 12 against 6 samples/s" in text
    # flowmap NFE 1 is faster than AR but worse (62 > 53): no sentence claims it beats AR
    assert not any(s.startswith("flowmap") and "than ar" in s for s in sentences)
    # flowmap NFE 1 is faster than kl NFE 8 and their intervals overlap (70 [62, 78], 60 [55, 65])
    assert "flowmap (flowmap, NFE 1) is faster than, and within noise of, kl (basic, NFE 8)" in text
    assert not any("linear" in s for s in sentences)  # no measured speed: not compared


def test_speeds_measured_on_different_devices_are_not_compared(tmp_path):
    gpu = {"device": "cuda:0", "device_name": "NVIDIA H100", "precision": "bf16", "threads": 16}
    write(tmp_path, "a", "kl", "basic", 8, 40.0, (38, 42), 500.0, generation=gpu)
    write(tmp_path, "b", "dfm", "euler", 8, 90.0, (85, 95), 4.0)
    out = quality_speed_frontier(*load(tmp_path)[::2])
    assert out.sentences == [] and len(out.rows) == 2 and out.plot is None


def test_re_measured_speeds_count_as_faster_only_beyond_their_spread(tmp_path):
    """With a speeds file (repeated draws), a higher median is not "faster" while the slowest draw of
    one setting does not beat the other's fastest; the report's cell shows the spread."""
    from pathbench.report.leaderboard import write_report

    write(tmp_path, "kl8", "kl", "basic", 8, 40.0, (38, 42), 1.0)    # the runs' own timings: ignored below
    write(tmp_path, "dfm", "dfm", "euler", 8, 90.0, (85, 95), 99.0)
    write(tmp_path, "ar", "ar", "ancestral", 127, 80.0, (75, 85), 1.0)

    def timed(median, low, high):
        return {**CPU, "samples_per_s": median, "samples_per_s_low": low, "samples_per_s_high": high,
                "tokens_per_s": 64 * median, "repeats": 3}

    speeds = {"measured": {"date": "2026-12-05", "revision": "abc1234", "machine": "x86_64, cpu", "torch": "2.13.0",
                           "repeats": 3},
              "runs": {"kl8": timed(10.0, 9.0, 11.0), "dfm": timed(10.5, 10.2, 10.8)}}  # "ar": not re-measured
    records = [{**r, "generation": speeds["runs"].get(r["run_id"])} for r in load(tmp_path)[2]]
    out = quality_speed_frontier(load(tmp_path)[0], records)
    rows = out.rows.set_index("method")
    assert (rows.loc["kl", "samples_per_s_low"], rows.loc["kl", "samples_per_s_high"]) == (9.0, 11.0)
    assert rows.loc["ar", "device"] == "not measured"
    assert out.sentences == []  # dfm's median is higher, but inside kl's spread: not faster
    speeds["runs"]["kl8"] = timed(20.0, 19.0, 21.0)  # now beyond dfm's fastest draw
    result = write_report(tmp_path, tmp_path / "out", speeds=speeds)
    md = result["leaderboard_md"].read_text()
    section = md.split("## Quality and speed\n", 1)[1].split("\n## ", 1)[0]
    assert "re-measured by `pathbench study speeds` on 2026-12-05, revision abc1234" in section
    assert "kl (basic, NFE 8) is both faster and better than dfm (euler, NFE 8): 20 against 10.5 samples/s" in section
    assert "| 20.00 [19.00, 21.00] |" in section and "| 10.50 [10.20, 10.80] |" in section


def test_a_few_step_grid_shows_its_measured_speedups(results, tmp_path):
    """NFE 1 beside NFE 8: the table gains the speedup over NFE 8 and over AR (FMLM's claim)."""
    from pathbench.report.leaderboard import write_report

    md = write_report(results, tmp_path / "out")["leaderboard_md"].read_text()
    section = md.split("## Quality and speed\n", 1)[1].split("\n## ", 1)[0]
    head = next(line for line in section.splitlines() if line.startswith("| method"))
    assert "x NFE 8" in head and "x AR" in head
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]
    columns = rows[0]
    flowmap_one = next(dict(zip(columns, r)) for r in rows[1:] if r[:3] == ["flowmap", "flowmap", "1"])
    assert (flowmap_one["x NFE 8"], flowmap_one["x AR"]) == ("8.0x", "4.0x")  # 48 samples/s against 6 and 12


def test_a_grid_without_few_steps_has_no_speedup_columns(tmp_path):
    from pathbench.report.leaderboard import write_report

    write(tmp_path, "kl16", "kl", "basic", 16, 60.0, (55, 65), 6.0)
    write(tmp_path, "ar", "ar", "ancestral", 127, 50.0, (47, 53), 12.0)
    md = write_report(tmp_path, tmp_path / "out")["leaderboard_md"].read_text()
    assert "## Quality and speed" in md and "x NFE 8" not in md and "x AR" not in md


def test_a_model_that_did_not_learn_is_left_out_of_every_comparison(results, tmp_path):
    """dfm's denoiser never learned: its 4 samples/s at 90 [85, 95] is no quality to trade, so no
    sentence names it (flowmap 'both faster and better than dfm' was said above); the table keeps it."""
    from pathbench.report.leaderboard import write_report

    for run_id, learned in (("dfm", False), ("kl8", True), ("kl1", True)):
        path = results / run_id / "metrics.json"
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "checkpoint": f"ckpt-{record['method']}",
                                    "learning_check": {"kind": "denoiser", "learned": learned}}))
    from pathbench.report.verdict_tables import untrained_runs

    df, _, records = load(results)
    assert untrained_runs(records) == {"dfm"}
    out = quality_speed_frontier(df, records, untrained=untrained_runs(records))
    assert not any("dfm" in s for s in out.sentences)
    assert "flowmap (flowmap, NFE 1) is faster than, and within noise of, kl (basic, NFE 8)" in " ".join(out.sentences)
    assert list(out.rows.set_index("method").loc[["dfm", "kl"], "learned"]) == [False, True, True]
    md = write_report(results, tmp_path / "out")["leaderboard_md"].read_text()
    section = md.split("## Quality and speed\n", 1)[1].split("\n## ", 1)[0]
    assert "Left out of these comparisons: dfm did not learn" in section and "| dfm " in section
    assert "than dfm" not in section and "dfm (euler, NFE 8) is" not in section


def test_beside_a_second_protocol_each_model_is_named_with_its_own(tmp_path):
    """kl under kl-flow and under plain are two models: a sentence names which one it compares, as
    the verdict does; a baseline (dfm: the protocol sets none of its keys) keeps its bare name."""
    write(tmp_path, "flow", "kl", "basic", 8, 40.0, (38, 42), 20.0)
    write(tmp_path, "plain", "kl", "basic", 8, 90.0, (85, 95), 10.0)
    write(tmp_path, "dfm", "dfm", "euler", 8, 95.0, (90, 99), 5.0)
    for run_id, protocol in (("flow", {"name": "kl-flow"}), ("plain", {"name": "plain"}),
                             ("dfm", {"name": "kl-flow", "not_applied": {"method": ["path"]}})):
        path = tmp_path / run_id / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "generation_protocol": protocol}))
    out = quality_speed_frontier(*load(tmp_path)[::2])
    assert sorted(out.rows["method"]) == ["dfm", "kl [kl-flow]", "kl [plain]"]
    assert "kl [kl-flow] (basic, NFE 8) is both faster and better than kl [plain] (basic, NFE 8)" in " ".join(out.sentences)
